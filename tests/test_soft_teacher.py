"""SoftTeacher / MultiStreamDetector on a tiny CPU Faster R-CNN (spec B, I.6 items 37-40)."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmcv.runner import build_optimizer
from mmdet.models import build_detector
from torch import nn

import ssod.models.gbr_bbox_head  # noqa: F401  (registers GbRShared2FCBBoxHead and GbRLoss)
import ssod.models.losses.focal  # noqa: F401  (registers SoftmaxFocalLoss)
from ssod.models.soft_teacher import SOFT_TEACHER_TRAIN_CFG, SoftTeacher, jitter_boxes, view_matrix
from ssod.models.utils import pair_teacher_student_views, scale_loss_terms
from ssod.utils.bbox_utils import relative_transform, transform_bboxes

NUM_CLASSES = 3
PAD = (128, 128)
LOSS_KEYS = {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "acc", "loss_bbox"}


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny convolutions run fastest on one thread; several threads thrash on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_faster_rcnn():
    return dict(
        type="FasterRCNN",
        backbone=dict(type="ResNet", depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
                      norm_cfg=dict(type="BN", requires_grad=False), norm_eval=True, style="pytorch",
                      init_cfg=None),
        neck=dict(type="FPN", in_channels=[64, 128, 256, 512], out_channels=64, num_outs=5),
        rpn_head=dict(
            type="RPNHead", in_channels=64, feat_channels=64,
            anchor_generator=dict(type="AnchorGenerator", scales=[8], ratios=[0.5, 1.0, 2.0],
                                  strides=[4, 8, 16, 32, 64]),
            bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[1.0] * 4),
            loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type="L1Loss", loss_weight=1.0)),
        roi_head=dict(
            type="StandardRoIHead",
            bbox_roi_extractor=dict(type="SingleRoIExtractor",
                                    roi_layer=dict(type="RoIAlign", output_size=7, sampling_ratio=0),
                                    out_channels=64, featmap_strides=[4, 8, 16, 32]),
            bbox_head=dict(
                type="Shared2FCBBoxHead", in_channels=64, fc_out_channels=64, roi_feat_size=7,
                num_classes=NUM_CLASSES,
                bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4,
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=False,
                loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type="L1Loss", loss_weight=1.0))),
        train_cfg=dict(
            rpn=dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                                   match_low_quality=True, ignore_iof_thr=-1),
                     sampler=dict(type="RandomSampler", num=64, pos_fraction=0.5, neg_pos_ub=-1,
                                  add_gt_as_proposals=False),
                     allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=200, max_per_img=60, nms=dict(type="nms", iou_threshold=0.7),
                              min_bbox_size=0),
            rcnn=dict(assigner=dict(type="MaxIoUAssigner", pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                    match_low_quality=False, ignore_iof_thr=-1),
                      sampler=dict(type="RandomSampler", num=32, pos_fraction=0.25, neg_pos_ub=-1,
                                   add_gt_as_proposals=True),
                      pos_weight=-1, debug=False)),
        test_cfg=dict(
            rpn=dict(nms_pre=100, max_per_img=40, nms=dict(type="nms", iou_threshold=0.7), min_bbox_size=0),
            rcnn=dict(score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5), max_per_img=20)))


def build_soft_teacher(train_cfg=None, test_cfg=None, seed=0, detector=None):
    torch.manual_seed(seed)
    model = build_detector(dict(type="SoftTeacher", model=detector or tiny_faster_rcnn(), train_cfg=train_cfg,
                                test_cfg=test_cfg))
    return model.train()  # as the runner does: applies norm_eval (frozen BN) in both submodules


def scale_matrix(sx, sy=None):
    return np.diag([sx, sx if sy is None else sy, 1.0]).astype(np.float32)


def hflip_scale_matrix(scale, width):
    """Resize by ``scale`` then flip horizontally inside a view of ``width`` pixels."""
    return np.array([[-scale, 0, width], [0, scale, 0], [0, 0, 1]], dtype=np.float32)


def make_meta(tag, filename, matrix, img_shape, ori_shape):
    return dict(tag=tag, filename=filename, ori_filename=filename, transform_matrix=matrix,
                img_shape=(*img_shape, 3), pad_shape=(*PAD, 3), ori_shape=(*ori_shape, 3),
                scale_factor=np.ones(4, dtype=np.float32), flip=False, flip_direction=None,
                img_norm_cfg=dict(mean=np.zeros(3), std=np.ones(3), to_rgb=False))


def unlabeled_pair(filename):
    """Weak view: resize x1.5 of a 64x80 image; strong view: resize x1.25 plus flip."""
    teacher = make_meta("unsup_teacher", filename, scale_matrix(1.5), (96, 120), (64, 80))
    student = make_meta("unsup_student", filename, hflip_scale_matrix(1.25, 100), (80, 100), (64, 80))
    return [teacher, student]


def make_batch(tags=("sup", "unlabeled", "unlabeled"), seed=1):
    """Flat batch; unlabeled images give two views, returned in a scrambled order."""
    generator = torch.Generator().manual_seed(seed)
    metas = []
    for index, tag in enumerate(tags):
        if tag == "sup":
            metas.append(make_meta("sup", f"sup{index}.jpg", scale_matrix(1.0), (96, 128), (96, 128)))
        else:
            metas.extend(unlabeled_pair(f"unsup{index}.jpg"))
    order = torch.randperm(len(metas), generator=generator).tolist()
    metas = [metas[i] for i in order]
    gt_bboxes, gt_labels = [], []
    for meta in metas:
        if meta["tag"] == "sup":
            gt_bboxes.append(torch.tensor([[10.0, 12.0, 60.0, 70.0], [50.0, 30.0, 110.0, 90.0]]))
            gt_labels.append(torch.tensor([0, 2]))
        else:  # unlabeled views carry fake targets that must never be used
            gt_bboxes.append(torch.full((1, 4), float("nan")))
            gt_labels.append(torch.tensor([NUM_CLASSES + 7]))
    img = torch.randn(len(metas), 3, *PAD, generator=generator)
    return dict(img=img, img_metas=metas, gt_bboxes=gt_bboxes, gt_labels=gt_labels)


def make_teacher_predict(model, score_class):
    """Teacher classifier that puts all mass on ``score_class``; identity box regression."""
    bbox_head = model.teacher.roi_head.bbox_head
    with torch.no_grad():
        bbox_head.fc_cls.weight.zero_()
        bbox_head.fc_cls.bias.zero_()
        bbox_head.fc_cls.bias[score_class] = 12.0
        bbox_head.fc_reg.weight.zero_()
        bbox_head.fc_reg.bias.zero_()


def assert_all_finite(losses):
    for key, value in losses.items():
        values = value if isinstance(value, list) else [value]
        assert all(torch.isfinite(v).all() for v in values), key


def total(value):
    return sum(v.sum() for v in value) if isinstance(value, list) else value


# ----------------------------------------------------------------------------- construction
def test_train_cfg_defaults_and_unknown_keys():
    model = build_soft_teacher()
    assert dict(model.train_cfg) == dict(
        use_teacher_proposal=False, pseudo_label_initial_score_thr=0.5, rpn_pseudo_threshold=0.9,
        cls_pseudo_threshold=0.9, reg_pseudo_threshold=0.02, jitter_times=10, jitter_scale=0.06,
        min_pseduo_box_size=0, unsup_weight=4.0)
    assert SOFT_TEACHER_TRAIN_CFG["unsup_weight"] == 4.0
    with pytest.raises(KeyError, match="cls_pseudo_threshld"):
        SoftTeacher.resolve_train_cfg(dict(cls_pseudo_threshld=0.8))
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert any(p.requires_grad for p in model.student.parameters())
    assert model.inference_on == "teacher" and model.iter_num == -1


def test_inference_on_switches_submodule():
    with pytest.raises(ValueError, match="inference_on"):
        build_soft_teacher(test_cfg=dict(inference_on="ema"))
    batch = make_batch(tags=("sup",))
    metas = batch["img_metas"]
    img = batch["img"]
    for name in ("teacher", "student"):
        model = build_soft_teacher(test_cfg=dict(inference_on=name)).eval()
        other = model.student if name == "teacher" else model.teacher
        with torch.no_grad():
            got = model(img=[img], img_metas=[metas], return_loss=False)
            want = getattr(model, name).simple_test(img, metas)
            not_want = other.simple_test(img, metas)
        assert sum(len(b) for b in got[0]) > 0
        for got_cls, want_cls in zip(got[0], want[0]):
            np.testing.assert_array_equal(got_cls, want_cls)
        assert any(g.shape != n.shape or not np.allclose(g, n) for g, n in zip(got[0], not_want[0]))


# ----------------------------------------------------------------------------- batch helpers
def test_pairing_by_filename_and_errors():
    metas = [dict(tag="unsup_student", filename="b"), dict(tag="unsup_teacher", filename="a"),
             dict(tag="unsup_student", filename="a"), dict(tag="unsup_teacher", filename="b"),
             dict(tag="unsup_teacher", filename="a"), dict(tag="unsup_student", filename="a")]
    teachers, students = pair_teacher_student_views(metas, [1, 3, 4], [0, 2, 5])
    assert [metas[i]["filename"] for i in teachers] == [metas[i]["filename"] for i in students]
    assert sorted(teachers) == [1, 3, 4] and sorted(students) == [0, 2, 5]
    with pytest.raises(ValueError, match="'a'"):
        pair_teacher_student_views(metas, [1, 3], [0, 2, 5])


# ----------------------------------------------------------------------------- box mapping (I.6 37)
def test_teacher_to_student_mapping_with_known_matrices():
    teacher_meta = make_meta("unsup_teacher", "x", scale_matrix(2.0), (128, 160), (64, 80))
    student_meta = make_meta("unsup_student", "x", hflip_scale_matrix(1.5, 120), (96, 120), (64, 80))
    matrix = relative_transform(view_matrix(teacher_meta), view_matrix(student_meta))
    # teacher box [20,10,60,50] -> original [10,5,30,25] -> student x: 120-1.5*x, y: 1.5*y
    boxes = torch.tensor([[20.0, 10.0, 60.0, 50.0, 0.95, 0.1, 0.2, 0.3, 0.4],
                          [100.0, 100.0, 170.0, 150.0, 0.7, 0.0, 0.0, 0.0, 0.0]])
    mapped = SoftTeacher.boxes_in_student_views([boxes], [matrix], [student_meta])[0]
    expected = torch.tensor([[75.0, 7.5, 105.0, 37.5, 0.95, 0.1, 0.2, 0.3, 0.4],
                             [0.0, 75.0, 45.0, 96.0, 0.7, 0.0, 0.0, 0.0, 0.0]])  # clipped to 96 x 120
    torch.testing.assert_close(mapped, expected)
    # the same mapping (and its inverse for the soft background weights) inside the unsup loss path
    model = build_soft_teacher(train_cfg=dict(use_teacher_proposal=True))
    recorded = {}

    def record_rpn(student_info, pseudo_bboxes):
        recorded["pseudo"] = pseudo_bboxes
        return {}, None

    def record_cls(student_info, proposals, pseudo_bboxes, pseudo_labels, teacher_info, student_to_teacher):
        recorded["proposals"], recorded["student_to_teacher"] = proposals, student_to_teacher
        return {}

    model.unsup_rpn_loss = record_rpn
    model.unsup_rcnn_cls_loss = record_cls
    model.unsup_rcnn_reg_loss = lambda *args: {}
    teacher_info = dict(transform_matrices=[view_matrix(teacher_meta)], img_metas=[teacher_meta],
                        pseudo_bboxes=[boxes], pseudo_labels=[torch.tensor([0, 1])], proposals=[boxes[:, :5]])
    student_info = dict(transform_matrices=[view_matrix(student_meta)], img_metas=[student_meta])
    model.compute_unsup_losses(teacher_info, student_info)
    torch.testing.assert_close(recorded["pseudo"][0], expected)
    torch.testing.assert_close(recorded["proposals"][0], expected[:, :5])
    torch.testing.assert_close(transform_bboxes(expected[:1, :4], recorded["student_to_teacher"][0]), boxes[:1, :4])
    # back to the original image: inverse of the teacher matrix, clipped to ori_shape (64, 80)
    original = SoftTeacher.teacher_boxes_to_original(boxes[:, :5], teacher_meta)
    torch.testing.assert_close(original, torch.tensor([[10.0, 5.0, 30.0, 25.0, 0.95],
                                                       [50.0, 50.0, 80.0, 64.0, 0.7]]))


# ----------------------------------------------------------------------------- jitter (I.6 38)
def teacher_features(model, batch):
    metas = [m for m in batch["img_metas"] if m["tag"] == "unsup_teacher"]
    img = batch["img"][[i for i, m in enumerate(batch["img_metas"]) if m["tag"] == "unsup_teacher"]]
    with torch.no_grad():
        return model.teacher.extract_feat(img), metas


def test_jitter_uncertainty_is_zero_without_jitter():
    model = build_soft_teacher(train_cfg=dict(jitter_scale=0.0))
    feat, metas = teacher_features(model, make_batch(tags=("unlabeled", "unlabeled")))
    boxes = [torch.tensor([[10.0, 10.0, 50.0, 60.0, 0.9], [30.0, 20.0, 90.0, 80.0, 0.8]]),
             torch.tensor([[5.0, 5.0, 40.0, 30.0, 0.7]])]
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    with torch.no_grad():
        uncertainty = model.jitter_uncertainty(feat, metas, boxes, labels)
    assert [u.shape for u in uncertainty] == [(2, 4), (1, 4)]
    assert all(torch.equal(u, torch.zeros_like(u)) for u in uncertainty)
    # no boxes at all: empty uncertainties, no crash
    empty = model.jitter_uncertainty(feat, metas, [b[:0] for b in boxes], [l[:0] for l in labels])
    assert [u.shape for u in empty] == [(0, 4), (0, 4)]


def test_jitter_uncertainty_linear_in_scale_with_linear_regressor(monkeypatch):
    model = build_soft_teacher()
    times, gain = model.train_cfg.jitter_times, 1.5

    def linear_regressor(feat, img_metas, proposals, rcnn_test_cfg, rescale=False):
        assert rcnn_test_cfg is None
        # class c refines a box b to gain * b + c (class-specific regression, C = 3)
        refined = [torch.cat([gain * p[:, :4] + c for c in range(NUM_CLASSES)], dim=1) for p in proposals]
        return refined, [p.new_zeros(len(p), NUM_CLASSES + 1) for p in proposals]

    monkeypatch.setattr(model.teacher.roi_head, "simple_test_bboxes", linear_regressor)
    boxes = [torch.tensor([[10.0, 10.0, 50.0, 60.0, 0.9], [30.0, 20.0, 90.0, 26.0, 0.8]])]
    labels = [torch.tensor([2, 1])]
    results = {}
    for scale in (0.005, 0.01, 0.02, 0.06):
        model.train_cfg.jitter_scale = scale
        torch.manual_seed(7)
        results[scale] = model.jitter_uncertainty(None, [{}], boxes, labels)[0]
    # the std is linear in the scale; the normalising mean box moves by O(scale) only
    torch.testing.assert_close(results[0.01], 2 * results[0.005], rtol=5e-3, atol=0)
    torch.testing.assert_close(results[0.02], 2 * results[0.01], rtol=5e-3, atol=0)
    # hand computation from the same random draws
    torch.manual_seed(7)
    copies = jitter_boxes(boxes[0][:, :4], times, 0.06).view(times, 2, 4)
    refined = gain * copies + labels[0].view(1, 2, 1).float()
    mean_box = refined.mean(0)
    sizes = (mean_box[:, 2:] - mean_box[:, :2]).clamp(min=1).repeat(1, 2)
    torch.testing.assert_close(results[0.06], refined.std(0) / sizes)
    assert (results[0.06] > 0).all()


# ----------------------------------------------------------------------------- soft background (I.6 39)
class RecordingCE(nn.Module):
    """Softmax CE that records what the box head passes to it."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, cls_score, labels, weight=None, avg_factor=None, reduction_override=None):
        per_roi = F.cross_entropy(cls_score, labels, reduction="none")
        self.calls.append(dict(per_roi=per_roi.detach(), weight=weight.detach().clone(), labels=labels.clone(),
                               reduction=reduction_override))
        return per_roi * weight


