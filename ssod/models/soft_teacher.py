"""SoftTeacher on the teacher-student wrapper (spec section B.4-B.6).

Unlabeled images come as a weak ``unsup_teacher`` view and a strong ``unsup_student``
view. The teacher turns its view into pseudo boxes ``[x1, y1, x2, y2, score, u1..u4]``
(``u``: box-jitter uncertainty), which are mapped into the student view and used as
RPN, RCNN-classification (soft background weights) and RCNN-regression targets.

The unsupervised path is split into overridable steps so that subclasses (class-wise
thresholds, gradient-based reweighting) can hook in: :meth:`extract_teacher_info`,
:meth:`select_cls_pseudo_labels`, :meth:`rcnn_cls_loss_context`.
"""
import contextlib

import numpy as np
import torch
from mmcv.utils import ConfigDict
from mmdet.core import bbox2roi
from mmdet.models.builder import DETECTORS

from ssod.utils.bbox_utils import relative_transform, transform_bboxes

from .multi_stream_detector import MultiStreamDetector
from .utils import (add_prefix, group_views_by_tag, pair_teacher_student_views, scale_loss_terms,
                    select_batch_items, zeroed_losses)

SOFT_TEACHER_TRAIN_CFG = dict(
    use_teacher_proposal=False,
    pseudo_label_initial_score_thr=0.5,
    rpn_pseudo_threshold=0.9,
    cls_pseudo_threshold=0.9,
    reg_pseudo_threshold=0.02,
    jitter_times=10,
    jitter_scale=0.06,
    min_pseduo_box_size=0,  # (sic) the upstream key name
    unsup_weight=4.0,
)


def view_matrix(img_meta: dict) -> torch.Tensor:
    """The 3x3 matrix mapping original-image coordinates to this view."""
    if "transform_matrix" not in img_meta:
        raise KeyError(f"img_meta of {img_meta.get('filename', '<unknown file>')!r} has no 'transform_matrix'")
    return torch.as_tensor(np.asarray(img_meta["transform_matrix"]), dtype=torch.float64)


def box_size_mask(bboxes: torch.Tensor, min_size: float) -> torch.Tensor:
    """True where both width and height are strictly larger than ``min_size``."""
    widths = bboxes[:, 2] - bboxes[:, 0]
    heights = bboxes[:, 3] - bboxes[:, 1]
    return (widths > min_size) & (heights > min_size)


def jitter_boxes(bboxes: torch.Tensor, times: int, scale: float) -> torch.Tensor:
    """``times`` noisy copies of ``[n, 4]`` boxes, offsets ~ N(0, 1) * scale * (w, h, w, h).

    Returns ``[times * n, 4]`` ordered copy-major (copy k of box i at row ``k * n + i``).
    """
    sizes = (bboxes[:, 2:4] - bboxes[:, :2]).clamp(min=1.0).repeat(1, 2)
    offsets = torch.randn(times, *bboxes.shape, device=bboxes.device, dtype=bboxes.dtype) * (sizes * scale)
    return (bboxes[None] + offsets).reshape(-1, 4)


def refined_box_spread(refined: torch.Tensor, labels: torch.Tensor, times: int) -> torch.Tensor:
    """Relative std ``[n, 4]`` of the refined jitter copies (box of each label's class).

    ``refined`` is ``[times * n, 4]`` (class-agnostic) or ``[times * n, 4 * C]``; the std of
    every coordinate is divided by the (w, h, w, h) of the mean refined box, clamped >= 1.
    """
    num_boxes = labels.numel()
    if num_boxes == 0:
        return refined.new_zeros(0, 4)
    copies = refined.view(times, num_boxes, -1, 4)
    if copies.shape[2] == 1:
        copies = copies[:, :, 0]
    else:
        copies = copies[:, torch.arange(num_boxes, device=labels.device), labels]
    mean_box = copies.mean(dim=0)
    sizes = (mean_box[:, 2:4] - mean_box[:, :2]).clamp(min=1.0).repeat(1, 2)
    return copies.std(dim=0) / sizes


