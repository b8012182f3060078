"""Datasets of the MS-COCO -> Objects365 setting (spec A.2).

* ``Objects365Dataset``: Objects365 v2 images (labeled subset, unlabeled rest, val), 365
  classes read from the annotation file, scored overall and on the novel/base subsets.
* ``COCO2Objects365Dataset``: COCO images whose labels are mapped into the Objects365 label
  space (``class_maps``), to be concatenated with the labeled Objects365 subset.
"""
import json
import os.path as osp

import numpy as np
from mmdet.datasets import DATASETS, CocoDataset, Objects365V2Dataset
from mmdet.datasets.api_wrappers import COCO

from ssod.datasets.class_maps import (DROPPED, check_objects365_names, coco_to_objects365_map,
                                      mapped_objects365_labels)
from ssod.datasets.coco_split import CocoSplitDataset


def _require_file(path, key, owner):
    if not osp.isfile(path):
        raise FileNotFoundError(f"{owner}: {key} not found: {path}")


def _load_coco_api(ann_file):
    """mmdet's COCO API on ``ann_file``; duplicate annotation ids (silently merged by it) are an error."""
    coco = COCO(ann_file)
    if len(coco.anns) != len(coco.dataset["annotations"]):
        raise ValueError(f"{ann_file}: annotation ids are not unique")
    return coco


def read_category_names(ann_file, key="ann_file"):
    """Category names of a COCO-format annotation file, in category-id order."""
    _require_file(ann_file, key, "read_category_names")
    with open(ann_file) as f:
        categories = json.load(f)["categories"]
    return [c["name"] for c in sorted(categories, key=lambda c: c["id"])]


def _single_labels(labels):
    """Distinct labels of one image, as plain ints (the image's class set for RFS/CrS)."""
    return np.unique(labels).tolist()


@DATASETS.register_module(name=["Objects365Dataset", "Semi_Object365_Dataset"])
class Objects365Dataset(CocoSplitDataset):
    """An Objects365 v2 annotation file (``zhiyuan_objv2_*.json`` or a subset of it).

    Args (besides ``CocoSplitDataset``'s):
        classes: None (default) takes every category of the file, in id order (contiguous
            label = position among the sorted ids). Given names must all be in the file
            (``ValueError`` listing the others), in category-id order.
        novel_classes: None (default) = the classes the COCO->Objects365 map does not reach
            (287 with ``upstream_teddy_bear=True``, 286 with the default map, where "Stuffed
            Toy" is reached too); needs the Objects365 v2 categories. ``()`` scores no subsets.
        upstream_teddy_bear: which COCO->Objects365 map defines the base classes (``class_maps``).
        strip_prefixes: file-name prefixes removed before joining with ``img_prefix``: the
            first one a ``file_name`` starts with is removed, other names are kept. E.g.
            ``('images/v1/', 'images/v2/')`` turns ``images/v2/patch16/x.jpg`` into
            ``patch16/x.jpg`` (upstream cut the first 10 characters of every name).
        skip_file_names: images left out, matched against the JSON ``file_name`` (e.g. files
            listed in the annotations but missing on disk).

    Width and height come from the JSON. ``get_cat_ids(idx)`` gives the distinct contiguous
    labels of the image's training targets (crowd boxes excluded).
    """

    CLASSES = None

    def __init__(self, *args, novel_classes=None, upstream_teddy_bear=False, strip_prefixes=(),
                 skip_file_names=(), **kwargs):
        self.upstream_teddy_bear = upstream_teddy_bear
        self.strip_prefixes = tuple(strip_prefixes)
        self.skip_file_names = frozenset(skip_file_names)
        super().__init__(*args, novel_classes=() if novel_classes is None else novel_classes, **kwargs)
        if novel_classes is None:
            self.novel_classes = self._classes_not_reached_by_coco_map()

    def load_annotations(self, ann_file):
        _require_file(ann_file, "ann_file", type(self).__name__)
        self.coco = _load_coco_api(ann_file)
        categories = sorted(self.coco.dataset["categories"], key=lambda c: c["id"])
        self.file_class_names = [c["name"] for c in categories]
        ids_by_name = {c["name"]: c["id"] for c in categories}
        if len(ids_by_name) != len(categories):
            raise ValueError(f"{ann_file}: category names are not unique")
        if self.CLASSES is None:
            self.CLASSES = tuple(self.file_class_names)
        missing = [name for name in self.CLASSES if name not in ids_by_name]
        if missing:
            raise ValueError(f"classes not among the categories of {ann_file}: {missing}")
        self.cat_ids = [ids_by_name[name] for name in self.CLASSES]
        if self.cat_ids != sorted(self.cat_ids):
            raise ValueError(f"classes must follow the category-id order of {ann_file}: {list(self.CLASSES)}")
        # mmdet's CocoDataset.evaluate re-derives cat_ids in the file's category order
        self.coco.dataset["categories"] = categories
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}
        data_infos = []
        for img_id in self.coco.get_img_ids():
            info = self.coco.imgs[img_id]
            if info["file_name"] in self.skip_file_names:
                continue
            data_infos.append(dict(info, filename=self._strip_prefix(info["file_name"])))
        self.img_ids = [info["id"] for info in data_infos]
        return data_infos

    def _strip_prefix(self, file_name):
        for prefix in self.strip_prefixes:
            if file_name.startswith(prefix):
                return file_name[len(prefix):]
        return file_name

    def _classes_not_reached_by_coco_map(self):
        check_objects365_names(self.file_class_names, self.ann_file)
        base = {self.file_class_names[label] for label in mapped_objects365_labels(self.upstream_teddy_bear)}
        return tuple(name for name in self.CLASSES if name not in base)

    def get_cat_ids(self, idx):
        return _single_labels(self.get_ann_info(idx)["labels"])


