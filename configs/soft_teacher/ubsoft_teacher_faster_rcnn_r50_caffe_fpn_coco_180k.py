# Soft-teacher baseline on a COCO split, 180k iterations on 8 GPUs x 5 images.
# SPLIT: the COCO split, 1 (20 PASCAL-VOC novel classes) or 2 (40 novel classes); edit it here.
# This config inherits the fixed-split config ..._coco{SPLIT}_180k.py; scripts train those directly
# (tools/dist_train_partially.sh baseline <fold> coco1|coco2 <gpus>), so no script reads SPLIT.
# USE_FOCAL: True switches the RoI classification loss (sup and unsup) from softmax cross-entropy to
# softmax focal loss with gamma 1, the Unbiased-Teacher reading of the baseline (spec B.7).
SPLIT = 1
USE_FOCAL = False
if SPLIT not in (1, 2):
    raise ValueError(f"SPLIT = {SPLIT!r} in the COCO soft-teacher config; the COCO splits are 1 and 2")
_base_ = [f"ubsoft_teacher_faster_rcnn_r50_caffe_fpn_coco{SPLIT}_180k.py"]
roi_cls_loss = (dict(type="SoftmaxFocalLoss", gamma=1.0, loss_weight=1.0) if USE_FOCAL
                else dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0))
model = dict(model=dict(roi_head=dict(bbox_head=dict(loss_cls=dict(_delete_=True, **roi_cls_loss)))))
