# CI-SSOD's own supervised burn-in: stage 1 with CI-SSOD's supervised parts, i.e. the GbR box head
# (focal loss; weights 1 and no statistics outside the semi-supervised model) and the labeled
# repeat-factor sampling of the GrS configs. The soft teacher and the control start from
# supervised_burn_in.py, whose supervised parts are theirs (cross-entropy, plain sampling).
_base_ = "supervised_burn_in.py"
model = dict(roi_head=dict(bbox_head=dict(
    type="GbRShared2FCBBoxHead",
    loss_cls=dict(_delete_=True, type="GbRLoss", num_classes=8, loss_weight=1.0, focal=True,
                  gamma=1.0, beta_sup=0.5, warm_up_iter=100))))
data = dict(train=dict(_delete_=True, type="ClassBalancedDatasetRFS", oversample_thr=0.1,
                       dataset={{_base_.data.train}}))
