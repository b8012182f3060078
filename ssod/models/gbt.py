"""Gradient-based Thresholding (GbT): class-wise pseudo-label score thresholds (spec D).

* :func:`class_thresholds` turns per-class teacher confidences (and optionally the GbR class
  weights) into one threshold per class (D.2).
* :class:`ClassScoreTracker` keeps those per-class confidences, synchronised across ranks and
  checkpointed as buffers (D.1, with the fixes of H.4, H.7 and H.36).
* :func:`pseudo_label_mask` is the RCNN-classification pseudo-label gate (D.3 item 1).
"""
import torch
from torch import Tensor, nn

from ssod.utils.dist_utils import all_reduce_sum

SCORE_RULES = ("mean", "upstream")


def class_thresholds(score_mean: Tensor,
                     class_weights: Tensor = None,
                     tau: float = 0.9,
                     tau_lo: float = 0.5) -> Tensor:
    """Class-wise thresholds ``[C]`` from per-class mean teacher scores ``[C]`` (spec D.2).

    ``base = tau * score_mean / mean(score_mean)`` (mean over all C classes, zeros included;
    an all-zero ``score_mean`` gives ``tau`` everywhere). With ``class_weights`` (the GbR
    foreground weights, shape ``[C]``) the result is ``min(base, tau / class_weights)``, so GbT
    only lowers thresholds of classes with weight > 1. Everything is clamped to ``[tau_lo, tau]``.
    """
    if score_mean.dim() != 1:
        raise ValueError(f"score_mean must be 1-D [C], got shape {tuple(score_mean.shape)}")
    if not tau_lo <= tau:
        raise ValueError(f"tau_lo={tau_lo} must not exceed tau={tau}")
    mean = score_mean.mean()
    positive = mean > 0
    safe_mean = torch.where(positive, mean, torch.ones_like(mean))
    base = torch.where(positive, tau * score_mean / safe_mean, torch.full_like(score_mean, tau))
    if class_weights is not None:
        if class_weights.shape != score_mean.shape:
            raise ValueError(f"class_weights shape {tuple(class_weights.shape)} does not match "
                             f"score_mean shape {tuple(score_mean.shape)} "
                             "(pass the foreground weights only)")
        base = torch.minimum(base, tau / class_weights.detach().to(base))
    return base.clamp(tau_lo, tau)


def pseudo_label_mask(labels: Tensor,
                      scores: Tensor,
                      thresholds: Tensor,
                      iter_num: int,
                      warm_up_iter: int,
                      fixed_thr: float = 0.9) -> Tensor:
    """Boolean keep-mask for RCNN-classification pseudo labels (spec D.3 item 1).

    Before ``warm_up_iter``: ``score > fixed_thr``; from ``warm_up_iter`` on:
    ``score > thresholds[label]`` (strict in both cases).
    """
    if labels.shape != scores.shape:
        raise ValueError(f"labels shape {tuple(labels.shape)} != "
                         f"scores shape {tuple(scores.shape)}")
    if iter_num < warm_up_iter:
        return scores > fixed_thr
    return scores > thresholds.to(scores)[labels]


class ClassScoreTracker(nn.Module):
    """Per-class running teacher confidence ``s`` and detection count ``n`` (spec D.1).

    Both live in buffers (``score_mean`` float64, ``count`` int64), so they are checkpointed.
    Each :meth:`update` call takes the teacher detections of one iteration on this rank,
    reduces their per-class score sums and counts, all-reduces them over ranks, and applies
    the result, so every rank holds identical statistics.

    A call is applied per class c from ``k`` (detections of c in the call, over all ranks) and
    their mean ``x̄``; it depends only on the multiset of the call's scores, never on their
    order or on how they are split across ranks. It equals the per-detection rules applied to
    ``k`` detections that all score ``x̄``:

    * the first ``a = min(k, max(window - n, 0))`` go to the warm-up phase:
      ``rule='mean'`` (default): ``s <- (s*n + a*x̄) / (n + a)``, the true running mean;
      ``rule='upstream'``: ``s <- s + a*x̄/window``, upstream's ``(s*1000 + x)/1000``;
    * the other ``b = k - a`` go to the EMA phase: ``s <- m^b * s + (1 - m^b) * x̄``;
    * ``n <- n + k`` (total detections seen; the EMA phase starts once ``n >= window``).

    With one detection per call this is exactly the per-detection rule of D.1. After exactly
    ``window`` detections all scoring ``x``, ``s = x`` under both rules.
    """

    def __init__(self, num_classes: int, window: int = 1000, momentum: float = 0.999,
                 rule: str = "mean"):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if rule not in SCORE_RULES:
            raise ValueError(f"rule must be one of {SCORE_RULES}, got {rule!r}")
        self.num_classes = num_classes
        self.window = window
        self.momentum = momentum
        self.rule = rule
        self.register_buffer("score_mean", torch.zeros(num_classes, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(num_classes, dtype=torch.int64))

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, window={self.window}, "
                f"momentum={self.momentum}, rule={self.rule!r}")

    @torch.no_grad()
    def update(self, labels: Tensor, scores: Tensor) -> None:
        """Add one batch of teacher detections (labels ``[N]`` in ``0..C-1``, scores ``[N]``).

        Collective: every rank must call it once per iteration, with N >= 0. Labels outside
        ``[0, C)`` raise from ``index_add_`` (no host-device sync for a range check).
        """
        if labels.dim() != 1 or labels.shape != scores.shape:
            raise ValueError(f"labels and scores must be 1-D of equal length, got shapes "
                             f"{tuple(labels.shape)} and {tuple(scores.shape)}")
        device = self.score_mean.device
        per_detection = torch.stack(
            [scores.detach().to(device, torch.float64),
             torch.ones(scores.shape, dtype=torch.float64, device=device)], dim=1)
        call_stats = torch.zeros(self.num_classes, 2, dtype=torch.float64, device=device)
        call_stats.index_add_(0, labels.to(device, torch.long), per_detection)
        all_reduce_sum(call_stats)
        self.apply_call_statistics(call_stats[:, 0], call_stats[:, 1])

    @torch.no_grad()
    def apply_call_statistics(self, score_sums: Tensor, counts: Tensor) -> None:
        """Apply one call's (already all-reduced) per-class score sums and counts ``[C]``."""
        if score_sums.shape != (self.num_classes,) or counts.shape != (self.num_classes,):
            raise ValueError(f"expected per-class tensors of shape ({self.num_classes},), got "
                             f"{tuple(score_sums.shape)} and {tuple(counts.shape)}")
        k = counts.to(self.score_mean).round()
        x_bar = score_sums.to(self.score_mean) / k.clamp(min=1.0)
        n = self.count.to(self.score_mean)
        s = self.score_mean
        a = torch.minimum(k, (self.window - n).clamp(min=0.0))
        b = k - a
        if self.rule == "mean":
            warm = torch.where(a > 0, (s * n + a * x_bar) / (n + a).clamp(min=1.0), s)
        else:
            warm = s + a * x_bar / self.window
        decay = torch.pow(torch.full_like(b, self.momentum), b)
        self.score_mean.copy_(decay * warm + (1.0 - decay) * x_bar)
        self.count.add_(k.to(self.count.dtype))

    def thresholds(self, class_weights: Tensor = None, tau: float = 0.9,
                   tau_lo: float = 0.5) -> Tensor:
        """Class-wise thresholds ``[C]`` (float32) from the current statistics (spec D.2)."""
        return class_thresholds(self.score_mean.float(), class_weights, tau=tau, tau_lo=tau_lo)
