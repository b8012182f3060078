# Soft-teacher baseline on COCO -> Objects365 (365 classes), 360k iterations on 8 GPUs x 5 images,
# evaluated every 40k iterations (spec F). Labeled side: COCO train2017 mapped into Objects365 plus the
# labeled Objects365 subset (one concatenated dataset, see _base_/datasets/semi_object365.py).
# USE_FOCAL: True switches the RoI classification loss (sup and unsup) from softmax cross-entropy to
# softmax focal loss with gamma 1, the Unbiased-Teacher reading of the baseline (spec B.7).
USE_FOCAL = False
_base_ = ["base.py", "../_base_/datasets/semi_object365.py"]
roi_cls_loss = (dict(type="SoftmaxFocalLoss", gamma=1.0, loss_weight=1.0) if USE_FOCAL
                else dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0))
model = dict(model=dict(roi_head=dict(bbox_head=dict(num_classes=365, loss_cls=dict(_delete_=True, **roi_cls_loss)))))
lr_config = dict(step=[280000, 320000])
runner = dict(max_iters=360000)
evaluation = dict(interval=40000)
