"""Data preflight: check the datasets a run uses, as built, before the first iteration.

For every leaf dataset (the parts of ``SemiDataset``, ``ConcatDataset`` and the repeat
wrappers) it checks, from the loaded annotations and one directory listing per image folder:

* image files exist (error, naming them) and images have a width and height (error);
* boxes mmdet's ``CocoDataset`` would drop: malformed (no 4-number bbox, no area or category;
  an error, training would stop there), width or height below 1 px, area <= 0, no overlap
  with the image, ``category_id`` not among the file's categories (warnings), category not
  among the dataset's classes (info), annotations of image ids absent from the file;
* images the dataset's filters left out (info) and labeled images left without any valid
  box (warning); an empty dataset, or a labeled one without a single valid box, is an error.

Unlabeled sets are checked for their images only (their labels are not used). Counts come
with the first few examples (file, image id, annotation id). Decoding the images is left to
``tools/dataset/check_dataset.py``; a corrupt image met in training is named by
``LoadImageFromFile`` (``pipelines/loading.py``).
"""
import os
import os.path as osp
import time
from collections import defaultdict

import numpy as np
from mmdet.datasets import ConcatDataset

from ssod.utils.dist_utils import broadcast_object, is_main_process

MAX_EXAMPLES = 5


class DataPreflightError(ValueError):
    """A dataset training cannot use as it is (missing images, malformed annotations, nothing left)."""


class DatasetReport:
    """Findings on one leaf dataset: ``(level, what) -> (count, examples)``."""

    def __init__(self, name, dataset):
        self.name = name
        self.dataset = dataset
        self.ann_file = getattr(dataset, "ann_file", None)
        self.num_images = len(getattr(dataset, "data_infos", ()))
        self.num_boxes = None
        self.findings = {}

    def add(self, level, what, count, examples=()):
        if count:
            self.findings[(level, what)] = (int(count), list(examples)[:MAX_EXAMPLES])

    def lines(self, level):
        """Human-readable lines of one level."""
        lines = []
        for (found_level, what), (count, examples) in self.findings.items():
            if found_level == level:
                example_text = f"; e.g. {'; '.join(examples)}" if examples else ""
                lines.append(f"{self.name}: {count} {what}{example_text}")
        return lines

    def header(self):
        boxes = "" if self.num_boxes is None else f", {self.num_boxes} valid boxes"
        source = f" from {self.ann_file}" if self.ann_file else ""
        return f"{self.name}: {type(self.dataset).__name__}, {self.num_images} images{boxes}{source}"


def leaf_datasets(dataset, name, labeled=True):
    """``(name, leaf dataset, labeled)`` for every part of a (wrapped, concatenated, semi) dataset."""
    if hasattr(dataset, "sup") and hasattr(dataset, "unsup"):
        return leaf_datasets(dataset.sup, f"{name}.sup", labeled) + leaf_datasets(dataset.unsup, f"{name}.unsup", False)
    if isinstance(dataset, ConcatDataset):
        return [leaf for i, part in enumerate(dataset.datasets)
                for leaf in leaf_datasets(part, f"{name}[{i}]", labeled)]
    if hasattr(dataset, "dataset") and not hasattr(dataset, "data_infos"):
        return leaf_datasets(dataset.dataset, name, labeled)
    return [(name, dataset, labeled)]


def image_path(dataset, info):
    """The path ``LoadImageFromFile`` reads for one ``data_infos`` entry."""
    prefix = getattr(dataset, "img_prefix", None)
    return osp.join(prefix, info["filename"]) if prefix else info["filename"]


def missing_files(paths):
    """Indices of ``paths`` that are not files, with one directory listing per folder."""
    by_dir = defaultdict(list)
    for i, path in enumerate(paths):
        folder, _, name = path.rpartition(os.sep)
        by_dir[folder or (os.sep if path.startswith(os.sep) else "")].append((i, name))
    missing = []
    for folder, entries in by_dir.items():
        try:
            with os.scandir(folder or ".") as listing:
                names = {entry.name for entry in listing if entry.is_file()}
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        missing.extend(i for i, name in entries if name not in names)
    return sorted(missing)


def _image_ids(dataset):
    ids = getattr(dataset, "img_ids", None)
    if ids is None or len(ids) != len(dataset.data_infos):
        ids = [info.get("id") for info in dataset.data_infos]
    return ids


