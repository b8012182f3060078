"""Class lists of the CI-SSOD data settings (spec A): the single source of truth.

Configs cannot import Python modules, so ``configs/_base_/datasets/coco_class_lists.py`` and
``object365_class_lists.py`` hold literal copies of these tuples; ``tests/test_configs.py``
checks that both agree.
Contiguous labels follow the order of ``COCO_CLASSES`` / ``OBJECT365_CLASSES``.
"""
from mmdet.datasets import CocoDataset, Objects365V2Dataset

from ssod.datasets.class_maps import mapped_objects365_labels

COCO_CLASSES = CocoDataset.CLASSES

# Split 1: the 20 PASCAL-VOC classes are the minority ("novel") classes (spec A.1).
COCO_SPLIT1_NOVEL = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "boat", "bird", "cat",
    "dog", "horse", "sheep", "cow", "bottle", "chair", "couch", "potted plant", "dining table", "tv",
)

# Split 2: 40 minority classes (COCO category ids 5, 6, 9, ..., 90; spec A.1).
COCO_SPLIT2_NOVEL = (
    "airplane", "bus", "boat", "traffic light", "fire hydrant", "parking meter", "bird", "cat",
    "horse", "sheep", "cow", "elephant", "zebra", "umbrella", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "baseball glove", "wine glass", "banana", "apple", "sandwich",
    "broccoli", "hot dog", "pizza", "bed", "dining table", "tv", "mouse", "remote", "keyboard",
    "oven", "refrigerator", "book", "vase", "hair drier", "toothbrush",
)

# Objects365 v2 ("zhiyuan_objv2"): contiguous label = position, category id = position + 1.
OBJECT365_CLASSES = Objects365V2Dataset.CLASSES

# Majority ("base") Objects365 classes: those the COCO->Objects365 map of class_maps reaches
# (default map: 79, teddy bear -> "Stuffed Toy"); the other 286 are the minority ("novel") ones.
OBJECT365_BASE = tuple(OBJECT365_CLASSES[label] for label in mapped_objects365_labels())
OBJECT365_NOVEL = tuple(name for name in OBJECT365_CLASSES if name not in OBJECT365_BASE)
