"""Gradient-based Reweighting (GbR) of the RoI classification loss (spec section C).

Pure parts: ``gradient_matrix`` (per-call gradient statistics, C.2) and ``target_weights``
(one fixed-point step of the balance equations, C.4). Stateful part: ``GbRLoss``, the student's
RoI classification loss that accumulates the statistics and learns the class weights (C.3-C.7).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.builder import LOSSES
from mmdet.models.losses.utils import weight_reduce_loss

from ssod.models.losses.focal import at_least_float32, softmax_focal_loss
from ssod.utils.dist_utils import all_reduce_sum

CALL_TYPES = ('sup', 'unsup')
REDUCTIONS = (None, 'none', 'mean', 'sum')
WARMUP_MEANS = ('exact', 'upstream')


def _check_roi_inputs(name, logits, labels, label_weights):
    if logits.dim() != 2:
        raise ValueError(f"{name}: logits must be [N, K], got shape {tuple(logits.shape)}")
    num_rois, num_outputs = logits.shape
    if labels.shape != (num_rois,) or label_weights.shape != (num_rois,):
        raise ValueError(
            f"{name}: labels and label_weights must be [{num_rois}], got "
            f"{tuple(labels.shape)} and {tuple(label_weights.shape)}")
    if num_rois and (labels.min() < 0 or labels.max() >= num_outputs):
        raise ValueError(
            f"{name}: labels must lie in 0..{num_outputs - 1}, got range "
            f"[{int(labels.min())}, {int(labels.max())}]")


def _neg_loss_derivative(p: torch.Tensor, focal: bool, gamma: float) -> torch.Tensor:
    """``-dL/dp`` at the target-class probability ``p``: focal ``-(1-p)^gamma ln p``, or CE ``-ln p``."""
    if not focal or gamma == 0:
        return 1.0 / p
    one_minus_p = 1.0 - p
    if gamma != int(gamma):
        # p = softmax + eps may exceed 1; a fractional power of a negative base is undefined.
        one_minus_p = one_minus_p.clamp(min=torch.finfo(p.dtype).eps)
    return one_minus_p.pow(gamma) / p - gamma * one_minus_p.pow(gamma - 1) * torch.log(p)


def gradient_matrix(logits, labels, label_weights, focal=True, gamma=1.0, eps=1e-5) -> torch.Tensor:
    """Per-call gradient matrix ``G[K, K]``: rows = ground-truth class, columns = affected logit.

    With ``q = softmax(logits) + eps`` and ``g_n = label_weights[n] * (-dL/dp)`` at ``p = q[n, y_n]``:
    ``G[j, i] = (1/N) sum_{n: y_n=j} g_n q[n, j] q[n, i]`` off the diagonal and
    ``G[i, i] = -(1/N) sum_{n: y_n=i} g_n q[n, i] (1 - q[n, i])``. Unscaled, not reduced over ranks,
    no gradient. All N rows count; N = 0 gives zeros.
    """
    _check_roi_inputs('gradient_matrix', logits, labels, label_weights)
    if gamma < 0:
        raise ValueError(f"gradient_matrix: gamma must be >= 0, got {gamma}")
    logits = at_least_float32(logits.detach())
    num_rois, num_outputs = logits.shape
    matrix = logits.new_zeros(num_outputs, num_outputs)
    if num_rois == 0:
        return matrix
    labels = labels.long()
    q = F.softmax(logits, dim=1) + eps
    q_true = q.gather(1, labels.unsqueeze(1)).squeeze(1)
    g = label_weights.detach().to(q.dtype) * _neg_loss_derivative(q_true, focal, gamma)
    matrix.index_add_(0, labels, (g * q_true).unsqueeze(1) * q)
    positive = logits.new_zeros(num_outputs).index_add_(0, labels, g * q_true * (1.0 - q_true))
    matrix.diagonal().copy_(-positive)
    return matrix / num_rois


def target_weights(G_bar, w, lower=1 / 3, upper=5.0, eps=1e-6) -> torch.Tensor:
    """One fixed-point step of the balance equations ``(G_bar^T w)_i = 0`` (spec C.4).

    ``t = (w @ G_bar) / (-diag(G_bar) + eps) + w``; the background (last) entry is replaced by
    ``K - sum(t[:-1])``; everything is clamped to ``[lower, upper]`` and the background to ``[lower, 1]``.
    """
    if G_bar.dim() != 2 or G_bar.shape[0] != G_bar.shape[1] or w.shape != G_bar.shape[:1]:
        raise ValueError(
            f"target_weights: G_bar must be [K, K] and w [K], got {tuple(G_bar.shape)} and {tuple(w.shape)}")
    num_outputs = G_bar.shape[0]
    w = w.to(G_bar.dtype)
    targets = (w @ G_bar) / (-torch.diagonal(G_bar) + eps) + w
    foreground = targets[:-1]
    background = (num_outputs - foreground.sum()).reshape(1)
    targets = torch.cat([foreground, background]).clamp(lower, upper)
    targets[-1] = targets[-1].clamp(lower, 1.0)
    return targets


@LOSSES.register_module(name=['GbRLoss', 'GbROptim'])
class GbRLoss(nn.Module):
    """Focal/CE RoI classification loss with gradient-based class reweighting (spec C.3-C.7).

    State (all in ``state_dict``): ``G_bar`` [K, K] accumulated gradient matrix, ``theta`` [K] weight
    logits (trained by the main optimiser through ``loss_grad``), ``weights_mean`` running RoI-weight
    normaliser, ``class_weights`` [K] current weights ``w``, ``num_averaged`` number of per-call
    matrices in the exact warm-up mean. ``last_unsup_weights`` holds the unclamped ``w`` after the
    latest unsupervised call (None before the first one).
    """

    def __init__(self, num_classes, loss_weight=1.0, focal=True, gamma=1.0, beta_sup=0.5,
                 warm_up_iter=8000, ema_momentum=0.999, norm_momentum=0.999, grad_scale=100.0,
                 lower=1 / 3, upper=5.0, warmup_mean='exact', sync_weights_mean=True):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"GbRLoss: num_classes must be >= 1, got {num_classes}")
        if warmup_mean not in WARMUP_MEANS:
            raise ValueError(f"GbRLoss: warmup_mean must be one of {WARMUP_MEANS}, got {warmup_mean!r}")
        if gamma < 0:
            raise ValueError(f"GbRLoss: gamma must be >= 0, got {gamma}")
        if not 0 < lower <= 1 <= upper:
            raise ValueError(f"GbRLoss: need 0 < lower <= 1 <= upper, got lower={lower}, upper={upper}")
        for name, value in (('ema_momentum', ema_momentum), ('norm_momentum', norm_momentum)):
            if not 0 <= value < 1:
                raise ValueError(f"GbRLoss: {name} must lie in [0, 1), got {value}")
        self.num_classes = num_classes
        self.num_outputs = num_classes + 1
        self.loss_weight = loss_weight
        self.focal = focal
        self.gamma = float(gamma)
        self.beta_sup = beta_sup
        self.warm_up_iter = warm_up_iter
        self.ema_momentum = ema_momentum
        self.norm_momentum = norm_momentum
        self.grad_scale = grad_scale
        self.lower = lower
        self.upper = upper
        self.warmup_mean = warmup_mean
        self.sync_weights_mean = sync_weights_mean
        # Buffers that may legitimately differ between ranks (see RankConsistencyHook).
        self.rank_local_buffers = () if sync_weights_mean else ('weights_mean',)
        self.register_buffer('G_bar', torch.zeros(self.num_outputs, self.num_outputs))
        self.theta = nn.Parameter(torch.zeros(self.num_outputs))
        self.register_buffer('weights_mean', torch.ones(()))
        self.register_buffer('class_weights', torch.ones(self.num_outputs))
        self.register_buffer('num_averaged', torch.zeros((), dtype=torch.long))
        self.last_unsup_weights = None

    def forward(self, cls_score, labels, label_weights, iter_num=-1, call_type='sup', grad_weight=1.0,
                avg_factor=None, reduction_override=None):
        """Return ``{'loss_cls', 'loss_grad'}`` for one RoI classification call.

        ``iter_num < 0``: plain focal/CE weighted by ``label_weights`` with the caller's ``avg_factor``,
        ``loss_grad = 0``, no state change. Otherwise ``'mean'`` divides by ``#(label_weights > 0)``
        (sup) or ``max(sum(label_weights), 1)`` (unsup), and ``'none'`` returns the weighted per-RoI
        losses. ``grad_weight`` scales only the gradient statistics, never the returned losses.
        """
        if call_type not in CALL_TYPES:
            raise ValueError(f"GbRLoss: call_type must be one of {CALL_TYPES}, got {call_type!r}")
        if reduction_override not in REDUCTIONS:
            raise ValueError(
                f"GbRLoss: reduction_override must be one of {REDUCTIONS}, got {reduction_override!r}")
        if label_weights is None:
            label_weights = cls_score.new_ones(cls_score.shape[0])
        _check_roi_inputs('GbRLoss', cls_score, labels, label_weights)
        reduction = reduction_override or 'mean'
        label_weights = label_weights.detach().float()
        roi_losses = softmax_focal_loss(cls_score, labels, self.gamma if self.focal else 0.0)
        if iter_num < 0:
            loss_cls = weight_reduce_loss(roi_losses, label_weights, reduction=reduction, avg_factor=avg_factor)
            return {'loss_cls': self.loss_weight * loss_cls, 'loss_grad': self.theta.sum() * 0}

        beta = self.beta_sup if call_type == 'sup' else 1.0
        raw = self.class_weights.clamp(self.lower, self.upper)[labels.long()].pow(beta)
        statistics = gradient_matrix(cls_score, labels, label_weights, focal=self.focal, gamma=self.gamma)
        statistics, raw_sum, raw_count = self._reduce(statistics * (grad_weight * self.grad_scale), raw)
        self._update_weights_mean(raw_sum, raw_count)
        weighted_losses = (label_weights * raw / self.weights_mean).detach() * roi_losses
        if reduction == 'none':
            loss_cls = weighted_losses
        elif reduction == 'sum':
            loss_cls = weighted_losses.sum()
        else:
            loss_cls = weighted_losses.sum() / self._normaliser(label_weights, call_type)

        self._accumulate(statistics, iter_num)
        if iter_num > self.warm_up_iter:
            targets = target_weights(self.G_bar, self.class_weights, lower=self.lower, upper=self.upper)
            loss_grad = ((targets.log().detach() - self.theta) ** 2).mean()
        else:
            loss_grad = self.theta.sum() * 0
        if call_type == 'unsup':
            self.last_unsup_weights = self.class_weights.detach().clone()
        return {'loss_cls': self.loss_weight * loss_cls, 'loss_grad': loss_grad}

    @torch.no_grad()
    def _reduce(self, statistics, raw):
        """Sum the call's gradient matrix over ranks, and with ``sync_weights_mean`` the RoI weight
        sum and count too (one all-reduce); returns ``(statistics, raw_sum, raw_count)``."""
        raw_sum = raw.sum().to(statistics.dtype).reshape(1)
        raw_count = raw.new_full((1,), raw.numel(), dtype=statistics.dtype)
        if not self.sync_weights_mean:
            return all_reduce_sum(statistics), raw_sum[0], raw_count[0]
        reduced = all_reduce_sum(torch.cat([statistics.flatten(), raw_sum, raw_count]))
        return reduced[:-2].view_as(statistics), reduced[-2], reduced[-1]

    @torch.no_grad()
    def _update_weights_mean(self, raw_sum, raw_count):
        """``m <- momentum * m + (1 - momentum) * mean(r)`` over the call's RoIs (all ranks' with
        ``sync_weights_mean``, else this rank's as the reference); unchanged when there are none."""
        updated = self.weights_mean * self.norm_momentum + (1 - self.norm_momentum) * raw_sum / raw_count.clamp(min=1)
        self.weights_mean.copy_(torch.where(raw_count > 0, updated, self.weights_mean))

    @staticmethod
    def _normaliser(label_weights, call_type):
        if call_type == 'sup':
            return (label_weights > 0).sum().clamp(min=1).float()
        return label_weights.sum().clamp(min=1.0)

    @torch.no_grad()
    def _accumulate(self, statistics, iter_num):
        """Fold one call's (scaled, reduced) matrix into ``G_bar``; after warm-up refresh ``w``."""
        statistics = statistics.to(self.G_bar.dtype)
        if iter_num < self.warm_up_iter:
            if self.warmup_mean == 'exact':
                self.G_bar.add_((statistics - self.G_bar) / (self.num_averaged + 1))
                self.num_averaged.add_(1)
            else:
                self.G_bar.copy_((self.G_bar * iter_num + statistics) / (iter_num + 1))
            return
        self.G_bar.copy_(self.G_bar * self.ema_momentum + statistics * (1 - self.ema_momentum))
        self.class_weights.copy_(self.num_outputs * torch.softmax(self.theta.detach(), dim=0))

    def extra_repr(self):
        return (f"num_classes={self.num_classes}, focal={self.focal}, gamma={self.gamma}, "
                f"beta_sup={self.beta_sup}, warm_up_iter={self.warm_up_iter}, warmup_mean={self.warmup_mean!r}")
