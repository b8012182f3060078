"""GbR: gradient statistics, target weights, the stateful loss and the box head (spec I.1, I.2)."""
import io
import math

import pytest
import torch
import torch.distributed as dist
from mmdet.models.builder import HEADS, LOSSES

import ssod.models.losses.gbr as gbr
from ssod.models.gbr_bbox_head import GbRShared2FCBBoxHead
from ssod.models.losses.focal import softmax_focal_loss
from ssod.models.losses.gbr import GbRLoss, gradient_matrix, target_weights


def random_rois(num_rois, num_outputs, seed, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(num_rois, num_outputs, generator=gen) * 2).to(dtype)
    labels = torch.randint(0, num_outputs, (num_rois,), generator=gen)
    weights = torch.rand(num_rois, generator=gen).to(dtype) + 0.1
    return logits, labels, weights


def reference_matrix(logits, labels, weights, gamma=1.0, focal=True, eps=1e-5):
    """Loop over RoIs, straight from the definitions of spec C.2 (pos/neg magnitudes)."""
    num_rois, num_outputs = logits.shape
    q = torch.softmax(logits.double(), dim=1) + eps
    matrix = torch.zeros(num_outputs, num_outputs, dtype=torch.float64)
    for n in range(num_rois):
        j = int(labels[n])
        p = q[n, j]
        if focal:
            g = (1 - p) ** gamma / p - gamma * (1 - p) ** (gamma - 1) * torch.log(p)
        else:
            g = 1 / p
        g = g * float(weights[n])
        for i in range(num_outputs):
            matrix[j, i] += -g * p * (1 - p) if i == j else g * p * q[n, i]
    return matrix / num_rois


def imbalance_rois(counts, true_logit=2.0):
    labels = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)])
    logits = torch.zeros(len(labels), len(counts))
    logits[torch.arange(len(labels)), labels] = true_logit
    return logits, labels, torch.ones(len(labels))


# ----------------------------------------------------------------------------- I.1 statistics

@pytest.mark.parametrize('gamma, focal', [(1.0, True), (2.0, True), (0.5, True), (1.0, False)])
def test_gradient_matrix_matches_loop_reference(gamma, focal):
    logits, labels, weights = random_rois(37, 5, seed=0)
    expected = reference_matrix(logits, labels, weights, gamma=gamma, focal=focal)
    got = gradient_matrix(logits, labels, weights, focal=focal, gamma=gamma)
    assert got.shape == (5, 5)
    assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-7)


def test_row_identity_and_sign_structure():
    logits, labels, weights = random_rois(300, 6, seed=1)
    labels[labels == 4] = 0  # class 4 is absent
    matrix = gradient_matrix(logits, labels, weights)
    off_diagonal = matrix - torch.diag(matrix.diagonal())
    for j in labels.unique().tolist():
        assert off_diagonal[j].sum().item() == pytest.approx(-matrix[j, j].item(), rel=1e-4)
    assert (off_diagonal >= 0).all() and (matrix.diagonal() <= 0).all()
    assert torch.count_nonzero(matrix[4]) == 0 and matrix[4].sum() == 0


def test_linear_in_label_weights_and_in_loss_scaling():
    logits, labels, weights = random_rois(80, 4, seed=2)
    base = gradient_matrix(logits, labels, weights)
    assert torch.allclose(gradient_matrix(logits, labels, 2 * weights), 2 * base, rtol=1e-6)
    loss = GbRLoss(num_classes=3, warm_up_iter=100)
    loss(logits, labels, weights, iter_num=0, call_type='unsup', grad_weight=4.0)
    assert torch.allclose(loss.G_bar, 4.0 * 100.0 * base, rtol=1e-6)


