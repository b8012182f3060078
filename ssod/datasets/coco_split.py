"""COCO-format datasets of class-imbalanced splits, evaluated overall and per class subset."""
import contextlib
import io

import numpy as np
from mmdet.datasets import DATASETS, CocoDataset
from mmdet.utils import get_root_logger
from pycocotools.cocoeval import COCOeval

COCO_STAT_NAMES = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")


@DATASETS.register_module()
class CocoSplitDataset(CocoDataset):
    """A COCO dataset whose ``novel_classes`` (minority) and the rest (base) are also scored.

    ``evaluate(metric='bbox')`` returns mmdet's keys (``bbox_mAP``, ``bbox_mAP_50``, ...)
    plus ``bbox_mAP_novel``/``bbox_mAP_base`` (and their _50/_75/_s/_m/_l) when
    ``novel_classes`` is set, and ``bbox_AP_<class>`` per class when
    ``per_class_metrics``. A model with no detections at all scores 0 on every key
    instead of returning no metrics.
    """

    def __init__(self, *args, novel_classes=(), per_class_metrics=False, **kwargs):
        super().__init__(*args, **kwargs)
        unknown = sorted(set(novel_classes) - set(self.CLASSES))
        if unknown:
            raise ValueError(f"novel_classes {unknown} are not among the dataset classes {self.CLASSES}")
        self.novel_classes = tuple(novel_classes)
        self.per_class_metrics = per_class_metrics

    def evaluate(self, results, metric="bbox", logger=None, **kwargs):
        metrics = [metric] if isinstance(metric, str) else list(metric)
        detections = self._det2json(results) if "bbox" in metrics else None
        if detections == []:
            get_root_logger().warning("no detections on the whole dataset: every bbox metric is 0")
            scores = {f"bbox_{name}": 0.0 for name in COCO_STAT_NAMES}
            scores.update(self._subset_and_class_metrics(None))
            return scores
        scores = super().evaluate(results, metric=metric, logger=logger, **kwargs)
        if detections is not None:
            scores.update(self._subset_and_class_metrics(self.coco.loadRes(detections)))
        return scores

    def _class_subsets(self):
        if not self.novel_classes:
            return {}
        novel = [self.cat_ids[i] for i, name in enumerate(self.CLASSES) if name in self.novel_classes]
        base = [self.cat_ids[i] for i, name in enumerate(self.CLASSES) if name not in self.novel_classes]
        return {"novel": novel, "base": base}

    def _subset_and_class_metrics(self, coco_det):
        scores = {}
        for subset, cat_ids in self._class_subsets().items():
            stats = self._coco_eval(coco_det, cat_ids).stats if coco_det is not None else np.zeros(6)
            scores.update({f"bbox_{name}_{subset}": float(stats[i]) for i, name in enumerate(COCO_STAT_NAMES)})
        if self.per_class_metrics:
            per_class = self._per_class_ap(coco_det) if coco_det is not None else np.zeros(len(self.CLASSES))
            scores.update({f"bbox_AP_{name}": float(ap) for name, ap in zip(self.CLASSES, per_class)})
        return scores

    def image_subset_metrics(self, results, image_subsets):
        """For each list of image ids in ``image_subsets``: bbox mAP over all classes and each class subset
        (``bbox_mAP``, ``bbox_mAP_novel``, ...) of ``results`` (one entry per image, dataset order) scored
        on those images only, what a smaller val set would have measured."""
        coco_det = self.coco.loadRes(self._det2json(results))
        class_subsets = dict(all=self.cat_ids, **self._class_subsets())
        return [{("bbox_mAP" if name == "all" else f"bbox_mAP_{name}"):
                 float(self._coco_eval(coco_det, cat_ids, img_ids).stats[0]) for name, cat_ids in class_subsets.items()}
                for img_ids in image_subsets]

    def _coco_eval(self, coco_det, cat_ids, img_ids=None):
        evaluator = COCOeval(self.coco, coco_det, "bbox")
        evaluator.params.catIds = list(cat_ids)
        evaluator.params.imgIds = self.img_ids if img_ids is None else list(img_ids)
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        return evaluator

    def _per_class_ap(self, coco_det):
        """AP@[.5:.95] of each class (-1 for a class with no ground truth, as COCO reports)."""
        precision = self._coco_eval(coco_det, self.cat_ids).eval["precision"]  # [T, R, K, A, M]
        per_class = []
        for k in range(len(self.cat_ids)):
            valid = precision[:, :, k, 0, -1]
            valid = valid[valid > -1]
            per_class.append(float(valid.mean()) if valid.size else -1.0)
        return np.array(per_class)
