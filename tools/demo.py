"""The CI-SSOD demo on the embedded toy dataset (what `make demo` runs).

Stages per training seed, each through the real tools: a supervised burn-in; from it, with the
same labeled images per iteration, iterations and schedule, the supervised control (labeled
data only), the soft-teacher baseline and CI-SSOD (GrS), ``--jobs`` of them at a time; every
model evaluated with ``tools/test.py --eval bbox``; the pseudo-label quality of the burn-in and
of both teachers on the unlabeled split (``tools/analysis/pseudo_label_quality.py``). It prints
the table (mean ± std with several seeds), the paired per-seed differences between the models
and the pseudo-label quality, and writes ``summary.json`` and training plots under the work dir.

``--seeds 0 1 2 --full`` is the full protocol (longer schedules, docs/toy_protocol.md);
``--quick`` (or ``SSOD_DEMO_QUICK=1``) runs a few iterations per stage, for CI. ``--resume`` reuses the
stages an earlier run finished in the same work dir with the same settings: it adds seeds to a protocol
run, or finishes one that was interrupted, without training anything twice.
"""
import argparse
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from mmcv import Config

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs/demo"
TOOLS = REPO_ROOT / "tools"
CONFIG_NAMES = {"burn_in": "supervised_burn_in.py", "supervised": "supervised_finetune.py",
                "soft_teacher": "soft_teacher_finetune.py", "grs": "grs_finetune.py"}
FINETUNED = ("supervised", "soft_teacher", "grs")
TEACHERS = ("soft_teacher", "grs")
# A few iterations per stage that still pass every CI-SSOD switch (warm-ups, save, and a
# refresh, which the schedule allows from t > 10 only).
QUICK_FINETUNE = ["runner.max_iters=4", "checkpoint_config.interval=4", "log_config.interval=1"]
QUICK_OPTIONS = {
    "burn_in": ["runner.max_iters=4", "lr_config.warmup_iters=2", "lr_config.step=[3]",
                "checkpoint_config.interval=4", "log_config.interval=1"],
    "supervised": QUICK_FINETUNE,
    "soft_teacher": QUICK_FINETUNE + ["custom_hooks.2.interval=4"],
    "grs": ["runner.max_iters=14", "checkpoint_config.interval=14", "log_config.interval=1",
            "model.model.roi_head.bbox_head.loss_cls.warm_up_iter=1", "model.train_cfg.warm_up_iter=2",
            "custom_hooks.2.save_interval=2", "custom_hooks.2.update_iter=4", "custom_hooks.3.interval=14"],
}
# The full protocol: the demo's settings with a 4x longer semi-supervised phase (see docs/toy_protocol.md).
FULL_FINETUNE = ["runner.max_iters=600", "checkpoint_config.interval=600"]
FULL_OPTIONS = {
    "supervised": FULL_FINETUNE,
    "soft_teacher": FULL_FINETUNE + ["custom_hooks.2.interval=150"],
    "grs": FULL_FINETUNE + ["model.model.roi_head.bbox_head.loss_cls.warm_up_iter=120",
                            "model.train_cfg.warm_up_iter=200", "custom_hooks.2.save_interval=100",
                            "custom_hooks.2.update_iter=200", "custom_hooks.3.interval=150"],
}
QUICK_PLQ_IMAGES = 8
DEMO_PLQ_IMAGES = 160  # unlabeled images measured by default (all 640: about 3 minutes per model on 2 cores)
STAGE_RECORD = "demo_stage.json"  # written when a stage has finished; what --resume checks
TOY_MANIFEST = Path("dataset/toy/manifest.json")  # the configs' data root is relative to the working directory
SUMMARY_KEYS = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_base", "bbox_mAP_novel")
PROGRESS = re.compile(r"Iter \[(\d+)/(\d+)\].*?eta: ([\d:]+(?: day[s]?, [\d:]+)?)")

logger = logging.getLogger("demo")


