# `make demo`, stage 2c: CI-SSOD (GbR + GbT + CrS), started from the same burn-in.
# Scaled to 150 iterations: GbR reweights from t > 30, class-wise thresholds and pseudo-label
# dumping from t = 50, saves at t = 1, 26, 51, ..., CrS repeat factors refreshed at t = 51, 101.
_base_ = "../soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"
# unsup_weight 1: the soft teacher's setting (soft_teacher_finetune.py)
model = dict(model=dict(roi_head=dict(bbox_head=dict(loss_cls=dict(warm_up_iter=30)))),
             train_cfg=dict(warm_up_iter=50, unsup_weight=1.0))
custom_hooks = [
    dict(type="SetIterNumHook"),
    dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0),
    dict(type="GradientResamplingHook", save_interval=25, update_iter=50),
    # the teacher's pseudo-label precision / recall on 64 unlabeled images with ground truth (toy only)
    dict(type="PseudoLabelQualityHook", interval=150, num_images=64,
         dataset=dict(type="CocoDataset", classes={{_base_.classes}}, pipeline={{_base_.test_pipeline}},
                      ann_file="dataset/toy/annotations/instances_train_unlabel.json",
                      img_prefix="dataset/toy/train/")),
]
# 2 labeled + 2 unlabeled images per iteration, fixed: the control sees the same 2 labeled images
data = dict(samples_per_gpu=4, sampler=dict(train=dict(sample_ratio=[1, 1], by_prob=False)))
# continue at the burn-in's final learning rate (no restart at 0.02: see docs/toy_protocol.md)
optimizer = dict(lr=0.002)
lr_config = dict(_delete_=True, policy="fixed")
runner = dict(max_iters=150)
checkpoint_config = dict(interval=150, max_keep_ckpts=1)
evaluation = dict(interval=150)
log_config = dict(interval=10)
