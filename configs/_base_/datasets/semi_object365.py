# COCO -> Objects365 semi-supervised data (spec A.2), 365 Objects365 v2 classes.
# Labeled: COCO train2017 with its labels mapped into the Objects365 classes
# (ssod/datasets/class_maps.py: teddy bear -> Stuffed Toy, sports ball dropped; set
# upstream_teddy_bear=True for the reference code's teddy bear -> Bear) plus the labeled
# Objects365 subset. Unlabeled: the other Objects365 train images. Base classes = the 79 reached
# by the map, novel = the other 286 (Objects365Dataset derives them).
# File names: the zhiyuan_objv2 JSONs store "images/v1|v2/patchN/<name>.jpg"; that prefix is
# stripped and the rest read under images/train/ (or images/val/), as the release unpacks.
_base_ = ["semi_pipelines.py"]
coco_root = "dataset/coco/"
o365_root = "dataset/Object365/"
o365_prefixes = ("images/v1/", "images/v2/")
val_dataset = dict(type="Objects365Dataset", ann_file=o365_root + "annotations/zhiyuan_objv2_val.json",
                   img_prefix=o365_root + "images/val/", strip_prefixes=o365_prefixes,
                   pipeline={{_base_.test_pipeline}})
data = dict(
    samples_per_gpu=5,
    workers_per_gpu=1,
    train=dict(
        type="SemiDataset",
        sup=[
            dict(type="COCO2Objects365Dataset", ann_file=coco_root + "annotations/instances_train2017.json",
                 img_prefix=coco_root + "train2017/", pipeline={{_base_.sup_pipeline}}),
            dict(type="Objects365Dataset", novel_classes=(),
                 ann_file=o365_root + "annotations/zhiyuan_objv2_train_object365_label.json",
                 img_prefix=o365_root + "images/train/", strip_prefixes=o365_prefixes,
                 pipeline={{_base_.sup_pipeline}}),
        ],
        unsup=dict(type="Objects365Dataset", novel_classes=(), filter_empty_gt=False,
                   ann_file=o365_root + "annotations/zhiyuan_objv2_train_object365_unlabel.json",
                   img_prefix=o365_root + "images/train/", strip_prefixes=o365_prefixes,
                   pipeline={{_base_.unsup_pipeline}}),
    ),
    val=val_dataset,
    test=val_dataset,
    sampler=dict(train=dict(type="SemiBalanceSampler", sample_ratio=[1, 4], by_prob=True, epoch_length=60000)),
)
