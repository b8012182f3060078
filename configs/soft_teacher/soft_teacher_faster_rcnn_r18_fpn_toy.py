# The (unbiased) soft teacher on the toy dataset: CPU-sized version of the COCO baseline.
_base_ = [
    "../_base_/models/faster_rcnn_r18_fpn_toy.py",
    "../_base_/datasets/toy_semi.py",
    "../_base_/schedules/toy_cpu_600it.py",
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
    test_cfg=dict(inference_on="teacher"),
)
custom_hooks = [
    dict(type="SetIterNumHook"),
    dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0),
]
find_unused_parameters = True
checkpoint_config = dict(by_epoch=False, interval=200, max_keep_ckpts=3)
log_config = dict(interval=20, hooks=[dict(type="SummaryTextLoggerHook", by_epoch=False)])
# TensorBoard curves (optional; needs `pip install tensorboard`, which ssod does not install).
# Event files go to work_dir/tf_logs; view them with `tensorboard --logdir work_dirs`. Use ssod's
# PerClassTensorboardLoggerHook: mmcv's TensorboardLoggerHook cannot write the per-class lists
# (gbt_thresholds, gbr_weights, crs_repeat_hist) that the GrS hook logs.
# log_config = dict(interval=20, hooks=[dict(type="SummaryTextLoggerHook", by_epoch=False),
#                                       dict(type="PerClassTensorboardLoggerHook", by_epoch=False)])
