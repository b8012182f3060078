"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT --eval bbox`` or tools/dist_test.sh."""
import argparse
import os
import os.path as osp

import mmcv
from mmcv import Config, DictAction
from mmdet.datasets import build_dataset, replace_ImageToTensor
from mmdet.models import build_detector
from mmdet.utils import get_root_logger

import ssod  # noqa: F401  (registers ssod's modules)
from ssod.apis.checkpoint import load_model_weights
from ssod.apis.config_checks import check_ann_files_exist
from ssod.apis.dist_env import init_distributed
from ssod.apis.inference import collect_detections
from ssod.apis.parallel import wrap_model
from ssod.datasets.builder import build_dataloader
from ssod.utils.dist_utils import is_main_process


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Test (and evaluate) a detector checkpoint")
    parser.add_argument("config", help="config file")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--out", help="write the raw detections to this .pkl file")
    parser.add_argument("--eval", nargs="+", help='metrics, e.g. "bbox"')
    parser.add_argument("--eval-options", nargs="+", action=DictAction, help="kwargs for dataset.evaluate")
    parser.add_argument("--metrics-out", help="write the evaluation metrics to this .json file")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys, key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none", help="job launcher")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=None, dest="local_rank",
                        help="set by older launchers; torchrun sets LOCAL_RANK instead")
    args = parser.parse_args(argv)
    if not (args.out or args.eval):
        parser.error("give at least one of --out and --eval")
    if args.out and not args.out.endswith((".pkl", ".pickle")):
        parser.error("--out must be a .pkl file")
    if args.local_rank is not None:
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def build_test_loader(cfg, distributed):
    test_cfg = cfg.data.test.copy()
    samples_per_gpu = cfg.data.get("test_samples_per_gpu", 1)
    if samples_per_gpu > 1:
        test_cfg.pipeline = replace_ImageToTensor(test_cfg.pipeline)
    check_ann_files_exist(test_cfg, "data.test")
    dataset = build_dataset(test_cfg, dict(test_mode=True))
    loader = build_dataloader(dataset, samples_per_gpu=samples_per_gpu,
                              workers_per_gpu=cfg.data.workers_per_gpu, dist=distributed, shuffle=False)
    return dataset, loader


def main(argv=None):
    args = parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f"checkpoint {args.checkpoint!r} does not exist")
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    distributed = init_distributed(args.launcher)
    logger = get_root_logger(log_level=cfg.get("log_level", "INFO"))
    dataset, loader = build_test_loader(cfg, distributed)

    cfg.model.pop("train_cfg", None)
    model = build_detector(cfg.model, test_cfg=cfg.get("test_cfg"))
    # weights_only=True; a plain detector fills student and teacher; a misfit is refused with its counts
    checkpoint = load_model_weights(model, args.checkpoint, logger=logger)
    model.CLASSES = checkpoint.get("meta", {}).get("CLASSES", dataset.CLASSES)
    model = wrap_model(model, cfg, distributed)
    results = collect_detections(model, loader)

    if not is_main_process():
        return
    if args.out:
        logger.info(f"writing detections to {args.out}")
        mmcv.dump(results, args.out)
    if args.eval:
        metrics = dataset.evaluate(results, metric=args.eval, logger=logger, **(args.eval_options or {}))
        logger.info(f"metrics: {metrics}")
        if args.metrics_out:
            mmcv.dump(dict(config=args.config, checkpoint=args.checkpoint, metric=metrics), args.metrics_out)


if __name__ == "__main__":
    main()
