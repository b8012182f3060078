"""SoftTeacherGrS on a tiny CPU Faster R-CNN: GbR call routing, GbT gating, CrS pseudo-label pool
(spec C.5, C.8, D, E.1, F.1, H.6, H.24; I.3 item 24)."""
import builtins
import copy
import os
import tempfile

import numpy as np
import pytest
import torch
from mmdet.models import build_detector
from mmdet.models.builder import DETECTORS, HEADS, LOSSES

import ssod.models.gbr_bbox_head  # noqa: F401  (registers GbRShared2FCBBoxHead and GbRLoss)
import ssod.utils.dist_utils as dist_utils
from ssod.models.gbt import class_thresholds
from ssod.models.losses.gbr import GbRLoss
from ssod.models.soft_teacher import SOFT_TEACHER_TRAIN_CFG
from ssod.models.soft_teacher_grs import GRS_TRAIN_CFG, SoftTeacherGrS
# the tiny detector and batch builders of the SoftTeacher tests (tests/ is on sys.path under pytest)
from test_soft_teacher import (NUM_CLASSES, PAD, hflip_scale_matrix, make_batch, make_meta, make_teacher_predict,
                               tiny_faster_rcnn)

WARM_UP = 10


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def gbr_detector(gbr_warm_up=5):
    detector = tiny_faster_rcnn()
    detector["roi_head"]["bbox_head"].update(
        type="GbRShared2FCBBoxHead",
        loss_cls=dict(type="GbRLoss", num_classes=NUM_CLASSES, focal=True, gamma=1.0, beta_sup=0.5,
                      warm_up_iter=gbr_warm_up))
    return detector


def build_grs(train_cfg=None, detector=None, seed=0):
    torch.manual_seed(seed)
    cfg = dict(warm_up_iter=WARM_UP, reg_pseudo_threshold=1.0)
    cfg.update(train_cfg or {})
    model = build_detector(dict(type="SoftTeacherGrS", model=detector or gbr_detector(), train_cfg=cfg))
    return model.train()


def set_score_means(model, means):
    """Put the tracker in its EMA phase with the given per-class means."""
    tracker = model.class_score_tracker
    tracker.score_mean.copy_(torch.tensor(means, dtype=torch.float64))
    tracker.count.fill_(tracker.window)


# ----------------------------------------------------------------------------- construction
def test_registered_names_and_train_cfg():
    assert DETECTORS.get("SoftTeacherGrS") is SoftTeacherGrS
    assert LOSSES.get("GbROptim") is GbRLoss
    assert HEADS.get("MyShared2FCBBoxHead") is HEADS.get("GbRShared2FCBBoxHead")
    model = build_grs(dict(GbT=True, alpha=0.05, max_iter=100))
    assert set(SOFT_TEACHER_TRAIN_CFG) < set(model.train_cfg)
    assert set(model.train_cfg) - set(SOFT_TEACHER_TRAIN_CFG) == {
        "GbT", "alpha", "max_iter", "warm_up_iter", "score_rule", "pseudo_dir"}
    assert model.train_cfg.GbT and model.train_cfg.alpha == 0.05 and model.train_cfg.warm_up_iter == WARM_UP
    assert GRS_TRAIN_CFG["score_rule"] == "mean" and GRS_TRAIN_CFG["GbT"] is False
    # the tracker's statistics are buffers: they are checkpointed with the model
    state = model.state_dict()
    assert {"class_score_tracker.score_mean", "class_score_tracker.count"} <= set(state)
    assert model.class_score_tracker.rule == "mean" and model.num_classes == NUM_CLASSES
    assert build_grs(dict(score_rule="upstream")).class_score_tracker.rule == "upstream"
    with pytest.raises(KeyError, match="GbT_enabled"):
        build_grs(dict(GbT_enabled=True))
    with pytest.raises(ValueError, match="pseudo_dir"):
        build_grs(dict(pseudo_dir="./pseudo/coco1/"))
    with pytest.raises(ValueError, match="score_rule"):
        build_grs(dict(score_rule="median"))


# ----------------------------------------------------------------------------- GbR routing (C.5, C.8)
def record_gbr_calls(monkeypatch):
    calls = []
    original = GbRLoss.forward

    def spy(self, cls_score, labels, label_weights, iter_num=-1, call_type="sup", grad_weight=1.0,
            avg_factor=None, reduction_override=None):
        calls.append(dict(module=self, iter_num=iter_num, call_type=call_type, grad_weight=grad_weight,
                          reduction=reduction_override))
        return original(self, cls_score, labels, label_weights, iter_num=iter_num, call_type=call_type,
                        grad_weight=grad_weight, avg_factor=avg_factor, reduction_override=reduction_override)

    monkeypatch.setattr(GbRLoss, "forward", spy)
    return calls