@pytest.mark.parametrize('num_rois', [1, 37, 64, 100, 200])
def test_all_rois_count_for_any_n(num_rois):
    logits, labels, weights = random_rois(num_rois, 5, seed=num_rois)
    got = gradient_matrix(logits, labels, weights)
    assert torch.allclose(got.double(), reference_matrix(logits, labels, weights), rtol=1e-5, atol=1e-7)
    cuts = [0, num_rois // 3, num_rois // 2 + 1, num_rois]
    combined = sum((b - a) / num_rois * gradient_matrix(logits[a:b], labels[a:b], weights[a:b])
                   for a, b in zip(cuts[:-1], cuts[1:]) if b > a)
    assert torch.allclose(combined, got, rtol=1e-5, atol=1e-8)


def test_empty_call_gives_zeros_and_bad_labels_raise():
    assert torch.equal(gradient_matrix(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), torch.zeros(0)),
                       torch.zeros(3, 3))
    confident = gradient_matrix(torch.tensor([[50.0, 0.0, 0.0]]), torch.tensor([0]), torch.ones(1), gamma=0.5)
    assert torch.isfinite(confident).all() and confident.abs().max() < 1e-6
    with pytest.raises(ValueError, match='labels must lie in 0..2'):
        gradient_matrix(torch.zeros(2, 3), torch.tensor([0, 3]), torch.ones(2))
    with pytest.raises(ValueError, match='label_weights'):
        gradient_matrix(torch.zeros(2, 3), torch.tensor([0, 1]), torch.ones(3))


def neg_derivative_from_matrix(p_true, focal, gamma):
    """Recover g from a single RoI (weight 1, eps=0): G[y, y] = -g p (1 - p)."""
    logits = torch.tensor([[math.log(p_true), math.log((1 - p_true) / 2), math.log((1 - p_true) / 2)]],
                          dtype=torch.float64)
    matrix = gradient_matrix(logits, torch.tensor([0]), torch.ones(1, dtype=torch.float64),
                             focal=focal, gamma=gamma, eps=0.0)
    return -matrix[0, 0].item() / (p_true * (1 - p_true))


@pytest.mark.parametrize('gamma', [1.0, 2.0])
@pytest.mark.parametrize('p_true', [0.05, 0.4, 0.9])
def test_focal_derivative_finite_difference(gamma, p_true):
    def focal(p):
        return -((1 - p) ** gamma) * math.log(p)
    step = 1e-6
    numeric = -(focal(p_true + step) - focal(p_true - step)) / (2 * step)
    assert neg_derivative_from_matrix(p_true, True, gamma) == pytest.approx(numeric, rel=1e-6)


def test_cross_entropy_derivative_is_one_over_p():
    for p_true in (0.05, 0.4, 0.9):
        assert neg_derivative_from_matrix(p_true, False, 1.0) == pytest.approx(1 / p_true, rel=1e-9)
    logits, labels, weights = random_rois(20, 4, seed=3)
    q = torch.softmax(logits, 1) + 1e-5
    q_true = q[torch.arange(20), labels]
    matrix = gradient_matrix(logits, labels, weights, focal=False)
    expected = -torch.zeros(4).index_add_(0, labels, weights / q_true * q_true * (1 - q_true)) / 20
    assert torch.allclose(matrix.diagonal(), expected, rtol=1e-5)


@pytest.mark.parametrize('gamma, focal', [(1.0, True), (2.0, True), (0.0, False)])
def test_gradient_matrix_equals_autograd(gamma, focal):
    logits, labels, weights = random_rois(45, 5, seed=4, dtype=torch.float64)
    logits.requires_grad_(True)
    loss = (weights * softmax_focal_loss(logits, labels, gamma if focal else 0.0)).sum() / 45
    (grad,) = torch.autograd.grad(loss, logits)
    # row j of G = sum of dL/dz over the RoIs of class j: diagonal = -pos, off-diagonal = neg
    by_class = torch.zeros(5, 5, dtype=torch.float64).index_add_(0, labels, grad)
    exact = gradient_matrix(logits, labels, weights, focal=focal, gamma=gamma, eps=0.0)
    assert torch.allclose(exact, by_class, rtol=1e-9, atol=1e-12)
    perturbed = gradient_matrix(logits, labels, weights, focal=focal, gamma=gamma)
    assert torch.allclose(perturbed, by_class, rtol=1e-3, atol=1e-5)


# ----------------------------------------------------------------------------- I.2 targets

