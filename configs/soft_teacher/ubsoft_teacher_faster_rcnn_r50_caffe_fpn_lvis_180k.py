# Soft-teacher baseline on LVIS v1 (1203 classes, labeled side with repeat factor sampling 0.01),
# 180k iterations on 8 GPUs x 5 images; evaluated and tested on the teacher (spec B.2, F).
# USE_FOCAL: True switches the RoI classification loss (sup and unsup) from softmax cross-entropy to
# softmax focal loss with gamma 1, the Unbiased-Teacher reading of the baseline (spec B.7).
USE_FOCAL = False
_base_ = ["base.py", "../_base_/datasets/semi_lvis.py"]
roi_cls_loss = (dict(type="SoftmaxFocalLoss", gamma=1.0, loss_weight=1.0) if USE_FOCAL
                else dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0))
model = dict(
    model=dict(roi_head=dict(bbox_head=dict(num_classes=1203, loss_cls=dict(_delete_=True, **roi_cls_loss)))),
    test_cfg=dict(inference_on="teacher"),
)
lr_config = dict(step=[140000, 160000])
