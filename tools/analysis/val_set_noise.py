"""How precisely a val set measures a model: bbox mAP (all, head, tail) on disjoint random image subsets.

Usage: python tools/analysis/val_set_noise.py CONFIG DETS.pkl [DETS.pkl ...] --subset-size N
       [--seed 0] [--out FILE.json]

DETS.pkl holds the raw detections of ``tools/test.py CONFIG CHECKPOINT --out DETS.pkl`` on the test
set of CONFIG (a ``CocoSplitDataset``). The test set is split at random into disjoint subsets of N
images (the remainder is left out); every model is scored on every subset. The std over the
subsets is the noise a val set of N images adds to one model's score, whatever the training did:
a difference between two models measured on N images means little below it. With ``--baseline
DETS.pkl``, also the spread of each model's difference from that model on the same subsets (the
noise of a paired comparison). Prints, per model, the score on the whole set and the mean and std
over the subsets; ``--out`` writes them as JSON.
"""
import argparse
import json

import mmcv
import numpy as np
from mmcv import Config
from mmdet.datasets import build_dataset

import ssod  # noqa: F401  (registers CocoSplitDataset)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="the config whose data.test the detections were made on")
    parser.add_argument("detections", nargs="+", help="tools/test.py --out files, one per model")
    parser.add_argument("--subset-size", type=int, required=True, help="images per subset")
    parser.add_argument("--baseline", help="detections of a reference model: also the spread of the differences")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    parser.add_argument("--out", help="write the figures to this JSON file")
    return parser.parse_args(argv)


def disjoint_subsets(img_ids, size, seed):
    """The images shuffled with ``seed`` and cut into ``len(img_ids) // size`` disjoint subsets of ``size``."""
    if not 0 < size <= len(img_ids) // 2:
        raise ValueError(f"--subset-size must be between 1 and half the {len(img_ids)} test images, got {size}")
    shuffled = np.random.default_rng(seed).permutation(np.asarray(img_ids))
    return [sorted(shuffled[start:start + size].tolist()) for start in range(0, len(shuffled) - size + 1, size)]


def subset_scores(dataset, results, subsets):
    """The metrics of ``results`` on the whole set, and on each of ``subsets``."""
    whole, *per_subset = dataset.image_subset_metrics(results, [dataset.img_ids, *subsets])
    return whole, per_subset


def spread(scores, baseline_scores=None):
    """Per metric: the score on the whole set, and its mean and std (ddof 1) over the subsets; of the
    difference from ``baseline_scores`` (same subsets) when given."""
    whole, per_subset = scores
    if baseline_scores is not None:
        whole = {key: whole[key] - baseline_scores[0][key] for key in whole}
        per_subset = [{key: mine[key] - theirs[key] for key in mine}
                      for mine, theirs in zip(per_subset, baseline_scores[1])]
    return {key: dict(whole=whole[key], mean=float(np.mean([m[key] for m in per_subset])),
                      std=float(np.std([m[key] for m in per_subset], ddof=1)))
            for key in whole}


def load_detections(path, dataset):
    results = mmcv.load(path)
    if len(results) != len(dataset):
        raise ValueError(f"{path} holds detections for {len(results)} images, but the test set of the config "
                         f"has {len(dataset)}: were they made on another val set?")
    return results


def format_spread(spreads, title):
    keys = list(next(iter(spreads.values())))
    lines = [title,
             "".join(f"{key + ': whole | subsets':>34s}" for key in keys) + "  detections"]
    for name, spread in spreads.items():
        cells = [f"{s['whole']:.3f} | {s['mean']:.3f} ± {s['std']:.3f}" for s in (spread[k] for k in keys)]
        lines.append("".join(f"{cell:>34s}" for cell in cells) + f"  {name}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    dataset = build_dataset(dict(cfg.data.test, test_mode=True))
    subsets = disjoint_subsets(dataset.img_ids, args.subset_size, args.seed)
    scores = {path: subset_scores(dataset, load_detections(path, dataset), subsets) for path in args.detections}
    spreads = {path: spread(score) for path, score in scores.items()}
    subsets_text = f"{len(subsets)} disjoint subsets of {args.subset_size} images"
    print(format_spread(spreads, f"bbox mAP on the whole test set, and mean ± std over {subsets_text}"))
    figures = dict(subset_size=args.subset_size, num_subsets=len(subsets), seed=args.seed, models=spreads)
    if args.baseline:
        baseline = subset_scores(dataset, load_detections(args.baseline, dataset), subsets)
        figures["baseline"] = args.baseline
        figures["differences"] = {path: spread(score, baseline) for path, score in scores.items()}
        print("\n" + format_spread(figures["differences"], f"minus {args.baseline}: on the whole test set, "
                                                            f"and mean ± std over the {subsets_text}"))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
