"""LVISV1SplitDataset: loading, class sets for RFS (H.28), empty-GT filtering (H.30) and LVIS
metrics from faster-coco-eval, checked by hand and against pycocotools (spec A.3, F)."""
import contextlib
import copy
import io
import json

import cv2
import numpy as np
import pytest
from mmdet.datasets import build_dataset
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import ssod  # noqa: F401
from ssod.datasets.lvis import lvis_bbox_metrics

WIDTH, HEIGHT = 200, 160
# Categories listed out of id order (labels follow the sorted ids): rare, common, frequent.
CATEGORIES = [dict(id=7, name="frequent_f", frequency="f"), dict(id=2, name="rare_r", frequency="r"),
              dict(id=4, name="common_c", frequency="c")]
CLASSES = ("rare_r", "common_c", "frequent_f")  # labels 0, 1, 2
CAT_ID = {"rare_r": 2, "common_c": 4, "frequent_f": 7}
FREQUENCY_GROUP = {"rare_r": "APr", "common_c": "APc", "frequent_f": "APf"}
# image id -> [(class, xywh box)]; sizes cover small (< 32^2), medium and large (>= 96^2) areas.
GROUND_TRUTH = {
    1: [("rare_r", [10, 10, 20, 20]), ("frequent_f", [50, 20, 110, 100])],
    2: [("common_c", [20, 30, 40, 50]), ("frequent_f", [100, 100, 16, 20])],
    3: [("frequent_f", [5, 5, 60, 40]), ("common_c", [120, 40, 30, 60])],
    4: [],
}
NEGATIVE = {1: [4], 2: [2], 3: [2], 4: [2, 4, 7]}  # verified-absent categories per image


def lvis_dict():
    images = [dict(id=i, width=WIDTH, height=HEIGHT, neg_category_ids=NEGATIVE[i], not_exhaustive_category_ids=[],
                   coco_url=f"http://images.cocodataset.org/val2017/{i:012d}.jpg") for i in GROUND_TRUTH]
    annotations = []
    for image_id, objects in GROUND_TRUTH.items():
        for name, box in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=CAT_ID[name],
                                    bbox=box, area=box[2] * box[3]))
    return dict(images=images, annotations=annotations, categories=copy.deepcopy(CATEGORIES))


@pytest.fixture()
def lvis_root(tmp_path):
    """A COCO-like root: val2017/<id>.jpg images and an LVIS annotation file."""
    (tmp_path / "val2017").mkdir()
    for image_id in GROUND_TRUTH:
        cv2.imwrite(str(tmp_path / "val2017" / f"{image_id:012d}.jpg"), np.full((HEIGHT, WIDTH, 3), 80, np.uint8))
    (tmp_path / "lvis_val.json").write_text(json.dumps(lvis_dict()))
    return tmp_path


def build(root, **kwargs):
    cfg = dict(type="LVISV1SplitDataset", ann_file=str(root / "lvis_val.json"), img_prefix=str(root), pipeline=[])
    cfg.update(kwargs)
    return build_dataset(cfg)


def det(image_id, name, box, score):
    return dict(image_id=image_id, category_id=CAT_ID[name], bbox=list(box), score=score)


def perfect_detections(skip=()):
    return [det(i, name, box, 0.9) for i, objects in GROUND_TRUTH.items() for name, box in objects
            if name not in skip]


def detections_to_results(dataset, detections):
    """Per-image, per-class [n, 5] xyxy+score arrays in dataset order, as a detector returns them."""
    results = [[np.zeros((0, 5), np.float32) for _ in dataset.CLASSES] for _ in range(len(dataset))]
    index = {info["id"]: i for i, info in enumerate(dataset.data_infos)}
    label = {cat_id: i for i, cat_id in enumerate(dataset.cat_ids)}
    for d in detections:
        x, y, w, h = d["bbox"]
        per_class = results[index[d["image_id"]]]
        row = np.array([[x, y, x + w, y + h, d["score"]]], np.float32)
        per_class[label[d["category_id"]]] = np.vstack([per_class[label[d["category_id"]]], row])
    return results