@DETECTORS.register_module()
class SoftTeacher(MultiStreamDetector):
    """End-to-end semi-supervised Faster R-CNN with soft teacher and box jitter.

    Args:
        model (dict): detector config (two-stage with RPN, e.g. ``FasterRCNN``).
        train_cfg (dict, optional): keys of :attr:`default_train_cfg`; unknown keys raise.
        test_cfg (dict, optional): ``inference_on`` ('teacher' by default).
    """

    default_train_cfg = SOFT_TEACHER_TRAIN_CFG

    def __init__(self, model: dict, train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(model, train_cfg=self.resolve_train_cfg(train_cfg), test_cfg=test_cfg,
                         init_cfg=init_cfg)
        if not (getattr(self.student, "with_rpn", False) and self.student.with_bbox):
            raise TypeError(f"{type(self).__name__} needs a two-stage detector with an RPN and a bbox head; "
                            f"got model type {model.get('type')!r}")

    @classmethod
    def resolve_train_cfg(cls, train_cfg) -> ConfigDict:
        """Defaults of :attr:`default_train_cfg` updated by ``train_cfg``; unknown keys raise."""
        given = dict(train_cfg or {})
        unknown = sorted(set(given) - set(cls.default_train_cfg))
        if unknown:
            raise KeyError(f"{cls.__name__}: unknown train_cfg key(s) {unknown}; "
                           f"known keys are {sorted(cls.default_train_cfg)}")
        resolved = ConfigDict({**cls.default_train_cfg, **given})
        if resolved.jitter_times < 2:
            raise ValueError(f"train_cfg.jitter_times = {resolved.jitter_times}; the jitter std needs >= 2 copies")
        return resolved

    # ------------------------------------------------------------------ batch level
    def forward_train(self, img, img_metas, gt_bboxes, gt_labels, **kwargs):
        """Losses of a flat batch of 'sup', 'unsup_teacher' and 'unsup_student' views.

        Keys are prefixed ``sup_`` / ``unsup_``. A side missing from the batch gets the
        other side's keys with zero values, so every batch yields the same key set.
        """
        super().forward_train(img, img_metas)
        groups = group_views_by_tag(img_metas)
        teacher_idx, student_idx = pair_teacher_student_views(
            img_metas, groups["unsup_teacher"], groups["unsup_student"])
        sup_losses = unsup_losses = None
        if groups["sup"]:
            sup_idx = groups["sup"]
            batch_size = len(img_metas)
            sup_kwargs = {key: select_batch_items(value, sup_idx, batch_size, key) for key, value in kwargs.items()}
            sup_losses = self.forward_sup_train(
                img[sup_idx], [img_metas[i] for i in sup_idx],
                select_batch_items(gt_bboxes, sup_idx, batch_size, "gt_bboxes"),
                select_batch_items(gt_labels, sup_idx, batch_size, "gt_labels"), **sup_kwargs)
        if teacher_idx:
            unsup_losses = self.forward_unsup_train(
                img[teacher_idx], [img_metas[i] for i in teacher_idx],
                img[student_idx], [img_metas[i] for i in student_idx])
        if sup_losses is None and unsup_losses is None:
            raise ValueError("forward_train got a batch without any view")
        if sup_losses is None:
            sup_losses = zeroed_losses(unsup_losses)
        if unsup_losses is None:
            unsup_losses = zeroed_losses(sup_losses)
        return {**add_prefix(sup_losses, "sup_"), **add_prefix(unsup_losses, "unsup_")}

    def forward_sup_train(self, img, img_metas, gt_bboxes, gt_labels, **kwargs):
        """Standard student losses on labeled views."""
        return self.student.forward_train(img, img_metas, gt_bboxes, gt_labels, **kwargs)

    def forward_unsup_train(self, teacher_img, teacher_metas, student_img, student_metas):
        """Unsupervised losses of paired views (position k = one image), x ``unsup_weight``."""
        with torch.no_grad():
            teacher_info = self.extract_teacher_info(teacher_img, teacher_metas)
        student_info = self.extract_student_info(student_img, student_metas)
        losses = self.compute_unsup_losses(teacher_info, student_info)
        return scale_loss_terms(losses, self.train_cfg.unsup_weight)

    # ------------------------------------------------------------------ teacher side
    def extract_teacher_info(self, img, img_metas) -> dict:
        """Teacher features, proposals, detections and pseudo boxes of the weak views.

        Returns a dict with ``feat``, ``img_metas``, ``transform_matrices`` (view matrices),
        ``proposals``, ``det_bboxes`` / ``det_labels`` (after NMS, before any pseudo filter),
        ``pseudo_bboxes`` (``[m, 9]``: box, score, 4 uncertainties; teacher-view coords) and
        ``pseudo_labels``.
        """
        feat = self.teacher.extract_feat(img)
        proposals = self.teacher_proposals(feat, img_metas)
        det_bboxes, det_labels = self.teacher.roi_head.simple_test_bboxes(
            feat, img_metas, proposals, self.teacher.test_cfg.rcnn, rescale=False)
        keeps = [(bboxes[:, 4] > self.train_cfg.pseudo_label_initial_score_thr)
                 & box_size_mask(bboxes, self.train_cfg.min_pseduo_box_size) for bboxes in det_bboxes]
        kept_bboxes = [bboxes[keep] for bboxes, keep in zip(det_bboxes, keeps)]
        kept_labels = [labels[keep] for labels, keep in zip(det_labels, keeps)]
        uncertainties = self.jitter_uncertainty(feat, img_metas, kept_bboxes, kept_labels)
        return dict(
            feat=feat,
            img_metas=img_metas,
            transform_matrices=[view_matrix(meta) for meta in img_metas],
            proposals=proposals,
            det_bboxes=det_bboxes,
            det_labels=det_labels,
            pseudo_bboxes=[torch.cat([bboxes, unc], dim=1) for bboxes, unc in zip(kept_bboxes, uncertainties)],
            pseudo_labels=kept_labels,
        )

    def teacher_proposals(self, feat, img_metas):
        """Teacher RPN proposals with the training proposal config (``rpn_proposal``)."""
        proposal_cfg = (self.teacher.train_cfg or {}).get("rpn_proposal", self.teacher.test_cfg.rpn)
        rpn_outs = self.teacher.rpn_head(feat)
        return self.teacher.rpn_head.get_bboxes(*rpn_outs, img_metas=img_metas, cfg=proposal_cfg)

    def jitter_uncertainty(self, feat, img_metas, bboxes, labels):
        """Per-box 4-vector of relative std of the teacher's refinement of jittered copies."""
        times = self.train_cfg.jitter_times
        jittered = [jitter_boxes(b[:, :4], times, self.train_cfg.jitter_scale) for b in bboxes]
        refined, _ = self.teacher.roi_head.simple_test_bboxes(feat, img_metas, jittered, None, rescale=False)
        return [refined_box_spread(boxes, box_labels, times) for boxes, box_labels in zip(refined, labels)]

    def teacher_background_scores(self, teacher_info, student_rois, student_to_teacher) -> torch.Tensor:
        """Teacher background probability of student RoIs mapped into the teacher views (flat)."""
        aligned = [transform_bboxes(rois[:, :4], matrix, meta["img_shape"][:2])
                   for rois, matrix, meta in zip(student_rois, student_to_teacher, teacher_info["img_metas"])]
        with torch.no_grad():
            _, scores = self.teacher.roi_head.simple_test_bboxes(
                teacher_info["feat"], teacher_info["img_metas"], aligned, None, rescale=False)
        return torch.cat([image_scores[:, -1] for image_scores in scores]).detach()

    @staticmethod
    def teacher_boxes_to_original(bboxes: torch.Tensor, img_meta: dict) -> torch.Tensor:
        """Map teacher-view boxes back to original-image coordinates, clipped to ``ori_shape``."""
        to_original = relative_transform(view_matrix(img_meta), torch.eye(3, dtype=torch.float64))
        return transform_bboxes(bboxes, to_original, img_meta["ori_shape"][:2])

    # ------------------------------------------------------------------ student side
    def extract_student_info(self, img, img_metas) -> dict:
        """Student features and RPN outputs of the strong views."""
        feat = self.student.extract_feat(img)
        return dict(
            feat=feat,
            img_metas=img_metas,
            transform_matrices=[view_matrix(meta) for meta in img_metas],
            rpn_outs=self.student.rpn_head(feat),
        )

    def compute_unsup_losses(self, teacher_info, student_info) -> dict:
        """Unweighted unsupervised losses: RPN, RCNN classification, RCNN regression."""
        teacher_to_student = [relative_transform(t, s) for t, s in
                              zip(teacher_info["transform_matrices"], student_info["transform_matrices"])]
        student_to_teacher = [relative_transform(s, t) for t, s in
                              zip(teacher_info["transform_matrices"], student_info["transform_matrices"])]
        student_metas = student_info["img_metas"]
        pseudo_bboxes = self.boxes_in_student_views(teacher_info["pseudo_bboxes"], teacher_to_student, student_metas)
        pseudo_labels = teacher_info["pseudo_labels"]

        losses, proposals = self.unsup_rpn_loss(student_info, pseudo_bboxes)
        if self.train_cfg.use_teacher_proposal:
            proposals = self.boxes_in_student_views(teacher_info["proposals"], teacher_to_student, student_metas)
        losses.update(self.unsup_rcnn_cls_loss(
            student_info, proposals, pseudo_bboxes, pseudo_labels, teacher_info, student_to_teacher))
        losses.update(self.unsup_rcnn_reg_loss(student_info, proposals, pseudo_bboxes, pseudo_labels))
        return losses

    @staticmethod
    def boxes_in_student_views(bboxes, teacher_to_student, student_metas):
        """Map per-image teacher-view boxes (extra columns kept) into the student views, clipped."""
        return [transform_bboxes(image_bboxes, matrix, meta["img_shape"][:2])
                for image_bboxes, matrix, meta in zip(bboxes, teacher_to_student, student_metas)]

    def unsup_rpn_loss(self, student_info, pseudo_bboxes):
        """Student RPN loss on pseudo boxes with score > ``rpn_pseudo_threshold``; also its proposals."""
        min_size = self.train_cfg.min_pseduo_box_size
        gt_bboxes = [b[(b[:, 4] > self.train_cfg.rpn_pseudo_threshold) & box_size_mask(b, min_size), :4]
                     for b in pseudo_bboxes]
        rpn_head = self.student.rpn_head
        losses = rpn_head.loss(*student_info["rpn_outs"], gt_bboxes, student_info["img_metas"])
        proposal_cfg = (self.student.train_cfg or {}).get("rpn_proposal", self.student.test_cfg.rpn)
        proposals = rpn_head.get_bboxes(*student_info["rpn_outs"], img_metas=student_info["img_metas"],
                                        cfg=proposal_cfg)
        return dict(losses), proposals

    def select_cls_pseudo_labels(self, pseudo_bboxes: torch.Tensor, pseudo_labels: torch.Tensor,
                                 img_meta: dict) -> torch.Tensor:
        """Boolean mask of the pseudo boxes used as RCNN-classification targets."""
        return pseudo_bboxes[:, 4] > self.train_cfg.cls_pseudo_threshold

    def rcnn_cls_loss_context(self):
        """Context entered around the unsupervised RoI classification loss call."""
        return contextlib.nullcontext()

    def unsup_rcnn_cls_loss(self, student_info, proposals, pseudo_bboxes, pseudo_labels, teacher_info,
                            student_to_teacher) -> dict:
        """Soft-teacher RoI classification loss: sum_n a_n l_n / max(sum_n a_n, 1).

        ``a_n`` is 1 for RoIs assigned to a pseudo box and the teacher's background
        probability for background RoIs.
        """
        min_size = self.train_cfg.min_pseduo_box_size
        masks = [self.select_cls_pseudo_labels(bboxes, labels, meta) & box_size_mask(bboxes, min_size)
                 for bboxes, labels, meta in zip(pseudo_bboxes, pseudo_labels, student_info["img_metas"])]
        gt_bboxes = [bboxes[mask, :4] for bboxes, mask in zip(pseudo_bboxes, masks)]
        gt_labels = [labels[mask] for labels, mask in zip(pseudo_labels, masks)]
        feat = student_info["feat"]
        roi_head = self.student.roi_head
        bbox_head = roi_head.bbox_head
        sampling_results = self.sample_student_rois(feat, proposals, gt_bboxes, gt_labels)
        rois = bbox2roi([result.bboxes for result in sampling_results])
        cls_score = roi_head._bbox_forward(feat, rois)["cls_score"]
        labels, label_weights, bbox_targets, bbox_weights = bbox_head.get_targets(
            sampling_results, gt_bboxes, gt_labels, roi_head.train_cfg)
        bg_scores = self.teacher_background_scores(
            teacher_info, [result.bboxes for result in sampling_results], student_to_teacher)
        background = labels == bbox_head.num_classes
        label_weights = torch.where(background, bg_scores.to(label_weights.dtype), label_weights)
        with self.rcnn_cls_loss_context():
            losses = bbox_head.loss(cls_score, None, rois, labels, label_weights, bbox_targets, bbox_weights,
                                    reduction_override="none")
        per_roi = losses["loss_cls"]
        if per_roi.shape != labels.shape:
            raise ValueError(f"{type(bbox_head.loss_cls).__name__} returned loss_cls of shape {tuple(per_roi.shape)} "
                             f"with reduction_override='none'; expected one value per RoI {tuple(labels.shape)}")
        losses["loss_cls"] = per_roi.sum() / label_weights.sum().clamp(min=1.0)
        return losses

    def sample_student_rois(self, feat, proposals, gt_bboxes, gt_labels):
        """Assign and sample the student's RCNN RoIs per image (mmdet StandardRoIHead logic)."""
        roi_head = self.student.roi_head
        results = []
        for i, (image_proposals, image_gt_bboxes, image_gt_labels) in enumerate(zip(proposals, gt_bboxes, gt_labels)):
            assign_result = roi_head.bbox_assigner.assign(image_proposals, image_gt_bboxes, None, image_gt_labels)
            results.append(roi_head.bbox_sampler.sample(
                assign_result, image_proposals, image_gt_bboxes, image_gt_labels,
                feats=[level[i][None] for level in feat]))
        return results

    def unsup_rcnn_reg_loss(self, student_info, proposals, pseudo_bboxes, pseudo_labels) -> dict:
        """Student RCNN box loss on pseudo boxes with mean jitter uncertainty < ``reg_pseudo_threshold``."""
        min_size = self.train_cfg.min_pseduo_box_size
        masks = [(bboxes[:, 5:].mean(dim=1) < self.train_cfg.reg_pseudo_threshold) & box_size_mask(bboxes, min_size)
                 for bboxes in pseudo_bboxes]
        gt_bboxes = [bboxes[mask, :4] for bboxes, mask in zip(pseudo_bboxes, masks)]
        gt_labels = [labels[mask] for labels, mask in zip(pseudo_labels, masks)]
        losses = self.student.roi_head.forward_train(
            student_info["feat"], student_info["img_metas"], proposals, gt_bboxes, gt_labels)
        return {"loss_bbox": losses["loss_bbox"]}
