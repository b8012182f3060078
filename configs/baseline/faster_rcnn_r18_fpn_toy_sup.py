# Supervised baseline on the toy labeled split: runs on CPU in minutes.
_base_ = [
    "../_base_/models/faster_rcnn_r18_fpn_toy.py",
    "../_base_/datasets/toy_detection.py",
    "../_base_/schedules/toy_cpu_600it.py",
    "../_base_/default_runtime.py",
]
checkpoint_config = dict(by_epoch=False, interval=200, max_keep_ckpts=3)
log_config = dict(interval=20, hooks=[dict(type="SummaryTextLoggerHook", by_epoch=False)])
# TensorBoard curves (optional; needs `pip install tensorboard`, which ssod does not install).
# Event files go to work_dir/tf_logs; view them with `tensorboard --logdir work_dirs`. Use ssod's
# PerClassTensorboardLoggerHook: mmcv's TensorboardLoggerHook cannot write the per-class lists
# (gbt_thresholds, gbr_weights, crs_repeat_hist) that the GrS hook logs.
# log_config = dict(interval=20, hooks=[dict(type="SummaryTextLoggerHook", by_epoch=False),
#                                       dict(type="PerClassTensorboardLoggerHook", by_epoch=False)])
