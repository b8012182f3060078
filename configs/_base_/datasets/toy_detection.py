# The embedded toy dataset (tools/dataset/make_toy_dataset.py --out dataset/toy --seed 0).
data_root = "dataset/toy/"
classes = ("red_circle", "green_square", "blue_triangle", "yellow_star",
           "magenta_cross", "cyan_ring", "white_diamond", "orange_bar")
# Tail ("novel") classes of the toy split; the rest are head ("base") classes.
novel_classes = ("cyan_ring", "white_diamond", "orange_bar")
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_scale = [(320, 160), (320, 224)]
test_scale = (320, 192)
normalize_step = dict(type="Normalize", **img_norm_cfg)

train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", img_scale=train_scale, multiscale_mode="range", keep_ratio=True),
    dict(type="RandomFlip", flip_ratio=0.5),
    dict(type="Pad", size_divisor=32),  # training: pad, then normalise (as the reference); test: the reverse
    normalize_step,
    dict(type="DefaultFormatBundle"),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"]),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="MultiScaleFlipAug", img_scale=test_scale, flip=False, transforms=[
        dict(type="Resize", keep_ratio=True),
        dict(type="RandomFlip"),
        normalize_step,
        dict(type="Pad", size_divisor=32),
        dict(type="ImageToTensor", keys=["img"]),
        dict(type="Collect", keys=["img"]),
    ]),
]
val_dataset = dict(type="CocoSplitDataset", classes=classes, novel_classes=novel_classes, per_class_metrics=True,
                   ann_file=data_root + "annotations/instances_val.json", img_prefix=data_root + "val/",
                   pipeline=test_pipeline)
data = dict(
    samples_per_gpu=4,
    workers_per_gpu=1,
    train=dict(type="CocoDataset", classes=classes, ann_file=data_root + "annotations/instances_train_label.json",
               img_prefix=data_root + "train/", pipeline=train_pipeline),
    val=val_dataset,
    test=val_dataset,
)
