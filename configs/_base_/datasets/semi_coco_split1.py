# COCO split 1: novel (minority) classes = the 20 PASCAL-VOC classes.
_base_ = ["semi_coco.py"]
coco_split = 1
split_annotations = "dataset/coco/annotations/instances_train2017_coco_split1"
data = dict(
    train=dict(sup=dict(ann_file=split_annotations + "_label.json"),
               unsup=dict(ann_file=split_annotations + "_unlabel.json")),
    val=dict(novel_classes={{_base_.coco_split1_novel}}),
    test=dict(novel_classes={{_base_.coco_split1_novel}}),
)
