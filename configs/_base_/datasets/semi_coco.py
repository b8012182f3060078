# COCO semi-supervised data (spec A.1), split-independent part. semi_coco_split1.py and
# semi_coco_split2.py add the split's annotation files and novel classes; inherit one of those.
# Unlabeled images keep filter_empty_gt=False: their (hidden) labels must not select images (spec H.30).
_base_ = ["semi_pipelines.py", "coco_class_lists.py"]
coco_root = "dataset/coco/"
val_dataset = dict(type="CocoSplitDataset", classes={{_base_.coco_classes}}, per_class_metrics=False,
                   ann_file=coco_root + "annotations/instances_val2017.json",
                   img_prefix=coco_root + "val2017/", pipeline={{_base_.test_pipeline}})
data = dict(
    samples_per_gpu=5,
    workers_per_gpu=1,
    train=dict(
        type="SemiDataset",
        sup=dict(type="CocoDataset", classes={{_base_.coco_classes}}, img_prefix=coco_root + "train2017/",
                 pipeline={{_base_.sup_pipeline}}),
        unsup=dict(type="CocoDataset", classes={{_base_.coco_classes}}, img_prefix=coco_root + "train2017/",
                   filter_empty_gt=False, pipeline={{_base_.unsup_pipeline}}),
    ),
    val=val_dataset,
    test=val_dataset,
    sampler=dict(train=dict(type="SemiBalanceSampler", sample_ratio=[1, 4], by_prob=True, epoch_length=7330)),
)
