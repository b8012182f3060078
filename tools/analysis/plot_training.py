"""Plot a training run from the ``.log.json`` files of its work dir.

Usage: python tools/analysis/plot_training.py WORK_DIR [--out DIR] [--latest-only]

Writes (default into ``WORK_DIR/plots``):

* ``losses.png``: every loss key over iterations (supervised, unsupervised, total).
* ``gbr_weights.png``: GbR class weights (one line per class, background dashed).
* ``gbt_thresholds.png``: GbT class thresholds (one line per class).
* ``crs_repeat_factors.png``: CrS repeat factors at every refresh (mean / max, lambd and
  share of images with pseudo boxes, histogram of the last refreshes).
* ``metrics.png``: validation metrics, teacher (solid) vs student (dashed), and the per-class
  AP of the last evaluation when the dataset reports it.

A plot whose keys are absent from the logs (e.g. no GbR keys in a baseline run) is skipped,
with the reason logged. All ``.log.json`` files of the work dir are merged (resumed runs): a
later file replaces the records of earlier files from its first iteration on. Validation
lines carry the size of the validation set as ``iter``; they are placed at the iteration of
the training line logged just before them. Class names come from the logs' ``CLASSES`` meta
entry, else from ``classes`` in the config dumped in the work dir, else class indices.
"""
import argparse
import glob
import json
import os
import os.path as osp

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from mmcv import Config  # noqa: E402
from mmdet.utils import get_root_logger  # noqa: E402

MODEL_PREFIXES = ("teacher.", "student.")
# validation metrics drawn over time, in this order, when present (COCO / COCO split / LVIS names)
HEADLINE_METRICS = ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_novel", "bbox_mAP_base",
                    "bbox_AP", "bbox_AP50", "bbox_APr", "bbox_APc", "bbox_APf")
MODEL_STYLES = {"teacher": "o-", "student": "s--", "model": "o-"}
MODEL_COLORS = {"teacher": "tab:blue", "student": "tab:orange", "model": "tab:blue"}
MAX_LEGEND_CLASSES = 20
NUM_NAMED_EXTREMES = 5
MAX_HISTOGRAMS = 5
DPI = 100


# ----------------------------------------------------------------------------- reading the logs
def log_files(work_dir, latest_only=False):
    """The ``.log.json`` files of ``work_dir`` in time order (their names are timestamps)."""
    files = sorted(glob.glob(osp.join(work_dir, "*.log.json")))
    if not files:
        raise FileNotFoundError(f"no *.log.json file in {work_dir!r}")
    return files[-1:] if latest_only else files


def read_log(path):
    """``(meta, records)`` of one ``.log.json``: the meta line (or None) and train/val records.

    Every record gets ``x``: its training iteration (for val lines, that of the train line
    before them; val lines with no train line before them in the file are dropped).
    """
    meta, records, last_train_iter = None, [], None
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON line ({error})") from error
            mode = entry.get("mode")
            if mode is None:
                meta = entry if meta is None else meta
            elif mode == "train":
                last_train_iter = entry["x"] = entry["iter"]
                records.append(entry)
            elif mode == "val" and last_train_iter is not None:
                entry["x"] = last_train_iter
                records.append(entry)
            elif mode == "val":
                get_root_logger().warning(f"{path}:{number}: validation line before any training line; skipped")
    return meta, records


def merge_runs(runs):
    """Records of several runs (time order): a later run replaces earlier records from its first iteration."""
    merged = []
    for records in runs:
        if not records:
            continue
        start = min(record["x"] for record in records)
        merged = [record for record in merged if record["x"] < start] + records
    return merged


def load_history(work_dir, latest_only=False):
    """``(metas, records)`` of the work dir's logs, records merged in iteration order."""
    logger = get_root_logger()
    metas, runs = [], []
    for path in log_files(work_dir, latest_only):
        meta, records = read_log(path)
        logger.info(f"read {len(records)} records from {path}")
        metas.append(meta)
        runs.append(records)
    records = merge_runs(runs)
    if not records:
        raise ValueError(f"the logs of {work_dir!r} hold no train or val record yet")
    return metas, records


def config_class_names(cfg):
    """``classes`` of the training set in a config (through SemiDataset / wrapper keys), or None."""
    pending = [cfg.get("data", {}).get("train")]
    while pending:
        dataset = pending.pop(0)
        if isinstance(dataset, (list, tuple)):
            pending.extend(dataset)
        elif isinstance(dataset, dict):
            if dataset.get("classes") is not None:
                return list(dataset["classes"])
            pending.extend(dataset.get(key) for key in ("sup", "dataset", "datasets"))
    return None


def class_names(metas, work_dir):
    """Class names from the logs' meta lines, else from the dumped config; None if neither has them."""
    for meta in reversed(metas):
        if meta and meta.get("CLASSES"):
            return list(meta["CLASSES"])
    configs = sorted(glob.glob(osp.join(work_dir, "*.py")), key=osp.getmtime)
    if configs:
        names = config_class_names(Config.fromfile(configs[-1]))
        if names:
            return names
    get_root_logger().info("no class names in the logs or in a dumped config; using class indices")
    return None


