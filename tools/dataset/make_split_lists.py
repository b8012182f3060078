r"""Generate NEW seeded image lists for the CI-SSOD splits, for users without the authors' lists.

    python tools/dataset/make_split_lists.py coco --ann dataset/coco/annotations/instances_train2017.json \
        --split 1 --base-fraction 0.1 --shots 10 --seed 0 --out-dir dataset/coco/lists
    python tools/dataset/make_split_lists.py lvis --ann dataset/lvis/annotations/lvis_v1_train.json \
        --fraction 0.1 --seed 0 --out-dir dataset/lvis/lists
    python tools/dataset/make_split_lists.py objects365 \
        --ann dataset/Object365/annotations/zhiyuan_objv2_train.json --fraction 0.001 --seed 0 \
        --out-dir dataset/Object365/lists

The lists are a new, declared protocol (spec A): they are not the authors' lists. Feed them to
split_coco.py / split_lvis.py / split_objects365.py. Recipe (numpy ``default_rng(seed)``; images are
first sorted by id, so the input order does not matter):

coco: 1. base list = ``round(base_fraction * N)`` images drawn uniformly without replacement from all N
images. 2. Candidates = the other images having at least one non-crowd annotation of a novel class of
the split, shuffled with the same generator. 3. Novel classes are visited from the rarest (fewest
non-crowd candidate boxes; ties by category id) to the most common. For class c: a first pass over c's
candidates in shuffled order adds each not yet selected image whose c boxes keep c at or below ``shots``
boxes, until c has ``shots``; if c is still short, a second pass adds the remaining images in shuffled
order until c has at least ``shots``. Every added image brings all its boxes, so co-occurring classes can
exceed ``shots`` (as in the upstream splits). A class with fewer than ``shots`` candidate boxes gets all of
them (a warning says so). The novel few-shot list never contains a base-list image.

lvis, objects365: labeled list = ``round(fraction * N)`` images drawn uniformly without replacement.
(Upstream's Objects365 labeled part is small: its 119 790 labeled images include all of COCO train2017.)

Each list holds one image id per line, followed by the file name as a comment, under a ``#`` header
stating the recipe. The same annotation file, arguments and numpy version give byte-identical lists.
"""
import argparse
import logging
import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from split_common import (SplitError, category_names, coco_novel_category_ids, configure_logging, image_ids,
                          load_annotations)

LOGGER = logging.getLogger("make_split_lists")


def random_subset(ids, fraction, rng):
    """``round(fraction * len(ids))`` ids drawn uniformly without replacement from ``sorted(ids)``, sorted."""
    if not 0 < fraction <= 1:
        raise SplitError(f"fraction must be in (0, 1], got {fraction}")
    ids = sorted(ids)
    count = round(fraction * len(ids))
    if count == 0:
        raise SplitError(f"fraction {fraction} of {len(ids)} images selects no image")
    picked = rng.choice(len(ids), size=count, replace=False)
    return sorted(ids[i] for i in picked)


def novel_box_counts(data, novel_categories, candidates):
    """Per image id in ``candidates``, a Counter of its non-crowd novel-class boxes (images without any
    are left out)."""
    novel, candidates = set(novel_categories), set(candidates)
    counts = {}
    for annotation in data["annotations"]:
        category, image_id = annotation.get("category_id"), annotation.get("image_id")
        if category in novel and not annotation.get("iscrowd", 0) and image_id in candidates:
            counts.setdefault(image_id, Counter())[category] += 1
    return counts


def few_shot_images(image_counts, novel_categories, shots, rng):
    """Greedy few-shot selection (module docstring, coco steps 2-3).

    ``image_counts``: image id -> Counter of novel boxes. Returns (sorted selected ids, boxes per novel
    class in the selection, classes short of ``shots`` because the candidates hold too few boxes).
    """
    if shots < 1:
        raise SplitError(f"shots must be at least 1, got {shots}")
    candidates = sorted(image_counts)
    order = [candidates[i] for i in rng.permutation(len(candidates))]
    per_class = {c: [] for c in novel_categories}
    totals = Counter()
    for image_id in order:
        for category, number in image_counts[image_id].items():
            per_class[category].append(image_id)
            totals[category] += number
    selected, boxes = set(), Counter()

    def add(image_id):
        selected.add(image_id)
        boxes.update(image_counts[image_id])

    for category in sorted(novel_categories, key=lambda c: (totals[c], c)):
        for image_id in per_class[category]:
            if boxes[category] >= shots:
                break
            if image_id not in selected and boxes[category] + image_counts[image_id][category] <= shots:
                add(image_id)
        for image_id in per_class[category]:
            if boxes[category] >= shots:
                break
            if image_id not in selected:
                add(image_id)
    short = [c for c in novel_categories if boxes[c] < shots]
    return sorted(selected), {c: boxes[c] for c in novel_categories}, short