def check_images(report, dataset):
    """Missing files and images without a usable size."""
    infos = dataset.data_infos
    ids = _image_ids(dataset)
    paths = [image_path(dataset, info) for info in infos]
    missing = missing_files(paths)
    report.add("error", "image files missing", len(missing),
               [f"{paths[i]} (image {ids[i]})" for i in missing])
    no_size = [i for i, info in enumerate(infos)
               if not (_positive(info.get("width")) and _positive(info.get("height")))]
    report.add("error", "images without a positive width and height in the annotation file", len(no_size),
               [f"{paths[i]} (image {ids[i]}, {infos[i].get('width')}x{infos[i].get('height')})" for i in no_size])
    if not infos:
        report.add("error", "images: the dataset is empty (check ann_file, img_prefix, classes, filter_empty_gt)", 1)


def _positive(value):
    return isinstance(value, (int, float)) and value > 0


def _box_array(anns):
    """``[N, 4]`` float boxes; rows that are not 4 finite numbers are NaN."""
    try:
        boxes = np.array([ann["bbox"] for ann in anns], dtype=np.float64).reshape(len(anns), 4)
    except (KeyError, TypeError, ValueError):
        boxes = np.full((len(anns), 4), np.nan)
        for i, ann in enumerate(anns):
            bbox = ann.get("bbox")
            if isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(
                    isinstance(v, (int, float)) for v in bbox):
                boxes[i] = bbox
    return boxes


def _annotation_columns(anns):
    """``image_id``, ``category_id``, ``area`` (float, NaN where absent or not a number) and ``ignore``."""
    try:
        table = np.array([(ann.get("image_id"), ann.get("category_id"), ann.get("area"), ann.get("ignore", False))
                          for ann in anns], dtype=np.float64).reshape(len(anns), 4)
        return table[:, 0], table[:, 1], table[:, 2], table[:, 3] != 0
    except (TypeError, ValueError):
        ignored = np.array([bool(ann.get("ignore", False)) for ann in anns], dtype=bool)
        return (*(_number_array(anns, key) for key in ("image_id", "category_id", "area")), ignored)


def _number_array(anns, key, missing=np.nan):
    """Float values of ``key`` (``missing`` where absent or not a number)."""
    try:
        return np.fromiter((ann.get(key, missing) for ann in anns), dtype=np.float64, count=len(anns))
    except (TypeError, ValueError):
        return np.array([v if isinstance(v, (int, float)) and not isinstance(v, bool) else missing
                         for v in (ann.get(key) for ann in anns)], dtype=np.float64)


def check_annotations(report, dataset, labeled):
    """Images the dataset's filters left out; for labeled sets, the boxes mmdet would drop."""
    coco = getattr(dataset, "coco", None)
    if coco is None or not hasattr(coco, "anns"):
        return
    images = coco.imgs
    kept_ids = set(_image_ids(dataset))
    left_out = [img_id for img_id in images if img_id not in kept_ids]
    report.add("info", "images left out by the dataset's filters (filter_empty_gt, min_size, skip lists)",
               len(left_out), [f"{_file_name(images[i])} (image {i})" for i in left_out[:MAX_EXAMPLES]])
    if labeled:
        _check_boxes(report, dataset, coco, kept_ids)


