"""Check every dataset of a config before training: annotations, image files, and every image decoded.

Usage: python tools/dataset/check_dataset.py CONFIG [--no-val] [--no-decode] [--workers N] [--cfg-options ...]

Builds ``data.train`` and ``data.val`` as training does, runs the training-time preflight
(``ssod/datasets/preflight.py``: missing image files, boxes mmdet would drop, unknown
categories, images left out, with examples), then reads and decodes every image as
``LoadImageFromFile`` does and names the files that are empty, cannot be decoded, or whose
size differs from the annotation file. Prints one report; exits 1 if anything would stop or
corrupt training (errors), 0 otherwise (warnings are printed). Paths in the config are
relative to the current directory, as for training.
"""
import argparse
import multiprocessing
import sys

import mmcv
from mmcv import Config, DictAction
from mmdet.datasets import build_dataset

import ssod  # noqa: F401  (registers ssod's datasets and pipelines)
from ssod.datasets.preflight import check_datasets, image_path, missing_files


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Check the datasets of a config (annotations and images)")
    parser.add_argument("config", help="training config")
    parser.add_argument("--no-val", action="store_true", help="skip data.val")
    parser.add_argument("--no-decode", action="store_true", help="skip decoding the images")
    parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys, key=value")
    return parser.parse_args(argv)


def build_datasets(cfg, with_val):
    datasets = {"data.train": build_dataset(cfg.data.train)}
    if with_val:
        datasets["data.val"] = build_dataset(cfg.data.val, dict(test_mode=True))
    return datasets


def decode_problem(item):
    """``(path, problem)`` for one ``(path, width, height)``; problem None if the image is fine."""
    path, width, height = item
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        return path, f"cannot be read ({err.strerror})"
    if not data:
        return path, "zero-byte file"
    try:
        img = mmcv.imfrombytes(data, flag="color")
    except Exception as err:  # cv2 raises its own error types on garbage
        return path, f"cannot be decoded ({type(err).__name__}: {err})"
    if img is None:
        return path, "cannot be decoded (not an image, or truncated)"
    if (width, height) != (img.shape[1], img.shape[0]):
        return path, f"size {img.shape[1]}x{img.shape[0]} differs from the annotation file's {width}x{height}"
    return path, None


def images_to_decode(reports):
    """Unique ``(path, width, height)`` of the images that exist, over all checked datasets."""
    items = {}
    for report in reports:
        infos = getattr(report.dataset, "data_infos", [])
        paths = [image_path(report.dataset, info) for info in infos]
        missing = set(missing_files(paths))
        for i, (path, info) in enumerate(zip(paths, infos)):
            if i not in missing:
                items[path] = (path, info.get("width"), info.get("height"))
    return list(items.values())


def decode_all(items, workers):
    """``{problem: [paths]}`` over all images, decoded by ``workers`` processes."""
    problems = {}
    with multiprocessing.Pool(workers) as pool:
        for path, problem in pool.imap_unordered(decode_problem, items, chunksize=32):
            if problem is not None:
                kind = "size differs from the annotation file" if problem.startswith("size") else "unreadable"
                problems.setdefault(kind, []).append(f"{path}: {problem}")
    return problems


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    reports = check_datasets(build_datasets(cfg, with_val=not args.no_val))
    errors = 0
    for report in reports:
        print(report.header())
        for level in ("error", "warning", "info"):
            for line in report.lines(level):
                print(f"  {level.upper()}: {line}")
                errors += level == "error"
    if not args.no_decode:
        items = images_to_decode(reports)
        problems = decode_all(items, args.workers)
        print(f"decoded {len(items)} images")
        for kind, lines in sorted(problems.items()):
            level = "ERROR" if kind == "unreadable" else "WARNING"
            errors += level == "ERROR"
            print(f"  {level}: {len(lines)} images {kind}:")
            for line in sorted(lines):
                print(f"    {line}")
    print("errors found: training would fail or be wrong" if errors else "no errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
