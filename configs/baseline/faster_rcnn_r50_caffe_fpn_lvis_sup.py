# Supervised baseline: Faster R-CNN R50-FPN trained on the labeled LVIS v1 images only (repeat factor
# sampling 0.01, as the soft-teacher LVIS baseline), with the soft teacher's labeled augmentation and
# LVIS schedule (180k iterations, x0.1 at 140k and 160k, 8 GPUs x 1 image, lr 0.01).
_base_ = [
    "../_base_/models/faster_rcnn_r50_caffe_fpn.py",
    "../_base_/datasets/semi_lvis.py",
    "../_base_/schedules/sgd_fp16_180k.py",
    "../_base_/default_runtime.py",
]
model = dict(roi_head=dict(bbox_head=dict(num_classes=1203)))
data = dict(
    _delete_=True,
    samples_per_gpu=1,
    workers_per_gpu=1,
    train=dict(type="ClassBalancedDataset", oversample_thr={{_base_.data.train.sup.oversample_thr}},
               dataset=dict(type="LVISV1SplitDataset", ann_file={{_base_.data.train.sup.dataset.ann_file}},
                            img_prefix={{_base_.data.train.sup.dataset.img_prefix}},
                            pipeline={{_base_.supervised_pipeline}})),
    val={{_base_.data.val}},
    test={{_base_.data.test}},
)
lr_config = dict(step=[140000, 160000])
evaluation = dict(interval=20000, metric="bbox")
