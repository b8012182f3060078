"""COCO class lists of the CI-SSOD COCO setting (spec A.1): the single source of truth.

Configs cannot import Python modules, so ``configs/_base_/datasets/coco_class_lists.py`` holds
literal copies of these tuples; ``tests/test_configs.py`` checks that both agree.
Contiguous labels follow the order of ``COCO_CLASSES``. The Objects365 classes are read from
the annotation files and its novel/base classes derived from ``class_maps`` (``Objects365Dataset``).
"""
from mmdet.datasets import CocoDataset

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
