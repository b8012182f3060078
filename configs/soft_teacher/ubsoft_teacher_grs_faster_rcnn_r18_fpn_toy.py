# CI-SSOD (GbR + GbT + CrS) on the toy dataset: CPU-sized version of the COCO GrS config.
# Warm-ups and intervals are scaled to the 600-iteration run so that every module acts:
# GbR reweights from t > 100, class-wise thresholds from t >= 150, pseudo labels are dumped
# from t > 150, saved at t = 1, 51, 101, ... and turned into CrS repeat factors at t = 101, 201, ...
_base_ = "soft_teacher_faster_rcnn_r18_fpn_toy.py"
num_classes = 8
model = dict(
    type="SoftTeacherGrS",
    model=dict(roi_head=dict(bbox_head=dict(
        type="GbRShared2FCBBoxHead",
        loss_cls=dict(_delete_=True, type="GbRLoss", num_classes=num_classes, loss_weight=1.0, focal=True,
                      gamma=1.0, beta_sup=0.5, warm_up_iter=100)))),
    train_cfg=dict(GbT=True, alpha=0.5, max_iter=None, warm_up_iter=150, score_rule="mean"),
)
data = dict(train=dict(
    sup=dict(_delete_=True, type="ClassBalancedDatasetRFS", oversample_thr=0.1, dataset={{_base_.data.train.sup}}),
    unsup=dict(_delete_=True, type="ClassBalancedDatasetCrS", dataset={{_base_.data.train.unsup}}),
))
custom_hooks = [
    dict(type="SetIterNumHook"),
    dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0),
    dict(type="GradientResamplingHook", save_interval=50, update_iter=100),
]