def test_imbalance_case_from_spec():
    # all RoIs: logit 2 on the true class, 0 elsewhere. With p = e^2/(e^2+4), q_o = 1/(e^2+4) and
    # 1 - p = 4 q_o, the raw target is t_i = sum_{j!=i} n_j q_o / (n_i (1 - p)) = (4360 - n_i) / (4 n_i).
    logits, labels, weights = imbalance_rois([1000, 300, 50, 10, 3000])
    stats = 100.0 * gradient_matrix(logits, labels, weights)
    raw = (torch.ones(5) @ stats) / (-stats.diagonal() + 1e-6) + 1
    assert torch.allclose(raw[:4], torch.tensor([3360 / 4000, 4060 / 1200, 4310 / 200, 4350 / 40]), rtol=2e-4)
    targets = target_weights(stats, torch.ones(5))
    assert torch.allclose(targets, torch.tensor([0.84, 4060 / 1200, 5.0, 5.0, 1 / 3]), rtol=2e-4)
    assert targets[0] < targets[1] < targets[2] <= targets[3]


def test_balanced_targets_are_one():
    logits, labels, weights = imbalance_rois([200] * 5, true_logit=1.5)
    targets = target_weights(100.0 * gradient_matrix(logits, labels, weights), torch.ones(5))
    assert torch.allclose(targets, torch.ones(5), atol=1e-3)


def test_targets_within_bounds_and_inputs_untouched():
    for seed in range(5):
        logits, labels, weights = random_rois(120, 6, seed=seed)
        stats = 100.0 * gradient_matrix(logits, labels, weights)
        w = torch.rand(6, generator=torch.Generator().manual_seed(seed)) * 6
        stats_before, w_before = stats.clone(), w.clone()
        targets = target_weights(stats, w)
        assert (targets >= 1 / 3 - 1e-7).all() and (targets <= 5.0).all() and targets[-1] <= 1.0
        assert torch.equal(stats, stats_before) and torch.equal(w, w_before)


def test_background_target_from_sum_constraint():
    # weights ones, eps 0: t_0 = (-1 + .6 + .6)/1 + 1 = 1.2, t_1 = (.7 - 2 + 1.1)/2 + 1 = 0.9,
    # background = 3 - 2.1 = 0.9 (its own equation would give 0.85)
    stats = torch.tensor([[-1.0, 0.7, 0.3], [0.6, -2.0, 1.4], [0.6, 1.1, -2.0]])
    assert torch.allclose(target_weights(stats, torch.ones(3), eps=0.0), torch.tensor([1.2, 0.9, 0.9]), rtol=1e-6)
    # t_0 = 1.0, t_1 = 0.9 -> background 1.1 is clamped to 1
    stats[1, 0] = stats[2, 0] = 0.5
    assert torch.allclose(target_weights(stats, torch.ones(3), eps=0.0), torch.tensor([1.0, 0.9, 1.0]), rtol=1e-6)


def test_balanced_solution_is_fixed_point():
    # w = [1.5, 1.0, 0.5] sums to K = 3; choose off-diagonals, set the diagonal so (G^T w)_i = 0
    w = torch.tensor([1.5, 1.0, 0.5], dtype=torch.float64)
    stats = torch.tensor([[0.0, 0.4, 0.2], [0.3, 0.0, 0.6], [0.9, 0.1, 0.0]], dtype=torch.float64)
    for i in range(3):
        stats[i, i] = -(w @ stats[:, i]) / w[i]
    assert torch.allclose(w @ stats, torch.zeros(3, dtype=torch.float64), atol=1e-15)
    assert torch.allclose(target_weights(stats, w), w, rtol=1e-5)


def test_unseen_class_gets_upper_bound():
    logits, labels, weights = imbalance_rois([400, 0, 300, 1000])
    stats = 100.0 * gradient_matrix(logits, labels, weights)
    assert stats[1, 1] == 0 and stats[:, 1].sum() > 0
    assert target_weights(stats, torch.ones(4))[1].item() == 5.0


# ----------------------------------------------------------------------------- I.2 stateful loss

