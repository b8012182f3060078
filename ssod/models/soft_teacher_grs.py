"""SoftTeacher with the CI-SSOD modules GbR, GbT and the CrS pseudo-label pool (spec C.5, C.8, D, E.1, F.1).

* GbR: the supervised RoI classification loss runs in ``bbox_head.gbr_context(t, 'sup', 1)``
  and the unsupervised one in ``gbr_context(t, 'unsup', unsup_weight)``; the unsupervised
  regression path stays outside any context (GbR at iteration -1, no statistics).
* GbT: a :class:`ClassScoreTracker` (buffers: checkpointed, all-reduced) takes the teacher
  detections before the 0.5 filter every iteration; the class thresholds replace the fixed
  RCNN-classification rule ``score > cls_pseudo_threshold`` from ``warm_up_iter`` on.
* CrS pool: for ``t > warm_up_iter`` the 0.5-filtered teacher boxes, mapped back to original
  image coordinates, with ``score >= thr[label]`` and margin ``score - thr`` go into
  :attr:`pseudo_label_pool` (this rank's pending entries, in memory). ``GradientResamplingHook``
  gathers, stores and turns them into repeat factors between iterations; ``forward_train``
  does no disk I/O and no collective besides the GbR and GbT all-reduces.
"""
import contextlib

import torch
from mmdet.models.builder import DETECTORS

from ssod.datasets.pseudo_store import PseudoLabelStore
from ssod.models.gbt import SCORE_RULES, ClassScoreTracker, class_thresholds, pseudo_label_mask
from ssod.models.losses.gbr import GbRLoss
from ssod.utils.dist_utils import is_distributed

from .soft_teacher import SOFT_TEACHER_TRAIN_CFG, SoftTeacher, box_size_mask
from .utils import group_views_by_tag

GRS_TRAIN_CFG = dict(
    SOFT_TEACHER_TRAIN_CFG,
    GbT=False,  # the tau / w_c term of the thresholds (True in the COCO GrS configs)
    alpha=0.5,  # final CrS strength lambd (read by GradientResamplingHook)
    max_iter=None,  # length of the lambd ramp; None: the runner's max_iters (GradientResamplingHook)
    warm_up_iter=12000,  # start of class-wise thresholds (t >= it) and of pseudo-label dumping (t > it)
    score_rule="mean",  # ClassScoreTracker warm-up rule: 'mean' (true running mean) or 'upstream'
    pseudo_dir=None,  # upstream key; must stay None: the store lives in work_dir/pseudo_labels
)


