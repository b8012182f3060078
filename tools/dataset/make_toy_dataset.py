"""Generate the embedded toy dataset: a small, class-imbalanced synthetic detection set in COCO format.

Eight shape-and-colour classes are drawn with OpenCV on textured backgrounds. The labeled split is built
like the CI-SSOD COCO splits (spec A.1): a "base" part whose tail ("novel") class annotations are removed
while the objects stay in the pictures, plus a small "few-shot" part that keeps every annotation. The
unlabeled split follows the same long-tailed class distribution and keeps its annotations, as the real
unlabeled files do (training must never read them). The val split is class-balanced.

    python tools/dataset/make_toy_dataset.py --out dataset/toy --seed 0

The same seed and sizes give byte-identical files. The output is built in a sibling ``<out>.partial``
folder, whose manifest is written last, and then renamed into place, so an interrupted run never looks
complete.
"""
import argparse
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

LOGGER = logging.getLogger("make_toy_dataset")

TOY_CLASSES = (
    "red_circle",
    "green_square",
    "blue_triangle",
    "yellow_star",
    "magenta_cross",
    "cyan_ring",
    "white_diamond",
    "orange_bar",
)
TOY_NOVEL_CLASSES = ("cyan_ring", "white_diamond", "orange_bar")
TOY_BASE_CLASSES = tuple(name for name in TOY_CLASSES if name not in TOY_NOVEL_CLASSES)

GENERATOR_NAME = "ssod-toy-dataset"
GENERATOR_VERSION = 1
MANIFEST_NAME = "manifest.json"
OUTPUT_ENTRIES = frozenset({"annotations", "train", "val", MANIFEST_NAME})
ANNOTATION_FILES = {
    "train_label": "instances_train_label.json",
    "train_unlabel": "instances_train_unlabel.json",
    "val": "instances_val.json",
}

DEFAULT_NUM_LABELED = 160
DEFAULT_NUM_UNLABELED = 640
DEFAULT_NUM_VAL = 800  # resolves differences of about 0.01 bbox mAP (docs/toy_protocol.md, section 9)
MIN_NUM_LABELED = 15
MIN_NUM_UNLABELED = 2
MIN_NUM_VAL = 8
FEW_SHOT_FRACTION = 0.2  # share of labeled images in the few-shot part
CLASS_DECAY = 0.75  # frequency of class k+1 relative to class k in the long-tailed splits

MIN_OBJECTS, MAX_OBJECTS = 1, 4
MIN_OBJECT_SIZE, MAX_OBJECT_SIZE = 20, 70
MAX_OBJECT_AREA_SHARE = 1 / 3  # objects of one image cover at most this share of it (keeps placement easy)
OBJECT_GAP = 3  # free pixels between the extents of two objects and to the image border
PLACEMENT_ATTEMPTS = 100
SHRINK_EVERY = 20  # failed placements before an object is shrunk by 20 %
MIN_SHORT_SIDE, MIN_LONG_SIDE, MAX_LONG_SIDE = 128, 176, 256
JPEG_QUALITY = 95
COLOUR_JITTER = 15

# shape and BGR colour of each class: saturated, far from the grey-brown backgrounds and from each other
CLASS_STYLES = {
    "red_circle": ("circle", (40, 40, 225)),
    "green_square": ("square", (50, 200, 40)),
    "blue_triangle": ("triangle", (225, 80, 30)),
    "yellow_star": ("star", (30, 225, 235)),
    "magenta_cross": ("cross", (210, 50, 210)),
    "cyan_ring": ("ring", (225, 215, 40)),
    "white_diamond": ("diamond", (245, 245, 245)),
    "orange_bar": ("bar", (20, 140, 250)),
}

# independent random streams, so that e.g. the labeled images do not depend on --num-unlabeled
PART_STREAMS = {"base": 0, "few_shot": 1, "unlabeled": 2, "val": 3}


class ToyDatasetError(RuntimeError):
    """The output folder is in a state the generator will not touch without being told to."""


