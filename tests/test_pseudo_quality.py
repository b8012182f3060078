"""Pseudo-label precision and recall against hand-computed values."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ssod.evaluation.pseudo_quality import (class_thresholds_of, match_image, match_results, overall_quality,
                                            quality_at, quality_sweep)
from ssod.hooks.pseudo_quality import quality_log_entries

# image 1: two class-0 objects A, B and one class-1 object C; image 2: one class-1 object D
GT_1 = dict(bboxes=np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 20, 10, 30]], dtype=np.float32),
            labels=np.array([0, 0, 1]))
GT_2 = dict(bboxes=np.array([[0, 0, 10, 10]], dtype=np.float32), labels=np.array([1]))
DETS_1 = np.array([
    [0, 0, 10, 10, 0.95],   # class 0 on A: true
    [1, 1, 10, 10, 0.80],   # class 0, IoU 0.81 with A, which is taken: false (duplicate)
    [20, 20, 30, 30, 0.60],  # class 0 on B: true
    [0, 0, 10, 10, 0.92],   # class 1 where only a class-0 object is: false
    [0, 20, 10, 25, 0.70],  # class 1, IoU exactly 0.5 with C: true
])
LABELS_1 = np.array([0, 0, 0, 1, 1])


def as_result(dets, labels, num_classes=2):
    return [dets[labels == c] for c in range(num_classes)]


@pytest.fixture
def matched():
    return match_results([as_result(DETS_1, LABELS_1), as_result(np.zeros((0, 5)), np.zeros(0))],
                         [GT_1, GT_2], num_classes=2)


def test_matching_marks_duplicates_and_wrong_classes_false(matched):
    assert matched.is_true.tolist() == [True, False, True, False, True]
    assert matched.gt_counts.tolist() == [2, 2]


def test_greedy_matching_follows_score_not_iou():
    dets = np.array([[0, 0, 10, 7, 0.9], [0, 0, 10, 10, 0.8]])  # IoU 0.7 then 1.0 with the one GT
    result = match_image(dets, [0, 0], [[0, 0, 10, 10]], [0], num_classes=1)
    assert result.is_true.tolist() == [True, False]


def test_quality_at_fixed_threshold(matched):
    quality = quality_at(matched, 0.9)
    assert quality["kept"].tolist() == [1, 1]
    assert quality["true"].tolist() == [1, 0]
    np.testing.assert_allclose(quality["precision"], [1.0, 0.0])
    np.testing.assert_allclose(quality["recall"], [0.5, 0.0])
    assert overall_quality(quality) == dict(gt=4, kept=2, true=1, precision=0.5, recall=0.25)


def test_quality_at_class_thresholds_is_strict(matched):
    quality = quality_at(matched, [0.5, 0.7])  # class 1's true box scores exactly 0.7: dropped
    assert quality["kept"].tolist() == [3, 1]
    np.testing.assert_allclose(quality["precision"], [2 / 3, 0.0])
    np.testing.assert_allclose(quality["recall"], [1.0, 0.0])
    nothing = quality_at(matched, 0.95)
    assert np.isnan(nothing["precision"][0]) and nothing["recall"][0] == 0.0


def test_sweep_stacks_thresholds(matched):
    sweep = quality_sweep(matched, [0.5, 0.9])
    assert sweep["kept"].tolist() == [[3, 2], [1, 1]]
    np.testing.assert_allclose(sweep["recall"], [[1.0, 0.5], [0.5, 0.0]])


def test_unknown_class_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        match_image(np.zeros((1, 5)), [3], np.zeros((0, 4)), [], num_classes=2)


def fake_detector(score_mean, count, gbt, class_weights):
    tracker = SimpleNamespace(score_mean=torch.tensor(score_mean, dtype=torch.float64), count=torch.tensor(count))
    loss_cls = SimpleNamespace(class_weights=torch.tensor(class_weights))
    return SimpleNamespace(
        class_score_tracker=tracker,
        train_cfg=SimpleNamespace(GbT=gbt, cls_pseudo_threshold=0.9, pseudo_label_initial_score_thr=0.5),
        student=SimpleNamespace(roi_head=SimpleNamespace(bbox_head=SimpleNamespace(loss_cls=loss_cls))))


def test_class_thresholds_of_a_checkpointed_detector():
    # base = 0.9 * s / mean(s) = [1.35, 0.45], clamped to [0.5, 0.9]
    np.testing.assert_allclose(class_thresholds_of(fake_detector([0.9, 0.3], [5, 5], False, [1.0, 3.0, 1.0])),
                               [0.9, 0.5])
    # with GbT: min(base = 0.9, 0.9 / w) for the foreground weights w = [1, 1.5]
    np.testing.assert_allclose(class_thresholds_of(fake_detector([0.6, 0.6], [5, 5], True, [1.0, 1.5, 0.7])),
                               [0.9, 0.6], rtol=1e-6)
    assert class_thresholds_of(fake_detector([0.0, 0.0], [0, 0], True, [1.0, 1.0, 1.0])) is None
    assert class_thresholds_of(SimpleNamespace()) is None


def test_log_entries_per_rule(matched):
    entries = quality_log_entries(matched, {"fixed": 0.9, "gbt": np.array([0.5, 0.95])})
    assert entries["pseudo_precision@fixed"] == [1.0, 0.0]
    assert entries["pseudo_recall@gbt"] == [1.0, 0.0]
    assert entries["pseudo_precision@gbt"] == [0.6667, None]
    assert entries["pseudo_kept@gbt"] == [3, 0]
    assert entries["pseudo_precision_all@fixed"] == 0.5 and entries["pseudo_recall_all@gbt"] == 0.5
