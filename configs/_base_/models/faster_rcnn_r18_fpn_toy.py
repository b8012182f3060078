# A small Faster R-CNN for the toy data and CPU runs: the R50 model's heads, anchors, assigners and
# coders with a ResNet-18 backbone with GroupNorm (no BN running statistics, so an EMA teacher of the
# parameters alone is a complete model), random init, 128-channel FPN, 256-wide box head, smaller
# anchors for the small objects, fewer sampled RoIs and proposals.
_base_ = "faster_rcnn_r50_caffe_fpn.py"
norm_cfg = dict(type="GN", num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(_delete_=True, type="ResNet", depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
                  frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, style="pytorch", init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128, norm_cfg=norm_cfg),
    rpn_head=dict(in_channels=128, feat_channels=128, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256, num_classes=8)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=600, max_per_img=200),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(max_per_img=50)))