@dataclass(frozen=True)
class ToyParams:
    """Seed and split sizes of one toy dataset (validated on construction)."""

    seed: int = 0
    num_labeled: int = DEFAULT_NUM_LABELED
    num_unlabeled: int = DEFAULT_NUM_UNLABELED
    num_val: int = DEFAULT_NUM_VAL

    def __post_init__(self):
        minimums = {"seed": 0, "num_labeled": MIN_NUM_LABELED, "num_unlabeled": MIN_NUM_UNLABELED,
                    "num_val": MIN_NUM_VAL}
        for name, minimum in minimums.items():
            value = getattr(self, name)
            flag = "--" + name.replace("_", "-")
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} ({flag}) must be an integer, got {value!r}")
            if value < minimum:
                raise ValueError(f"{name} ({flag}) must be at least {minimum}, got {value}")

    @property
    def num_few_shot(self):
        """Images of the labeled few-shot part (the rest of the labeled split is the base part)."""
        return round(self.num_labeled * FEW_SHOT_FRACTION)


@dataclass(frozen=True)
class PartSpec:
    """A block of images drawn alike: the first object's class follows `anchor_weights`, the others
    `extra_weights`; only classes in `annotated` get boxes in the JSON."""

    name: str
    num_images: int
    anchor_weights: tuple
    extra_weights: tuple
    annotated: frozenset


@dataclass(frozen=True)
class ToyImage:
    """Metadata of one written image; `objects` holds (class index, (x, y, w, h)) of every drawn object."""

    file_name: str
    width: int
    height: int
    objects: tuple


def allocate_counts(total, weights):
    """Split `total` into integers proportional to `weights` (largest remainder; ties go to lower index)."""
    weights = np.asarray(weights, dtype=np.float64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    leftover = total - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:leftover]] += 1
    return counts


def long_tailed_weights():
    """Geometrically decaying class weights in category order."""
    return tuple(CLASS_DECAY ** k for k in range(len(TOY_CLASSES)))


def split_parts(params):
    """The image blocks of each split, in writing order."""
    all_classes = frozenset(range(len(TOY_CLASSES)))
    base_classes = frozenset(TOY_CLASSES.index(name) for name in TOY_BASE_CLASSES)
    decay = long_tailed_weights()
    head_only = tuple(w if k in base_classes else 0.0 for k, w in enumerate(decay))
    k_shot = tuple(0.0 if k in base_classes else 1.0 for k in range(len(TOY_CLASSES)))
    uniform = (1.0,) * len(TOY_CLASSES)
    return {
        "train_label": (
            PartSpec("base", params.num_labeled - params.num_few_shot, head_only, decay, base_classes),
            PartSpec("few_shot", params.num_few_shot, k_shot, decay, all_classes),
        ),
        "train_unlabel": (PartSpec("unlabeled", params.num_unlabeled, decay, decay, all_classes),),
        "val": (PartSpec("val", params.num_val, uniform, uniform, all_classes),),
    }


def sample_image_size(rng, landscape):
    """(width, height) with a long side in [176, 256] and a short side in [128, long - 32]."""
    long_side = int(rng.integers(MIN_LONG_SIDE, MAX_LONG_SIDE + 1))
    short_side = int(rng.integers(MIN_SHORT_SIDE, long_side - 32 + 1))
    return (long_side, short_side) if landscape else (short_side, long_side)


def draw_background(rng, width, height):
    """Low-saturation cloudy texture with grain and thin grey lines, as float32 BGR."""
    grid_h, grid_w = (int(n) for n in rng.integers(3, 9, size=2))
    level = rng.uniform(60, 140)
    field = level + rng.uniform(-35, 35, size=(grid_h, grid_w, 1)) + rng.uniform(-8, 8, size=(grid_h, grid_w, 3))
    image = cv2.resize(field.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0.0, 8.0, size=(height, width, 1)).astype(np.float32)
    for _ in range(int(rng.integers(0, 5))):
        grey = float(np.clip(level + rng.uniform(-40, 40), 0, 255))
        start = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(image, start, end, (grey, grey, grey), int(rng.integers(1, 3)))
    return image