def _check_boxes(report, dataset, coco, kept_ids):
    """Count the boxes ``CocoDataset._parse_ann_info`` drops, by first reason, with examples."""
    images = coco.imgs
    anns = list(coco.anns.values())
    image_of, category, area, ignored = _annotation_columns(anns)
    image_of = np.where(np.isfinite(image_of), image_of, -1).astype(np.int64)
    in_file = np.isin(image_of, np.fromiter(images.keys(), dtype=np.int64, count=len(images)))
    checked = np.isin(image_of, np.fromiter(kept_ids, dtype=np.int64, count=len(kept_ids))) & ~ignored
    boxes = _box_array(anns)
    width, height = _image_sizes(images, image_of)
    x1, y1, w, h = boxes.T
    with np.errstate(invalid="ignore"):
        overlap_w = np.minimum(x1 + w, width) - np.maximum(x1, 0)
        overlap_h = np.minimum(y1 + h, height) - np.maximum(y1, 0)
        reasons = [
            ("error", "annotations malformed (bbox not 4 numbers, or no area / category_id)",
             np.isnan(boxes).any(axis=1) | np.isnan(area) | np.isnan(category)),
            ("warning", "boxes dropped: width or height below 1 px", (w < 1) | (h < 1)),
            ("warning", "boxes dropped: area <= 0", area <= 0),
            ("warning", "boxes dropped: outside the image", (overlap_w <= 0) | (overlap_h <= 0)),
            ("warning", "boxes dropped: category_id not among the file's categories",
             ~np.isin(category, np.array(list(coco.cats), dtype=np.float64))),
            ("info", "boxes dropped: category not among the dataset's classes",
             ~np.isin(category, np.array(list(dataset.cat_ids), dtype=np.float64))),
        ]
    dropped = np.zeros(len(anns), dtype=bool)
    for level, what, mask in reasons:
        hit = np.flatnonzero(checked & mask & ~dropped)
        dropped[hit] = True
        report.add(level, what, len(hit), [_ann_example(images, anns[i]) for i in hit[:MAX_EXAMPLES]])
    orphans = np.flatnonzero(~in_file)
    report.add("warning", "annotations of image ids not in the file", len(orphans),
               [f"ann {anns[i].get('id')} (image_id {anns[i].get('image_id')!r})" for i in orphans[:MAX_EXAMPLES]])
    valid = checked & ~dropped
    report.num_boxes = int(valid.sum())
    if not getattr(dataset, "test_mode", False):
        _check_labeled_images(report, dataset, image_of[valid])


def _check_labeled_images(report, dataset, images_with_boxes):
    with_boxes = set(images_with_boxes.tolist())
    ids = _image_ids(dataset)
    empty = [i for i, img_id in enumerate(ids) if img_id not in with_boxes]
    report.add("warning", "labeled images without any valid box (trained as background only)", len(empty),
               [f"{image_path(dataset, dataset.data_infos[i])} (image {ids[i]})" for i in empty[:MAX_EXAMPLES]])
    if ids and len(empty) == len(ids):
        report.add("error", "labeled set without a single valid box", 1)


def _image_sizes(images, image_of):
    """Width and height (NaN if unknown) of the image of every annotation."""
    if not images:
        return np.full(len(image_of), np.nan), np.full(len(image_of), np.nan)
    infos = list(images.values())
    ids = _number_array(infos, "id", missing=-1)
    order = np.argsort(ids)
    pos = np.searchsorted(ids[order], image_of).clip(0, len(ids) - 1)
    known = ids[order][pos] == image_of
    return tuple(np.where(known, _number_array(infos, key)[order][pos], np.nan) for key in ("width", "height"))


def _file_name(info):
    return info.get("file_name") or info.get("coco_url") or "?"


def _ann_example(images, ann):
    info = images.get(ann.get("image_id"), {})
    return f"{_file_name(info)} (image {ann.get('image_id')}, ann {ann.get('id')}, bbox {ann.get('bbox')}, " \
           f"category_id {ann.get('category_id')})"


def check_dataset(name, dataset, labeled=True):
    """A :class:`DatasetReport` of one leaf dataset."""
    report = DatasetReport(name, dataset)
    if hasattr(dataset, "data_infos"):
        check_images(report, dataset)
        check_annotations(report, dataset, labeled)
    return report


def check_datasets(named_datasets):
    """Reports of every leaf of ``{name: dataset}`` (unlabeled parts: images only)."""
    return [check_dataset(leaf_name, leaf, labeled)
            for name, dataset in named_datasets.items()
            for leaf_name, leaf, labeled in leaf_datasets(dataset, name)]


def error_message(reports):
    """One message with every error, or None."""
    errors = [line for report in reports for line in report.lines("error")]
    if not errors:
        return None
    return "data preflight found problems training cannot run with:\n  " + "\n  ".join(errors) + \
        "\n(check the annotation files and img_prefix; tools/dataset/check_dataset.py CONFIG lists everything)"


def preflight(named_datasets, logger):
    """Check ``{name: dataset}`` on rank 0, log a summary, and raise on errors on every rank."""
    message = None
    if is_main_process():
        start = time.perf_counter()
        reports = check_datasets(named_datasets)
        for report in reports:
            logger.info(f"data preflight: {report.header()}")
            for line in report.lines("warning"):
                logger.warning(f"data preflight: {line}")
            for line in report.lines("info"):
                logger.info(f"data preflight: {line}")
        message = error_message(reports)
        logger.info(f"data preflight: {len(reports)} datasets checked in {time.perf_counter() - start:.2f} s")
    message = broadcast_object(message)
    if message:
        raise DataPreflightError(message)