def series(records, key, mode="train"):
    """``(iterations, values)`` of ``key`` over the records of ``mode`` that have it."""
    points = [(r["x"], r[key]) for r in records if r["mode"] == mode and key in r]
    return [p[0] for p in points], [p[1] for p in points]


# ----------------------------------------------------------------------------- figures
def save(fig, path):
    for ax in fig.axes:
        if ax.get_xlabel().startswith("iteration"):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    get_root_logger().info(f"wrote {path}")
    return path


def loss_groups(records):
    """Loss keys of the train records grouped into supervised / unsupervised / other panels."""
    keys = sorted({k for r in records if r["mode"] == "train" for k in r if "loss" in k})
    groups = {"supervised losses": [k for k in keys if k.startswith("sup_")],
              "unsupervised losses": [k for k in keys if k.startswith("unsup_")]}
    groups["losses" if not any(groups.values()) else "total / other losses"] = [
        k for k in keys if not k.startswith(("sup_", "unsup_"))]
    return {title: group for title, group in groups.items() if group}


def plot_losses(records, out_path):
    groups = loss_groups(records)
    if not groups:
        return None, "no loss key in the training records"
    fig, axes = plt.subplots(1, len(groups), figsize=(max(6 * len(groups), 9), 5), squeeze=False)
    for ax, (title, keys) in zip(axes[0], groups.items()):
        for key in keys:
            ax.plot(*series(records, key), label=key, linewidth=1.2)
        ax.set(title=title, xlabel="iteration", ylabel="loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out_path), None


def per_class_labels(count, names):
    """Names of ``count`` per-class entries: the classes, plus 'background' for one extra entry."""
    if names is not None and count == len(names):
        return list(names)
    if names is not None and count == len(names) + 1:
        return list(names) + ["background"]
    return [f"class {i}" for i in range(count)]


def plot_per_class(records, key, names, title, ylabel, out_path):
    """One line per class of the list-valued ``key``; legend up to 20 classes, else extremes named."""
    iterations, values = series(records, key)
    if not iterations:
        return None, f"no {key!r} in the logs (not a run of SoftTeacherGrS with GradientResamplingHook)"
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        raise ValueError(f"{key!r} changes length over the logs: {sorted(lengths)}")
    values = np.asarray(values, dtype=float)
    labels = per_class_labels(values.shape[1], names)
    has_background = labels[-1] == "background"
    num_fg = values.shape[1] - int(has_background)
    fig, ax = plt.subplots(figsize=(12, 6))
    if num_fg <= MAX_LEGEND_CLASSES:
        colors = plt.get_cmap("tab20" if num_fg > 10 else "tab10")(np.arange(num_fg))
        for c in range(num_fg):
            ax.plot(iterations, values[:, c], "o-", markersize=3, color=colors[c], label=labels[c])
    else:
        colors = plt.get_cmap("viridis")(np.linspace(0, 1, num_fg))
        for c in range(num_fg):
            ax.plot(iterations, values[:, c], color=colors[c], linewidth=0.6, alpha=0.6)
        fig.colorbar(plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, num_fg - 1)), ax=ax,
                     label="class index")
        order = np.argsort(values[-1, :num_fg])
        for c in np.concatenate([order[:NUM_NAMED_EXTREMES], order[-NUM_NAMED_EXTREMES:]]):
            ax.annotate(labels[c], (iterations[-1], values[-1, c]), fontsize=7, xytext=(3, 0),
                        textcoords="offset points")
    if has_background:
        ax.plot(iterations, values[:, -1], "k--", linewidth=1.8, label="background")
    ax.set(title=title, xlabel="iteration", ylabel=ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=9, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return save(fig, out_path), None


def plot_crs(records, out_path):
    refreshes = [r for r in records if r["mode"] == "train" and "crs_repeat_hist" in r]
    if not refreshes:
        return None, "no 'crs_*' statistics in the logs (no CrS refresh happened)"
    iterations = [r["x"] for r in refreshes]
    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    ax = axes[0]
    ax.plot(iterations, [r["crs_repeat_mean"] for r in refreshes], "o-", color="tab:blue", label="mean repeat")
    ax.set(title="repeat factors of the unlabeled images", xlabel="iteration (refresh)", ylabel="mean repeat")
    ax_max = ax.twinx()
    ax_max.plot(iterations, [r["crs_repeat_max"] for r in refreshes], "s--", color="tab:red", label="max repeat")
    ax_max.set_ylabel("max repeat")
    ax.legend(handles=ax.get_lines() + ax_max.get_lines(), loc="upper left")
    ax.grid(alpha=0.3)

    ax = axes[1]
    ax.plot(iterations, [r["crs_lambd"] for r in refreshes], "o-", label="lambd")
    ax.plot(iterations, [r["crs_pseudo_images"] / r["crs_dataset_length"] for r in refreshes], "s-",
            label="share of images with pseudo boxes")
    ax.set(title="CrS strength and pseudo-label coverage", xlabel="iteration (refresh)", ylim=(0, 1.05))
    ax.grid(alpha=0.3)
    ax.legend()

    ax = axes[2]
    shown = refreshes[-MAX_HISTOGRAMS:]
    max_repeat = max(len(r["crs_repeat_hist"]) for r in shown)
    width = 0.8 / len(shown)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(shown)))
    for k, (refresh, color) in enumerate(zip(shown, colors)):
        counts = refresh["crs_repeat_hist"]
        positions = np.arange(1, len(counts) + 1) + (k - (len(shown) - 1) / 2) * width
        ax.bar(positions, counts, width=width, color=color, label=f"iter {refresh['x']}")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(1, max_repeat + 1))
    ax.set(title=f"images per repeat factor (last {len(shown)} refreshes)", xlabel="repeat factor",
           ylabel="unlabeled images")
    ax.legend()
    fig.tight_layout()
    return save(fig, out_path), None