def run_unsup_cls_loss(model, monkeypatch, pseudo_boxes, bg_value_fn):
    batch = make_batch(tags=("unlabeled",))
    metas = batch["img_metas"]
    student_pos = [i for i, m in enumerate(metas) if m["tag"] == "unsup_student"]
    teacher_meta = [m for m in metas if m["tag"] == "unsup_teacher"]
    student_info = model.extract_student_info(batch["img"][student_pos], [metas[i] for i in student_pos])
    student_to_teacher = [relative_transform(view_matrix(metas[student_pos[0]]), view_matrix(teacher_meta[0]))]
    recorded = {}

    def stub_teacher(feat, img_metas, proposals, rcnn_test_cfg, rescale=False):
        assert rcnn_test_cfg is None
        recorded["aligned"] = [p.clone() for p in proposals]
        bg = bg_value_fn(len(proposals[0]))
        recorded["bg"] = bg
        scores = torch.cat([(1 - bg)[:, None].expand(-1, NUM_CLASSES) / NUM_CLASSES, bg[:, None]], dim=1)
        return [p[:, :4] for p in proposals], [scores]

    original_forward = model.student.roi_head._bbox_forward

    def recording_forward(x, rois):
        recorded["rois"] = rois.detach().clone()
        return original_forward(x, rois)

    monkeypatch.setattr(model.teacher.roi_head, "simple_test_bboxes", stub_teacher)
    monkeypatch.setattr(model.student.roi_head, "_bbox_forward", recording_forward)
    model.student.roi_head.bbox_head.loss_cls = RecordingCE()
    proposals = [torch.tensor([[0.0, 0.0, 40.0, 40.0, 0.9], [10.0, 10.0, 60.0, 70.0, 0.8],
                               [50.0, 20.0, 100.0, 80.0, 0.7], [5.0, 40.0, 30.0, 78.0, 0.6],
                               [20.0, 5.0, 90.0, 50.0, 0.5], [60.0, 60.0, 99.0, 79.0, 0.4]])]
    labels = [torch.tensor([1, 0, 2])[: len(pseudo_boxes)]]
    teacher_info = dict(feat=None, img_metas=teacher_meta)
    losses = model.unsup_rcnn_cls_loss(student_info, proposals, [pseudo_boxes], labels, teacher_info,
                                       student_to_teacher)
    return losses, recorded, model.student.roi_head.bbox_head.loss_cls.calls, student_to_teacher[0]


