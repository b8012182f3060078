"""Shared2FC box head whose RoI classification loss can be GbR (spec C.1, C.5 item 8)."""
from contextlib import contextmanager

import torch
from mmcv.runner import force_fp32
from mmdet.models.builder import HEADS
from mmdet.models.losses import accuracy
from mmdet.models.roi_heads.bbox_heads import Shared2FCBBoxHead

from ssod.models.losses.gbr import CALL_TYPES, GbRLoss

PLAIN_CALL = dict(iter_num=-1, call_type='sup', grad_weight=1.0)


@HEADS.register_module(name=['GbRShared2FCBBoxHead', 'MyShared2FCBBoxHead'])
class GbRShared2FCBBoxHead(Shared2FCBBoxHead):
    """``Shared2FCBBoxHead`` that passes the per-call GbR context to a ``GbRLoss`` classification loss.

    The detector wraps each RoI loss computation in ``gbr_context(iter_num, call_type, grad_weight)``;
    outside it the loss behaves as ``iter_num = -1`` (no statistics, weights 1). With any other
    ``loss_cls`` the head is the stock parent. Test-time scoring is the parent's softmax.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._gbr_call = PLAIN_CALL

    @contextmanager
    def gbr_context(self, iter_num, call_type, grad_weight=1.0):
        """Make ``loss`` use GbR at ``iter_num`` for a 'sup'/'unsup' call with statistics weight ``grad_weight``."""
        if call_type not in CALL_TYPES:
            raise ValueError(f"gbr_context: call_type must be one of {CALL_TYPES}, got {call_type!r}")
        previous = self._gbr_call
        self._gbr_call = dict(iter_num=int(iter_num), call_type=call_type, grad_weight=float(grad_weight))
        try:
            yield self
        finally:
            self._gbr_call = previous

    @property
    def class_weights_for_thresholds(self):
        """Foreground part (length C) of the unclamped GbR weights after the last unsup call, or None."""
        if not isinstance(self.loss_cls, GbRLoss) or self.loss_cls.last_unsup_weights is None:
            return None
        return self.loss_cls.last_unsup_weights[:self.num_classes]

    @force_fp32(apply_to=('cls_score', 'bbox_pred'))
    def loss(self, cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights,
             reduction_override=None):
        """Parent losses, with ``loss_cls``/``loss_grad`` from ``GbRLoss`` under the current context.

        The GbR loss is called even for zero RoIs so that its all-reduce runs on every rank.
        """
        if not isinstance(self.loss_cls, GbRLoss):
            return super().loss(cls_score, bbox_pred, rois, labels, label_weights, bbox_targets,
                                bbox_weights, reduction_override=reduction_override)
        losses = dict()
        if cls_score is not None:
            avg_factor = max(torch.sum(label_weights > 0).float().item(), 1.)
            losses.update(self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor,
                                        reduction_override=reduction_override, **self._gbr_call))
            losses['acc'] = accuracy(cls_score, labels)
        losses.update(super().loss(None, bbox_pred, rois, labels, label_weights, bbox_targets,
                                   bbox_weights, reduction_override=reduction_override))
        return losses