@DETECTORS.register_module()
class SoftTeacherGrS(SoftTeacher):
    """SoftTeacher with gradient-based reweighting, thresholding and the CrS pseudo-label pool.

    Args: as :class:`SoftTeacher`; ``train_cfg`` also takes the keys of :data:`GRS_TRAIN_CFG`.
    GbR needs a ``GbRShared2FCBBoxHead`` with a ``GbRLoss``; with a stock box head the GbR
    contexts are skipped and the thresholds never see class weights.

    State for the hooks: :meth:`current_class_thresholds`, :meth:`gbr_class_weights` and
    :attr:`pseudo_label_pool` (a :class:`PseudoLabelStore` used for its pending entries only;
    they travel in the checkpoint's train state, ``ssod/apis/train_state.py``).
    """

    default_train_cfg = GRS_TRAIN_CFG

    def __init__(self, model: dict, train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(model, train_cfg=train_cfg, test_cfg=test_cfg, init_cfg=init_cfg)
        cfg = self.train_cfg
        if cfg.pseudo_dir is not None:
            raise ValueError(f"train_cfg.pseudo_dir = {cfg.pseudo_dir!r}: pseudo labels are stored under "
                             "work_dir/pseudo_labels by GradientResamplingHook; remove the key")
        if cfg.score_rule not in SCORE_RULES:
            raise ValueError(f"train_cfg.score_rule = {cfg.score_rule!r}; expected one of {SCORE_RULES}")
        if not cfg.pseudo_label_initial_score_thr <= cfg.cls_pseudo_threshold:
            raise ValueError(f"train_cfg.pseudo_label_initial_score_thr = {cfg.pseudo_label_initial_score_thr} "
                             f"exceeds cls_pseudo_threshold = {cfg.cls_pseudo_threshold} (GbT floor > ceiling)")
        self.num_classes = self.student.roi_head.bbox_head.num_classes
        self.class_score_tracker = ClassScoreTracker(self.num_classes, rule=cfg.score_rule)
        self.pseudo_label_pool = PseudoLabelStore(self.num_classes)
        self._iter_thresholds = None

    # ------------------------------------------------------------------ state read by hooks
    def current_class_thresholds(self) -> torch.Tensor:
        """GbT thresholds ``[C]`` from the tracked teacher scores and (if ``GbT``) the GbR weights."""
        weights = None
        if self.train_cfg.GbT:
            weights = getattr(self.student.roi_head.bbox_head, "class_weights_for_thresholds", None)
        return class_thresholds(self.class_score_tracker.score_mean.float(), weights,
                                tau=self.train_cfg.cls_pseudo_threshold,
                                tau_lo=self.train_cfg.pseudo_label_initial_score_thr)

    def gbr_class_weights(self):
        """The student's current GbR class weights ``[C + 1]`` (None without a GbR loss)."""
        loss_cls = self.student.roi_head.bbox_head.loss_cls
        return loss_cls.class_weights.detach() if isinstance(loss_cls, GbRLoss) else None

    # ------------------------------------------------------------------ GbR call routing
    def gbr_context(self, call_type: str, grad_weight: float):
        """``bbox_head.gbr_context(iter_num, call_type, grad_weight)``; a null context for a stock head."""
        bbox_head = self.student.roi_head.bbox_head
        if not hasattr(bbox_head, "gbr_context"):
            return contextlib.nullcontext()
        return bbox_head.gbr_context(self.iter_num, call_type, grad_weight)

    def forward_train(self, img, img_metas, gt_bboxes, gt_labels, **kwargs):
        """SoftTeacher losses; with several ranks every batch must hold both sides (collectives)."""
        if is_distributed():
            groups = group_views_by_tag(img_metas)
            missing = [tag for tag in ("sup", "unsup_teacher") if not groups[tag]]
            if missing:
                raise RuntimeError(f"SoftTeacherGrS: a batch without {missing} views would skip the GbR/GbT "
                                   "all-reduces on this rank only; use SemiBalanceSampler, whose batches "
                                   "always hold labeled and unlabeled images")
        return super().forward_train(img, img_metas, gt_bboxes, gt_labels, **kwargs)

    def forward_sup_train(self, img, img_metas, gt_bboxes, gt_labels, **kwargs):
        with self.gbr_context("sup", 1.0):
            return super().forward_sup_train(img, img_metas, gt_bboxes, gt_labels, **kwargs)

    def rcnn_cls_loss_context(self):
        return self.gbr_context("unsup", self.train_cfg.unsup_weight)

    # ------------------------------------------------------------------ GbT and the CrS pool
    def extract_teacher_info(self, img, img_metas) -> dict:
        """Teacher info of :class:`SoftTeacher`; also updates the GbT statistics and the CrS pool."""
        info = super().extract_teacher_info(img, img_metas)
        detections = [bboxes[:, 4] for bboxes in info["det_bboxes"]]
        self.class_score_tracker.update(torch.cat(info["det_labels"]), torch.cat(detections))
        self._iter_thresholds = self.current_class_thresholds()
        if self.iter_num > self.train_cfg.warm_up_iter:
            for bboxes, labels, meta in zip(info["pseudo_bboxes"], info["pseudo_labels"], img_metas):
                self.add_to_pseudo_label_pool(bboxes, labels, meta, self._iter_thresholds)
        return info

    def select_cls_pseudo_labels(self, pseudo_bboxes, pseudo_labels, img_meta):
        """``score > cls_pseudo_threshold`` before ``warm_up_iter``, ``score > thr[label]`` from then on."""
        return pseudo_label_mask(pseudo_labels, pseudo_bboxes[:, 4], self._iter_thresholds, self.iter_num,
                                 self.train_cfg.warm_up_iter, fixed_thr=self.train_cfg.cls_pseudo_threshold)

    def add_to_pseudo_label_pool(self, pseudo_bboxes, pseudo_labels, img_meta, thresholds) -> None:
        """Record one teacher view's pseudo boxes in original-image coordinates (spec E.1).

        Keeps boxes wider and taller than ``min_pseduo_box_size`` after mapping and clipping to
        ``ori_shape``, with ``score >= thr[label]``; the stored score is the margin ``score - thr``.
        The image is recorded (possibly with no box) under its ``filename`` (``img_prefix/file``).
        """
        original = self.teacher_boxes_to_original(pseudo_bboxes[:, :5], img_meta)
        margins = original[:, 4] - thresholds.to(original)[pseudo_labels]
        keep = box_size_mask(original, self.train_cfg.min_pseduo_box_size) & (margins >= 0)
        height, width = img_meta["ori_shape"][:2]
        self.pseudo_label_pool.add(img_meta["filename"], width, height, pseudo_labels[keep],
                                   original[keep, :4], margins[keep])
