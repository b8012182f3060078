"""Dataset wrappers that mark which side of a ``SemiDataset`` is resampled (spec E.4, E.5).

mmdet's ``ClassBalancedDataset`` repeats indices inside the dataset. Inside a ``SemiDataset``
that would change the index space ``SemiBalanceSampler`` draws from, so these wrappers keep
one index per image (length, items and aspect flags of the inner dataset) and only describe
the repeat factors; the sampler applies them:

* ``ClassBalancedDatasetRFS(dataset, oversample_thr)``: the labeled side. :meth:`repeat_factors`
  gives the LVIS repeat-factor-sampling counts, which the data-loader builder hands to the
  sampler as ``sup_repeat_factors``.
* ``ClassBalancedDatasetCrS(dataset)`` (upstream name): the unlabeled side.
  ``GradientResamplingHook`` computes its CrS factors from the pseudo-label store during
  training; :meth:`image_keys` names every image the way the store does.
"""
import os.path as osp

from mmdet.datasets import DATASETS, build_dataset

from ssod.datasets.crs import rfs_repeat_factors


def image_keys(dataset) -> list:
    """Store key of every image: ``img_prefix/filename`` as ``LoadImageFromFile`` names it."""
    if isinstance(dataset, _IndexPreservingWrapper):
        return image_keys(dataset.dataset)
    infos = getattr(dataset, "data_infos", None)
    if infos is None:
        raise TypeError(f"{type(dataset).__name__} has no data_infos; cannot name its images "
                        "for the pseudo-label store")
    prefix = getattr(dataset, "img_prefix", None)
    return [info["filename"] if prefix is None else osp.join(prefix, info["filename"]) for info in infos]


def unwrap_dataset(dataset):
    """The innermost dataset below the wrappers of this module."""
    while isinstance(dataset, _IndexPreservingWrapper):
        dataset = dataset.dataset
    return dataset


class _IndexPreservingWrapper:
    """Same indices, items, aspect flags and classes as the wrapped dataset (built from its config)."""

    def __init__(self, dataset):
        self.dataset = build_dataset(dataset) if isinstance(dataset, dict) else dataset
        self.CLASSES = self.dataset.CLASSES
        self.PALETTE = getattr(self.dataset, "PALETTE", None)
        flag = getattr(self.dataset, "flag", None)
        if flag is not None:
            self.flag = flag

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        return self.dataset[idx]

    def get_cat_ids(self, idx):
        return self.dataset.get_cat_ids(idx)

    def get_ann_info(self, idx):
        return self.dataset.get_ann_info(idx)


@DATASETS.register_module()
class ClassBalancedDatasetRFS(_IndexPreservingWrapper):
    """Labeled dataset with repeat-factor sampling counts (spec E.5); indices are not repeated.

    Args:
        dataset (dict | Dataset): the labeled dataset or its config.
        oversample_thr (float): ``t_os``; classes in fewer than this fraction of images are
            oversampled by ``ceil(sqrt(t_os / f_c))``.

    Category lists come from ``dataset.get_cat_ids`` (crowd boxes included for COCO, as in
    mmdet's ``ClassBalancedDataset``).
    """

    def __init__(self, dataset, oversample_thr):
        super().__init__(dataset)
        if not oversample_thr >= 0:
            raise ValueError(f"ClassBalancedDatasetRFS: oversample_thr must be >= 0, got {oversample_thr}")
        self.oversample_thr = float(oversample_thr)

    def repeat_factors(self):
        """int64 repeat count per image."""
        return rfs_repeat_factors([self.dataset.get_cat_ids(i) for i in range(len(self.dataset))],
                                  self.oversample_thr)


@DATASETS.register_module()
class ClassBalancedDatasetCrS(_IndexPreservingWrapper):
    """Unlabeled dataset whose sampling ``GradientResamplingHook`` rebalances (spec E.4).

    Args:
        dataset (dict | Dataset): the unlabeled dataset or its config.
    """

    def image_keys(self) -> list:
        return image_keys(self.dataset)
