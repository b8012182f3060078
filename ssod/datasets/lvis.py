"""LVIS v1 datasets of the LVIS setting (spec A.3), evaluated with numpy-2-clean LVIS metrics.

The ``lvis`` package loads the annotations; its evaluator (``LVISEval``) uses ``np.float``
and fails on numpy >= 1.24, so AP, APr, APc and APf come from faster-coco-eval's LVIS mode
(``lvis_bbox_metrics``), which applies the LVIS rules (detections of a category that is
neither verified present nor verified absent in an image are not scored; unmatched
detections of a category marked not exhaustively annotated in an image are ignored) and the
r/c/f frequency groups of the categories.
"""
import os.path as osp
from urllib.parse import urlparse

import numpy as np
from faster_coco_eval import COCO as FastCOCO
from faster_coco_eval import COCOeval_faster
from lvis import LVIS
from mmdet.datasets import DATASETS, LVISV1Dataset
from mmdet.utils import get_root_logger

FREQUENCY_GROUPS = ("r", "c", "f")
# faster-coco-eval summary name -> metric name (mmdet's LVIS keys, prefixed with "bbox_")
_LVIS_METRIC_NAMES = {"AP_all": "AP", "AP_50": "AP50", "AP_75": "AP75", "AP_small": "APs",
                      "AP_medium": "APm", "AP_large": "APl", "APr": "APr", "APc": "APc", "APf": "APf"}


def _top_detections_per_image(detections, max_dets_per_image):
    """The ``max_dets_per_image`` highest-scoring detections of every image (all classes together)."""
    per_image = {}
    for det in detections:
        per_image.setdefault(det["image_id"], []).append(det)
    kept = []
    for dets in per_image.values():
        kept.extend(sorted(dets, key=lambda d: -d["score"])[:max_dets_per_image])
    return kept


def _check_frequencies(categories, source):
    bad = {c["id"]: c.get("frequency") for c in categories if c.get("frequency") not in FREQUENCY_GROUPS}
    if bad:
        raise ValueError(f"{source}: LVIS categories need 'frequency' in {FREQUENCY_GROUPS}; "
                         f"category id -> frequency of the offending ones: {bad}")


def lvis_bbox_metrics(gt_dataset, detections, img_ids=None, cat_ids=None, max_dets_per_image=100,
                      source="ground truth"):
    """LVIS box metrics of ``detections`` against an LVIS-format ``gt_dataset`` (a dict).

    ``detections``: COCO result dicts (``image_id``, ``category_id``, ``bbox`` xywh,
    ``score``); per image only the ``max_dets_per_image`` best (all categories together)
    count, as ``LVISResults`` keeps them. ``img_ids``/``cat_ids`` restrict the evaluation
    (default: all). Returns ``{'AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc',
    'APf'}`` as floats; a value is -1 where nothing is defined (e.g. no category of a
    frequency group has ground truth), as the LVIS API reports it.
    """
    _check_frequencies(gt_dataset["categories"], source)
    # faster-coco-eval writes an "ignore" flag into the ground-truth annotations: give it copies
    ground_truth = FastCOCO(dict(gt_dataset, annotations=[dict(a) for a in gt_dataset["annotations"]]))
    kept = _top_detections_per_image(detections, max_dets_per_image)
    results = ground_truth.loadRes([dict(det) for det in kept])
    logger = get_root_logger()
    evaluator = COCOeval_faster(ground_truth, results, iouType="bbox", lvis_style=True,
                                print_function=logger.debug)
    if img_ids is not None:
        evaluator.params.imgIds = list(img_ids)
    evaluator.params.catIds = sorted(cat_ids if cat_ids is not None else ground_truth.getCatIds())
    evaluator.params.maxDets = [max_dets_per_image]
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats = evaluator.stats_as_dict
    return {name: float(stats[key]) for key, name in _LVIS_METRIC_NAMES.items()}


