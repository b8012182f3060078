"""Shared pieces of the CI-SSOD split tools: annotation-file I/O, image-list files and the split itself.

Image-list files (read by ``split_coco.py``, ``split_lvis.py`` and ``split_objects365.py``, written by
``make_split_lists.py``) hold one entry per line:

* an integer image id (digits only), e.g. ``123456``; or
* an image file name, e.g. ``000000123456.jpg`` (the upstream COCO lists), matched against an image's
  ``file_name``, the last path component of its ``file_name``, or the last path component of its
  ``coco_url`` (LVIS). A name shared by two different images is refused as ambiguous.

Text after ``#`` is a comment; blank lines are ignored; surrounding white space is stripped. An entry
that names no image of the annotation file is an error naming the file and line. Repeated entries are
allowed (counted once).

Output files are deterministic: images and annotations sorted by id, every other top-level key kept
as in the input, compact JSON (``separators=(",", ":")``), written to a temporary file and renamed.
"""
import argparse
import hashlib
import json
import logging
import os
import sys
from operator import itemgetter
from pathlib import Path

LOGGER = logging.getLogger("split_common")

# Minority ("novel") classes of the two MS-COCO splits (spec A.1), as COCO category ids.
# Split 1: the 20 PASCAL-VOC classes. Split 2: the 40 classes listed in the spec.
COCO_SPLIT_NOVEL_CATEGORY_IDS = {
    1: (1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 18, 19, 20, 21, 44, 62, 63, 64, 67, 72),
    2: (5, 6, 9, 10, 11, 14, 16, 17, 19, 20, 21, 22, 24, 28, 31, 32, 33, 34, 35, 36, 40, 46, 52, 53, 54, 56,
        58, 59, 65, 67, 72, 74, 75, 76, 79, 82, 84, 86, 89, 90),
}

REQUIRED_LISTS = ("images", "annotations", "categories")
WRITE_CHUNK = 10000  # list items encoded per json.dumps call when writing


class SplitError(ValueError):
    """Bad input to a split tool (the message names the file, line, key or value)."""