def test_warm_up_exact_mean_then_ema():
    loss = GbRLoss(num_classes=3, warm_up_iter=3)
    per_call = []
    for step in range(3):
        for call, lam in (('sup', 1.0), ('unsup', 4.0)):
            logits, labels, weights = random_rois(50, 4, seed=10 * step + int(lam))
            out = loss(logits, labels, weights, iter_num=step, call_type=call, grad_weight=lam)
            per_call.append(lam * 100.0 * gradient_matrix(logits, labels, weights))
            assert out['loss_grad'].item() == 0.0 and torch.equal(loss.class_weights, torch.ones(4))
    assert torch.allclose(loss.G_bar, torch.stack(per_call).mean(0), rtol=1e-5)
    assert int(loss.num_averaged) == 6
    loss.theta.data = torch.tensor([0.1, -0.2, 0.3, 0.0])
    logits, labels, weights = random_rois(50, 4, seed=99)
    before = loss.G_bar.clone()
    out = loss(logits, labels, weights, iter_num=3, call_type='sup')
    assert torch.allclose(loss.G_bar, 0.999 * before + 0.001 * 100.0 * gradient_matrix(logits, labels, weights),
                          rtol=1e-6)
    assert out['loss_grad'].item() == 0.0
    assert torch.allclose(loss.class_weights, 4 * torch.softmax(loss.theta.detach(), 0))
    assert loss(logits, labels, weights, iter_num=4, call_type='sup')['loss_grad'].item() > 0


def test_warm_up_upstream_recursion():
    loss = GbRLoss(num_classes=2, warm_up_iter=10, warmup_mean='upstream')
    expected = torch.zeros(3, 3)
    for step in range(3):
        for call, lam in (('sup', 1.0), ('unsup', 4.0)):
            logits, labels, weights = random_rois(30, 3, seed=7 * step + int(lam))
            loss(logits, labels, weights, iter_num=step, call_type=call, grad_weight=lam)
            stats = lam * 100.0 * gradient_matrix(logits, labels, weights)
            expected = (expected * step + stats) / (step + 1)
    assert torch.allclose(loss.G_bar, expected, rtol=1e-5)


def test_ema_step_is_exact():
    loss = GbRLoss(num_classes=3, warm_up_iter=0)
    loss.G_bar.copy_(torch.randn(4, 4, generator=torch.Generator().manual_seed(5)))
    before = loss.G_bar.clone()
    logits, labels, weights = random_rois(64, 4, seed=6)
    loss(logits, labels, weights, iter_num=5, call_type='unsup', grad_weight=4.0)
    stats = 4.0 * 100.0 * gradient_matrix(logits, labels, weights)
    assert torch.allclose(loss.G_bar, before * 0.999 + stats * (1 - 0.999), rtol=1e-6, atol=0)


def test_weights_sum_to_k_and_are_shift_invariant():
    logits, labels, weights = random_rois(40, 5, seed=8)
    shifted = []
    for shift in (0.0, 3.0):
        loss = GbRLoss(num_classes=4, warm_up_iter=0)
        loss.theta.data = torch.tensor([0.5, -1.0, 2.0, 0.0, 0.3]) + shift
        loss(logits, labels, weights, iter_num=1, call_type='sup')
        assert loss.class_weights.sum().item() == pytest.approx(5.0, rel=1e-6)
        shifted.append(loss.class_weights.clone())
    assert torch.allclose(shifted[0], shifted[1], rtol=1e-6)


def test_theta_tracks_fixed_target_with_sgd(monkeypatch):
    fixed = torch.tensor([0.5, 2.0, 4.0, 1.0])
    monkeypatch.setattr(gbr, 'target_weights', lambda *args, **kwargs: fixed.clone())
    loss = GbRLoss(num_classes=3, warm_up_iter=0)
    optimizer = torch.optim.SGD(loss.parameters(), lr=1.0)
    logits, labels, weights = random_rois(30, 4, seed=9)
    for step in range(60):
        optimizer.zero_grad()
        loss(logits, labels, weights, iter_num=step + 1, call_type='sup')['loss_grad'].backward()
        optimizer.step()
    loss(logits, labels, weights, iter_num=100, call_type='sup')
    assert torch.allclose(loss.theta.detach(), fixed.log(), atol=1e-6)
    assert torch.allclose(loss.class_weights, 4 * fixed / fixed.sum(), rtol=1e-5)


