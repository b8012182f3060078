"""Train a detector: ``python tools/train.py CONFIG`` or through tools/dist_train.sh (torchrun)."""
import argparse
import os
import os.path as osp
import time

import mmcv
from mmcv import Config, DictAction
from mmdet.datasets import build_dataset
from mmdet.models import build_detector
from mmdet.utils import get_root_logger

import ssod  # noqa: F401  (registers ssod's modules)
from ssod.apis.config_checks import check_ann_files_exist, check_num_classes
from ssod.apis.dist_env import init_distributed
from ssod.apis.env_report import collect_environment, format_environment
from ssod.apis.text_logger import init_weights_quietly
from ssod.apis.train import init_random_seed, set_random_seed, train_detector
from ssod.apis.work_dir import prepare_work_dir
from ssod.utils.dist_utils import get_world_size


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Train a (semi-supervised) detector")
    parser.add_argument("config", help="config file")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default work_dirs/<config name>)")
    parser.add_argument("--resume-from", help="checkpoint to resume from (model, teacher, optimizer, iteration)")
    parser.add_argument("--auto-resume", action="store_true",
                        help="resume from work_dir/latest.pth, else the newest iter_*.pth that loads")
    parser.add_argument("--overwrite", action="store_true",
                        help="start a new run in a work dir holding an earlier run's checkpoints (deletes them)")
    parser.add_argument("--load-from", help="checkpoint whose weights initialise the model")
    parser.add_argument("--no-validate", action="store_true", help="skip evaluation during training")
    parser.add_argument("--seed", type=int, default=None, help="random seed (drawn and shared if unset)")
    parser.add_argument("--deterministic", action="store_true", help="deterministic cuDNN kernels")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys, key=value")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none", help="job launcher")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=None, dest="local_rank",
                        help="set by older launchers; torchrun sets LOCAL_RANK instead")
    args = parser.parse_args(argv)
    if args.local_rank is not None:
        os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def load_config(args):
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.resume_from is not None:
        cfg.resume_from = args.resume_from
    if args.load_from is not None:
        cfg.load_from = args.load_from
    cfg.auto_resume = args.auto_resume or cfg.get("auto_resume", False)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args)
    check_ann_files_exist(cfg.data.train, "data.train")
    if not args.no_validate:
        check_ann_files_exist(cfg.data.val, "data.val")
    distributed = init_distributed(args.launcher)
    work_dir_notes = prepare_work_dir(cfg.work_dir, resume=bool(cfg.get("resume_from") or cfg.auto_resume),
                                      overwrite=args.overwrite)

    mmcv.mkdir_or_exist(osp.abspath(cfg.work_dir))
    timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
    logger = get_root_logger(log_file=osp.join(cfg.work_dir, f"{timestamp}.log"), log_level=cfg.log_level)
    for note in work_dir_notes:
        logger.warning(f"WORK DIR {cfg.work_dir}: {note}")
    config_copy = osp.join(cfg.work_dir, osp.basename(args.config))
    cfg.dump(config_copy)
    environment = format_environment(collect_environment())
    logger.info(f"environment:\n{environment}\nprocesses: {get_world_size()}\nconfig: {config_copy}")

    cfg.seed = init_random_seed(args.seed)
    set_random_seed(cfg.seed, deterministic=args.deterministic)
    logger.info(f"seed {cfg.seed}, deterministic {args.deterministic}")

    model = build_detector(cfg.model, train_cfg=cfg.get("train_cfg"), test_cfg=cfg.get("test_cfg"))
    init_weights_quietly(model)  # without mmcv's per-parameter table (hundreds of lines)
    dataset = build_dataset(cfg.data.train)
    check_num_classes(cfg.model, dataset.CLASSES)
    model.CLASSES = dataset.CLASSES
    meta = dict(seed=cfg.seed, exp_name=osp.basename(args.config), config=cfg.pretty_text,
                CLASSES=list(dataset.CLASSES))
    train_detector(model, dataset, cfg, distributed=distributed, validate=not args.no_validate,
                   timestamp=timestamp, meta=meta)


if __name__ == "__main__":
    main()