def load_annotations(path, required=REQUIRED_LISTS):
    """Read a COCO-format annotation file and check that the ``required`` top-level keys are lists."""
    path = Path(path)
    LOGGER.info("reading %s", path)
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except FileNotFoundError:
        raise SplitError(f"annotation file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise SplitError(f"annotation file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SplitError(f"annotation file {path}: the top level must be a JSON object, got {type(data).__name__}")
    for key in required:
        if not isinstance(data.get(key), list):
            raise SplitError(f"annotation file {path}: key {key!r} must be a list")
    if not isinstance(data.get("info", {}), dict):
        raise SplitError(f"annotation file {path}: key 'info' must be an object")
    LOGGER.info("%s: %s", path.name, ", ".join(f"{len(data.get(key, ()))} {key}" for key in REQUIRED_LISTS))
    return data


def _require_int_id(item, kind, source):
    try:
        value = item["id"]
    except (KeyError, TypeError):
        raise SplitError(f"{source}: a {kind} entry has no 'id': {str(item)[:200]}") from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise SplitError(f"{source}: {kind} id {value!r} is not an integer")
    return value


def image_ids(data, source="annotation file"):
    """The set of image ids; duplicate or non-integer ids are errors."""
    ids = set()
    for image in data["images"]:
        image_id = _require_int_id(image, "image", source)
        if image_id in ids:
            raise SplitError(f"{source}: image id {image_id} appears twice")
        ids.add(image_id)
    return ids


def category_names(data, source="annotation file"):
    """Category id -> name, from the ``categories`` block."""
    names = {}
    for category in data["categories"]:
        category_id = _require_int_id(category, "category", source)
        if category_id in names:
            raise SplitError(f"{source}: category id {category_id} appears twice")
        names[category_id] = category.get("name", str(category_id))
    return names


def coco_novel_category_ids(split, data, source="annotation file"):
    """The novel category ids of COCO split ``split`` (1 or 2), checked against the file's categories."""
    if split not in COCO_SPLIT_NOVEL_CATEGORY_IDS:
        raise SplitError(f"unknown COCO split {split!r}; expected one of {sorted(COCO_SPLIT_NOVEL_CATEGORY_IDS)}")
    novel = COCO_SPLIT_NOVEL_CATEGORY_IDS[split]
    missing = sorted(set(novel) - set(category_names(data, source)))
    if missing:
        raise SplitError(f"{source}: COCO split {split} novel category ids {missing} are not in its categories")
    return novel


def _name_keys(image):
    keys = set()
    for field in ("file_name", "coco_url"):
        value = image.get(field)
        if isinstance(value, str) and value:
            keys.add(value.rpartition("/")[2])
            if field == "file_name":
                keys.add(value)
    return keys


class ImageIndex:
    """Resolves image-list entries (ids or file names) to the image ids of one annotation file."""

    _AMBIGUOUS = object()

    def __init__(self, data, source="annotation file"):
        self.images = data["images"]
        self.ids = image_ids(data, source)
        self._names = None

    def _name_index(self):
        if self._names is None:
            names = {}
            for image in self.images:
                for key in _name_keys(image):
                    previous = names.setdefault(key, image["id"])
                    if previous is not self._AMBIGUOUS and previous != image["id"]:
                        names[key] = self._AMBIGUOUS
            self._names = names
        return self._names

    def resolve(self, entry):
        """The image id of ``entry``; raises KeyError (unknown) or SplitError (ambiguous name)."""
        if entry.isdigit():
            image_id = int(entry)
            if image_id not in self.ids:
                raise KeyError(entry)
            return image_id
        image_id = self._name_index()[entry]
        if image_id is self._AMBIGUOUS:
            raise SplitError(f"file name {entry!r} belongs to several images")
        return image_id


def read_image_list(path, index):
    """The image ids listed in ``path`` (format: module docstring), in first-seen order, without repeats."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SplitError(f"image list {path} does not exist") from None
    ids, seen, repeats = [], set(), 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if len(entry.split()) > 1:
            raise SplitError(f"{path}:{line_number}: one entry per line expected, got {entry!r}")
        try:
            image_id = index.resolve(entry)
        except KeyError:
            raise SplitError(f"{path}:{line_number}: {entry!r} is neither the id nor the file name "
                             "of an image of the annotation file") from None
        except SplitError as exc:
            raise SplitError(f"{path}:{line_number}: {exc}") from None
        if image_id in seen:
            repeats += 1
            continue
        seen.add(image_id)
        ids.append(image_id)
    if repeats:
        LOGGER.warning("%s: %d repeated entries (each image is counted once)", path, repeats)
    LOGGER.info("%s: %d images", path, len(ids))
    return ids


def list_provenance(path):
    """File name and SHA-256 of an image list, recorded in the output ``info``."""
    content = Path(path).read_bytes()
    return {"file": Path(path).name, "sha256": hashlib.sha256(content).hexdigest()}


def _with_parts(data, images, annotations, info):
    out = {} if "info" in data else {"info": info}
    for key, value in data.items():
        out[key] = {"images": images, "annotations": annotations, "info": info}.get(key, value)
    return out


def split_annotations(data, labeled_ids, keep_labeled_annotation=None, source="annotation file"):
    """Split ``data`` into (labeled, unlabeled) image/annotation lists, both sorted by id.

    Labeled images are those in ``labeled_ids``; their annotations are kept when
    ``keep_labeled_annotation(annotation)`` is true (all of them when it is None). Every other image
    goes to the unlabeled part with all its annotations.
    """
    ids = image_ids(data, source)
    labeled_ids = set(labeled_ids)
    unknown = sorted(labeled_ids - ids)
    if unknown:
        raise SplitError(f"{source}: labeled image ids {unknown[:10]} are not in the file")
    labeled_images, unlabeled_images = [], []
    for image in data["images"]:
        (labeled_images if image["id"] in labeled_ids else unlabeled_images).append(image)
    labeled_annotations, unlabeled_annotations = [], []
    for annotation in data["annotations"]:
        _require_int_id(annotation, "annotation", source)
        image_id = annotation.get("image_id")
        if image_id in labeled_ids:
            if keep_labeled_annotation is None or keep_labeled_annotation(annotation):
                labeled_annotations.append(annotation)
        elif image_id in ids:
            unlabeled_annotations.append(annotation)
        else:
            raise SplitError(f"{source}: annotation {annotation['id']} refers to image id {image_id!r}, "
                             "which is not in the file")
    by_id = itemgetter("id")
    for part in (labeled_images, unlabeled_images, labeled_annotations, unlabeled_annotations):
        part.sort(key=by_id)
    return (labeled_images, labeled_annotations), (unlabeled_images, unlabeled_annotations)


def split_files(data, labeled_ids, label_info, keep_labeled_annotation=None, source="annotation file"):
    """The labeled and unlabeled annotation files (dicts) of a split; ``info`` gains ``label_info``.

    The unlabeled file keeps its images' annotations, as the upstream files do, and its ``info`` says
    they are not labels (``annotations_are_labels: false``).
    """
    labeled, unlabeled = split_annotations(data, labeled_ids, keep_labeled_annotation, source)
    info = data.get("info", {})
    labeled_info = {**info, **label_info, "subset": "labeled", "annotations_are_labels": True}
    unlabeled_info = {**info, **label_info, "subset": "unlabeled", "annotations_are_labels": False,
                      "annotations_note": "ground truth kept as in the upstream unlabeled files; "
                                          "never use it for training"}
    return (_with_parts(data, *labeled, labeled_info), _with_parts(data, *unlabeled, unlabeled_info))


def write_json(data, path, chunk=WRITE_CHUNK):
    """Write ``data`` as compact JSON (same bytes as ``json.dumps(data, separators=(",", ":"),
    ensure_ascii=False)``), encoding top-level lists in chunks to bound memory; atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")

    def dumps(value):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write("{")
        for position, (key, value) in enumerate(data.items()):
            handle.write(("," if position else "") + dumps(key) + ":")
            if not isinstance(value, list):
                handle.write(dumps(value))
                continue
            handle.write("[")
            for start in range(0, len(value), chunk):
                handle.write(("," if start else "") + dumps(value[start:start + chunk])[1:-1])
            handle.write("]")
        handle.write("}")
    os.replace(temporary, path)
    LOGGER.info("wrote %s (%d images, %d annotations)", path, len(data.get("images", ())),
                len(data.get("annotations", ())))


def output_paths(annotation_file, out_dir, tag):
    """``<out_dir>/<stem>_<tag>_label.json`` and ``..._unlabel.json`` for input ``<stem>.json``."""
    stem = Path(annotation_file).stem
    out_dir = Path(out_dir)
    return out_dir / f"{stem}_{tag}_label.json", out_dir / f"{stem}_{tag}_unlabel.json"


def configure_logging():
    """Progress messages of a CLI go to stderr."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s",
                        stream=sys.stderr)


def labeled_list_main(argv, doc, tag, generator):
    """CLI of the splits whose labeled part is a listed set of images with all annotations (LVIS, O365)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=doc.split("\n\n", 1)[1])
    parser.add_argument("--ann", required=True, help="full train annotation file")
    parser.add_argument("--labeled-list", required=True, help="image list of the labeled part")
    parser.add_argument("--out-dir", required=True, help="folder of the two output files")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        data = load_annotations(args.ann)
        labeled_ids = read_image_list(args.labeled_list, ImageIndex(data, args.ann))
        info = {"generator": generator, "split": tag,
                "labeled_list": {**list_provenance(args.labeled_list), "num_images": len(labeled_ids)}}
        parts = split_files(data, labeled_ids, info, source=args.ann)
    except SplitError as exc:
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    for path, part in zip(output_paths(args.ann, args.out_dir, tag), parts):
        write_json(part, path)
        sys.stdout.write(f"{path}: {len(part['images'])} images, {len(part['annotations'])} annotations\n")
    return 0
