"""Time the training-time data preflight on a COCO-sized file (default: 120k images, ~900k boxes).

Usage: python tools/analysis/bench_preflight.py [--images N] [--boxes-per-image B] [--dirs D] [--out DIR]

Writes a synthetic COCO file and one empty file per image (in ``D`` folders) under ``--out``
(default: a temporary folder, removed afterwards), a few bad boxes and missing files among
them, builds mmdet's ``CocoDataset`` on it (timed apart: training builds it anyway) and times
``check_datasets`` (what ``tools/train.py`` runs before the first iteration), and, for
comparison, one ``os.path.isfile`` per image.
"""
import argparse
import json
import os
import os.path as osp
import tempfile
import time

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.utils import get_root_logger

from ssod.datasets.preflight import check_datasets, image_path

NUM_CLASSES = 80
BAD_BOXES = 50  # zero-width boxes
MISSING_FILES = 10


def synthetic_coco(num_images, boxes_per_image, num_dirs, seed=0):
    """A COCO dict whose file names spread over ``num_dirs`` folders."""
    rng = np.random.default_rng(seed)
    images = [dict(id=i + 1, file_name=f"part{i % num_dirs}/{i + 1:012d}.jpg", width=640, height=480)
              for i in range(num_images)]
    counts = rng.poisson(boxes_per_image, num_images)
    image_ids = np.repeat(np.arange(1, num_images + 1), counts)
    xy = rng.uniform(0, 400, (len(image_ids), 2))
    wh = rng.uniform(2, 200, (len(image_ids), 2))
    wh[:BAD_BOXES, 0] = 0
    categories = rng.integers(1, NUM_CLASSES + 1, len(image_ids))
    annotations = [dict(id=j + 1, image_id=int(image_ids[j]), category_id=int(categories[j]), iscrowd=0,
                        bbox=[*xy[j].round(2).tolist(), *wh[j].round(2).tolist()], area=float(wh[j].prod()))
                   for j in range(len(image_ids))]
    return dict(images=images, annotations=annotations,
                categories=[dict(id=c, name=f"class{c}") for c in range(1, NUM_CLASSES + 1)])


def write_files(root, coco):
    """The annotation file and one empty file per image, less ``MISSING_FILES`` of them."""
    ann_file = osp.join(root, "instances.json")
    with open(ann_file, "w") as f:
        json.dump(coco, f)
    for image in coco["images"][MISSING_FILES:]:
        path = osp.join(root, "images", image["file_name"])
        os.makedirs(osp.dirname(path), exist_ok=True)
        open(path, "wb").close()
    return ann_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120_000)
    parser.add_argument("--boxes-per-image", type=float, default=7.5)
    parser.add_argument("--dirs", type=int, default=1, help="image folders (COCO: 1)")
    parser.add_argument("--out", help="keep the synthetic data here")
    args = parser.parse_args()
    logger = get_root_logger()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or tmp
        coco = synthetic_coco(args.images, args.boxes_per_image, args.dirs)
        ann_file = write_files(root, coco)
        start = time.perf_counter()
        dataset = CocoDataset(ann_file, pipeline=[], img_prefix=osp.join(root, "images"),
                              classes=[c["name"] for c in coco["categories"]])
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        report, = check_datasets({"data.train": dataset})
        preflight_s = time.perf_counter() - start
        start = time.perf_counter()
        missing = sum(not osp.isfile(image_path(dataset, info)) for info in dataset.data_infos)
        isfile_s = time.perf_counter() - start
    found = {what: count for (_, what), (count, _) in report.findings.items()}
    logger.info(f"data preflight: {len(dataset)} images, {len(coco['annotations'])} boxes, {args.dirs} image "
                f"folder(s): {preflight_s:.2f} s (building CocoDataset: {build_s:.1f} s; one os.path.isfile per "
                f"image instead of the listing: {isfile_s:.2f} s, {missing} missing); found {found}")


if __name__ == "__main__":
    main()
