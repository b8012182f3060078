"""Time CrS repeat factors at Objects365 scale (default: 1.7 M images, ~3 boxes each, 365 classes).

Usage: python tools/analysis/bench_crs.py [--images N] [--boxes-per-image B] [--classes C]
"""
import argparse
import time

import numpy as np
from mmdet.utils import get_root_logger

from ssod.datasets.crs import crs_repeat_factors


def synthetic_pool(num_images, boxes_per_image, num_classes, seed=0):
    """Per-image label/margin arrays with Poisson box counts and long-tailed classes."""
    rng = np.random.default_rng(seed)
    sizes = rng.poisson(boxes_per_image, num_images)
    class_prob = 1.0 / np.arange(1, num_classes + 1)
    class_prob /= class_prob.sum()
    labels = rng.choice(num_classes, size=sizes.sum(), p=class_prob)
    margins = rng.uniform(0.0, 0.5, sizes.sum())
    splits = np.cumsum(sizes)[:-1]
    return np.split(labels, splits), np.split(margins, splits)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_700_000)
    parser.add_argument("--boxes-per-image", type=float, default=3.0)
    parser.add_argument("--classes", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logger = get_root_logger()

    labels, margins = synthetic_pool(args.images, args.boxes_per_image, args.classes)
    labeled_counts = np.random.default_rng(1).integers(1, 5000, args.classes)
    timings = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        repeats = crs_repeat_factors(labels, margins, labeled_counts, 119_790, lambd=0.5)
        timings.append(time.perf_counter() - start)
    logger.info(f"crs_repeat_factors: {args.images} images, {sum(map(len, labels))} boxes, "
                f"{args.classes} classes: best {min(timings):.2f} s, median "
                f"{float(np.median(timings)):.2f} s over {args.repeats} runs; "
                f"dataset length {int(repeats.sum())}, max repeat {int(repeats.max())}")


if __name__ == "__main__":
    main()