def test_soft_background_weights_and_normaliser(monkeypatch):
    model = build_soft_teacher()
    pseudo = torch.tensor([[10.0, 10.0, 60.0, 70.0, 0.95, 0, 0, 0, 0],
                           [50.0, 20.0, 100.0, 80.0, 0.97, 0, 0, 0, 0],
                           [0.0, 0.0, 40.0, 40.0, 0.85, 0, 0, 0, 0]])  # below cls_pseudo_threshold 0.9
    losses, recorded, calls, student_to_teacher = run_unsup_cls_loss(
        model, monkeypatch, pseudo, lambda n: torch.linspace(0.05, 0.95, n))
    assert len(calls) == 1 and calls[0]["reduction"] == "none"
    weight, labels, bg = calls[0]["weight"], calls[0]["labels"], recorded["bg"]
    negatives = labels == NUM_CLASSES
    assert negatives.any() and (~negatives).any()
    torch.testing.assert_close(weight[negatives], bg[negatives])
    assert torch.equal(weight[~negatives], torch.ones(int((~negatives).sum())))
    # only the two confident pseudo boxes (labels 1 and 0) are foreground targets
    assert set(labels[~negatives].tolist()) <= {0, 1}
    expected = (calls[0]["per_roi"] * weight).sum() / max(weight.sum().item(), 1.0)
    torch.testing.assert_close(losses["loss_cls"], expected)
    assert "loss_bbox" not in losses and "acc" in losses
    # the teacher saw the student RoIs mapped into its view (student -> teacher matrix)
    rois = recorded["rois"][:, 1:]
    torch.testing.assert_close(recorded["aligned"][0], transform_bboxes(rois, student_to_teacher, (96, 120)))


