"""DataLoader collate for batches mixing labeled items (one view) and unlabeled items (several views).

A labeled item is one result dict; an unlabeled item that went through ``MultiBranch`` is a list
of view dicts. The batch is flattened into views and handed to ``mmcv.parallel.collate`` as ONE
GPU batch (``samples_per_gpu=len(views)``): images are padded to a common size and stacked to
``img.data[0]`` of shape ``[B, 3, H, W]``, ``img_metas.data[0]`` is a list of B dicts and
``gt_bboxes`` / ``gt_labels`` hold lists of B tensors. Build the DataLoader with
``batch_size=samples_per_gpu`` (one loader per GPU process, as in distributed training), since
a loader batch spanning several GPUs cannot be split once unlabeled items have expanded.
"""
from mmcv.parallel import collate


def flatten_views(batch):
    """One flat list of view dicts from dataset items that are dicts or lists of dicts."""
    views = []
    for item in batch:
        items = item if isinstance(item, (list, tuple)) else [item]
        for view in items:
            if not isinstance(view, dict):
                raise TypeError(f'semi_collate expects dicts or lists of dicts, got {type(view).__name__}')
            views.append(view)
    return views


def semi_collate(batch, samples_per_gpu=1):
    """Collate one GPU batch of ``len(batch) <= samples_per_gpu`` dataset items into flat views."""
    if not batch:
        raise ValueError('semi_collate got an empty batch')
    if len(batch) > samples_per_gpu:
        raise ValueError(f'semi_collate got {len(batch)} items for samples_per_gpu={samples_per_gpu}: '
                         'the DataLoader batch must be a single GPU batch')
    views = flatten_views(batch)
    keys = set(views[0])
    for index, view in enumerate(views):
        if set(view) != keys:
            raise KeyError(f'view {index} has keys {sorted(view)}, view 0 has {sorted(keys)}')
    return collate(views, samples_per_gpu=len(views))
