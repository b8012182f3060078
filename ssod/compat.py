"""Compatibility glue for the mmdet 2.28.2 code paths ssod uses, applied at ``import ssod``.

Nothing in site-packages is edited; two module attributes are replaced:

* numpy 2: ``CustomDataset.get_cat_ids`` calls ``astype(np.int)`` (removed in numpy
  1.24); ``ClassBalancedDataset`` calls it for datasets that do not override it.
* CPU process groups: mmdet's samplers share their seed with ``sync_random_seed``, which
  broadcasts a CUDA tensor and so fails on gloo/CPU runs; it is replaced by an
  object broadcast that works on any backend.
* GPU scatter: mmcv's ``Scatter.forward`` (``mmcv/parallel/_functions.py``) passes int
  device ids to torch's ``_get_stream``, which since torch 2.x reads ``device.type``
  (``AttributeError: 'int' object has no attribute 'type'`` on the first GPU iteration);
  mmcv's module-level name is replaced by one that hands torch a ``torch.device``.
"""
import numpy as np
import torch
import torch.nn.parallel._functions as torch_parallel_functions
from mmcv.parallel import _functions as mmcv_parallel_functions
from mmdet.datasets import samplers as mmdet_samplers
from mmdet.datasets.custom import CustomDataset

from ssod.utils.dist_utils import broadcast_object

_SAMPLER_MODULES = ("distributed_sampler", "infinite_sampler", "class_aware_sampler")


def _custom_dataset_cat_ids(self, idx):
    """Category ids (contiguous labels) of image ``idx``, as plain ints."""
    return self.get_ann_info(idx)["labels"].astype(int).tolist()


def sync_random_seed(seed=None, device=None):
    """``seed`` (or a random one drawn on rank 0), identical on every rank; any backend."""
    if seed is None:
        seed = int(np.random.randint(2**31))
    return broadcast_object(int(seed))


def _get_stream_for_device_id(device):
    """torch's background copy stream for ``device``, given as a CUDA index or a ``torch.device``."""
    if isinstance(device, int):
        device = torch.device("cuda", device)
    return torch_parallel_functions._get_stream(device)


def apply() -> None:
    CustomDataset.get_cat_ids = _custom_dataset_cat_ids
    mmcv_parallel_functions._get_stream = _get_stream_for_device_id
    for name in _SAMPLER_MODULES:
        setattr(getattr(mmdet_samplers, name), "sync_random_seed", sync_random_seed)