def test_soft_background_denominator_is_at_least_one(monkeypatch):
    model = build_soft_teacher()
    no_pseudo = torch.zeros(0, 9)
    losses, _, calls, _ = run_unsup_cls_loss(model, monkeypatch, no_pseudo, lambda n: torch.full((n,), 1e-3))
    weight = calls[0]["weight"]
    assert (calls[0]["labels"] == NUM_CLASSES).all() and weight.sum() < 1
    torch.testing.assert_close(losses["loss_cls"], (calls[0]["per_roi"] * weight).sum())


# ----------------------------------------------------------------------------- unsup weight (I.6 40)
def test_scale_loss_terms_only_scales_loss_keys():
    losses = dict(loss_cls=torch.tensor(1.5), loss_grad=torch.tensor(0.25), acc=torch.tensor(80.0),
                  loss_rpn_cls=[torch.tensor(1.0), torch.tensor(2.0)])
    scaled = scale_loss_terms(losses, 4.0)
    assert scaled["loss_cls"].item() == 6.0 and scaled["loss_grad"].item() == 1.0
    assert scaled["acc"].item() == 80.0
    assert [v.item() for v in scaled["loss_rpn_cls"]] == [4.0, 8.0]


def test_unsup_losses_are_weighted_by_unsup_weight():
    batch = make_batch()
    results = {}
    for weight in (1.0, 4.0):
        model = build_soft_teacher(train_cfg=dict(unsup_weight=weight, reg_pseudo_threshold=1.0))
        make_teacher_predict(model, score_class=1)
        torch.manual_seed(3)
        results[weight] = model.forward_train(**copy.deepcopy(batch))
    assert results[1.0].keys() == results[4.0].keys()
    for key in results[1.0]:
        ratio = 4.0 if key.startswith("unsup_") and "loss" in key else 1.0
        torch.testing.assert_close(total(results[4.0][key]), ratio * total(results[1.0][key]))
    assert total(results[1.0]["unsup_loss_bbox"]) > 0 and total(results[1.0]["unsup_loss_cls"]) > 0