@DATASETS.register_module(name=["COCO2Objects365Dataset", "Semi_COCO2Object365_Dataset"])
class COCO2Objects365Dataset(CocoDataset):
    """COCO images with labels in the Objects365 v2 label space (training only).

    Each COCO annotation's class (by category name, among mmdet's 80 COCO names) goes
    through ``coco_to_objects365_map(upstream_teddy_bear)``; annotations mapped to -1
    (sports ball) are dropped, so an image left without annotations is filtered out when
    ``filter_empty_gt``.

    Args (besides ``CocoDataset``'s):
        classes: the 365 Objects365 v2 names in category-id order (a tuple/list, or a text
            file with one name per line). Default: mmdet's ``Objects365V2Dataset.CLASSES``.
        o365_ann_file: instead of ``classes``, an Objects365 annotation file to read the
            names from (joined with ``data_root`` if relative; the val file is the smallest).
        upstream_teddy_bear: see ``class_maps.coco_to_objects365_map``.

    CLASSES and labels then match an ``Objects365Dataset`` of the same names, so both
    concatenate into one labeled set (a list of dataset configs builds mmdet's
    ``ConcatDataset``). ``get_cat_ids(idx)`` gives the distinct Objects365 labels of the
    image's training targets.
    """

    CLASSES = Objects365V2Dataset.CLASSES

    def __init__(self, *args, classes=None, o365_ann_file=None, upstream_teddy_bear=False, **kwargs):
        if classes is not None and o365_ann_file is not None:
            raise ValueError("COCO2Objects365Dataset: give classes or o365_ann_file, not both")
        self.classes_source = "classes" if classes is not None else f"{type(self).__name__}.CLASSES"
        if o365_ann_file is not None:
            data_root = kwargs.get("data_root")
            if data_root is not None and not osp.isabs(o365_ann_file):
                o365_ann_file = osp.join(data_root, o365_ann_file)
            classes = read_category_names(o365_ann_file, key="o365_ann_file")
            self.classes_source = o365_ann_file
        self.upstream_teddy_bear = upstream_teddy_bear
        self.label_map = coco_to_objects365_map(upstream_teddy_bear)
        super().__init__(*args, classes=classes, **kwargs)

    def load_annotations(self, ann_file):
        _require_file(ann_file, "ann_file", type(self).__name__)
        check_objects365_names(self.CLASSES, self.classes_source)
        self.coco = _load_coco_api(ann_file)
        coco_labels = {name: label for label, name in enumerate(CocoDataset.CLASSES)}
        categories = self.coco.dataset["categories"]
        unknown = [c["name"] for c in categories if c["name"] not in coco_labels]
        if unknown:
            raise ValueError(f"{ann_file}: categories that are not COCO classes: {unknown}")
        self.cat2label = {c["id"]: self.label_map[coco_labels[c["name"]]] for c in categories
                          if self.label_map[coco_labels[c["name"]]] != DROPPED}
        self.cat_ids = sorted(self.cat2label)
        self.img_ids = self.coco.get_img_ids()
        return [dict(self.coco.imgs[img_id], filename=self.coco.imgs[img_id]["file_name"])
                for img_id in self.img_ids]

    def get_cat_ids(self, idx):
        return _single_labels(self.get_ann_info(idx)["labels"])

    def evaluate(self, results, *args, **kwargs):
        raise NotImplementedError("COCO2Objects365Dataset is a training set (labels mapped from COCO); "
                                  "evaluate on an Objects365Dataset")
