# Semi-supervised data for the toy dataset: labeled images plus weak (teacher) and strong
# (student) views of unlabeled images, as in SoftTeacher (spec B.3) at toy scale.
_base_ = ["toy_detection.py"]
color_ops = [
    dict(type="Identity"), dict(type="AutoContrast"), dict(type="RandEqualize"), dict(type="RandSolarize"),
    dict(type="RandColor"), dict(type="RandContrast"), dict(type="RandBrightness"), dict(type="RandSharpness"),
    dict(type="RandPosterize"),
]
geometric_ops = [
    dict(type="RandTranslate", x=(-0.1, 0.1)),
    dict(type="RandTranslate", y=(-0.1, 0.1)),
    dict(type="RandRotate", angle=(-30, 30)),
    [dict(type="RandShear", x=(-30, 30)), dict(type="RandShear", y=(-30, 30))],
]
format_steps = [  # pad, then normalise, as the reference's training pipelines
    dict(type="Pad", size_divisor=32),
    {{_base_.normalize_step}},
    dict(type="DefaultFormatBundle"),
    dict(type="CollectWithMatrix", keys=["img", "gt_bboxes", "gt_labels"]),
]
sup_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="RandResize", img_scale={{_base_.train_scale}}, multiscale_mode="range", keep_ratio=True),
    dict(type="RandFlip", flip_ratio=0.5),
    dict(type="OneOf", transforms=color_ops),
    dict(type="ExtraAttrs", tag="sup"),
] + format_steps
weak_pipeline = [
    dict(type="RandResize", img_scale={{_base_.train_scale}}, multiscale_mode="range", keep_ratio=True),
    dict(type="RandFlip", flip_ratio=0.5),
] + format_steps
strong_pipeline = [
    dict(type="RandResize", img_scale={{_base_.train_scale}}, multiscale_mode="range", keep_ratio=True),
    dict(type="RandFlip", flip_ratio=0.5),
    dict(type="ShuffledSequential", transforms=[dict(type="OneOf", transforms=color_ops),
                                                dict(type="OneOf", transforms=geometric_ops)]),
    dict(type="RandErase", n_iterations=(1, 5), size=[0, 0.2], squared=True),
] + format_steps
unsup_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="PseudoSamples", with_bbox=True),
    dict(type="MultiBranch", unsup_teacher=weak_pipeline, unsup_student=strong_pipeline),
]
data = dict(
    samples_per_gpu=5,
    workers_per_gpu=1,
    train=dict(
        _delete_=True,
        type="SemiDataset",
        sup=dict(type="CocoDataset", classes={{_base_.classes}},
                 ann_file="dataset/toy/annotations/instances_train_label.json",
                 img_prefix="dataset/toy/train/", pipeline=sup_pipeline),
        unsup=dict(type="CocoDataset", classes={{_base_.classes}}, filter_empty_gt=False,
                   ann_file="dataset/toy/annotations/instances_train_unlabel.json",
                   img_prefix="dataset/toy/train/", pipeline=unsup_pipeline),
    ),
    sampler=dict(train=dict(type="SemiBalanceSampler", sample_ratio=[1, 4], by_prob=True, epoch_length=400)),
)