def test_gbr_contexts_route_sup_and_unsup_calls(monkeypatch):
    model = build_grs(dict(unsup_weight=3.0))
    make_teacher_predict(model, score_class=1)
    calls = record_gbr_calls(monkeypatch)
    model.iter_num = 7
    losses = model.forward_train(**make_batch())
    student_loss = model.student.roi_head.bbox_head.loss_cls
    assert all(call["module"] is student_loss for call in calls)
    got = [(c["iter_num"], c["call_type"], c["grad_weight"], c["reduction"]) for c in calls]
    # sup RoI loss, unsup RoI cls loss (x unsup_weight statistics), unsup regression path outside GbR
    assert got == [(7, "sup", 1.0, None), (7, "unsup", 3.0, "none"), (-1, "sup", 1.0, None)]
    # t = 7 > GbR warm-up 5: both GbR calls produce a weight loss, scaled like every unsup loss
    assert losses["sup_loss_grad"].item() > 0 and losses["unsup_loss_grad"].item() > 0
    # the contexts are left: a later plain loss call is at iteration -1
    assert model.student.roi_head.bbox_head._gbr_call["iter_num"] == -1


def test_stock_head_runs_without_gbr(monkeypatch):
    model = build_grs(detector=tiny_faster_rcnn())
    make_teacher_predict(model, score_class=1)
    model.iter_num = WARM_UP + 1
    losses = model.forward_train(**make_batch())
    assert "sup_loss_grad" not in losses and model.gbr_class_weights() is None
    assert torch.isfinite(losses["unsup_loss_cls"])


# ----------------------------------------------------------------------------- GbT (D.2, D.3; I.3 item 24)
def test_thresholds_from_tracker_and_student_weights():
    model = build_grs(dict(GbT=True))
    set_score_means(model, [0.3, 0.9, 0.6])  # mean 0.6: base 0.9 * [0.5, 1.5, 1.0] -> [0.45, 1.35, 0.9]
    torch.testing.assert_close(model.current_class_thresholds(), torch.tensor([0.5, 0.9, 0.9]))
    student_loss = model.student.roi_head.bbox_head.loss_cls
    student_loss.last_unsup_weights = torch.tensor([1.0, 2.0, 1.5, 0.7])  # foreground part [1, 2, 1.5]
    model.teacher.roi_head.bbox_head.loss_cls.last_unsup_weights = torch.tensor([9.0, 9.0, 9.0, 9.0])
    # min(base, 0.9 / w): class 1 -> 0.45 -> floor 0.5; class 2 -> 0.6 (the teacher's weights are ignored)
    torch.testing.assert_close(model.current_class_thresholds(), torch.tensor([0.5, 0.5, 0.6]))
    model.train_cfg.GbT = False
    torch.testing.assert_close(model.current_class_thresholds(), torch.tensor([0.5, 0.9, 0.9]))
    np.testing.assert_allclose(model.gbr_class_weights().numpy(), student_loss.class_weights.numpy())


def test_cls_pseudo_labels_gate_at_warm_up():
    model = build_grs(dict(GbT=True))
    set_score_means(model, [0.3, 0.9, 0.6])
    model.student.roi_head.bbox_head.loss_cls.last_unsup_weights = torch.tensor([1.0, 1.0, 1.5, 1.0])
    model._iter_thresholds = model.current_class_thresholds()  # [0.5, 0.9, 0.6]
    labels = torch.tensor([1, 0, 2, 2, 0, 1])
    boxes = torch.zeros(6, 9)
    boxes[:, 4] = torch.tensor([0.95, 0.45, 0.7, 0.6, 0.91, 0.85])
    model.iter_num = WARM_UP - 1
    assert model.select_cls_pseudo_labels(boxes, labels, {}).tolist() == [True, False, False, False, True, False]
    for t in (WARM_UP, WARM_UP + 5):
        model.iter_num = t
        assert model.select_cls_pseudo_labels(boxes, labels, {}).tolist() == [True, False, True, False, True, False]


# ----------------------------------------------------------------------------- CrS pool (E.1, H.24)
TEACHER_META = make_meta("unsup_teacher", "data/unlabeled/a.jpg", hflip_scale_matrix(1.5, 120), (96, 120), (64, 80))
# teacher-view detections: x_orig = (120 - x) / 1.5, y_orig = y / 1.5, clipped to 80 x 64
DETECTIONS = torch.tensor([
    [30.0, 15.0, 90.0, 60.0, 0.95],   # label 1 -> [20, 10, 60, 40], kept (thr 0.9), margin 0.05
    [0.0, 0.0, 30.0, 30.0, 0.70],     # label 0 -> [60, 0, 80, 20], kept (thr 0.5), margin 0.2
    [100.0, 80.0, 125.0, 100.0, 0.8],  # label 0 -> [0, 53.33, 13.33, 64] after clipping, margin 0.3
    [10.0, 10.0, 50.0, 50.0, 0.55],   # label 1: >= 0.5 but below thr 0.9, not dumped
    [40.0, 40.0, 60.0, 70.0, 0.30],   # label 2: below 0.5, seen by the tracker only
])
DET_LABELS = torch.tensor([1, 0, 0, 1, 2])