def shape_extent(shape, size, variant):
    """(width, height) of the box an object of this shape, size and variant is drawn in."""
    if shape == "bar":
        thickness = max(8, size // 3)
        return (size, thickness) if variant < 0.5 else (thickness, size)
    if shape == "diamond":
        return max(MIN_OBJECT_SIZE // 2, round(size * (0.6 + 0.3 * variant))), size
    return size, size


def _polygon(centre, radii, start_angle):
    """Integer vertices at evenly spaced angles, cycling through `radii`."""
    count = len(radii)
    angles = start_angle + 2 * np.pi * np.arange(count) / count
    points = np.stack([centre[0] + np.asarray(radii) * np.cos(angles),
                       centre[1] + np.asarray(radii) * np.sin(angles)], axis=1)
    return [np.round(points).astype(np.int32)]


def draw_shape(canvas, shape, box, variant, colour):
    """Draw a filled `shape` inside `box` = (left, top, width, height); `variant` in [0, 1) sets its rotation
    or orientation."""
    left, top, width, height = box
    right, bottom = left + width - 1, top + height - 1
    centre = (left + (width - 1) / 2, top + (height - 1) / 2)
    radius = (min(width, height) - 1) / 2
    centre_px = (left + (width - 1) // 2, top + (height - 1) // 2)
    if shape == "circle":
        cv2.circle(canvas, centre_px, (min(width, height) - 1) // 2, colour, -1)
    elif shape in ("square", "bar"):
        cv2.rectangle(canvas, (left, top), (right, bottom), colour, -1)
    elif shape == "triangle":
        cv2.fillPoly(canvas, _polygon(centre, [radius] * 3, 2 * np.pi * variant), colour)
    elif shape == "star":
        cv2.fillPoly(canvas, _polygon(centre, [radius, 0.45 * radius] * 5, 2 * np.pi * variant / 5), colour)
    elif shape == "cross":
        arm = max(3, round(width / 6))
        cv2.rectangle(canvas, (left, centre_px[1] - arm), (right, centre_px[1] + arm), colour, -1)
        cv2.rectangle(canvas, (centre_px[0] - arm, top), (centre_px[0] + arm, bottom), colour, -1)
    elif shape == "ring":
        inner_radius = radius - max(4.0, radius / 2.5)
        cv2.fillPoly(canvas, _polygon(centre, [radius] * 48, 0.0) + _polygon(centre, [inner_radius] * 48, 0.0), colour)
    elif shape == "diamond":
        points = [(centre_px[0], top), (right, centre_px[1]), (centre_px[0], bottom), (left, centre_px[1])]
        cv2.fillPoly(canvas, [np.array(points, dtype=np.int32)], colour)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def _overlaps(box, others):
    """Whether `box` comes closer than OBJECT_GAP pixels to any of `others` (all (x, y, w, h))."""
    x, y, w, h = box
    return any(x < ox + ow + OBJECT_GAP and ox < x + w + OBJECT_GAP
               and y < oy + oh + OBJECT_GAP and oy < y + h + OBJECT_GAP for ox, oy, ow, oh in others)


def place_object(rng, shape, variant, max_size, width, height, taken):
    """Sample a size and a free spot; returns the drawing box (x, y, w, h). Shrinks the object while it
    does not fit."""
    size = int(rng.integers(MIN_OBJECT_SIZE, max_size + 1))
    for attempt in range(PLACEMENT_ATTEMPTS):
        if attempt and attempt % SHRINK_EVERY == 0:
            size = max(MIN_OBJECT_SIZE, int(size * 0.8))
        box_w, box_h = shape_extent(shape, size, variant)
        x = int(rng.integers(OBJECT_GAP, width - box_w - OBJECT_GAP + 1))
        y = int(rng.integers(OBJECT_GAP, height - box_h - OBJECT_GAP + 1))
        if not _overlaps((x, y, box_w, box_h), taken):
            return x, y, box_w, box_h
    raise RuntimeError(f"could not place a {shape} next to {len(taken)} objects in a {width}x{height} image")


def render_image(rng, width, height, labels):
    """Draw the objects of `labels` (class indices) on a fresh background.

    Returns the uint8 BGR image and the tight (x, y, w, h) box of every object, in `labels` order.
    """
    image = draw_background(rng, width, height)
    max_size = min(MAX_OBJECT_SIZE, min(width, height) // 2,
                   int(math.sqrt(width * height * MAX_OBJECT_AREA_SHARE / len(labels))))
    taken, boxes = [], []
    for label in labels:
        shape, colour = CLASS_STYLES[TOY_CLASSES[label]]
        variant = float(rng.random())
        jitter = rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3)
        colour = tuple(float(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter))
        box = place_object(rng, shape, variant, max_size, width, height, taken)
        taken.append(box)
        mask = np.zeros((height, width), dtype=np.uint8)
        draw_shape(mask, shape, box, variant, 255)
        draw_shape(image, shape, box, variant, colour)
        boxes.append(tuple(int(v) for v in cv2.boundingRect(mask)))
    image += rng.normal(0.0, 4.0, size=image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), boxes


def generate_part(part, seed, image_ids, folder):
    """Draw the images of one part and write them to `folder`, named after `image_ids`; yields a ToyImage
    per image."""
    rng = np.random.default_rng([seed, PART_STREAMS[part.name]])
    num_objects = rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1, size=part.num_images)
    classes = np.arange(len(TOY_CLASSES))
    anchors = rng.permutation(np.repeat(classes, allocate_counts(part.num_images, part.anchor_weights)))
    num_extra = int(num_objects.sum()) - part.num_images
    extras = rng.permutation(np.repeat(classes, allocate_counts(num_extra, part.extra_weights)))
    extras_per_image = np.split(extras, np.cumsum(num_objects - 1)[:-1])
    for index, image_id in enumerate(image_ids):
        labels = [int(anchors[index])] + [int(c) for c in extras_per_image[index]]
        width, height = sample_image_size(rng, landscape=index % 2 == 0)
        pixels, boxes = render_image(rng, width, height, labels)
        file_name = f"{image_id:012d}.jpg"
        if not cv2.imwrite(str(folder / file_name), pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"cv2.imwrite could not write {folder / file_name}")
        yield ToyImage(file_name, width, height, tuple(zip(labels, boxes)))


def coco_categories():
    """The COCO `categories` block, ids 1..8 in TOY_CLASSES order."""
    return [{"id": k + 1, "name": name, "supercategory": "shape"} for k, name in enumerate(TOY_CLASSES)]


def coco_info(split, params, few_shot_image_ids=None):
    """The `info` block: how the file was made and which classes are tail ("novel")."""
    info = {
        "description": "ssod synthetic class-imbalanced toy detection dataset",
        "generator": GENERATOR_NAME,
        "generator_version": GENERATOR_VERSION,
        "split": split,
        **asdict(params),
        "base_classes": list(TOY_BASE_CLASSES),
        "novel_classes": list(TOY_NOVEL_CLASSES),
        "novel_category_ids": [TOY_CLASSES.index(name) + 1 for name in TOY_NOVEL_CLASSES],
    }
    if few_shot_image_ids is not None:
        info["few_shot_image_ids"] = list(few_shot_image_ids)
    return info


def write_split(root, split, parts, params, first_image_id, first_annotation_id):
    """Draw every part of `split`, write its images and its COCO JSON. Returns the next free ids."""
    folder_name = "val" if split == "val" else "train"
    folder = root / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    images, annotations, few_shot_ids = [], [], []
    image_id, annotation_id = first_image_id, first_annotation_id
    for part in parts:
        ids = range(image_id, image_id + part.num_images)
        if part.name == "few_shot":
            few_shot_ids.extend(ids)
        for current_id, toy_image in zip(ids, generate_part(part, params.seed, ids, folder)):
            images.append({"id": current_id, "file_name": toy_image.file_name,
                           "width": toy_image.width, "height": toy_image.height})
            for label, (x, y, w, h) in toy_image.objects:
                if label not in part.annotated:
                    continue
                annotations.append({"id": annotation_id, "image_id": current_id, "category_id": label + 1,
                                    "bbox": [float(x), float(y), float(w), float(h)],
                                    "area": float(w * h), "iscrowd": 0})
                annotation_id += 1
        image_id += part.num_images
    coco = {
        "info": coco_info(split, params, few_shot_ids if split == "train_label" else None),
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": coco_categories(),
    }
    annotation_dir = root / "annotations"
    annotation_dir.mkdir(exist_ok=True)
    with open(annotation_dir / ANNOTATION_FILES[split], "w", encoding="utf-8") as handle:
        json.dump(coco, handle, separators=(",", ":"))
    counts = np.bincount([a["category_id"] - 1 for a in annotations], minlength=len(TOY_CLASSES))
    LOGGER.info("%s: %d images, boxes per class: %s", split, len(images),
                ", ".join(f"{name}={n}" for name, n in zip(TOY_CLASSES, counts)))
    return image_id, annotation_id


def manifest_for(root, params):
    """The manifest of a finished dataset: generator, parameters and the size of every file."""
    files = {path.relative_to(root).as_posix(): path.stat().st_size
             for path in sorted(root.rglob("*")) if path.is_file() and path.name != MANIFEST_NAME}
    return {"generator": GENERATOR_NAME, "generator_version": GENERATOR_VERSION,
            "params": asdict(params), "files": files}


def read_manifest(out_dir):
    """The manifest of `out_dir`; ToyDatasetError if it is missing or unreadable."""
    path = out_dir / MANIFEST_NAME
    if not path.is_file():
        raise ToyDatasetError(f"{out_dir} exists but holds no complete toy dataset (no {MANIFEST_NAME}); "
                              "pass --force to replace it")
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise ToyDatasetError(f"cannot read {path} ({exc}); pass --force to replace {out_dir}") from exc


def check_files(out_dir, manifest):
    """Raise ToyDatasetError if a file listed in the manifest is missing or changed size."""
    for relative, size in manifest["files"].items():
        path = out_dir / relative
        if not path.is_file() or path.stat().st_size != size:
            raise ToyDatasetError(f"{path} is missing or was modified after generation; "
                                  "pass --force to regenerate the toy dataset")


def check_replaceable(out_dir):
    """Refuse to delete a folder holding anything the generator does not write."""
    foreign = sorted(entry.name for entry in out_dir.iterdir() if entry.name not in OUTPUT_ENTRIES)
    if foreign:
        raise ToyDatasetError(f"refusing to replace {out_dir}: it holds {foreign}, which the toy "
                              "dataset generator does not write")


def swap_into_place(staging, out_dir):
    """Rename the finished `staging` folder to `out_dir`, replacing an old one."""
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old)
    else:
        staging.rename(out_dir)


def generate_toy_dataset(out_dir, params=ToyParams(), force=False, replace_other_sizes=False):
    """Write the toy dataset to `out_dir`.

    Returns True if it was written, False if `out_dir` already held it with the same seed and sizes (then
    nothing is touched unless `force`). With `replace_other_sizes`, a complete toy dataset this generator
    wrote with another seed, sizes or version is replaced (e.g. after a change of the default sizes).
    Raises ToyDatasetError rather than overwrite anything else.
    """
    out_dir = Path(out_dir)
    holds_files = out_dir.is_dir() and any(out_dir.iterdir())
    if out_dir.exists() and not out_dir.is_dir():
        raise ToyDatasetError(f"{out_dir} exists and is not a folder")
    if holds_files and not force:
        manifest = read_manifest(out_dir)
        wanted = {"generator": GENERATOR_NAME, "generator_version": GENERATOR_VERSION, "params": asdict(params)}
        found = {key: manifest.get(key) for key in wanted}
        if found == wanted:
            check_files(out_dir, manifest)
            LOGGER.info("%s already holds the toy dataset for %s; nothing to do", out_dir, asdict(params))
            return False
        if not (replace_other_sizes and found["generator"] == GENERATOR_NAME):
            raise ToyDatasetError(f"{out_dir} holds a toy dataset made with {found}, not {wanted}; "
                                  "pass --force (or --replace-other-sizes) to replace it")
        LOGGER.info("%s holds the toy dataset for %s; replacing it with %s", out_dir, found["params"],
                    asdict(params))
    if holds_files:
        check_replaceable(out_dir)

    start = time.perf_counter()
    staging = out_dir.with_name(out_dir.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    image_id = annotation_id = 1
    for split, parts in split_parts(params).items():
        image_id, annotation_id = write_split(staging, split, parts, params, image_id, annotation_id)
    manifest = manifest_for(staging, params)
    with open(staging / MANIFEST_NAME, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
    swap_into_place(staging, out_dir)
    LOGGER.info("wrote the toy dataset (%d files) to %s in %.1f s", len(manifest["files"]) + 1, out_dir,
                time.perf_counter() - start)
    return True


def build_parser():
    """The command-line interface."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder, e.g. dataset/toy")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--num-labeled", type=int, default=DEFAULT_NUM_LABELED,
                        help=f"labeled images, base + few-shot part (default {DEFAULT_NUM_LABELED})")
    parser.add_argument("--num-unlabeled", type=int, default=DEFAULT_NUM_UNLABELED,
                        help=f"unlabeled images (default {DEFAULT_NUM_UNLABELED})")
    parser.add_argument("--num-val", type=int, default=DEFAULT_NUM_VAL,
                        help=f"class-balanced validation images (default {DEFAULT_NUM_VAL})")
    parser.add_argument("--force", action="store_true",
                        help="regenerate even if the output already holds this dataset")
    parser.add_argument("--replace-other-sizes", action="store_true",
                        help="replace a toy dataset this generator wrote with another seed or other sizes "
                             "(never a folder holding anything else)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        params = ToyParams(seed=args.seed, num_labeled=args.num_labeled, num_unlabeled=args.num_unlabeled,
                           num_val=args.num_val)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s",
                        stream=sys.stderr)
    try:
        generate_toy_dataset(args.out, params, force=args.force, replace_other_sizes=args.replace_other_sizes)
    except ToyDatasetError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
