# The (unbiased) soft teacher: SoftTeacher on Faster R-CNN R50-FPN (spec B), the CI-SSOD baseline.
# Dataset-independent part: leaf configs add one of _base_/datasets/semi_*.py and set num_classes.
# Evaluation runs on the teacher and the student; `inference_on` picks the model tools/test.py uses.
_base_ = [
    "../_base_/models/faster_rcnn_r50_caffe_fpn.py",
    "../_base_/schedules/sgd_fp16_180k.py",
    "../_base_/default_runtime.py",
]
model = dict(
    _delete_=True,
    type="SoftTeacher",
    model={{_base_.model}},
    train_cfg=dict(
        use_teacher_proposal=False,
        pseudo_label_initial_score_thr=0.5,
        rpn_pseudo_threshold=0.9,
        cls_pseudo_threshold=0.9,
        reg_pseudo_threshold=0.02,
        jitter_times=10,
        jitter_scale=0.06,
        min_pseduo_box_size=0,
        unsup_weight=4.0,
    ),
    test_cfg=dict(inference_on="student"),
)
custom_hooks = [
    dict(type="SetIterNumHook"),
    dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0),
]
evaluation = dict(interval=20000, metric="bbox")
find_unused_parameters = True
