"""Data loaders: the semi sampler when a ``sampler_cfg`` is given, mmdet's loader otherwise."""
import functools

import torch
from mmcv.utils import Registry, build_from_cfg
from mmdet.datasets import build_dataloader as build_mmdet_dataloader
from mmdet.datasets.builder import worker_init_fn
from torch.utils.data import DataLoader

from ssod.datasets.collate import semi_collate
from ssod.datasets.samplers.semi_balance import SemiBalanceSampler
from ssod.utils import dist_utils

SAMPLERS = Registry("semi sampler")
# One class for every world size; the upstream names are aliases (H.3).
SAMPLERS.register_module(
    name=["SemiBalanceSampler", "DistributedGroupSemiBalanceSampler", "GroupSemiBalanceSampler"],
    module=SemiBalanceSampler)


def build_sampler(cfg, default_args=None):
    """Build a sampler from ``cfg`` (not modified) and ``default_args``."""
    return build_from_cfg(cfg, SAMPLERS, default_args)


def build_dataloader(dataset, samples_per_gpu, workers_per_gpu, num_gpus=1, dist=True,
                     shuffle=True, seed=None, sampler_cfg=None, persistent_workers=False,
                     **kwargs):
    """``mmdet.datasets.build_dataloader`` plus a ``sampler_cfg`` for semi-supervised training.

    With ``sampler_cfg`` (e.g. ``dict(type='SemiBalanceSampler', sample_ratio=[1, 4],
    by_prob=True, epoch_length=7330)``) the loader draws one per-GPU batch per step from that
    sampler, reachable as ``data_loader.sampler``; ``seed`` seeds the sampler (0 if None), the
    workers and the loader's own ``generator``; a dataset with ``sup_repeat_factors()``
    (``SemiDataset``) hands its labeled repeat factors to the sampler. Without it, mmdet
    builds the loader (test and val loaders).
    """
    # Each new iterator draws a seed from the loader's generator: a private one leaves torch's
    # global random state (RoI sampling, box jitter) alone, so a resumed run draws the same numbers.
    kwargs.setdefault("generator", torch.Generator().manual_seed(0 if seed is None else seed))
    if sampler_cfg is None:
        return build_mmdet_dataloader(
            dataset, samples_per_gpu, workers_per_gpu, num_gpus=num_gpus, dist=dist,
            shuffle=shuffle, seed=seed, persistent_workers=persistent_workers, **kwargs)
    if not shuffle:
        raise ValueError(f"sampler_cfg {sampler_cfg} always shuffles; got shuffle=False")
    if not dist and num_gpus != 1:
        raise ValueError(f"non-distributed semi training runs on one GPU, got num_gpus={num_gpus};"
                         f" launch several GPUs with torchrun")
    kwargs.pop("runner_type", None)  # mmdet picks its sampler by runner type; ours serves both
    if kwargs.pop("class_aware_sampler", None) is not None:
        raise ValueError("class_aware_sampler cannot be combined with sampler_cfg")
    rank, world_size = (dist_utils.get_rank(), dist_utils.get_world_size()) if dist else (0, 1)
    default_args = dict(dataset=dataset, samples_per_gpu=samples_per_gpu, num_replicas=world_size,
                        rank=rank, seed=0 if seed is None else seed)
    sup_repeat_factors = getattr(dataset, "sup_repeat_factors", None)
    if sup_repeat_factors is not None:  # labeled RFS (SemiDataset with ClassBalancedDatasetRFS)
        default_args["sup_repeat_factors"] = sup_repeat_factors()
    sampler = build_sampler(sampler_cfg, default_args)
    init_fn = None
    if seed is not None:
        init_fn = functools.partial(
            worker_init_fn, num_workers=workers_per_gpu, rank=rank, seed=seed)
    return DataLoader(
        dataset,
        batch_size=samples_per_gpu,
        sampler=sampler,
        batch_sampler=None,
        num_workers=workers_per_gpu,
        collate_fn=functools.partial(semi_collate, samples_per_gpu=samples_per_gpu),
        pin_memory=kwargs.pop("pin_memory", False),
        worker_init_fn=init_fn,
        persistent_workers=persistent_workers,
        **kwargs)
