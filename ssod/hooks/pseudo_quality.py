"""Pseudo-label quality logged during training, on unlabeled images that have ground truth.

For development data only (the toy unlabeled split, or a val set used as if unlabeled):
real unlabeled data has no ground truth, so the hook is off unless a config adds it, e.g.

    custom_hooks = [..., dict(type="PseudoLabelQualityHook", interval=150, num_images=64,
                              dataset=dict(type="CocoDataset", ann_file=..., img_prefix=...,
                                           classes=classes, pipeline=test_pipeline))]
"""
import numpy as np
from mmcv.runner import HOOKS, Hook
from mmdet.datasets import build_dataset
from torch.utils.data import Subset

from ssod.apis.inference import collect_detections
from ssod.datasets.builder import build_dataloader
from ssod.evaluation.pseudo_quality import class_thresholds_of, match_results, overall_quality, quality_at
from ssod.utils.dist_utils import is_main_process, unwrap_model


def _rounded(values):
    """Floats rounded to 4 digits, NaN as None (JSON-friendly)."""
    return [None if np.isnan(v) else round(float(v), 4) for v in values]


def quality_log_entries(matched, rules):
    """Log keys of each rule (``name -> threshold(s)``): per-class precision, recall, kept boxes,
    and pooled precision and recall."""
    entries = {}
    for name, thresholds in rules.items():
        quality = quality_at(matched, thresholds)
        pooled = overall_quality(quality)
        entries[f"pseudo_precision@{name}"] = _rounded(quality["precision"])
        entries[f"pseudo_recall@{name}"] = _rounded(quality["recall"])
        entries[f"pseudo_kept@{name}"] = quality["kept"].tolist()
        entries[f"pseudo_precision_all@{name}"] = _rounded([pooled["precision"]])[0]
        entries[f"pseudo_recall_all@{name}"] = _rounded([pooled["recall"]])[0]
    return entries


@HOOKS.register_module()
class PseudoLabelQualityHook(Hook):
    """Every ``interval`` iterations (and after the last), run the teacher (or a plain detector)
    over the first ``num_images`` images of ``dataset`` and log per-class pseudo-label precision
    and recall at IoU ``iou_thr``: at the fixed rule ``score > cls_pseudo_threshold`` (0.9 for
    a plain detector) and, when the model has GbT statistics, at its class thresholds.

    Args:
        dataset (dict): config of an annotated dataset with a test pipeline.
        interval (int): iterations between two measurements.
        num_images (int, optional): images measured (the first ones; all if None).
        iou_thr (float): IoU for a pseudo box to count as true.
    """

    def __init__(self, dataset, interval, num_images=None, iou_thr=0.5):
        if int(interval) < 1:
            raise ValueError(f"PseudoLabelQualityHook interval = {interval}; expected a positive integer")
        self.dataset_cfg = dataset
        self.interval = int(interval)
        self.num_images = num_images
        self.iou_thr = iou_thr
        self.loader = None
        self.annotations = None

    def before_run(self, runner):
        dataset = build_dataset(self.dataset_cfg, dict(test_mode=True))
        count = len(dataset) if self.num_images is None else min(int(self.num_images), len(dataset))
        self.annotations = [dataset.get_ann_info(i) for i in range(count)]
        self.classes = dataset.CLASSES
        self.loader = build_dataloader(Subset(dataset, range(count)), samples_per_gpu=1, workers_per_gpu=0,
                                       dist=False, shuffle=False)

    def after_train_iter(self, runner):
        if not (self.every_n_iters(runner, self.interval) or self.is_last_iter(runner)):
            return
        detector = unwrap_model(runner.model)
        is_pair = hasattr(detector, "teacher")
        results = collect_detections(runner.model, self.loader, submodule="teacher" if is_pair else None,
                                     show_progress=False)
        if not is_main_process():
            return
        matched = match_results(results, self.annotations, len(self.classes), self.iou_thr)
        fixed = detector.train_cfg.cls_pseudo_threshold if is_pair else 0.9
        rules = {"fixed": fixed}
        thresholds = class_thresholds_of(detector)
        if thresholds is not None:
            rules["gbt"] = thresholds
            runner.log_buffer.output["pseudo_gbt_thresholds"] = _rounded(thresholds)
        entries = quality_log_entries(matched, rules)
        runner.logger.info(f"pseudo-label quality on {len(self.annotations)} images (fixed rule: score > {fixed}): "
                           + ", ".join(f"{key} {entries[key]}" for key in entries if "_all@" in key))
        runner.log_buffer.output.update(entries)
        runner.log_buffer.ready = True
