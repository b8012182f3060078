# `make demo`, stage 1: a supervised burn-in on the toy labeled split; both semi-supervised
# models of the demo start from it (teacher = student = this model), as Unbiased Teacher does.
_base_ = "../baseline/faster_rcnn_r18_fpn_toy_sup.py"
lr_config = dict(warmup_iters=50, step=[250])
runner = dict(max_iters=300)
checkpoint_config = dict(interval=300, max_keep_ckpts=1)
evaluation = dict(interval=300)