# ---------------------------------------------------------------- loading


def test_loads_file_names_from_coco_url_and_labels_by_sorted_category_id(lvis_root):
    dataset = build(lvis_root, test_mode=True)
    assert dataset.CLASSES == CLASSES
    assert dataset.cat_ids == [2, 4, 7]
    assert [info["filename"] for info in dataset.data_infos] == [f"val2017/{i:012d}.jpg" for i in (1, 2, 3, 4)]
    assert dataset.get_ann_info(0)["labels"].tolist() == [0, 2]
    data = build(lvis_root, test_mode=True, pipeline=[dict(type="LoadImageFromFile")])[2]
    assert data["img"].shape == (HEIGHT, WIDTH, 3)
    assert data["filename"] == str(lvis_root / "val2017" / "000000000003.jpg")


def test_upstream_alias_builds_the_same_dataset(lvis_root):
    dataset = build(lvis_root, type="Semi_LVISV1Dataset", test_mode=True)
    assert type(dataset).__name__ == "LVISV1SplitDataset"


def test_cat_ids_list_every_class_of_an_image_not_only_the_last(lvis_root):
    """Spec H.28: RFS must see all classes of an image."""
    dataset = build(lvis_root, filter_empty_gt=False)
    assert [dataset.get_cat_ids(i) for i in range(len(dataset))] == [[0, 2], [1, 2], [1, 2], []]


def test_filter_empty_gt_false_keeps_images_without_annotations(lvis_root):
    kept = build(lvis_root, filter_empty_gt=False)
    assert [info["id"] for info in kept.data_infos] == [1, 2, 3, 4]
    assert len(kept.flag) == 4
    upstream = build(lvis_root, filter_empty_gt=True)  # upstream behaviour on unlabeled data (H.30)
    assert [info["id"] for info in upstream.data_infos] == [1, 2, 3]


def test_unlabeled_pipeline_sees_no_ground_truth(lvis_root):
    pipeline = [dict(type="LoadImageFromFile"), dict(type="PseudoSamples", with_bbox=True),
                dict(type="DefaultFormatBundle"),
                dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"], meta_keys=("filename",))]
    dataset = build(lvis_root, filter_empty_gt=False, pipeline=pipeline)
    assert len(dataset) == 4
    for i in range(len(dataset)):
        data = dataset[i]
        assert set(data) == {"img", "img_metas", "gt_bboxes", "gt_labels"}
        assert data["gt_bboxes"].data.shape == (0, 4) and data["gt_labels"].data.numel() == 0


# ---------------------------------------------------------------- errors


def test_missing_annotation_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="ann_file not found: .*nope.json"):
        build(tmp_path, ann_file=str(missing))


def test_classes_that_do_not_match_the_file_are_listed(lvis_root):
    with pytest.raises(ValueError, match=r"not in the file: \['dog'\].*not in classes: \['frequent_f'\]"):
        build(lvis_root, classes=("rare_r", "common_c", "dog"), test_mode=True)
    with pytest.raises(ValueError, match="category-id order"):
        build(lvis_root, classes=("common_c", "rare_r", "frequent_f"), test_mode=True)
    assert build(lvis_root, classes=CLASSES, test_mode=True).CLASSES == CLASSES


