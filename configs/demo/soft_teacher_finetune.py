# `make demo`, stage 2a: the soft-teacher baseline, started from the burn-in (--load-from).
_base_ = "../soft_teacher/soft_teacher_faster_rcnn_r18_fpn_toy.py"
lr_config = dict(warmup_iters=20, step=[120])
runner = dict(max_iters=150)
checkpoint_config = dict(interval=150, max_keep_ckpts=1)
evaluation = dict(interval=150)
log_config = dict(interval=10)