def image_file_from_coco_url(img_info, ann_file):
    """``train2017/xxx.jpg`` from ``coco_url`` ``http://images.cocodataset.org/train2017/xxx.jpg``."""
    url = img_info.get("coco_url")
    if not url:
        raise ValueError(f"{ann_file}: image {img_info.get('id')} has no 'coco_url' to derive its file name from")
    return urlparse(url).path.lstrip("/")


@DATASETS.register_module(name=["LVISV1SplitDataset", "Semi_LVISV1Dataset"])
class LVISV1SplitDataset(LVISV1Dataset):
    """LVIS v1 images (file ``train2017/xxx.jpg`` from ``coco_url``, ``img_prefix`` = COCO root).

    * Classes: the file's categories in id order (contiguous label = position among the
      sorted category ids). ``classes``, if given, must equal those names in that order.
    * ``filter_empty_gt`` as in mmdet: True drops images without annotations (labeled sets);
      unlabeled sets use False so that their hidden labels choose nothing (spec H.30); True
      there reproduces upstream.
    * ``get_cat_ids(idx)``: every class annotated in the image (the upstream LVIS dataset
      kept only the last annotation's class, spec H.28), as contiguous labels.
    * ``evaluate(results, metric='bbox')``: ``bbox_AP``, ``bbox_AP50``, ``bbox_AP75``,
      ``bbox_APs``, ``bbox_APm``, ``bbox_APl``, ``bbox_APr``, ``bbox_APc``, ``bbox_APf``
      (``lvis_bbox_metrics``, at most ``max_dets_per_image=100`` detections per image).
    """

    CLASSES = None

    def load_annotations(self, ann_file):
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f"{type(self).__name__}: ann_file not found: {ann_file}")
        self.coco = LVIS(ann_file)
        categories = sorted(self.coco.dataset["categories"], key=lambda c: c["id"])
        names = [c["name"] for c in categories]
        if self.CLASSES is None:
            self.CLASSES = tuple(names)
        elif list(self.CLASSES) != names:
            raise ValueError(_class_mismatch_message(self.CLASSES, names, ann_file))
        self.cat_ids = [c["id"] for c in categories]
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}
        self.img_ids = self.coco.get_img_ids()
        data_infos = []
        for img_id in self.img_ids:
            info = dict(self.coco.imgs[img_id])
            info["filename"] = image_file_from_coco_url(info, ann_file)
            data_infos.append(info)
        return data_infos

    def get_cat_ids(self, idx):
        """Contiguous labels of all classes annotated (as training targets) in image ``idx``."""
        return np.unique(self.get_ann_info(idx)["labels"]).tolist()

    def evaluate(self, results, metric="bbox", logger=None, max_dets_per_image=100, **kwargs):
        metrics = [metric] if isinstance(metric, str) else list(metric)
        if metrics != ["bbox"]:
            raise KeyError(f"{type(self).__name__} evaluates metric 'bbox' only, got {metric!r}")
        if len(results) != len(self):
            raise ValueError(f"{len(results)} results for {len(self)} images of {self.ann_file}")
        scores = lvis_bbox_metrics(self.coco.dataset, self._det2json(results), img_ids=self.img_ids,
                                   cat_ids=self.cat_ids, max_dets_per_image=max_dets_per_image,
                                   source=self.ann_file)
        get_root_logger().info("LVIS bbox: " + " ".join(f"{k}={v:.4f}" for k, v in scores.items()))
        return {f"bbox_{name}": value for name, value in scores.items()}


def _class_mismatch_message(classes, names, ann_file):
    known, listed = set(names), set(classes)
    missing = [n for n in classes if n not in known]
    unlisted = [n for n in names if n not in listed]
    if missing or unlisted:
        return (f"classes do not match the categories of {ann_file}: not in the file: {missing}; "
                f"in the file but not in classes: {unlisted}")
    return f"classes must list the categories of {ann_file} in category-id order: {names}"