def stub_teacher_detections(model, monkeypatch):
    def simple_test_bboxes(feat, img_metas, proposals, rcnn_test_cfg, rescale=False):
        if rcnn_test_cfg is None:  # jitter refinement: identity, class-agnostic
            return [p[:, :4] for p in proposals], [p.new_zeros(len(p), NUM_CLASSES + 1) for p in proposals]
        return [DETECTIONS.clone() for _ in img_metas], [DET_LABELS.clone() for _ in img_metas]

    monkeypatch.setattr(model.teacher.roi_head, "simple_test_bboxes", simple_test_bboxes)


def teacher_info_at(model, iter_num):
    model.iter_num = iter_num
    with torch.no_grad():
        return model.extract_teacher_info(torch.randn(1, 3, *PAD), [TEACHER_META])


def test_pool_gets_original_coordinates_and_margins_after_warm_up(monkeypatch):
    model = build_grs()
    stub_teacher_detections(model, monkeypatch)
    set_score_means(model, [0.3, 0.9, 0.6])
    counts_before = model.class_score_tracker.count.clone()
    info = teacher_info_at(model, WARM_UP)
    # the tracker saw every detection, including those below the 0.5 filter
    assert (model.class_score_tracker.count - counts_before).tolist() == [2, 2, 1]
    assert info["pseudo_labels"][0].tolist() == [1, 0, 0, 1]
    assert model.pseudo_label_pool.pending() == {}  # t == warm_up_iter: no dumping yet (t > warm_up_iter)

    teacher_info_at(model, WARM_UP + 1)
    thresholds = model.current_class_thresholds()
    assert thresholds[0].item() == 0.5 and thresholds[1].item() == pytest.approx(0.9)
    entry = model.pseudo_label_pool.pending()["data/unlabeled/a.jpg"]
    assert (entry["width"], entry["height"]) == (80, 64)
    anns = entry["annotations"]
    assert [a["category_id"] for a in anns] == [1, 0, 0]
    np.testing.assert_allclose([a["bbox"] for a in anns],
                               [[20, 10, 60, 40], [60, 0, 80, 20], [0, 80 / 1.5, 20 / 1.5, 64]], rtol=1e-5)
    margins = np.array([a["score"] for a in anns])
    np.testing.assert_allclose(margins, [0.95 - thresholds[1].item(), 0.2, 0.3], rtol=1e-5)
    assert (margins >= 0).all()


def test_forward_train_fills_the_pool_without_io_or_gathering(monkeypatch):
    model = build_grs()
    make_teacher_predict(model, score_class=1)  # confident class-1 teacher everywhere

    def forbidden(*args, **kwargs):
        raise AssertionError("forward_train must not do file I/O or gather objects")

    for module, name in ((builtins, "open"), (os, "replace"), (tempfile, "mkstemp"), (torch, "save"),
                         (dist_utils, "all_gather_objects"), (dist_utils, "broadcast_object"),
                         (dist_utils, "barrier")):
        monkeypatch.setattr(module, name, forbidden)
    batch = make_batch()
    model.iter_num = WARM_UP
    model.forward_train(**copy.deepcopy(batch))
    assert model.pseudo_label_pool.pending() == {}
    model.iter_num = WARM_UP + 1
    losses = model.forward_train(**copy.deepcopy(batch))
    assert torch.isfinite(losses["unsup_loss_cls"])
    pending = model.pseudo_label_pool.pending()
    assert sorted(pending) == ["unsup1.jpg", "unsup2.jpg"]
    thresholds = model.current_class_thresholds()
    for entry in pending.values():
        assert (entry["width"], entry["height"]) == (80, 64)
        assert entry["annotations"], "a confident teacher gives pseudo boxes"
        for ann in entry["annotations"]:
            assert ann["category_id"] == 1 and ann["score"] >= 0
            assert ann["score"] <= 1 - thresholds[1].item() + 1e-6
            x1, y1, x2, y2 = ann["bbox"]
            assert 0 <= x1 < x2 <= 80 and 0 <= y1 < y2 <= 64


def test_tracker_and_thresholds_follow_forward(monkeypatch):
    model = build_grs(dict(GbT=True))
    make_teacher_predict(model, score_class=2)
    model.iter_num = WARM_UP
    model.forward_train(**make_batch())
    tracker = model.class_score_tracker
    assert tracker.count[2].item() > 0 and tracker.count[:2].sum().item() == 0
    assert tracker.score_mean[2].item() == pytest.approx(1.0, abs=1e-3)
    expected = class_thresholds(tracker.score_mean.float(),
                                model.student.roi_head.bbox_head.class_weights_for_thresholds)
    torch.testing.assert_close(model.current_class_thresholds(), expected)
    # after the unsup GbR call the student head exposes weights for GbT
    assert model.student.roi_head.bbox_head.class_weights_for_thresholds is not None