def test_image_without_coco_url_is_an_error(tmp_path):
    data = lvis_dict()
    del data["images"][1]["coco_url"]
    (tmp_path / "lvis_val.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="image 2 has no 'coco_url'"):
        build(tmp_path, test_mode=True)


def test_missing_image_file_error_names_the_path(lvis_root):
    (lvis_root / "val2017" / "000000000002.jpg").unlink()
    dataset = build(lvis_root, test_mode=True, pipeline=[dict(type="LoadImageFromFile")])
    with pytest.raises(FileNotFoundError, match="000000000002.jpg"):
        dataset[1]


def test_category_without_frequency_is_rejected_at_evaluation():
    data = lvis_dict()
    del data["categories"][0]["frequency"]
    with pytest.raises(ValueError, match=r"'frequency'.*\{7: None\}"):
        lvis_bbox_metrics(data, perfect_detections())


def test_only_bbox_metric(lvis_root):
    dataset = build(lvis_root, test_mode=True)
    with pytest.raises(KeyError, match="'bbox' only"):
        dataset.evaluate(detections_to_results(dataset, []), metric="segm")


# ---------------------------------------------------------------- metrics, known values

KEYS = ("bbox_AP", "bbox_AP50", "bbox_AP75", "bbox_APs", "bbox_APm", "bbox_APl", "bbox_APr", "bbox_APc", "bbox_APf")


def test_perfect_detections_score_one_on_every_key(lvis_root):
    dataset = build(lvis_root, test_mode=True)
    metrics = dataset.evaluate(detections_to_results(dataset, perfect_detections()))
    assert set(metrics) == set(KEYS)
    for key in KEYS:
        assert metrics[key] == pytest.approx(1.0), key


@pytest.mark.parametrize("missing", ["rare_r", "common_c", "frequent_f"])
def test_a_missing_frequency_group_scores_zero(lvis_root, missing):
    dataset = build(lvis_root, test_mode=True)
    metrics = dataset.evaluate(detections_to_results(dataset, perfect_detections(skip={missing})))
    for name, group in FREQUENCY_GROUP.items():
        assert metrics[f"bbox_{group}"] == pytest.approx(0.0 if name == missing else 1.0), group
    assert metrics["bbox_AP"] == pytest.approx(2 / 3)  # mean of the per-class APs 1, 1, 0


def test_no_detections_give_zero_ap(lvis_root):
    dataset = build(lvis_root, test_mode=True)
    metrics = dataset.evaluate(detections_to_results(dataset, []))
    assert all(metrics[key] == 0.0 for key in KEYS)


def test_group_without_ground_truth_reports_minus_one():
    data = lvis_dict()
    data["categories"].append(dict(id=9, name="unseen_r", frequency="r"))
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] != CAT_ID["rare_r"]]
    metrics = lvis_bbox_metrics(data, perfect_detections(skip={"rare_r"}))
    assert metrics["APr"] == -1.0 and metrics["APc"] == pytest.approx(1.0) and metrics["AP"] == pytest.approx(1.0)


# ---------------------------------------------------------------- LVIS-specific rules, by hand


def test_detection_on_an_unverified_category_is_not_scored():
    """rare_r is neither in image 2's annotations nor in its negatives after this edit: ignored."""
    data = lvis_dict()
    data["images"][1]["neg_category_ids"] = []
    wrong = det(2, "rare_r", [20, 30, 40, 50], 0.99)
    assert lvis_bbox_metrics(data, perfect_detections() + [wrong])["APr"] == pytest.approx(1.0)


def test_detection_on_a_verified_absent_category_is_a_false_positive():
    """rare_r is a negative of image 2: the FP outranks the single TP, so precision is 1/2 at every recall."""
    wrong = det(2, "rare_r", [20, 30, 40, 50], 0.99)
    assert lvis_bbox_metrics(lvis_dict(), perfect_detections() + [wrong])["APr"] == pytest.approx(0.5)


def test_unmatched_detection_of_a_not_exhaustive_category_is_ignored():
    data = lvis_dict()
    extra = det(1, "rare_r", [150, 120, 20, 20], 0.99)  # no overlap with the rare_r box of image 1
    assert lvis_bbox_metrics(data, perfect_detections() + [extra])["APr"] == pytest.approx(0.5)
    data["images"][0]["not_exhaustive_category_ids"] = [CAT_ID["rare_r"]]
    assert lvis_bbox_metrics(data, perfect_detections() + [extra])["APr"] == pytest.approx(1.0)