# ----------------------------------------------------------------------------- end-to-end
def test_mixed_batch_train_step_backward_and_frozen_teacher():
    model = build_soft_teacher(train_cfg=dict(reg_pseudo_threshold=1.0))
    make_teacher_predict(model, score_class=2)
    batch = make_batch()
    losses = model.forward_train(**copy.deepcopy(batch))
    assert set(losses) == {f"{p}{k}" for p in ("sup_", "unsup_") for k in LOSS_KEYS}
    assert_all_finite(losses)
    assert total(losses["unsup_loss_bbox"]) > 0 and total(losses["unsup_loss_rpn_bbox"]) > 0

    optimizer = build_optimizer(model, dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4))
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student_before = model.student.roi_head.bbox_head.fc_cls.weight.detach().clone()
    torch.manual_seed(0)
    outputs = model.train_step(copy.deepcopy(batch), optimizer, iter_num=12)
    assert model.iter_num == 12 and outputs["num_samples"] == len(batch["img_metas"])
    loss_keys = [k for k in outputs["log_vars"] if "loss" in k and k != "loss"]
    assert np.isclose(outputs["log_vars"]["loss"], sum(outputs["log_vars"][k] for k in loss_keys), rtol=1e-5)
    optimizer.zero_grad()
    outputs["loss"].backward()
    optimizer.step()
    assert all(p.grad is None for p in model.teacher.parameters())
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    assert not torch.equal(model.student.roi_head.bbox_head.fc_cls.weight, student_before)


