# Supervised baseline: Faster R-CNN R50-FPN trained on the labeled side of COCO -> Objects365 only
# (COCO train2017 mapped into the 365 Objects365 classes + the labeled Objects365 subset), with the
# soft teacher's labeled augmentation and the setting's schedule (360k iterations, x0.1 at 280k and
# 320k, 8 GPUs x 1 image, lr 0.01). tools/gpu_check.py times it as the reference step.
_base_ = [
    "../_base_/models/faster_rcnn_r50_caffe_fpn.py",
    "../_base_/datasets/semi_object365.py",
    "../_base_/schedules/sgd_fp16_180k.py",
    "../_base_/default_runtime.py",
]
model = dict(roi_head=dict(bbox_head=dict(num_classes=365)))
data = dict(
    _delete_=True,
    samples_per_gpu=1,
    workers_per_gpu=1,
    train=[
        dict(type="COCO2Objects365Dataset", ann_file="dataset/coco/annotations/instances_train2017.json",
             img_prefix="dataset/coco/train2017/", pipeline={{_base_.supervised_pipeline}}),
        dict(type="Objects365Dataset", novel_classes=(),
             ann_file="dataset/Object365/annotations/zhiyuan_objv2_train_object365_label.json",
             img_prefix="dataset/Object365/images/train/", strip_prefixes={{_base_.o365_prefixes}},
             pipeline={{_base_.supervised_pipeline}}),
    ],
    val={{_base_.data.val}},
    test={{_base_.data.test}},
)
lr_config = dict(step=[280000, 320000])
runner = dict(max_iters=360000)
evaluation = dict(interval=20000, metric="bbox")
