# Soft-teacher baseline on COCO split 2 (40 novel classes), 180k iterations on 8 GPUs x 5 images.
# The fixed-split config that scripts use (tools/dist_train_partially.sh baseline <fold> coco2 <gpus>);
# ubsoft_teacher_faster_rcnn_r50_caffe_fpn_coco_180k.py selects a split by its SPLIT line instead.
# USE_FOCAL: True switches the RoI classification loss (sup and unsup) from softmax cross-entropy to
# softmax focal loss with gamma 1, the Unbiased-Teacher reading of the baseline (spec B.7).
USE_FOCAL = False
_base_ = ["base.py", "../_base_/datasets/semi_coco_split2.py"]
roi_cls_loss = (dict(type="SoftmaxFocalLoss", gamma=1.0, loss_weight=1.0) if USE_FOCAL
                else dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0))
model = dict(model=dict(roi_head=dict(bbox_head=dict(num_classes=80, loss_cls=dict(_delete_=True, **roi_cls_loss)))))
