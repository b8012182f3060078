# Supervised baseline: Faster R-CNN R50-FPN trained on the labeled images of COCO split 2 only, with
# the soft teacher's labeled augmentation and schedule (180k iterations, 8 GPUs x 1 image, lr 0.01).
_base_ = [
    "../_base_/models/faster_rcnn_r50_caffe_fpn.py",
    "../_base_/datasets/semi_coco_split2.py",
    "../_base_/schedules/sgd_fp16_180k.py",
    "../_base_/default_runtime.py",
]
data = dict(
    _delete_=True,
    samples_per_gpu=1,
    workers_per_gpu=1,
    train=dict(type="CocoDataset", classes={{_base_.coco_classes}}, ann_file={{_base_.data.train.sup.ann_file}},
               img_prefix={{_base_.data.train.sup.img_prefix}}, pipeline={{_base_.supervised_pipeline}}),
    val={{_base_.data.val}},
    test={{_base_.data.test}},
)
evaluation = dict(interval=20000, metric="bbox")
