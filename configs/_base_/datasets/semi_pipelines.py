# Full-scale SoftTeacher data pipelines (spec B.3), shared by the COCO, LVIS and Objects365 settings.
# sup_pipeline: labeled images of a semi-supervised batch; unsup_pipeline: a weak (teacher) and a
# strong (student) view of each unlabeled image; supervised_pipeline: the labeled augmentation for
# plain detectors (supervised baselines); test_pipeline: single scale (1333, 800), no flip.
# As the reference, training pipelines pad to a multiple of 32 and then normalise (padding becomes
# -mean), the test pipeline normalises and then pads (padding 0); the strong-view ops fill uncovered and
# erased pixels with 125 (grey) and draw colour levels randint(1, 10) (ssod/datasets/pipelines/transforms.py).
img_norm_cfg = dict(mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
train_scale = [(1333, 400), (1333, 1200)]  # long side <= 1333, short side uniform in [400, 1200]
test_scale = (1333, 800)

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
random_resize_flip = [
    dict(type="RandResize", img_scale=train_scale, multiscale_mode="range", keep_ratio=True),
    dict(type="RandFlip", flip_ratio=0.5),
]
labeled_augmentation = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    *random_resize_flip,
    dict(type="OneOf", transforms=color_ops),
]
pad_normalize = [dict(type="Pad", size_divisor=32), dict(type="Normalize", **img_norm_cfg)]
normalize_pad = [dict(type="Normalize", **img_norm_cfg), dict(type="Pad", size_divisor=32)]
semi_format = [
    *pad_normalize,
    dict(type="DefaultFormatBundle"),
    dict(type="CollectWithMatrix", keys=["img", "gt_bboxes", "gt_labels"]),
]

sup_pipeline = [*labeled_augmentation, dict(type="ExtraAttrs", tag="sup"), *semi_format]
weak_pipeline = [*random_resize_flip, *semi_format]
strong_pipeline = [
    *random_resize_flip,
    dict(type="ShuffledSequential", transforms=[dict(type="OneOf", transforms=color_ops),
                                                dict(type="OneOf", transforms=geometric_ops)]),
    # randint(1, 5) = 1-4 patches, each int(r*h) x int(r*w) with r ~ U(0, 0.2)
    dict(type="RandErase", n_iterations=(1, 5), size=[0, 0.2], squared=True),
    *semi_format,
]
unsup_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="PseudoSamples", with_bbox=True),
    dict(type="MultiBranch", unsup_teacher=weak_pipeline, unsup_student=strong_pipeline),
]
supervised_pipeline = [
    *labeled_augmentation,
    *pad_normalize,
    dict(type="DefaultFormatBundle"),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"]),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="MultiScaleFlipAug", img_scale=test_scale, flip=False, transforms=[
        dict(type="Resize", keep_ratio=True),
        dict(type="RandomFlip"),
        *normalize_pad,
        dict(type="ImageToTensor", keys=["img"]),
        dict(type="Collect", keys=["img"]),
    ]),
]