def test_at_most_100_detections_per_image_over_all_classes():
    """100 better-scored false positives of frequent_f in image 1 push its rare_r hit (the 102nd
    detection of the image, after the frequent_f hit) out."""
    false_positives = [det(1, "frequent_f", [0, 150, 5, 5], 0.95) for _ in range(100)]
    detections = perfect_detections() + false_positives
    for d in detections:
        if d["category_id"] == CAT_ID["rare_r"]:
            d["score"] = 0.5
    assert lvis_bbox_metrics(lvis_dict(), detections)["APr"] == pytest.approx(0.0)
    assert lvis_bbox_metrics(lvis_dict(), detections, max_dets_per_image=102)["APr"] == pytest.approx(1.0)


# ---------------------------------------------------------------- cross-check with pycocotools


def imperfect_detections():
    """Shifted boxes (various IoUs), scores out of order, and false positives on present classes."""
    return [
        det(1, "rare_r", [12, 11, 20, 20], 0.6),        # IoU ~0.74
        det(1, "frequent_f", [50, 20, 110, 100], 0.9),
        det(1, "frequent_f", [60, 30, 100, 90], 0.95),  # duplicate, IoU ~0.75 with the same GT
        det(2, "common_c", [22, 33, 40, 50], 0.7),      # IoU ~0.81
        det(2, "frequent_f", [103, 100, 16, 20], 0.8),  # IoU ~0.68
        det(3, "frequent_f", [5, 5, 60, 40], 0.85),
        det(3, "common_c", [130, 50, 30, 60], 0.75),    # IoU ~0.45: FP at 0.5
        det(3, "common_c", [120, 40, 30, 60], 0.4),
        det(3, "frequent_f", [150, 100, 40, 40], 0.97), # FP on a present class
        det(4, "frequent_f", [10, 10, 50, 50], 0.3),    # FP on a verified-absent class
    ]


def pycocotools_stats(data, detections, cat_ids):
    """COCO AP, AP50, AP75, APs, APm, APl over ``cat_ids`` with pycocotools."""
    ground_truth = COCO()
    ground_truth.dataset = {**data, "annotations": [dict(a, iscrowd=0) for a in data["annotations"]]}
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(copy.deepcopy(detections)), "bbox")
        evaluator.params.catIds = cat_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[:6]


def test_lvis_metrics_match_pycocotools_where_lvis_rules_do_not_apply():
    """Every detection is on a class present in, or verified absent from, its image, and all
    images are exhaustively annotated: LVIS scoring then equals COCO scoring per class."""
    data, detections = lvis_dict(), imperfect_detections()
    metrics = lvis_bbox_metrics(data, detections)
    coco = pycocotools_stats(data, detections, sorted(CAT_ID.values()))
    assert 0.3 < metrics["AP"] < 0.95  # a non-trivial case
    for i, name in enumerate(("AP", "AP50", "AP75", "APs", "APm", "APl")):
        assert metrics[name] == pytest.approx(coco[i], abs=1e-9), name
    for name, group in FREQUENCY_GROUP.items():
        assert metrics[group] == pytest.approx(pycocotools_stats(data, detections, [CAT_ID[name]])[0], abs=1e-9)


def test_dataset_evaluate_equals_the_metric_function(lvis_root):
    dataset = build(lvis_root, test_mode=True)
    detections = imperfect_detections()
    metrics = dataset.evaluate(detections_to_results(dataset, detections))
    expected = lvis_bbox_metrics(lvis_dict(), detections)
    for name, value in expected.items():
        assert metrics[f"bbox_{name}"] == pytest.approx(value, abs=1e-6), name


def test_evaluation_leaves_the_ground_truth_unchanged(lvis_root):
    dataset = build(lvis_root, test_mode=True)
    before = copy.deepcopy(dataset.coco.dataset)
    dataset.evaluate(detections_to_results(dataset, imperfect_detections()))
    assert dataset.coco.dataset == before
