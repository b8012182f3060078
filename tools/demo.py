"""The CI-SSOD demo on the embedded toy dataset (what `make demo` runs).

Stages, each through the real tools: a supervised burn-in; the soft-teacher baseline and
CI-SSOD (GrS) fine-tuned from it with the same seed and budget; the burn-in and both
teachers evaluated with ``tools/test.py --eval bbox``; one table (overall, head, tail and
per-class AP);
``summary.json`` and training plots under the work dir.

``--quick`` (or ``SSOD_DEMO_QUICK=1``) runs a few iterations per stage, for CI.
"""
import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from mmcv import Config

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs/demo"
TOOLS = REPO_ROOT / "tools"
SEED = 0
MODELS = {"soft_teacher": "soft_teacher_finetune.py", "grs": "grs_finetune.py"}
# A few iterations per stage that still pass every CI-SSOD switch (warm-ups, save, and a
# refresh, which the schedule allows from t > 10 only).
QUICK_OPTIONS = {
    "burn_in": ["runner.max_iters=4", "lr_config.warmup_iters=2", "lr_config.step=[3]",
                "checkpoint_config.interval=4"],
    "soft_teacher": ["runner.max_iters=4", "lr_config.warmup_iters=2", "lr_config.step=[3]",
                     "checkpoint_config.interval=4", "log_config.interval=1"],
    "grs": ["runner.max_iters=14", "lr_config.warmup_iters=2", "lr_config.step=[12]",
            "checkpoint_config.interval=14", "log_config.interval=1",
            "model.model.roi_head.bbox_head.loss_cls.warm_up_iter=1", "model.train_cfg.warm_up_iter=2",
            "custom_hooks.2.save_interval=2", "custom_hooks.2.update_iter=4"],
}
SUMMARY_KEYS = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_base", "bbox_mAP_novel")

logger = logging.getLogger("demo")


def run(args, log_file):
    """Run a tool with this interpreter; its output goes to ``log_file``; raise on failure."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    with open(log_file, "w") as log:
        proc = subprocess.run([sys.executable, *map(str, args)], stdout=log, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed with exit code {proc.returncode}; see {log_file}")


def train(stage, config, work_dir, quick, load_from=None):
    stage_dir = work_dir / stage
    stage_dir.mkdir(parents=True, exist_ok=True)
    args = [TOOLS / "train.py", config, "--work-dir", stage_dir, "--seed", SEED, "--deterministic", "--no-validate"]
    if load_from is not None:
        args += ["--load-from", load_from]
    if quick:
        args += ["--cfg-options", *QUICK_OPTIONS[stage]]
    logger.info(f"training {stage} ({config.name}); log: {stage_dir / 'train.out'}")
    run(args, stage_dir / "train.out")
    return stage_dir / "latest.pth"


def evaluate(stage, config, checkpoint, work_dir):
    """Metrics of ``checkpoint`` from tools/test.py (the teacher, for the semi-supervised models)."""
    metrics_file = work_dir / stage / "metrics.json"
    logger.info(f"evaluating {stage} with tools/test.py --eval bbox")
    run([TOOLS / "test.py", config, checkpoint, "--eval", "bbox", "--metrics-out", metrics_file],
        work_dir / stage / "test.out")
    with open(metrics_file) as f:
        return json.load(f)["metric"]


def summarize(metrics_by_model, class_names):
    summary = {}
    for model, metrics in metrics_by_model.items():
        summary[model] = {key: metrics[key] for key in SUMMARY_KEYS}
        summary[model]["per_class_AP"] = {name: metrics[f"bbox_AP_{name}"] for name in class_names}
    return summary


def format_table(summary, novel_classes):
    models = list(summary)
    rows = [("bbox mAP (all classes)", "bbox_mAP"), ("bbox mAP@0.5", "bbox_mAP_50"),
            ("bbox mAP head (base)", "bbox_mAP_base"), ("bbox mAP tail (novel)", "bbox_mAP_novel")]
    lines = [f"{'':28s}" + "".join(f"{m:>14s}" for m in models)]
    for label, key in rows:
        lines.append(f"{label:28s}" + "".join(f"{summary[m][key]:14.3f}" for m in models))
    for name in summary[models[0]]["per_class_AP"]:
        label = f"AP {name}{' (tail)' if name in novel_classes else ''}"
        lines.append(f"{label:28s}" + "".join(f"{summary[m]['per_class_AP'][name]:14.3f}" for m in models))
    return "\n".join(lines)


def plot(work_dir):
    for model in MODELS:
        run([TOOLS / "analysis/plot_training.py", work_dir / model, "--out", work_dir / "plots" / model],
            work_dir / model / "plot.out")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("work_dirs/demo"))
    parser.add_argument("--quick", action="store_true", default=os.environ.get("SSOD_DEMO_QUICK") == "1",
                        help="a few iterations per stage (for CI); also SSOD_DEMO_QUICK=1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s demo %(message)s")
    work_dir = args.work_dir

    burn_in_config = CONFIGS / "supervised_burn_in.py"
    burn_in = train("burn_in", burn_in_config, work_dir, args.quick)
    metrics = {"burn_in": evaluate("burn_in", burn_in_config, burn_in, work_dir)}
    for model, config_name in MODELS.items():
        checkpoint = train(model, CONFIGS / config_name, work_dir, args.quick, load_from=burn_in)
        metrics[model] = evaluate(model, CONFIGS / config_name, checkpoint, work_dir)
    plot(work_dir)

    data_cfg = Config.fromfile(str(REPO_ROOT / "configs/_base_/datasets/toy_detection.py"))
    summary = summarize(metrics, data_cfg.classes)
    summary["settings"] = dict(seed=SEED, quick=args.quick, novel_classes=list(data_cfg.novel_classes))
    (work_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    print(format_table({m: summary[m] for m in metrics}, data_cfg.novel_classes))
    print(f"\nfigures: {work_dir / 'summary.json'}; plots: {work_dir / 'plots'}")


if __name__ == "__main__":
    main()
