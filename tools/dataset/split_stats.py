"""Per-class image and box counts of a COCO-format annotation file (e.g. a split's labeled file).

    python tools/dataset/split_stats.py dataset/coco/annotations/instances_train2017_coco_split1_label.json
    python tools/dataset/split_stats.py LABEL.json --classes-from FULL.json --json stats.json

Prints a table, one row per class in category-id order (the contiguous-label order of the datasets):
``images`` = images with at least one annotation of the class, ``boxes`` = its annotations, ``crowd`` =
those marked ``iscrowd`` (included in ``boxes``). A ``subset`` column (novel/base) appears when the
file's ``info`` lists ``novel_category_ids`` (files made by split_coco.py). Totals follow: images in the
file, images with at least one annotation, boxes, crowd boxes.

``--classes-from FILE`` takes the classes from another annotation file's ``categories`` (an annotation
of a class missing there is an error). ``--json OUT`` also writes the numbers, including
``image_counts`` and ``box_counts`` lists in category-id order (what CrS needs as labeled-image counts).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

from split_common import SplitError, category_names, configure_logging, image_ids, load_annotations


def annotation_stats(data, classes=None, source="annotation file"):
    """Counts of ``data`` over the categories of ``classes`` (an annotation dict; default ``data``)."""
    names = category_names(classes if classes is not None else data, source)
    category_ids = np.array(sorted(names), dtype=np.int64)
    images = image_ids(data, source)
    annotations = data["annotations"]
    try:
        categories = np.fromiter((a["category_id"] for a in annotations), dtype=np.int64, count=len(annotations))
        owners = np.fromiter((a["image_id"] for a in annotations), dtype=np.int64, count=len(annotations))
    except (KeyError, TypeError, ValueError) as exc:
        raise SplitError(f"{source}: every annotation needs integer 'category_id' and 'image_id' ({exc})") from None
    crowd = np.fromiter((bool(a.get("iscrowd", 0)) for a in annotations), dtype=bool, count=len(annotations))
    unknown = np.flatnonzero(~np.isin(categories, category_ids))
    if len(unknown):
        first = annotations[unknown[0]]
        raise SplitError(f"{source}: annotation {first.get('id')} has category_id {first['category_id']}, "
                         f"which is not among the {len(category_ids)} classes")
    owner_ids = np.unique(owners)
    missing = np.setdiff1d(owner_ids, np.fromiter(images, dtype=np.int64, count=len(images)))
    if len(missing):
        raise SplitError(f"{source}: annotations refer to image ids {missing[:10].tolist()} not in the file")
    columns = np.searchsorted(category_ids, categories)
    offsets = np.searchsorted(owner_ids, owners)  # 0 .. len(owner_ids) - 1
    class_of_pair = np.unique(columns * len(owner_ids) + offsets) // max(len(owner_ids), 1)
    image_counts = np.bincount(class_of_pair, minlength=len(category_ids))
    box_counts = np.bincount(columns, minlength=len(category_ids))
    crowd_counts = np.bincount(columns[crowd], minlength=len(category_ids))
    novel = data.get("info", {}).get("novel_category_ids")
    rows = []
    for column, category_id in enumerate(category_ids.tolist()):
        row = {"id": category_id, "name": names[category_id], "images": int(image_counts[column]),
               "boxes": int(box_counts[column]), "crowd_boxes": int(crowd_counts[column])}
        if novel is not None:
            row["subset"] = "novel" if category_id in novel else "base"
        rows.append(row)
    return {
        "num_images": len(images),
        "num_images_with_annotations": len(owner_ids),
        "num_boxes": len(annotations),
        "num_crowd_boxes": int(crowd.sum()),
        "category_ids": category_ids.tolist(),
        "image_counts": image_counts.tolist(),
        "box_counts": box_counts.tolist(),
        "classes": rows,
    }


def format_table(stats):
    """The printed table: one row per class, then the totals."""
    columns = ["id", "name", "images", "boxes", "crowd_boxes"]
    if any("subset" in row for row in stats["classes"]):
        columns.append("subset")
    cells = [columns] + [[str(row[c]) for c in columns] for row in stats["classes"]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) if c in ("name", "subset") else cell.rjust(w)
                       for cell, w, c in zip(line, widths, columns)).rstrip() for line in cells]
    lines.append(f"total: {len(stats['classes'])} classes, {stats['num_images']} images "
                 f"({stats['num_images_with_annotations']} with annotations), {stats['num_boxes']} boxes "
                 f"({stats['num_crowd_boxes']} crowd)")
    return "\n".join(lines) + "\n"


def build_parser():
    """The command-line interface."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("file", help="COCO-format annotation file")
    parser.add_argument("--classes-from", help="take the classes from this annotation file's categories")
    parser.add_argument("--json", help="also write the numbers to this JSON file")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()
    try:
        data = load_annotations(args.file)
        classes = load_annotations(args.classes_from, required=("categories",)) if args.classes_from else None
        stats = annotation_stats(data, classes, args.file)
    except SplitError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    sys.stdout.write(format_table(stats))
    if args.json:
        Path(args.json).write_text(json.dumps({"file": Path(args.file).name, **stats}, indent=1) + "\n",
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