def test_balanced_statistics_keep_weights_at_one():
    loss = GbRLoss(num_classes=3, warm_up_iter=2)
    optimizer = torch.optim.SGD(loss.parameters(), lr=0.5)
    logits, labels, weights = imbalance_rois([50] * 4, true_logit=1.0)
    for step in range(30):
        for call in ('sup', 'unsup'):
            optimizer.zero_grad()
            loss(logits, labels, weights, iter_num=step, call_type=call)['loss_grad'].backward()
            optimizer.step()
    assert loss.theta.detach().abs().max() < 1e-3
    assert torch.allclose(loss.class_weights, torch.ones(4), atol=1e-3)


def per_roi_weights(loss, logits, labels, weights, **kwargs):
    """u_n recovered from the unreduced weighted losses."""
    out = loss(logits, labels, weights, reduction_override='none', **kwargs)
    return out['loss_cls'] / softmax_focal_loss(logits, labels, 1.0)


def test_beta_and_clamped_weights():
    logits, labels, weights = random_rois(40, 4, seed=11)
    weights = torch.ones(40)
    raw_w = torch.tensor([0.1, 2.0, 9.0, 1.0])
    clamped = torch.tensor([1 / 3, 2.0, 5.0, 1.0])
    for call, beta in (('sup', 0.5), ('unsup', 1.0)):
        loss = GbRLoss(num_classes=3, warm_up_iter=100, beta_sup=0.5)
        loss.class_weights.copy_(raw_w)
        u = per_roi_weights(loss, logits, labels, weights, iter_num=0, call_type=call)
        raw = clamped[labels] ** beta
        assert loss.weights_mean.item() == pytest.approx(0.999 + 0.001 * raw.mean().item(), rel=1e-6)
        assert torch.allclose(u * loss.weights_mean, raw, rtol=1e-5)
        assert (u * loss.weights_mean >= (1 / 3) ** beta - 1e-6).all() and (u * loss.weights_mean <= 5.0).all()


def test_running_normaliser_converges_to_constant_weight():
    loss = GbRLoss(num_classes=3, warm_up_iter=1000, norm_momentum=0.9)
    loss.class_weights.fill_(4.0)
    logits, labels, weights = random_rois(30, 4, seed=12)
    for step in range(200):
        u = per_roi_weights(loss, logits, labels, weights, iter_num=step, call_type='unsup')
    assert loss.weights_mean.item() == pytest.approx(4.0, rel=1e-6)
    assert torch.allclose(u, weights, rtol=1e-5)


def test_normalisers_sup_and_unsup():
    logits, labels, _ = random_rois(10, 4, seed=13)
    weights = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    soft = torch.tensor([0.2, 0.0, 0.3, 0.9, 0.1, 0.2, 0.0, 0.05, 0.1, 0.1])
    focal = softmax_focal_loss(logits, labels, 1.0)
    sup = GbRLoss(num_classes=3, warm_up_iter=100, loss_weight=2.0)
    out = sup(logits, labels, weights, iter_num=0, call_type='sup')
    assert out['loss_cls'].item() == pytest.approx(2.0 * (weights * focal).sum().item() / 8, rel=1e-6)
    unsup = GbRLoss(num_classes=3, warm_up_iter=100)
    soft_small = soft * 0.4  # sums to 0.78: normaliser max(0.78, 1) = 1
    out = unsup(logits, labels, soft_small, iter_num=0, call_type='unsup')
    assert out['loss_cls'].item() == pytest.approx((soft_small * focal).sum().item() / 1.0, rel=1e-6)
    soft_large = soft * 10
    out = unsup(logits, labels, soft_large, iter_num=1, call_type='unsup')
    assert out['loss_cls'].item() == pytest.approx((soft_large * focal).sum().item() / 19.5, rel=1e-6)


def test_iter_minus_one_is_plain_loss_without_state_change():
    loss = GbRLoss(num_classes=3, warm_up_iter=0)
    loss.class_weights.copy_(torch.tensor([0.5, 3.0, 1.0, 1.0]))
    before = {k: v.clone() for k, v in loss.state_dict().items()}
    logits, labels, weights = random_rois(25, 4, seed=14)
    out = loss(logits, labels, weights, avg_factor=7.0)
    assert out['loss_grad'].item() == 0.0
    expected = (weights * softmax_focal_loss(logits, labels, 1.0)).sum() / 7.0
    assert out['loss_cls'].item() == pytest.approx(expected.item(), rel=1e-6)
    assert all(torch.equal(before[k], v) for k, v in loss.state_dict().items())
    assert loss.last_unsup_weights is None