def split_metric(key):
    """``(model, metric)``: 'teacher'/'student'/'model' and the metric name without prefix."""
    for prefix in MODEL_PREFIXES:
        if key.startswith(prefix):
            return prefix[:-1], key[len(prefix):]
    return "model", key


def plot_metrics(records, names, out_path):
    evaluations = [r for r in records if r["mode"] == "val"]
    numeric = sorted({k for r in evaluations for k, v in r.items()
                      if isinstance(v, (int, float)) and k not in ("iter", "x", "epoch", "lr")})
    available = {split_metric(k)[1] for k in numeric}
    headline = [m for m in HEADLINE_METRICS if m in available]
    if not headline:
        return None, "no validation metric in the logs (run without validation?)"
    per_class = [n for n in (names or []) if f"bbox_AP_{n}" in available]
    panels = len(headline) + bool(per_class)
    columns = min(panels, 3)
    rows = -(-panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.5 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, headline):
        for key in numeric:
            model, name = split_metric(key)
            if name == metric:
                ax.plot(*series(records, key, mode="val"), MODEL_STYLES[model], color=MODEL_COLORS[model],
                        label=model)
        ax.set(title=metric, xlabel="iteration")
        ax.grid(alpha=0.3)
        ax.legend()
    if per_class:
        ax = axes.flat[len(headline)]
        last = evaluations[-1]
        models = [m for m in ("teacher", "student", "model")
                  if any(split_metric(k) == (m, f"bbox_AP_{per_class[0]}") for k in last)]
        width = 0.8 / max(len(models), 1)
        for k, model in enumerate(models):
            prefix = "" if model == "model" else f"{model}."
            values = [last.get(f"{prefix}bbox_AP_{n}", np.nan) for n in per_class]
            ax.bar(np.arange(len(per_class)) + (k - (len(models) - 1) / 2) * width, values, width,
                   color=MODEL_COLORS[model], label=model)
        ax.set_xticks(np.arange(len(per_class)))
        ax.set_xticklabels(per_class, rotation=45, ha="right", fontsize=8)
        ax.set(title=f"per-class AP at iteration {last['x']}", ylabel="AP")
        ax.legend()
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    fig.tight_layout()
    return save(fig, out_path), None


def plot_all(work_dir, out_dir=None, latest_only=False):
    """Write every plot the logs of ``work_dir`` allow; returns ``{file name: path}`` of those written."""
    logger = get_root_logger()
    out_dir = out_dir or osp.join(work_dir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    metas, records = load_history(work_dir, latest_only)
    names = class_names(metas, work_dir)
    plots = {
        "losses.png": lambda path: plot_losses(records, path),
        "gbr_weights.png": lambda path: plot_per_class(records, "gbr_weights", names, "GbR class weights",
                                                       "weight", path),
        "gbt_thresholds.png": lambda path: plot_per_class(records, "gbt_thresholds", names,
                                                          "GbT class thresholds", "threshold", path),
        "crs_repeat_factors.png": lambda path: plot_crs(records, path),
        "metrics.png": lambda path: plot_metrics(records, names, path),
    }
    written = {}
    for name, plot in plots.items():
        path, reason = plot(osp.join(out_dir, name))
        if path is None:
            logger.info(f"skipping {name}: {reason}")
        else:
            written[name] = path
    return written


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Plot losses, GbR weights, GbT thresholds, CrS repeat "
                                                 "factors and validation metrics of a training run")
    parser.add_argument("work_dir", help="work dir holding the run's *.log.json files")
    parser.add_argument("--out", help="output folder (default: WORK_DIR/plots)")
    parser.add_argument("--latest-only", action="store_true",
                        help="read only the newest .log.json instead of merging all of them")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(args.work_dir):
        raise FileNotFoundError(f"work dir {args.work_dir!r} does not exist")
    plot_all(args.work_dir, args.out, args.latest_only)


if __name__ == "__main__":
    main()