@pytest.mark.parametrize("tags", [("sup", "unlabeled", "unlabeled"), ("unlabeled", "unlabeled")])
def test_batch_without_pseudo_boxes_keeps_keys_and_gradients(tags):
    model = build_soft_teacher()
    make_teacher_predict(model, score_class=NUM_CLASSES)  # teacher predicts background only
    torch.manual_seed(0)
    losses = model.forward_train(**make_batch(tags=tags))
    assert set(losses) == {f"{p}{k}" for p in ("sup_", "unsup_") for k in LOSS_KEYS}
    assert_all_finite(losses)
    assert total(losses["unsup_loss_bbox"]).item() == 0.0
    assert total(losses["unsup_loss_rpn_bbox"]).item() == 0.0
    loss, _ = model._parse_losses(losses)
    loss.backward()
    trainable = [(n, p) for n, p in model.student.named_parameters() if p.requires_grad]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in trainable)


@pytest.mark.parametrize("tags", [("unlabeled", "unlabeled"), ("sup", "sup")])
def test_one_sided_batches_give_the_same_keys(tags):
    model = build_soft_teacher(train_cfg=dict(reg_pseudo_threshold=1.0))
    make_teacher_predict(model, score_class=0)
    torch.manual_seed(0)
    losses = model.forward_train(**make_batch(tags=tags))
    assert set(losses) == {f"{p}{k}" for p in ("sup_", "unsup_") for k in LOSS_KEYS}
    assert_all_finite(losses)
    missing = "sup_" if tags[0] == "unlabeled" else "unsup_"
    present = "unsup_" if missing == "sup_" else "sup_"
    assert all(total(v).item() == 0.0 for k, v in losses.items() if k.startswith(missing))
    assert total(losses[f"{present}loss_cls"]).item() > 0
    loss, _ = model._parse_losses(losses)
    loss.backward()
    assert model.student.roi_head.bbox_head.fc_cls.weight.grad is not None


