# COCO -> Objects365 semi-supervised data (spec A.2), 365 Objects365 v2 classes; base = the 79
# classes reached by the default COCO->O365 map (ssod/datasets/class_maps.py), novel = the other 286.
# For now the labeled side is only the labeled Objects365 subset: the COCO train2017 images with
# labels mapped into the Objects365 space (the other, larger part of the labeled set) come with the
# Objects365 data-settings work, which adds that mapped dataset and concatenates it here.
# File names: the zhiyuan_objv2 JSONs store "images/v1|v2/patchN/<name>.jpg", read here relative to
# dataset/Object365/ (upstream stripped the "images/vN/" part instead, spec H.32); that work also
# decides the final layout and skips the few listed images that are missing from the release.
_base_ = ["semi_pipelines.py", "object365_class_lists.py"]
o365_root = "dataset/Object365/"
val_dataset = dict(type="CocoSplitDataset", classes={{_base_.object365_classes}},
                   novel_classes={{_base_.object365_novel}}, per_class_metrics=False,
                   ann_file=o365_root + "annotations/zhiyuan_objv2_val.json", img_prefix=o365_root,
                   pipeline={{_base_.test_pipeline}})
data = dict(
    samples_per_gpu=5,
    workers_per_gpu=1,
    train=dict(
        type="SemiDataset",
        sup=dict(type="CocoDataset", classes={{_base_.object365_classes}},
                 ann_file=o365_root + "annotations/zhiyuan_objv2_train_object365_label.json",
                 img_prefix=o365_root, pipeline={{_base_.sup_pipeline}}),
        unsup=dict(type="CocoDataset", classes={{_base_.object365_classes}},
                   ann_file=o365_root + "annotations/zhiyuan_objv2_train_object365_unlabel.json",
                   img_prefix=o365_root, filter_empty_gt=False, pipeline={{_base_.unsup_pipeline}}),
    ),
    val=val_dataset,
    test=val_dataset,
    sampler=dict(train=dict(type="SemiBalanceSampler", sample_ratio=[1, 4], by_prob=True, epoch_length=60000)),
)