def run(args, log_file, threads, stage=None):
    """Run a tool with this interpreter and ``threads`` CPU threads; its output goes to ``log_file``;
    raise on failure.

    With ``stage``, every training log line with an iteration count is echoed as a progress line.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS=str(threads))
    with open(log_file, "w") as log, subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, env=env, text=True) as proc:
        for line in proc.stdout:
            log.write(line)
            match = PROGRESS.search(line) if stage else None
            if match:
                log.flush()
                logger.info(f"  {stage}: iteration {match[1]}/{match[2]}, eta {match[3]}")
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed with exit code {proc.returncode}; see {log_file}")


def stage_options(stage, mode):
    return {"quick": QUICK_OPTIONS, "full": FULL_OPTIONS}.get(mode, {}).get(stage, [])


class SeedRun:
    """The stages of one training seed under ``work_dir/seed<N>``, each a real tool in a child process."""

    def __init__(self, work_dir, seed, mode, plq_images, jobs, resume=False):
        self.run_dir = work_dir / f"seed{seed}"
        self.seed, self.mode, self.plq_images, self.jobs, self.resume = seed, mode, plq_images, jobs, resume

    def train(self, stage, load_from, threads):
        stage_dir = self.run_dir / stage
        stage_dir.mkdir(parents=True, exist_ok=True)
        config = CONFIGS / CONFIG_NAMES[stage]
        # --overwrite: a demo rerun replaces the stage's earlier checkpoints (tools/train.py refuses otherwise)
        args = [TOOLS / "train.py", config, "--work-dir", stage_dir, "--seed", self.seed, "--deterministic",
                "--no-validate", "--overwrite"]
        if load_from is not None:
            args += ["--load-from", load_from]
        options = stage_options(stage, self.mode)
        if options:
            args += ["--cfg-options", *options]
        logger.info(f"training {stage} ({config.name}, seed {self.seed}); log: {stage_dir / 'train.out'}")
        start = time.perf_counter()
        run(args, stage_dir / "train.out", threads, stage=stage)
        logger.info(f"  {stage}: done in {time.perf_counter() - start:.0f} s")
        return stage_dir / "latest.pth"

    def evaluate(self, stage, checkpoint, threads):
        """Metrics of ``checkpoint`` from tools/test.py (the teacher, for the semi-supervised models)."""
        metrics_file = self.run_dir / stage / "metrics.json"
        logger.info(f"evaluating {stage} with tools/test.py --eval bbox")
        run([TOOLS / "test.py", CONFIGS / CONFIG_NAMES[stage], checkpoint, "--eval", "bbox", "--metrics-out",
             metrics_file], self.run_dir / stage / "test.out", threads)
        with open(metrics_file) as f:
            return json.load(f)["metric"]

    def pseudo_quality(self, stage, checkpoint, threads):
        """Pseudo-label quality of ``checkpoint`` as the teacher of its semi-supervised config (the soft
        teacher's config for the burn-in), on the unlabeled split."""
        config = CONFIGS / CONFIG_NAMES["soft_teacher" if stage == "burn_in" else stage]
        out_dir = self.run_dir / stage / "pseudo_quality"
        logger.info(f"pseudo-label quality of {stage} on {self.plq_images or 'all'} unlabeled images")
        args = [TOOLS / "analysis/pseudo_label_quality.py", config, checkpoint, "--out-dir", out_dir]
        if self.plq_images:
            args += ["--num-images", self.plq_images]
        run(args, self.run_dir / stage / "pseudo_quality.out", threads)
        with open(out_dir / "pseudo_quality.json") as f:
            return json.load(f)

    def stage(self, stage, load_from, threads):
        """Train, evaluate and (burn-in and teachers) measure the pseudo labels of one stage; with
        ``resume``, reuse the stage's earlier results if it finished with the same settings."""
        settings = self.stage_settings(stage, load_from)
        record = self.run_dir / stage / STAGE_RECORD
        if self.resume:
            finished = self.finished_stage(stage, settings)
            if finished is not None:
                return finished
        record.unlink(missing_ok=True)
        checkpoint = self.train(stage, load_from, threads)
        metrics = self.evaluate(stage, checkpoint, threads)
        quality = self.pseudo_quality(stage, checkpoint, threads) if measures_quality(stage) else None
        record.write_text(json.dumps(settings, indent=1))
        return checkpoint, metrics, quality

    def stage_settings(self, stage, load_from):
        """What a stage's results depend on: seed, schedule, the checkpoint it starts from, the data (so the
        burn-in, the same in the demo and ``--full``, is shared by both)."""
        return dict(seed=self.seed, config=CONFIG_NAMES[stage], options=stage_options(stage, self.mode),
                    load_from_sha256=file_sha256(load_from) if load_from is not None else None,
                    pseudo_quality_images=self.plq_images if measures_quality(stage) else None,
                    toy_dataset=json.loads(TOY_MANIFEST.read_text()).get("params") if TOY_MANIFEST.is_file() else None)

    def finished_stage(self, stage, settings):
        """(checkpoint, metrics, quality) of a stage an earlier run finished with ``settings``, else None."""
        stage_dir = self.run_dir / stage
        try:
            if json.loads((stage_dir / STAGE_RECORD).read_text()) != settings:
                logger.info(f"{stage}: the earlier run in {stage_dir} had other settings; training it again")
                return None
            metrics = json.loads((stage_dir / "metrics.json").read_text())["metric"]
            quality = (json.loads((stage_dir / "pseudo_quality/pseudo_quality.json").read_text())
                       if measures_quality(stage) else None)
        except (OSError, ValueError, KeyError):
            return None  # never finished, or its files are incomplete: train it again
        checkpoint = stage_dir / "latest.pth"
        if not checkpoint.is_file():
            return None
        logger.info(f"{stage}: reusing the finished run in {stage_dir} (--resume)")
        return checkpoint, metrics, quality

    def run_all(self):
        """Every stage of the seed; returns (metrics, pseudo-label quality) per model."""
        results = self.in_parallel([("burn_in", None)])
        burn_in = results["burn_in"][0]
        # the semi-supervised models first: they take longest
        results.update(self.in_parallel([(model, burn_in) for model in TEACHERS + ("supervised",)]))
        for model in FINETUNED:
            run([TOOLS / "analysis/plot_training.py", self.run_dir / model, "--out", self.run_dir / "plots" / model],
                self.run_dir / model / "plot.out", threads=1)
        metrics = {stage: results[stage][1] for stage in ("burn_in",) + FINETUNED}
        quality = {stage: result[2] for stage, result in results.items() if result[2] is not None}
        return metrics, quality

    def in_parallel(self, stages):
        """Run ``(stage, load_from)`` pairs ``jobs`` at a time, sharing the CPU cores; results by stage."""
        workers = min(self.jobs, len(stages))
        threads = max(1, (os.cpu_count() or 1) // workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {stage: pool.submit(self.stage, stage, load_from, threads) for stage, load_from in stages}
            return {stage: future.result() for stage, future in futures.items()}


def measures_quality(stage):
    return stage in ("burn_in",) + TEACHERS


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def summarize(metrics_by_seed, class_names):
    """Mean and std over seeds of the summary metrics and per-class AP of every model."""
    summary = {}
    for model in next(iter(metrics_by_seed.values())):
        runs = [metrics[model] for metrics in metrics_by_seed.values()]
        entry = {}
        for key in SUMMARY_KEYS + tuple(f"bbox_AP_{name}" for name in class_names):
            values = np.array([run[key] for run in runs], dtype=float)
            entry[key] = float(values.mean())
            entry[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[model] = {key: entry[key] for key in SUMMARY_KEYS}
        summary[model]["std"] = {key: entry[key + "_std"] for key in SUMMARY_KEYS}
        summary[model]["per_class_AP"] = {name: entry[f"bbox_AP_{name}"] for name in class_names}
    return summary


def format_table(summary, novel_classes, num_seeds):
    models = list(summary)
    width = 16 if num_seeds > 1 else 14
    rows = [("bbox mAP (all classes)", "bbox_mAP"), ("bbox mAP@0.5", "bbox_mAP_50"),
            ("bbox mAP head (base)", "bbox_mAP_base"), ("bbox mAP tail (novel)", "bbox_mAP_novel")]
    lines = [f"{'':28s}" + "".join(f"{m:>{width}s}" for m in models)]
    for label, key in rows:
        cells = [f"{summary[m][key]:.3f}" + (f" ± {summary[m]['std'][key]:.3f}" if num_seeds > 1 else "")
                 for m in models]
        lines.append(f"{label:28s}" + "".join(f"{cell:>{width}s}" for cell in cells))
    for name in summary[models[0]]["per_class_AP"]:
        label = f"AP {name}{' (tail)' if name in novel_classes else ''}"
        lines.append(f"{label:28s}" + "".join(f"{summary[m]['per_class_AP'][name]:{width}.3f}" for m in models))
    return "\n".join(lines)


# the comparisons the protocol is about: (model, reference) pairs
COMPARISONS = (("soft_teacher", "supervised"), ("grs", "soft_teacher"), ("grs", "supervised"))
COMPARED_KEYS = ("bbox_mAP", "bbox_mAP_base", "bbox_mAP_novel")


def paired_differences(metrics_by_seed):
    """Per comparison and key: the per-seed differences (model - reference, same seed and burn-in),
    their mean and std (ddof 1; 0 with one seed)."""
    differences = {}
    for model, reference in COMPARISONS:
        entry = {}
        for key in COMPARED_KEYS:
            values = [metrics[model][key] - metrics[reference][key] for metrics in metrics_by_seed.values()]
            entry[key] = dict(per_seed=values, mean=float(np.mean(values)),
                              std=float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
        differences[f"{model} - {reference}"] = entry
    return differences


def format_differences(differences):
    lines = [f"{'paired difference, mean ± std':34s}" + "".join(f"{key:>18s}" for key in COMPARED_KEYS)]
    for name, entry in differences.items():
        cells = [f"{entry[key]['mean']:+.3f} ± {entry[key]['std']:.3f}" for key in COMPARED_KEYS]
        lines.append(f"{name:34s}" + "".join(f"{cell:>18s}" for cell in cells))
    return "\n".join(lines)


def quality_columns(quality_by_model):
    """(column name, rule dict) of every measured teacher: the fixed rule, and GbT where present."""
    columns = []
    for model, quality in quality_by_model.items():
        for rule in quality["rules"]:
            columns.append((f"{model}@{'0.9' if rule == 'fixed' else 'GbT'}", quality["rules"][rule]))
    return columns


def format_quality_table(quality_by_model, novel_classes, seed):
    """Per class: pseudo boxes kept, precision and recall (IoU 0.5) of each teacher and rule."""
    columns = quality_columns(quality_by_model)
    first = next(iter(quality_by_model.values()))
    classes = first["classes"]
    cell = "{:>5} {:>5} {:>5}"
    lines = [f"pseudo-label quality on {first['images']} unlabeled images, seed {seed} (kept / precision / recall, "
             "IoU 0.5)",
             f"{'':24s}{'GT':>5s}" + "".join(f"  {name:>17s}" for name, _ in columns)]

    def fmt(value):
        return "-" if value is None else f"{value:.2f}"

    for c, name in enumerate(classes):
        label = f"{name}{' (tail)' if name in novel_classes else ''}"
        cells = [cell.format(rule["kept"][c], fmt(rule["precision"][c]), fmt(rule["recall"][c]))
                 for _, rule in columns]
        lines.append(f"{label:24s}{first['rules']['fixed']['gt'][c]:5d}" + "".join(f"  {c_:>17s}" for c_ in cells))
    cells = [cell.format(rule["all"]["kept"], fmt(rule["all"]["precision"]), fmt(rule["all"]["recall"]))
             for _, rule in columns]
    lines.append(f"{'all':24s}{first['rules']['fixed']['all']['gt']:5d}" + "".join(f"  {c_:>17s}" for c_ in cells))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("work_dirs/demo"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    parser.add_argument("--full", action="store_true", help="the full protocol's longer schedules")
    parser.add_argument("--quick", action="store_true", default=os.environ.get("SSOD_DEMO_QUICK") == "1",
                        help="a few iterations per stage (for CI); also SSOD_DEMO_QUICK=1")
    parser.add_argument("--jobs", type=int, default=3,
                        help="models trained at once from the burn-in, sharing the CPU cores (default 3: all)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse every stage an earlier run finished in --work-dir with the same settings "
                             "(seed, schedule, starting checkpoint, toy data), e.g. to add seeds or after a crash")
    parser.add_argument("--pseudo-quality-images", type=int, default=None,
                        help=f"unlabeled images for the pseudo-label quality (default {DEMO_PLQ_IMAGES}; "
                             f"{QUICK_PLQ_IMAGES} with --quick)")
    args = parser.parse_args(argv)
    if args.quick and args.full:
        parser.error("--quick and --full exclude each other")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s demo %(message)s")
    mode = "quick" if args.quick else "full" if args.full else "demo"
    plq_images = args.pseudo_quality_images or (QUICK_PLQ_IMAGES if args.quick else DEMO_PLQ_IMAGES)

    metrics_by_seed, quality_by_seed = {}, {}
    for seed in args.seeds:
        metrics_by_seed[seed], quality_by_seed[seed] = SeedRun(args.work_dir, seed, mode, plq_images,
                                                               args.jobs, args.resume).run_all()

    data_cfg = Config.fromfile(str(REPO_ROOT / "configs/_base_/datasets/toy_detection.py"))
    summary = summarize(metrics_by_seed, data_cfg.classes)
    summary["seeds"] = {str(seed): {model: {key: metrics[model][key] for key in SUMMARY_KEYS} for model in metrics}
                        for seed, metrics in metrics_by_seed.items()}
    summary["paired_differences"] = paired_differences(metrics_by_seed)
    summary["pseudo_quality"] = {str(seed): quality for seed, quality in quality_by_seed.items()}
    summary["settings"] = dict(seeds=args.seeds, mode=mode, quick=args.quick,
                               novel_classes=list(data_cfg.novel_classes))
    (args.work_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    models = ("burn_in",) + FINETUNED
    print(f"bbox mAP on the toy val set, {'mean ± std over seeds ' if len(args.seeds) > 1 else 'seed '}"
          f"{' '.join(map(str, args.seeds))}")
    print(format_table({m: summary[m] for m in models}, data_cfg.novel_classes, len(args.seeds)))
    print("\n" + format_differences(summary["paired_differences"]))
    print("\n" + format_quality_table(quality_by_seed[args.seeds[0]], data_cfg.novel_classes, args.seeds[0]))
    print(f"\nfigures: {args.work_dir / 'summary.json'}; plots: {args.work_dir}/seed*/plots, "
          f"{args.work_dir}/seed*/*/pseudo_quality")


if __name__ == "__main__":
    main()
