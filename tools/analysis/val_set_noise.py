"""How precisely a val set measures a model: bbox mAP (all, head, tail) on disjoint random image subsets.

Usage: python tools/analysis/val_set_noise.py CONFIG DETS.pkl [DETS.pkl ...] --subset-size N
       [--seed 0] [--out FILE.json]

DETS.pkl holds the raw detections of ``tools/test.py CONFIG CHECKPOINT --out DETS.pkl`` on the test
set of CONFIG (a ``CocoSplitDataset``). The test set is split at random into disjoint subsets of N
images (the remainder is left out); every model is scored on every subset. The std over the
subsets is the noise a val set of N images adds to one model's score, whatever the training did:
a difference between two models measured on N images means little below it. Prints, per model,
the score on the whole set and the mean and std over the subsets; ``--out`` writes them as JSON.
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
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    parser.add_argument("--out", help="write the figures to this JSON file")
    return parser.parse_args(argv)


def disjoint_subsets(img_ids, size, seed):
    """The images shuffled with ``seed`` and cut into ``len(img_ids) // size`` disjoint subsets of ``size``."""
    if not 0 < size <= len(img_ids) // 2:
        raise ValueError(f"--subset-size must be between 1 and half the {len(img_ids)} test images, got {size}")
    shuffled = np.random.default_rng(seed).permutation(np.asarray(img_ids))
    return [sorted(shuffled[start:start + size].tolist()) for start in range(0, len(shuffled) - size + 1, size)]


def subset_spread(dataset, results, subsets):
    """Per metric: the score on the whole set, and the mean and std (ddof 1) over ``subsets``."""
    whole = dataset.image_subset_metrics(results, dataset.img_ids)
    per_subset = [dataset.image_subset_metrics(results, subset) for subset in subsets]
    return {key: dict(whole=whole[key], mean=float(np.mean([m[key] for m in per_subset])),
                      std=float(np.std([m[key] for m in per_subset], ddof=1)))
            for key in whole}


def load_detections(path, dataset):
    results = mmcv.load(path)
    if len(results) != len(dataset):
        raise ValueError(f"{path} holds detections for {len(results)} images, but the test set of the config "
                         f"has {len(dataset)}: were they made on another val set?")
    return results


def format_spread(spreads, subset_size, num_subsets):
    keys = list(next(iter(spreads.values())))
    lines = [f"bbox mAP on the whole test set, and mean ± std over {num_subsets} disjoint subsets of "
             f"{subset_size} images",
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
    spreads = {path: subset_spread(dataset, load_detections(path, dataset), subsets) for path in args.detections}
    print(format_spread(spreads, args.subset_size, len(subsets)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(subset_size=args.subset_size, num_subsets=len(subsets), seed=args.seed,
                           models=spreads), f, indent=1)


if __name__ == "__main__":
    main()
