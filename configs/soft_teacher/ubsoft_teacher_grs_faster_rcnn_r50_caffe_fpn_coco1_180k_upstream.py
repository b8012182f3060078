# Upstream-exact preset of ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco1_180k.py (COCO split 1): that
# config with every documented deviation from the reference code switched back to the reference's
# behaviour (README "Differences from the reference code"); nothing else differs. GbT stays True, as in
# the reference's COCO GrS config.
_base_ = "ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco1_180k.py"
model = dict(
    # GbR: warm-up mean (H.18); the RoI-weight normaliser per rank, not over all ranks (H.5)
    model=dict(roi_head=dict(bbox_head=dict(loss_cls=dict(warmup_mean="upstream", sync_weights_mean=False)))),
    train_cfg=dict(score_rule="upstream"),  # GbT score statistics: (s * 1000 + x) / 1000 (H.17)
)
# unlabeled images without (hidden) ground truth are dropped, as the reference did (H.30)
data = dict(train=dict(unsup=dict(dataset=dict(filter_empty_gt=True))))
# CrS: refresh the repeat factors before the same iteration's pseudo-label save (H.26). mmcv replaces a
# list whole, so the parent's hooks are restated with that one switch added.
custom_hooks = [
    dict(type="SetIterNumHook"),
    dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0),
    dict(type="GradientResamplingHook", save_interval=4000, update_iter=16000, upstream_order=True),
]
