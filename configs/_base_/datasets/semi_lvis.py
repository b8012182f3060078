# LVIS v1 semi-supervised data (spec A.3) on COCO 2017 images. LVISV1SplitDataset (ssod/datasets/lvis.py)
# takes its 1203 classes from the annotation file, file names from each image's coco_url
# ("train2017/x.jpg", "val2017/x.jpg", hence the COCO root as image prefix) and reports AP, APr, APc
# and APf. The labeled side is wrapped in repeat factor sampling with oversample_thr 0.01 as in the
# LVIS baseline (spec E.5).
_base_ = ["semi_pipelines.py"]
coco_root = "dataset/coco/"
lvis_annotations = "dataset/lvis/annotations/"
val_dataset = dict(type="LVISV1SplitDataset", ann_file=lvis_annotations + "lvis_v1_val.json", img_prefix=coco_root,
                   pipeline={{_base_.test_pipeline}})
data = dict(
    samples_per_gpu=5,
    workers_per_gpu=1,
    train=dict(
        type="SemiDataset",
        sup=dict(type="ClassBalancedDatasetRFS", oversample_thr=0.01,
                 dataset=dict(type="LVISV1SplitDataset", ann_file=lvis_annotations + "lvis_v1_train_lvis_label.json",
                              img_prefix=coco_root, pipeline={{_base_.sup_pipeline}})),
        unsup=dict(type="LVISV1SplitDataset", ann_file=lvis_annotations + "lvis_v1_train_lvis_unlabel.json",
                   img_prefix=coco_root, filter_empty_gt=False, pipeline={{_base_.unsup_pipeline}}),
    ),
    val=val_dataset,
    test=val_dataset,
    sampler=dict(train=dict(type="SemiBalanceSampler", sample_ratio=[1, 4], by_prob=True, epoch_length=10000)),
)
