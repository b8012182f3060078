"""numpy 2 compatibility for the mmdet 2.28.2 code paths ssod uses.

mmdet 2.28.2's ``CustomDataset.get_cat_ids`` calls ``astype(np.int)`` (removed in
numpy 1.24); ``ClassBalancedDataset`` calls it for datasets that do not override it.
The method is replaced here, at ``import ssod``, with an equivalent that uses ``int``;
site-packages is never edited.
"""
from mmdet.datasets.custom import CustomDataset


def _custom_dataset_cat_ids(self, idx):
    """Category ids (contiguous labels) of image ``idx``, as plain ints."""
    return self.get_ann_info(idx)["labels"].astype(int).tolist()


def apply() -> None:
    CustomDataset.get_cat_ids = _custom_dataset_cat_ids
