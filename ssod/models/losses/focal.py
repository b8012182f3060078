"""Softmax focal loss over K = C + 1 classes (background last), as used for the RoI classifier."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.builder import LOSSES
from mmdet.models.losses.utils import weight_reduce_loss


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32, or unchanged if it is already float64 (half precision is too coarse here)."""
    return x if x.dtype == torch.float64 else x.float()


def softmax_focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-RoI focal loss ``(1 - p_y)^gamma * (-ln p_y)`` with ``p = softmax(logits)``.

    ``logits`` is ``[N, K]``, ``labels`` is ``[N]`` in ``0..K-1``; ``gamma = 0`` gives cross-entropy.
    Computed in float32 (or float64 for float64 input); returns ``[N]``.
    """
    if gamma < 0:
        raise ValueError(f"softmax_focal_loss: gamma must be >= 0, got {gamma}")
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"softmax_focal_loss: expected logits [N, K] and labels [N], got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    log_probs = F.log_softmax(at_least_float32(logits), dim=1)
    log_p = log_probs.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    if gamma == 0:
        return -log_p
    one_minus_p = -torch.expm1(log_p)
    return one_minus_p.pow(gamma) * (-log_p)


@LOSSES.register_module()
class SoftmaxFocalLoss(nn.Module):
    """Softmax focal loss with mmdet's ``CrossEntropyLoss`` call interface (usable as ``loss_cls``)."""

    def __init__(self, gamma: float = 1.0, loss_weight: float = 1.0, reduction: str = 'mean'):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"SoftmaxFocalLoss: gamma must be >= 0, got {gamma}")
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"SoftmaxFocalLoss: reduction must be none/mean/sum, got {reduction!r}")
        self.gamma = float(gamma)
        self.loss_weight = loss_weight
        self.reduction = reduction

    def forward(self, cls_score, label, weight=None, avg_factor=None, reduction_override=None):
        if reduction_override not in (None, 'none', 'mean', 'sum'):
            raise ValueError(f"SoftmaxFocalLoss: bad reduction_override {reduction_override!r}")
        reduction = reduction_override or self.reduction
        loss = softmax_focal_loss(cls_score, label, self.gamma)
        if weight is not None:
            weight = weight.float()
        return self.loss_weight * weight_reduce_loss(
            loss, weight=weight, reduction=reduction, avg_factor=avg_factor)