def make_coco_lists(data, split, base_fraction, shots, seed, source="annotation file"):
    """The base list and the novel few-shot list of COCO split ``split`` (module docstring recipe)."""
    novel_categories = coco_novel_category_ids(split, data, source)
    rng = np.random.default_rng(seed)
    ids = image_ids(data, source)
    base = random_subset(ids, base_fraction, rng)
    counts = novel_box_counts(data, novel_categories, ids.difference(base))
    novel, boxes, short = few_shot_images(counts, novel_categories, shots, rng)
    return {"base": base, "novel": novel, "novel_boxes": boxes, "short_classes": short}


def image_names(data):
    """Image id -> file name (``file_name``, else the last part of ``coco_url``), where known."""
    names = {}
    for image in data["images"]:
        name = image.get("file_name") or (image.get("coco_url") or "").rpartition("/")[2]
        if name:
            names[image["id"]] = name
    return names


def list_text(ids, names, header):
    """An image-list file: ``#`` header lines, then one id per line with its file name as a comment."""
    lines = [f"# {line}" for line in header]
    lines += [f"{i}  # {names[i]}" if i in names else str(i) for i in ids]
    return "\n".join(lines) + "\n"


def write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def percent(fraction):
    """``0.1`` -> ``"10percent"`` (file-name part)."""
    return f"{fraction * 100:g}percent"


def run_coco(args, data):
    """Write the two COCO lists and print where they are."""
    lists = make_coco_lists(data, args.split, args.base_fraction, args.shots, args.seed, args.ann)
    names, class_names = image_names(data), category_names(data, args.ann)
    source = f"source: {Path(args.ann).name} ({len(data['images'])} images)"
    recipe = (f"recipe: make_split_lists.py coco --split {args.split} --base-fraction {args.base_fraction:g} "
              f"--shots {args.shots} --seed {args.seed}")
    out_dir = Path(args.out_dir)
    base_path = out_dir / f"coco_split{args.split}_base_{percent(args.base_fraction)}_seed{args.seed}.txt"
    novel_path = out_dir / f"coco_split{args.split}_novel_{args.shots}shot_seed{args.seed}.txt"
    write_text(base_path, list_text(lists["base"], names, [
        f"CI-SSOD COCO split {args.split} base list (novel-class boxes are dropped from these images)",
        recipe, source]))
    boxes = ", ".join(f"{class_names[c]}={n}" for c, n in lists["novel_boxes"].items())
    write_text(novel_path, list_text(lists["novel"], names, [
        f"CI-SSOD COCO split {args.split} novel few-shot list (these images keep all boxes)", recipe, source,
        f"non-crowd novel boxes: {boxes}"]))
    for category in lists["short_classes"]:
        LOGGER.warning("class %r has only %d non-crowd boxes outside the base list (< %d shots): all taken",
                       class_names[category], lists["novel_boxes"][category], args.shots)
    counts = lists["novel_boxes"].values()
    sys.stdout.write(f"{base_path}: {len(lists['base'])} images\n"
                     f"{novel_path}: {len(lists['novel'])} images, novel boxes per class "
                     f"{min(counts)}-{max(counts)}\n")


def run_random(args, data):
    """Write the labeled list of the LVIS or Objects365 setting and print where it is."""
    rng = np.random.default_rng(args.seed)
    ids = random_subset(image_ids(data, args.ann), args.fraction, rng)
    path = Path(args.out_dir) / f"{args.setting}_labeled_{percent(args.fraction)}_seed{args.seed}.txt"
    write_text(path, list_text(ids, image_names(data), [
        f"CI-SSOD {args.setting} labeled list (these images keep all annotations)",
        f"recipe: make_split_lists.py {args.setting} --fraction {args.fraction:g} --seed {args.seed}",
        f"source: {Path(args.ann).name} ({len(data['images'])} images)"]))
    sys.stdout.write(f"{path}: {len(ids)} images\n")


def build_parser():
    """The command-line interface."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    settings = parser.add_subparsers(dest="setting", required=True)
    coco = settings.add_parser("coco", help="base list and novel few-shot list of a COCO split")
    coco.add_argument("--split", required=True, type=int, choices=(1, 2), help="which novel class list")
    coco.add_argument("--base-fraction", type=float, default=0.1, help="share of images in the base list (0.1)")
    coco.add_argument("--shots", type=int, default=10, help="boxes per novel class to reach (10)")
    lvis = settings.add_parser("lvis", help="labeled list of the LVIS setting")
    lvis.add_argument("--fraction", type=float, default=0.1, help="share of labeled images (0.1)")
    objects365 = settings.add_parser("objects365", help="labeled Objects365 list of the COCO->O365 setting")
    objects365.add_argument("--fraction", type=float, required=True, help="share of labeled O365 images")
    for sub in (coco, lvis, objects365):
        sub.add_argument("--ann", required=True, help="full train annotation file")
        sub.add_argument("--seed", type=int, default=0, help="random seed (0)")
        sub.add_argument("--out-dir", required=True, help="folder of the list files")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging()
    try:
        data = load_annotations(args.ann)
        (run_coco if args.setting == "coco" else run_random)(args, data)
    except SplitError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