def test_runs_without_process_group_and_grad_only_into_theta():
    assert not (dist.is_available() and dist.is_initialized())
    loss = GbRLoss(num_classes=3, warm_up_iter=0)
    logits, labels, weights = random_rois(20, 4, seed=15)
    logits.requires_grad_(True)
    out = loss(logits, labels, weights, iter_num=1, call_type='unsup', grad_weight=4.0)
    out['loss_grad'].backward()
    assert logits.grad is None and loss.theta.grad.abs().sum() > 0


def test_last_unsup_weights_are_unclamped():
    loss = GbRLoss(num_classes=2, warm_up_iter=0)
    logits, labels, weights = random_rois(20, 3, seed=16)
    loss(logits, labels, weights, iter_num=1, call_type='sup')
    assert loss.last_unsup_weights is None
    loss.theta.data = torch.tensor([3.0, 0.0, 0.0])
    loss(logits, labels, weights, iter_num=2, call_type='unsup')
    expected = 3 * torch.softmax(torch.tensor([3.0, 0.0, 0.0]), 0)
    assert torch.allclose(loss.last_unsup_weights, expected) and expected[0] > 2.5


def test_registered_names_and_bad_arguments():
    assert LOSSES.get('GbRLoss') is GbRLoss and LOSSES.get('GbROptim') is GbRLoss
    assert isinstance(LOSSES.build(dict(type='GbROptim', num_classes=5, beta_sup=0.8)), GbRLoss)
    with pytest.raises(ValueError, match='warmup_mean'):
        GbRLoss(num_classes=3, warmup_mean='approx')
    with pytest.raises(ValueError, match='call_type'):
        GbRLoss(num_classes=3)(*random_rois(4, 4, seed=0), iter_num=0, call_type='labeled')


def run_calls(loss, optimizer, steps, seed):
    outputs = []
    for step in steps:
        for call, lam in (('sup', 1.0), ('unsup', 4.0)):
            logits, labels, weights = random_rois(40, 4, seed=seed + 2 * step + int(lam))
            optimizer.zero_grad()
            out = loss(logits, labels, weights, iter_num=step, call_type=call, grad_weight=lam)
            (out['loss_grad'] * lam).backward()
            optimizer.step()
            outputs.append(torch.stack([out['loss_cls'].detach(), out['loss_grad'].detach()]))
    return torch.stack(outputs)


def test_state_dict_round_trip_continues_identically():
    first = GbRLoss(num_classes=3, warm_up_iter=2)
    run_calls(first, torch.optim.SGD(first.parameters(), lr=0.1), range(4), seed=0)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = GbRLoss(num_classes=3, warm_up_iter=2)
    second.load_state_dict(torch.load(buffer, weights_only=True))
    assert set(first.state_dict()) == {'G_bar', 'theta', 'weights_mean', 'class_weights', 'num_averaged'}
    out_first = run_calls(first, torch.optim.SGD(first.parameters(), lr=0.1), range(4, 7), seed=0)
    out_second = run_calls(second, torch.optim.SGD(second.parameters(), lr=0.1), range(4, 7), seed=0)
    assert torch.equal(out_first, out_second)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


# ----------------------------------------------------------------------------- box head

def build_head(loss_cls, head_type='GbRShared2FCBBoxHead'):
    torch.manual_seed(0)
    return HEADS.build(dict(type=head_type, in_channels=4, fc_out_channels=8, roi_feat_size=2,
                            num_classes=3, loss_cls=loss_cls))


def head_inputs(seed=0, num_rois=12):
    gen = torch.Generator().manual_seed(seed)
    cls_score = torch.randn(num_rois, 4, generator=gen)
    bbox_pred = torch.randn(num_rois, 12, generator=gen)
    labels = torch.randint(0, 4, (num_rois,), generator=gen)
    label_weights = torch.ones(num_rois)
    rois = torch.cat([torch.zeros(num_rois, 1), torch.rand(num_rois, 4, generator=gen) * 10], 1)
    bbox_targets = torch.randn(num_rois, 4, generator=gen)
    bbox_weights = (labels < 3).float().unsqueeze(1).expand(-1, 4).contiguous()
    return cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights


GBR_CFG = dict(type='GbROptim', num_classes=3, warm_up_iter=1)


def test_head_loss_with_context_updates_state_and_adds_loss_grad():
    head = build_head(GBR_CFG, head_type='MyShared2FCBBoxHead')
    assert isinstance(head, GbRShared2FCBBoxHead)
    inputs = head_inputs()
    assert head.class_weights_for_thresholds is None
    with head.gbr_context(iter_num=0, call_type='unsup', grad_weight=4.0):
        losses = head.loss(*inputs)
    assert list(losses) == ['loss_cls', 'loss_grad', 'acc', 'loss_bbox']
    assert int(head.loss_cls.num_averaged) == 1
    assert torch.equal(head.class_weights_for_thresholds, torch.ones(3))
    head.loss_cls.theta.data = torch.tensor([1.0, 0.0, 0.0, 0.0])
    with head.gbr_context(iter_num=2, call_type='unsup', grad_weight=4.0):
        losses = head.loss(*inputs)
    assert losses['loss_grad'].item() > 0
    assert torch.allclose(head.class_weights_for_thresholds, (4 * torch.softmax(head.loss_cls.theta, 0))[:3])
    plain = build_head(dict(type='SoftmaxFocalLoss', gamma=1.0), head_type='Shared2FCBBoxHead')
    assert torch.equal(losses['loss_bbox'], plain.loss(*inputs)['loss_bbox'])
    assert torch.equal(losses['acc'], plain.loss(*inputs)['acc'])


def test_head_outside_context_is_plain_focal_without_state_change():
    head = build_head(GBR_CFG)
    plain = build_head(dict(type='SoftmaxFocalLoss', gamma=1.0), head_type='Shared2FCBBoxHead')
    inputs = head_inputs(seed=1)
    losses = head.loss(*inputs)
    reference = plain.loss(*inputs)
    assert losses['loss_grad'].item() == 0.0 and int(head.loss_cls.num_averaged) == 0
    for key in ('loss_cls', 'acc', 'loss_bbox'):
        assert torch.allclose(losses[key], reference[key], rtol=1e-6)
    with pytest.raises(ValueError, match='call_type'):
        with head.gbr_context(iter_num=0, call_type='teacher', grad_weight=1.0):
            pass


def test_plain_loss_head_equals_parent():
    ours = build_head(dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    parent = build_head(dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                        head_type='Shared2FCBBoxHead')
    ours.load_state_dict(parent.state_dict())
    inputs = head_inputs(seed=2)
    with ours.gbr_context(iter_num=5, call_type='sup', grad_weight=1.0):
        got = ours.loss(*inputs)
    expected = parent.loss(*inputs)
    assert list(got) == list(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert ours.class_weights_for_thresholds is None
    feats = torch.randn(5, 4, 2, 2)
    assert all(torch.equal(a, b) for a, b in zip(ours(feats), parent(feats)))


def test_head_test_time_scores_are_softmax():
    head = build_head(GBR_CFG)
    cls_score, bbox_pred, rois = head_inputs(seed=3, num_rois=6)[:3]
    _, scores = head.get_bboxes(rois, cls_score, bbox_pred, img_shape=(20, 20), scale_factor=None, rescale=False)
    assert torch.allclose(scores, torch.softmax(cls_score, 1))


def test_head_with_no_rois_still_runs_gbr_call():
    head = build_head(GBR_CFG)
    inputs = head_inputs(num_rois=0)
    with head.gbr_context(iter_num=0, call_type='sup', grad_weight=1.0):
        losses = head.loss(*inputs)
    assert set(losses) == {'loss_cls', 'loss_grad', 'acc', 'loss_bbox'}
    assert losses['loss_cls'].item() == 0.0 and int(head.loss_cls.num_averaged) == 1
    assert head.loss_cls.weights_mean.item() == 1.0
