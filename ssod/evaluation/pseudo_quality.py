"""Pseudo-label quality: precision and recall of a teacher's boxes against ground truth.

A teacher detection is *true* when it matches a ground-truth box of its own class with
IoU >= ``iou_thr``; matching is greedy in descending score order, one detection per ground
truth, per image and class (as VOC). Because a greedy matching of the top-k detections is
the top-k part of the full matching, one matching serves every threshold: a box is kept as a
pseudo label when ``score > thr`` (strict, as the training rule), with ``thr`` one value or
one value per class.
"""
from dataclasses import dataclass

import numpy as np
import torch
from mmdet.core import bbox_overlaps

from ssod.models.gbt import class_thresholds


@dataclass
class MatchedDetections:
    """Every teacher detection of a set of images, flat: score, class and whether it is true."""

    scores: np.ndarray
    labels: np.ndarray
    is_true: np.ndarray
    gt_counts: np.ndarray

    @classmethod
    def empty(cls, num_classes):
        return cls(np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool),
                   np.zeros(num_classes, dtype=np.int64))

    def extend(self, other):
        """This set followed by ``other`` (a new object)."""
        return MatchedDetections(np.concatenate([self.scores, other.scores]),
                                 np.concatenate([self.labels, other.labels]),
                                 np.concatenate([self.is_true, other.is_true]),
                                 self.gt_counts + other.gt_counts)


def match_image(det_bboxes, det_labels, gt_bboxes, gt_labels, num_classes, iou_thr=0.5):
    """Match one image's detections (``[n, 5]`` boxes with scores, ``[n]`` labels) to its GT.

    Returns :class:`MatchedDetections` of the image.
    """
    det_bboxes = np.asarray(det_bboxes, dtype=np.float64).reshape(-1, 5)
    det_labels = np.asarray(det_labels, dtype=np.int64).reshape(-1)
    gt_bboxes = np.asarray(gt_bboxes, dtype=np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, dtype=np.int64).reshape(-1)
    for name, labels in (("det_labels", det_labels), ("gt_labels", gt_labels)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} holds a class outside [0, {num_classes}): {sorted(set(labels.tolist()))}")
    is_true = np.zeros(len(det_labels), dtype=bool)
    for label in np.unique(det_labels):
        dets = np.flatnonzero(det_labels == label)
        gts = np.flatnonzero(gt_labels == label)
        if not gts.size:
            continue
        dets = dets[np.argsort(-det_bboxes[dets, 4], kind="stable")]
        ious = bbox_overlaps(torch.from_numpy(det_bboxes[dets, :4]), torch.from_numpy(gt_bboxes[gts])).numpy()
        taken = np.zeros(len(gts), dtype=bool)
        for row, det in enumerate(dets):
            candidates = np.where(taken, -1.0, ious[row])
            best = int(np.argmax(candidates))
            if candidates[best] >= iou_thr:
                taken[best] = True
                is_true[det] = True
    gt_counts = np.bincount(gt_labels, minlength=num_classes)
    return MatchedDetections(det_bboxes[:, 4].copy(), det_labels, is_true, gt_counts)


def match_results(results, annotations, num_classes, iou_thr=0.5):
    """Match mmdet results (per image: a list of ``[n, 5]`` arrays, one per class) to
    annotations (per image: ``{'bboxes': [m, 4], 'labels': [m]}``, as ``dataset.get_ann_info``)."""
    if len(results) != len(annotations):
        raise ValueError(f"{len(results)} results for {len(annotations)} annotated images")
    matched = MatchedDetections.empty(num_classes)
    for per_class, ann in zip(results, annotations):
        if len(per_class) != num_classes:
            raise ValueError(f"a result has {len(per_class)} classes, expected {num_classes}")
        bboxes = np.concatenate([np.asarray(b).reshape(-1, 5) for b in per_class])
        labels = np.concatenate([np.full(len(np.asarray(b).reshape(-1, 5)), c) for c, b in enumerate(per_class)])
        matched = matched.extend(match_image(bboxes, labels, ann["bboxes"], ann["labels"], num_classes, iou_thr))
    return matched


def quality_at(matched, thresholds):
    """Per-class pseudo-label quality of the boxes with ``score > thr[label]``.

    ``thresholds``: one number or one per class. Returns a dict of ``[C]`` arrays: ``gt``,
    ``kept``, ``true``, ``precision`` (``true / kept``, NaN when nothing is kept) and
    ``recall`` (``true / gt``, NaN without ground truth).
    """
    num_classes = len(matched.gt_counts)
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (num_classes,))
    keep = matched.scores > thr[matched.labels] if matched.labels.size else np.zeros(0, dtype=bool)
    kept = np.bincount(matched.labels[keep], minlength=num_classes)
    true = np.bincount(matched.labels[keep & matched.is_true], minlength=num_classes)
    gt = matched.gt_counts
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(kept > 0, true / np.maximum(kept, 1), np.nan)
        recall = np.where(gt > 0, true / np.maximum(gt, 1), np.nan)
    return dict(gt=gt.copy(), kept=kept, true=true, precision=precision, recall=recall)


def quality_sweep(matched, thresholds):
    """:func:`quality_at` for every value of ``thresholds``; dict of ``[T, C]`` arrays."""
    rows = [quality_at(matched, thr) for thr in thresholds]
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}


def overall_quality(quality):
    """Precision and recall over all classes pooled, from a :func:`quality_at` dict."""
    kept, true, gt = (int(quality[key].sum()) for key in ("kept", "true", "gt"))
    return dict(gt=gt, kept=kept, true=true, precision=true / kept if kept else float("nan"),
                recall=true / gt if gt else float("nan"))


def class_thresholds_of(detector):
    """The GbT class thresholds ``[C]`` a teacher-student detector holds, or None.

    None for a detector without GbT statistics, or one whose statistics are still empty
    (nothing detected yet). The GbR weights enter only with ``train_cfg.GbT`` and a GbR loss;
    they are the student's checkpointed ``class_weights`` (ones before GbR's warm-up).
    """
    tracker = getattr(detector, "class_score_tracker", None)
    if tracker is None or int(tracker.count.sum()) == 0:
        return None
    cfg = detector.train_cfg
    weights = None
    loss_cls = detector.student.roi_head.bbox_head.loss_cls
    if cfg.GbT and hasattr(loss_cls, "class_weights"):
        weights = loss_cls.class_weights[:tracker.score_mean.numel()].detach()
    return class_thresholds(tracker.score_mean.float(), weights, tau=cfg.cls_pseudo_threshold,
                            tau_lo=cfg.pseudo_label_initial_score_thr).cpu().numpy()
