"""Tiny data in the real CI-SSOD layout under ``<root>/dataset`` (README "Data"), for end-to-end checks.

    python tools/dataset/make_real_layout.py --root WORKSPACE [--seed 0]

Used by the end-to-end tests and by tools/gpu_check.py: the real configs train on it unchanged.

``write_real_layout(root)`` writes small JPEGs and the full annotation files of the three
settings with their real category lists (COCO: the 80 classes with their COCO ids; LVIS v1:
the 1203 names, ids 1..1203, with ``frequency``; Objects365 v2: the 365 names, ids 1..365),
then builds the label/unlabel files with the repository's split tools, as a user would:

* ``dataset/coco/{train2017,val2017}/<12-digit id>.jpg``; ``annotations/instances_train2017.json``,
  ``instances_val2017.json`` and ``instances_train2017_coco_split{1,2}_{label,unlabel}.json``
  (``tools/dataset/split_coco.py``);
* ``dataset/lvis/annotations/lvis_v1_{train,val}.json`` over the COCO images (``coco_url``,
  ``neg_category_ids``, ``not_exhaustive_category_ids``) and ``lvis_v1_train_lvis_{label,unlabel}.json``
  (``split_lvis.py``);
* ``dataset/Object365/images/{train,val}/patchN/*.jpg`` whose JSON names are ``images/v1|v2/patchN/...``;
  ``annotations/zhiyuan_objv2_{train,val}.json`` and ``zhiyuan_objv2_train_object365_{label,unlabel}.json``
  (``split_objects365.py``).

Every labeled and validation file holds classes of both the novel and the base subsets of its
setting (and all three LVIS frequency groups), so every subset metric has ground truth.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from mmdet.datasets import CocoDataset, LVISV1Dataset, Objects365V2Dataset

from ssod.datasets.class_maps import mapped_objects365_labels

REPO_ROOT = Path(__file__).resolve().parents[2]
SPLIT_TOOLS = REPO_ROOT / "tools/dataset"

COCO_MISSING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}  # COCO ids 1..90 without a class
COCO_CATEGORY_IDS = [i for i in range(1, 91) if i not in COCO_MISSING_IDS]
LVIS_FREQUENCIES = ("f", "c", "r")  # synthetic: frequency of LVIS category id i = LVIS_FREQUENCIES[i % 3]
IMAGE_SIZES = ((96, 72), (72, 96), (112, 80))  # (width, height): landscape and portrait aspect groups

NUM_COCO_TRAIN = 12
NUM_VAL = 3
NUM_O365_TRAIN = 10
COCO_BASE_LIST = (1, 2, 3, 4)  # image ids of the split lists (COCO train ids are 1..12)
COCO_NOVEL_LIST = (5, 6)
LVIS_LABELED_LIST = (1, 2, 3, 4, 5)
O365_LABELED_LIST = (1, 2, 3)

# Classes drawn into the images, by name. COCO: base in both splits (truck, bench, dog is split-1
# novel ...) mixed with the novel classes of split 1 (person, car, dog) and split 2 (airplane,
# elephant, umbrella); every image gets one class that is base in both splits, so base-list images
# keep a box after the split tool drops their novel-class boxes.
COCO_SHARED_BASE = ("truck", "bench", "backpack", "kite")
COCO_OTHERS = ("person", "car", "dog", "airplane", "elephant", "umbrella", "sports ball", "teddy bear")
LVIS_USED_IDS = (3, 4, 5, 12, 13, 14)  # two categories of each frequency group


def coco_categories():
    """The 80 COCO categories with their real ids."""
    return [{"id": cat_id, "name": name} for cat_id, name in zip(COCO_CATEGORY_IDS, CocoDataset.CLASSES)]


def lvis_categories():
    """The 1203 LVIS v1 categories (ids 1..1203 in name order of mmdet's list), with a synthetic ``frequency``."""
    return [{"id": i, "name": name, "frequency": LVIS_FREQUENCIES[i % 3], "synonyms": [name]}
            for i, name in enumerate(LVISV1Dataset.CLASSES, start=1)]


def objects365_categories():
    """The 365 Objects365 v2 categories, ids 1..365."""
    return [{"id": i, "name": name} for i, name in enumerate(Objects365V2Dataset.CLASSES, start=1)]


def objects365_used_ids():
    """Two base (reached by the COCO map) and two novel Objects365 category ids."""
    base = mapped_objects365_labels()
    novel = sorted(set(range(len(Objects365V2Dataset.CLASSES))) - set(base))
    return tuple(label + 1 for label in (base[0], base[5], novel[0], novel[10]))


def _write_image(path, width, height, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def _boxes(width, height, count, rng):
    """``count`` xywh boxes of at least 16 px inside a ``width`` x ``height`` image."""
    boxes = []
    for _ in range(count):
        w, h = rng.integers(16, width // 2 + 1), rng.integers(16, height // 2 + 1)
        x, y = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
        boxes.append([float(x), float(y), float(w), float(h)])
    return boxes


def _annotations(image, category_ids, rng, first_id, **extra):
    """One box per category id in ``image``, annotation ids from ``first_id``."""
    anns = []
    for k, (cat_id, box) in enumerate(zip(category_ids, _boxes(image["width"], image["height"],
                                                                 len(category_ids), rng))):
        x, y, w, h = box
        anns.append({"id": first_id + k, "image_id": image["id"], "category_id": int(cat_id), "bbox": box,
                     "area": w * h, "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]], **extra})
    return anns


def _image_record(image_id, index, **fields):
    width, height = IMAGE_SIZES[index % len(IMAGE_SIZES)]
    return {"id": image_id, "width": width, "height": height, **fields}


def _dump(data, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _write_list(ids, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# image ids\n" + "".join(f"{i}\n" for i in ids))


def _run_split_tool(name, *args):
    command = [sys.executable, str(SPLIT_TOOLS / name), *map(str, args)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}): {proc.stderr[-2000:]}")


def _coco_file(images, image_dir, class_draws, rng):
    """A COCO file over ``images`` (written to ``image_dir``); ``class_draws(i)`` = category ids of image i."""
    annotations = []
    for i, image in enumerate(images):
        _write_image(image_dir / image["file_name"], image["width"], image["height"], rng)
        annotations += _annotations(image, class_draws(i), rng, len(annotations) + 1, iscrowd=0)
    return {"info": {"description": "ssod real-layout test data"}, "images": images,
            "annotations": annotations, "categories": coco_categories()}


def write_coco(dataset_root, rng):
    """COCO train/val images and files, and both splits from the split tool; returns the train file dict."""
    coco = dataset_root / "coco"
    ids_by_name = {c["name"]: c["id"] for c in coco_categories()}

    def draws(i):
        others = rng.choice(COCO_OTHERS, size=int(rng.integers(1, 3)), replace=False)
        return [ids_by_name[COCO_SHARED_BASE[i % len(COCO_SHARED_BASE)]]] + [ids_by_name[n] for n in others]

    train_images = [_image_record(i, i, file_name=f"{i:012d}.jpg") for i in range(1, NUM_COCO_TRAIN + 1)]
    train = _coco_file(train_images, coco / "train2017", draws, rng)
    _dump(train, coco / "annotations/instances_train2017.json")
    val_images = [_image_record(1000 + i, i, file_name=f"{1000 + i:012d}.jpg") for i in range(NUM_VAL)]
    val_names = [("truck", "person", "airplane"), ("bench", "elephant", "dog"), ("kite", "car", "umbrella")]
    val = _coco_file(val_images, coco / "val2017", lambda i: [ids_by_name[n] for n in val_names[i]], rng)
    _dump(val, coco / "annotations/instances_val2017.json")
    _write_list(COCO_BASE_LIST, coco / "lists/base.txt")
    _write_list(COCO_NOVEL_LIST, coco / "lists/novel.txt")
    for split in (1, 2):
        _run_split_tool("split_coco.py", "--ann", coco / "annotations/instances_train2017.json",
                        "--base-list", coco / "lists/base.txt", "--novel-list", coco / "lists/novel.txt",
                        "--split", split, "--out-dir", coco / "annotations")
    return train


def _lvis_image(coco_image, subset, categories_present, rng):
    absent = [c for c in LVIS_USED_IDS if c not in categories_present][:1] + [int(rng.integers(100, 1203))]
    return {"id": coco_image["id"], "width": coco_image["width"], "height": coco_image["height"],
            "coco_url": f"http://images.cocodataset.org/{subset}/{coco_image['file_name']}",
            "neg_category_ids": absent, "not_exhaustive_category_ids": sorted(categories_present)[:1]}


def _lvis_file(coco_images, subset, rng):
    images, annotations = [], []
    for i, coco_image in enumerate(coco_images):
        present = [LVIS_USED_IDS[(2 * i + k) % len(LVIS_USED_IDS)] for k in range(2)]
        images.append(_lvis_image(coco_image, subset, present, rng))
        annotations += _annotations(images[-1], present, rng, len(annotations) + 1)
    return {"info": {"description": "ssod real-layout test data"}, "images": images,
            "annotations": annotations, "categories": lvis_categories()}


def write_lvis(dataset_root, coco_train, rng):
    """LVIS v1 files over the COCO images (train: train2017, val: val2017) and the split from the tool."""
    annotations = dataset_root / "lvis/annotations"
    _dump(_lvis_file(coco_train["images"], "train2017", rng), annotations / "lvis_v1_train.json")
    val_images = [_image_record(1000 + i, i, file_name=f"{1000 + i:012d}.jpg") for i in range(NUM_VAL)]
    _dump(_lvis_file(val_images, "val2017", rng), annotations / "lvis_v1_val.json")
    _write_list(LVIS_LABELED_LIST, dataset_root / "lvis/lists/labeled.txt")
    _run_split_tool("split_lvis.py", "--ann", annotations / "lvis_v1_train.json",
                    "--labeled-list", dataset_root / "lvis/lists/labeled.txt", "--out-dir", annotations)


def _objects365_file(image_dir, image_ids, rng):
    """zhiyuan_objv2-style file: names ``images/v1/patch0/...`` (the last train image ``images/v2/patch16/``)."""
    used = objects365_used_ids()
    images, annotations = [], []
    for i, image_id in enumerate(image_ids):
        version, patch = ("v2", 16) if image_dir.name == "train" and i == len(image_ids) - 1 else ("v1", 0)
        name = f"patch{patch}/objects365_{version}_{image_id:08d}.jpg"
        images.append(_image_record(image_id, i, file_name=f"images/{version}/{name}"))
        _write_image(image_dir / name, images[-1]["width"], images[-1]["height"], rng)
        annotations += _annotations(images[-1], [used[i % 4], used[(i + 2) % 4]], rng, len(annotations) + 1,
                                    iscrowd=0, isfake=0, isreflected=0)
    return {"images": images, "annotations": annotations, "categories": objects365_categories(),
            "licenses": []}


def write_objects365(dataset_root, rng):
    """Objects365 v2 images and files, and the split from the tool."""
    root = dataset_root / "Object365"
    annotations = root / "annotations"
    train_ids = list(range(1, NUM_O365_TRAIN + 1))
    _dump(_objects365_file(root / "images/train", train_ids, rng), annotations / "zhiyuan_objv2_train.json")
    val_ids = [5000 + i for i in range(NUM_VAL)]
    _dump(_objects365_file(root / "images/val", val_ids, rng), annotations / "zhiyuan_objv2_val.json")
    _write_list(O365_LABELED_LIST, root / "lists/labeled.txt")
    _run_split_tool("split_objects365.py", "--ann", annotations / "zhiyuan_objv2_train.json",
                    "--labeled-list", root / "lists/labeled.txt", "--out-dir", annotations)


def write_real_layout(root, seed=0):
    """Write ``<root>/dataset`` (COCO, LVIS, Objects365) as described in the module docstring; returns it."""
    dataset_root = Path(root) / "dataset"
    rng = np.random.default_rng(seed)
    coco_train = write_coco(dataset_root, rng)
    write_lvis(dataset_root, coco_train, rng)
    write_objects365(dataset_root, rng)
    return dataset_root


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write tiny COCO, LVIS and Objects365 data in the real layout")
    parser.add_argument("--root", required=True, help="workspace; the data goes to ROOT/dataset")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_real_layout(args.root, seed=args.seed)


if __name__ == "__main__":
    main()
