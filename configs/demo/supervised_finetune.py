# `make demo`, stage 2a: the supervised control. The burn-in trained on with the labeled data
# only, for the same iterations, schedule and labeled images per iteration as the two
# semi-supervised models (which add unlabeled images on top).
_base_ = "supervised_burn_in.py"
# continue at the burn-in's final learning rate (no restart at 0.02: see docs/toy_protocol.md)
optimizer = dict(lr=0.002)
lr_config = dict(_delete_=True, policy="fixed")
runner = dict(max_iters=150)
data = dict(samples_per_gpu=2)  # the semi-supervised models' labeled images per iteration
checkpoint_config = dict(interval=150, max_keep_ckpts=1)
evaluation = dict(interval=150)
log_config = dict(interval=10)
