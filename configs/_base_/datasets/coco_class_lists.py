# COCO class lists, for configs (which cannot import Python modules). A literal mirror of
# ssod/datasets/class_names.py, the source of truth; tests/test_configs.py checks that both agree.
# Inherit this file and use a list as a whole value, e.g. classes=<the _base_ list>.

# COCO 2017, 80 classes (contiguous label = position).
coco_classes = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)

# COCO split 1 minority ("novel") classes: the 20 PASCAL-VOC classes.
coco_split1_novel = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "boat", "bird", "cat", "dog",
    "horse", "sheep", "cow", "bottle", "chair", "couch", "potted plant", "dining table", "tv",
)

# COCO split 2 minority ("novel") classes: 40 classes (spec A.1).
coco_split2_novel = (
    "airplane", "bus", "boat", "traffic light", "fire hydrant", "parking meter", "bird", "cat", "horse",
    "sheep", "cow", "elephant", "zebra", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "baseball glove", "wine glass", "banana", "apple", "sandwich", "broccoli", "hot dog",
    "pizza", "bed", "dining table", "tv", "mouse", "remote", "keyboard", "oven", "refrigerator", "book",
    "vase", "hair drier", "toothbrush",
)
