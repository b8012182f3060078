"""Softmax focal loss: hand values, CE limit, derivative, mmdet loss interface (spec B.7)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.builder import HEADS, LOSSES

from ssod.models.losses.focal import SoftmaxFocalLoss, softmax_focal_loss

# softmax([0, ln 3]) = [1/4, 3/4]
LOGITS = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
LABELS = torch.tensor([1, 0])


@pytest.mark.parametrize('gamma, expected', [
    (0.0, [-math.log(0.75), math.log(4.0)]),
    (1.0, [0.25 * -math.log(0.75), 0.75 * math.log(4.0)]),
    (2.0, [0.0625 * -math.log(0.75), 0.5625 * math.log(4.0)]),
])
def test_hand_values(gamma, expected):
    loss = softmax_focal_loss(LOGITS, LABELS, gamma)
    assert torch.allclose(loss, torch.tensor(expected), rtol=1e-6)


def test_gamma_zero_is_cross_entropy():
    logits = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * 3
    labels = torch.randint(0, 7, (50,), generator=torch.Generator().manual_seed(1))
    expected = F.cross_entropy(logits, labels, reduction='none')
    assert torch.allclose(softmax_focal_loss(logits, labels, 0.0), expected, atol=1e-6)


@pytest.mark.parametrize('gamma', [1.0, 2.0])
def test_derivative_wrt_true_logit_matches_finite_difference(gamma):
    logits = torch.tensor([[0.3, -1.2, 2.0, 0.1]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([2])
    softmax_focal_loss(logits, labels, gamma).sum().backward()
    step = 1e-6
    for i in range(4):
        plus, minus = logits.detach().clone(), logits.detach().clone()
        plus[0, i] += step
        minus[0, i] -= step
        numeric = (softmax_focal_loss(plus, labels, gamma) - softmax_focal_loss(minus, labels, gamma)) / (2 * step)
        assert logits.grad[0, i].item() == pytest.approx(numeric.item(), rel=1e-6, abs=1e-9)


def test_dtypes_and_confident_rois():
    half = LOGITS.half()
    assert softmax_focal_loss(half, LABELS, 1.0).dtype == torch.float32
    assert softmax_focal_loss(LOGITS.double(), LABELS, 1.0).dtype == torch.float64
    confident = torch.tensor([[60.0, 0.0]], requires_grad=True)
    loss = softmax_focal_loss(confident, torch.tensor([0]), 1.0)
    loss.sum().backward()
    assert loss.item() == 0.0 and torch.isfinite(confident.grad).all()


def test_bad_input_raises():
    with pytest.raises(ValueError, match='gamma'):
        softmax_focal_loss(LOGITS, LABELS, -1.0)
    with pytest.raises(ValueError, match='labels'):
        softmax_focal_loss(LOGITS, torch.tensor([0, 1, 1]), 1.0)
    with pytest.raises(ValueError, match='reduction'):
        SoftmaxFocalLoss(reduction='avg')


def test_module_reductions_match_hand_values():
    per_roi = torch.tensor([0.25 * -math.log(0.75), 0.75 * math.log(4.0)])
    weight = torch.tensor([2.0, 0.5])
    loss = SoftmaxFocalLoss(gamma=1.0, loss_weight=3.0)
    assert loss(LOGITS, LABELS).item() == pytest.approx(3.0 * per_roi.mean().item(), rel=1e-6)
    weighted = per_roi * weight
    assert loss(LOGITS, LABELS, weight, avg_factor=4.0).item() == pytest.approx(
        3.0 * weighted.sum().item() / 4.0, rel=1e-6)
    assert loss(LOGITS, LABELS, weight, reduction_override='sum').item() == pytest.approx(
        3.0 * weighted.sum().item(), rel=1e-6)
    assert torch.allclose(loss(LOGITS, LABELS, weight, reduction_override='none'), 3.0 * weighted, rtol=1e-6)


def test_registered_and_usable_as_stock_box_head_loss():
    assert LOSSES.get('SoftmaxFocalLoss') is SoftmaxFocalLoss
    head = HEADS.build(dict(
        type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8, roi_feat_size=2, num_classes=3,
        loss_cls=dict(type='SoftmaxFocalLoss', gamma=1.0, loss_weight=1.0)))
    cls_score = torch.randn(6, 4, generator=torch.Generator().manual_seed(3))
    bbox_pred = torch.randn(6, 12)
    labels = torch.tensor([0, 1, 2, 3, 3, 3])
    label_weights = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    rois = torch.zeros(6, 5)
    losses = head.loss(cls_score, bbox_pred, rois, labels, label_weights,
                       torch.zeros(6, 4), torch.ones(6, 4))
    expected = (softmax_focal_loss(cls_score, labels, 1.0) * label_weights).sum() / 5.0
    assert losses['loss_cls'].item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(losses) == {'loss_cls', 'acc', 'loss_bbox'}
