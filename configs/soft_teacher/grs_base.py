# CI-SSOD (GrS: gradient-based reweighting GbR, thresholding GbT and class-rebalancing sampling CrS)
# on the soft teacher, Faster R-CNN R50 caffe FPN (spec C-F, Appendix 2): the dataset-independent part.
# The setting configs (grs_coco.py for both COCO splits, ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_lvis_180k.py,
# ..._object365_360k.py) add the data and set every setting-dependent value themselves: num_classes
# (head and GbR loss), GbR beta_sup / warm_up_iter, GbT, alpha, warm_up_iter, max_iter, the CrS hook's
# update_iter, the labeled RFS threshold and the schedule. The base config's SoftTeacher train_cfg
# (0.5 / 0.9 / 0.9 / 0.02 thresholds, 10 jitters, unsup_weight 4) and fp16 stay as they are.
_base_ = "base.py"
model = dict(
    type="SoftTeacherGrS",
    model=dict(roi_head=dict(bbox_head=dict(
        type="GbRShared2FCBBoxHead",
        # RoI classification (sup and unsup): softmax focal loss with gamma 1 over C + 1 classes,
        # reweighted by GbR (spec B.7, C). num_classes 80 is the model base's; the settings set theirs.
        loss_cls=dict(_delete_=True, type="GbRLoss", num_classes=80, loss_weight=1.0, focal=True, gamma=1.0)))),
    # score_rule "mean": true running mean of the teacher scores during the GbT statistics warm-up
    # ("upstream" reproduces the reference code's rule, spec D.1).
    train_cfg=dict(score_rule="mean"),
    test_cfg=dict(inference_on="teacher"),
)
