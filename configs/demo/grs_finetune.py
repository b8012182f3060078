# `make demo`, stage 2b: CI-SSOD (GbR + GbT + CrS), started from the same burn-in.
# Scaled to 150 iterations: GbR reweights from t > 30, class-wise thresholds and pseudo-label
# dumping from t = 50, saves at t = 1, 26, 51, ..., CrS repeat factors refreshed at t = 51, 101.
_base_ = "../soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"
model = dict(model=dict(roi_head=dict(bbox_head=dict(loss_cls=dict(warm_up_iter=30)))),
             train_cfg=dict(warm_up_iter=50))
custom_hooks = [
    dict(type="SetIterNumHook"),
    dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0),
    dict(type="GradientResamplingHook", save_interval=25, update_iter=50),
]
lr_config = dict(warmup_iters=20, step=[120])
runner = dict(max_iters=150)
checkpoint_config = dict(interval=150, max_keep_ckpts=1)
evaluation = dict(interval=150)
log_config = dict(interval=10)
