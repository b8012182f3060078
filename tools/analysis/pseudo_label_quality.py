"""Pseudo-label quality of a checkpoint's teacher on images that have ground truth.

Usage: python tools/analysis/pseudo_label_quality.py CONFIG CHECKPOINT [--split unlabeled|val]
       [--num-images N] [--out-dir DIR]

Runs the teacher (``inference_on='teacher'``; a plain detector checkpoint, e.g. a burn-in, is
loaded into teacher and student) over the unlabeled split of CONFIG (the toy one has ground
truth) or its val set used as if unlabeled, with the test pipeline, and reports per class: the
ground-truth count, the pseudo boxes kept and their precision and recall at IoU 0.5, for the
fixed rule ``score > cls_pseudo_threshold`` (0.9), for the checkpoint's GbT class thresholds
when it holds GbT statistics, and for a sweep of thresholds. Writes to ``--out-dir`` (default:
``pseudo_quality/`` next to the checkpoint): ``pseudo_quality.json``,
``precision_recall.png`` (precision and recall against the threshold, per class) and
``score_histograms.png`` (scores of true and false teacher boxes, per class).
"""
import argparse
import json
import math
import os.path as osp

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mmcv  # noqa: E402
import numpy as np  # noqa: E402
from mmcv import Config  # noqa: E402
from mmdet.datasets import build_dataset  # noqa: E402
from mmdet.models import build_detector  # noqa: E402
from torch.utils.data import Subset  # noqa: E402

import ssod  # noqa: F401,E402  (registers ssod's modules)
from ssod.apis.checkpoint import load_model_weights  # noqa: E402
from ssod.apis.inference import collect_detections  # noqa: E402
from ssod.datasets.builder import build_dataloader  # noqa: E402
from ssod.evaluation.pseudo_quality import (class_thresholds_of, match_results, overall_quality,  # noqa: E402
                                            quality_at, quality_sweep)

SWEEP = np.round(np.arange(0.05, 1.0, 0.05), 2)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a semi-supervised config (its teacher and thresholds are measured)")
    parser.add_argument("checkpoint", help="checkpoint of that config, or of a plain detector")
    parser.add_argument("--split", choices=["unlabeled", "val"], default="unlabeled",
                        help="images measured: the unlabeled training split (needs ground truth) or val")
    parser.add_argument("--num-images", type=int, default=None, help="measure only the first N images")
    parser.add_argument("--iou-thr", type=float, default=0.5, help="IoU for a pseudo box to be true")
    parser.add_argument("--out-dir", help="where the JSON and the plots go")
    return parser.parse_args(argv)


def dataset_config(cfg, split):
    """The annotated dataset of ``split`` with the test pipeline (dataset wrappers removed)."""
    if split == "val":
        data_cfg = cfg.data.val.copy()
    else:
        if "unsup" not in cfg.data.train:
            raise KeyError("data.train of this config has no 'unsup' dataset; use --split val")
        data_cfg = cfg.data.train.unsup
        while "dataset" in data_cfg:
            data_cfg = data_cfg.dataset
        data_cfg = data_cfg.copy()
    data_cfg.pipeline = cfg.data.test.pipeline
    return data_cfg


def build_teacher(cfg, checkpoint):
    """The config's teacher-student detector with the checkpoint's weights, testing the teacher."""
    detector = build_detector(cfg.model)
    if not hasattr(detector, "teacher"):
        raise TypeError(f"model type {cfg.model.type!r} has no teacher; give a semi-supervised config")
    load_model_weights(detector, checkpoint)
    detector.inference_on = "teacher"
    return detector


def fmt(value):
    return "    -" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:5.3f}"


def format_table(classes, rules):
    """One line per class: GT count, then kept / precision / recall of every rule."""
    header = f"{'class':16s}{'GT':>6s}" + "".join(f" | {name:>7s} kept  prec   rec" for name in rules)
    lines = [header]
    for c, name in enumerate(classes + ("all",)):
        first = next(iter(rules.values()))
        gt = first["gt"][c] if c < len(classes) else int(first["gt"].sum())
        line = f"{name:16s}{gt:6d}"
        for quality in rules.values():
            row = overall_quality(quality) if c == len(classes) else {k: quality[k][c] for k in quality}
            line += f" | {int(row['kept']):12d} {fmt(float(row['precision']))} {fmt(float(row['recall']))}"
        lines.append(line)
    return "\n".join(lines)