def test_train_step_sums_only_loss_keys(monkeypatch):
    model = build_soft_teacher()
    fake = dict(sup_loss_cls=torch.tensor(1.0), unsup_loss_rpn_cls=[torch.tensor(0.5), torch.tensor(0.25)],
                sup_acc=torch.tensor(90.0), unsup_num_pseudo=torch.tensor(7.0))
    monkeypatch.setattr(model, "forward_train", lambda *args, **kwargs: fake)
    outputs = model.train_step(dict(img=torch.zeros(2, 3, 8, 8), img_metas=[{}, {}]), None, iter_num=5)
    assert outputs["loss"].item() == pytest.approx(1.75)
    assert outputs["log_vars"]["sup_acc"] == pytest.approx(90.0)
    assert outputs["log_vars"]["unsup_num_pseudo"] == pytest.approx(7.0)
    assert model.iter_num == 5


@pytest.mark.parametrize("head_type, loss_cls, extra_keys", [
    ("Shared2FCBBoxHead", dict(type="SoftmaxFocalLoss", gamma=1.0), set()),
    ("GbRShared2FCBBoxHead", dict(type="GbRLoss", num_classes=NUM_CLASSES), {"loss_grad"}),
])
def test_other_classification_losses(head_type, loss_cls, extra_keys):
    """The unsup cls path only needs ``reduction_override='none'`` from the loss (focal, GbR)."""
    detector = tiny_faster_rcnn()
    detector["roi_head"]["bbox_head"].update(type=head_type, loss_cls=loss_cls)
    model = build_soft_teacher(train_cfg=dict(reg_pseudo_threshold=1.0), detector=detector)
    make_teacher_predict(model, score_class=1)
    torch.manual_seed(0)
    losses = model.forward_train(**make_batch())
    assert set(losses) == {f"{p}{k}" for p in ("sup_", "unsup_") for k in LOSS_KEYS | extra_keys}
    assert_all_finite(losses)
    assert total(losses["unsup_loss_cls"]) > 0
    loss, _ = model._parse_losses(losses)
    loss.backward()
    assert model.student.roi_head.bbox_head.fc_cls.weight.grad is not None
