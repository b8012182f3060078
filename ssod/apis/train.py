"""Build the runner, loaders, hooks and (distributed) model wrapper, then train."""
import random

import numpy as np
import torch
from mmcv.runner import OptimizerHook, build_optimizer, build_runner
from mmdet.datasets import build_dataset, replace_ImageToTensor
from mmdet.utils import get_root_logger

from ssod.apis.checkpoint import load_model_weights
from ssod.apis.divergence import DivergenceCheckHook
from ssod.apis.dist_env import local_rank
from ssod.apis.fp16_hook import LoggedFp16OptimizerHook
from ssod.apis.parallel import wrap_model
from ssod.apis.runner import ResumableIterBasedRunner
from ssod.apis.work_dir import find_resume_checkpoint
from ssod.datasets.builder import build_dataloader
from ssod.datasets.preflight import preflight
from ssod.utils.dist_utils import broadcast_object, get_world_size
from ssod.hooks.evaluation import DetEvalHook
from ssod.hooks.rank_consistency import RankConsistencyHook


def init_random_seed(seed=None) -> int:
    """``seed``, or a random one drawn on rank 0 and shared with every rank."""
    if seed is not None:
        return int(seed)
    return broadcast_object(int(np.random.randint(2**31)))


def set_random_seed(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _optimizer_hook(cfg, distributed):
    optimizer_config = cfg.get("optimizer_config") or {}
    if cfg.get("fp16") is None:
        if "type" in optimizer_config:
            return optimizer_config
        return OptimizerHook(**optimizer_config)
    if not torch.cuda.is_available():
        raise RuntimeError("fp16 training needs a CUDA device; remove `fp16` from the config to train on CPU")
    return LoggedFp16OptimizerHook(**optimizer_config, **cfg.fp16, distributed=distributed)


def build_train_loaders(datasets, cfg, distributed: bool):
    data = cfg.data
    sampler_cfg = data.get("sampler", {}).get("train")
    return [
        build_dataloader(
            dataset,
            data.samples_per_gpu,
            data.workers_per_gpu,
            num_gpus=1,
            dist=distributed,
            seed=cfg.seed,
            runner_type=cfg.runner["type"],
            persistent_workers=data.get("persistent_workers", False),
            sampler_cfg=sampler_cfg,
        )
        for dataset in datasets
    ]


def build_eval_hook(cfg, distributed: bool):
    val_cfg = cfg.data.val.copy()
    if cfg.data.get("val_samples_per_gpu", 1) > 1:
        val_cfg.pipeline = replace_ImageToTensor(val_cfg.pipeline)
    val_dataset = build_dataset(val_cfg, dict(test_mode=True))
    val_loader = build_dataloader(
        val_dataset,
        samples_per_gpu=cfg.data.get("val_samples_per_gpu", 1),
        workers_per_gpu=cfg.data.workers_per_gpu,
        dist=distributed,
        shuffle=False,
    )
    eval_cfg = dict(cfg.get("evaluation", {}))
    eval_cfg.pop("type", None)
    return DetEvalHook(val_loader, **eval_cfg)


def train_detector(model, dataset, cfg, distributed=False, validate=True, timestamp=None, meta=None):
    """Train ``model`` on ``dataset`` (one dataset or a list) with an mmcv runner."""
    logger = get_root_logger(log_level=cfg.get("log_level", "INFO"))
    datasets = dataset if isinstance(dataset, (list, tuple)) else [dataset]
    if cfg.runner["type"] != "IterBasedRunner":
        raise ValueError(f"ssod trains with IterBasedRunner, got runner type {cfg.runner['type']!r}")
    eval_hook = build_eval_hook(cfg, distributed) if validate else None
    checked = {"data.train": datasets[0]} if len(datasets) == 1 else {
        f"data.train[{i}]": part for i, part in enumerate(datasets)}
    if eval_hook is not None:
        checked["data.val"] = eval_hook.dataloader.dataset
    preflight(checked, logger)
    loaders = build_train_loaders(datasets, cfg, distributed)
    model = wrap_model(model, cfg, distributed)
    optimizer = build_optimizer(model, cfg.optimizer)
    # mmcv's IterBasedRunner resumes one iteration too early; this subclass resumes exactly.
    runner = build_runner(dict(cfg.runner, type=ResumableIterBasedRunner.__name__), default_args=dict(
        model=model, optimizer=optimizer, work_dir=cfg.work_dir, logger=logger, meta=meta))
    runner.timestamp = timestamp
    runner.register_training_hooks(
        cfg.lr_config,
        _optimizer_hook(cfg, distributed),
        cfg.checkpoint_config,
        cfg.log_config,
        cfg.get("momentum_config"),
        custom_hooks_config=cfg.get("custom_hooks"),
    )
    if eval_hook is not None:
        runner.register_hook(eval_hook, priority="LOW")
    if distributed:
        runner.register_hook(RankConsistencyHook(cfg.get("rank_consistency_interval", 1000)), priority="LOWEST")
    runner.register_hook(DivergenceCheckHook(), priority="VERY_HIGH")  # before the optimizer step
    logger.info(f"training on {get_world_size()} process(es), device "
                f"{'cuda:%d' % local_rank() if torch.cuda.is_available() else 'cpu'}")
    resume_from = cfg.get("resume_from")
    if resume_from is None and cfg.get("auto_resume"):
        resume_from = find_resume_checkpoint(cfg.work_dir, logger)
    if resume_from:
        runner.resume(resume_from, map_location="cpu")
        if runner.iter >= cfg.runner["max_iters"]:
            logger.info(f"the run is already finished: {resume_from} has {runner.iter} of {cfg.runner['max_iters']} "
                        "iterations; nothing to train (raise runner.max_iters to train further)")
            return runner
    elif cfg.get("load_from"):
        logger.info(f"initial weights from {cfg.load_from}")
        load_model_weights(runner.model, cfg.load_from, logger=logger)
    runner.run(loaders, cfg.workflow)
    return runner
