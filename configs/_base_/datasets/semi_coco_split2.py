# COCO split 2: novel (minority) classes = 40 classes (spec A.1).
_base_ = ["semi_coco.py"]
coco_split = 2
split_annotations = "dataset/coco/annotations/instances_train2017_coco_split2"
data = dict(
    train=dict(sup=dict(ann_file=split_annotations + "_label.json"),
               unsup=dict(ann_file=split_annotations + "_unlabel.json")),
    val=dict(novel_classes={{_base_.coco_split2_novel}}),
    test=dict(novel_classes={{_base_.coco_split2_novel}}),
)