def _class_panels(num_classes, cols=4):
    """A figure with one axis per class (row-major), the spare panels switched off."""
    rows = math.ceil(num_classes / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    panels = [ax for row in axes for ax in row]
    for ax in panels[num_classes:]:
        ax.axis("off")
    return fig, panels[:num_classes]


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_curves(classes, sweep, lines, path):
    """Precision and recall against the threshold, one panel per class; ``lines``: name -> [C]."""
    fig, panels = _class_panels(len(classes))
    for c, (name, ax) in enumerate(zip(classes, panels)):
        ax.plot(SWEEP, sweep["precision"][:, c], label="precision")
        ax.plot(SWEEP, sweep["recall"][:, c], label="recall")
        for (rule, thresholds), style in zip(lines.items(), ("--", ":")):
            ax.axvline(thresholds[c], color="grey", linestyle=style, label=f"{rule} {thresholds[c]:.2f}")
        ax.set(title=f"{name} (GT {sweep['gt'][0, c]})", xlabel="score threshold", ylim=(0, 1.02))
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_histograms(classes, matched, path):
    """Scores of true and false teacher boxes, one panel per class."""
    fig, panels = _class_panels(len(classes))
    bins = np.linspace(0.0, 1.0, 21)
    for c, (name, ax) in enumerate(zip(classes, panels)):
        of_class = matched.labels == c
        ax.hist([matched.scores[of_class & matched.is_true], matched.scores[of_class & ~matched.is_true]],
                bins=bins, label=["true", "false"], color=["tab:green", "tab:red"])
        ax.set(title=name, xlabel="teacher score", ylabel="boxes")
        ax.legend(fontsize=7)
    _save(fig, path)


def no_nan(value):
    """``value`` with every NaN (also inside nested lists) replaced by None, for strict JSON."""
    if isinstance(value, list):
        return [no_nan(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def as_json(quality):
    return {key: no_nan(np.asarray(values).tolist()) for key, values in quality.items()}


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    dataset = build_dataset(dataset_config(cfg, args.split), dict(test_mode=True))
    count = len(dataset) if args.num_images is None else min(args.num_images, len(dataset))
    loader = build_dataloader(Subset(dataset, range(count)), samples_per_gpu=1,
                              workers_per_gpu=cfg.data.workers_per_gpu, dist=False, shuffle=False)
    detector = build_teacher(cfg, args.checkpoint)
    results = collect_detections(detector, loader, submodule="teacher")
    classes = tuple(dataset.CLASSES)
    matched = match_results(results, [dataset.get_ann_info(i) for i in range(count)], len(classes), args.iou_thr)

    fixed = detector.train_cfg.cls_pseudo_threshold
    rules = {"fixed": np.full(len(classes), fixed)}
    thresholds = class_thresholds_of(detector)
    if thresholds is not None:
        rules["gbt"] = thresholds
    qualities = {name: quality_at(matched, thr) for name, thr in rules.items()}
    sweep = quality_sweep(matched, SWEEP)

    out_dir = args.out_dir or osp.join(osp.dirname(osp.abspath(args.checkpoint)), "pseudo_quality")
    mmcv.mkdir_or_exist(out_dir)
    summary = dict(config=args.config, checkpoint=args.checkpoint, split=args.split, images=count,
                   iou_thr=args.iou_thr, classes=list(classes),
                   thresholds={name: np.asarray(thr).tolist() for name, thr in rules.items()},
                   rules={name: dict(as_json(q), all={k: no_nan(v) for k, v in overall_quality(q).items()})
                          for name, q in qualities.items()},
                   sweep=dict(thresholds=SWEEP.tolist(), **as_json(sweep)))
    with open(osp.join(out_dir, "pseudo_quality.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plot_curves(classes, sweep, rules, osp.join(out_dir, "precision_recall.png"))
    plot_histograms(classes, matched, osp.join(out_dir, "score_histograms.png"))
    print(f"\npseudo-label quality of the teacher of {args.checkpoint} on {count} {args.split} images "
          f"(IoU {args.iou_thr}; fixed rule: score > {fixed})")
    print(format_table(classes, qualities))
    print(f"files: {out_dir}")


if __name__ == "__main__":
    main()
