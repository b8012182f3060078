# `make demo`, stage 2b: the soft-teacher baseline, started from the burn-in (--load-from).
_base_ = "../soft_teacher/soft_teacher_faster_rcnn_r18_fpn_toy.py"
# the unlabeled loss at the labeled loss's weight (the reference: 4 on COCO at 1-10 % labeled); at 4
# its pseudo-label errors outweigh the labeled signal on the toy data (docs/toy_protocol.md, section 2)
model = dict(train_cfg=dict(unsup_weight=1.0))
# 2 labeled + 2 unlabeled images per iteration, fixed: the control sees the same 2 labeled images
data = dict(samples_per_gpu=4, sampler=dict(train=dict(sample_ratio=[1, 1], by_prob=False)))
# continue at the burn-in's final learning rate (no restart at 0.02: see docs/toy_protocol.md)
optimizer = dict(lr=0.002)
lr_config = dict(_delete_=True, policy="fixed")
runner = dict(max_iters=150)
checkpoint_config = dict(interval=150, max_keep_ckpts=1)
evaluation = dict(interval=150)
log_config = dict(interval=10)
custom_hooks = [
    dict(type="SetIterNumHook"),
    dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0),
    # the teacher's pseudo-label precision / recall on 64 unlabeled images with ground truth (toy only)
    dict(type="PseudoLabelQualityHook", interval=150, num_images=64,
         dataset=dict(type="CocoDataset", classes={{_base_.classes}}, pipeline={{_base_.test_pipeline}},
                      ann_file="dataset/toy/annotations/instances_train_unlabel.json",
                      img_prefix="dataset/toy/train/")),
]
