"""CocoSplitDataset: known detections give known overall, subset and per-class AP."""
import json

import numpy as np
import pytest

import ssod  # noqa: F401
from mmdet.datasets import build_dataset

CLASSES = ("c0", "c1", "c2")
# image id -> boxes (xywh) and labels; c2 is the novel (minority) class
GROUND_TRUTH = {1: [([4, 4, 20, 20], 0), ([30, 10, 16, 24], 1)],
                2: [([10, 12, 24, 18], 2)],
                3: [([2, 2, 30, 30], 0), ([36, 4, 20, 20], 2)]}


@pytest.fixture()
def dataset(tmp_path):
    images = [dict(id=i, file_name=f"{i}.jpg", width=64, height=48) for i in GROUND_TRUTH]
    annotations = [dict(id=len_id, image_id=i, category_id=label + 1, bbox=box, area=box[2] * box[3], iscrowd=0)
                   for len_id, (i, box, label) in enumerate(
                       ((i, box, label) for i, objs in GROUND_TRUTH.items() for box, label in objs), start=1)]
    categories = [dict(id=i + 1, name=name) for i, name in enumerate(CLASSES)]
    ann_file = tmp_path / "val.json"
    ann_file.write_text(json.dumps(dict(images=images, annotations=annotations, categories=categories)))
    return build_dataset(dict(type="CocoSplitDataset", classes=CLASSES, novel_classes=("c2",),
                              per_class_metrics=True, ann_file=str(ann_file), img_prefix=str(tmp_path),
                              pipeline=[], test_mode=True))


def _detections(keep_labels):
    results = []
    for image_id in GROUND_TRUTH:
        per_class = [np.zeros((0, 5), np.float32) for _ in CLASSES]
        for (x, y, w, h), label in GROUND_TRUTH[image_id]:
            if label in keep_labels:
                per_class[label] = np.vstack([per_class[label], [[x, y, x + w, y + h, 0.9]]]).astype(np.float32)
        results.append(per_class)
    return results


def test_perfect_detections_score_one_everywhere(dataset):
    metrics = dataset.evaluate(_detections({0, 1, 2}))
    for key in ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_novel", "bbox_mAP_base", "bbox_AP_c0", "bbox_AP_c2"):
        assert metrics[key] == pytest.approx(1.0), key


def test_missing_novel_class_detections(dataset):
    metrics = dataset.evaluate(_detections({0, 1}))
    assert metrics["bbox_mAP_base"] == pytest.approx(1.0)
    assert metrics["bbox_mAP_novel"] == pytest.approx(0.0)
    assert metrics["bbox_mAP"] == pytest.approx(2 / 3, abs=1e-3)  # mean of per-class APs 1, 1, 0
    assert metrics["bbox_AP_c1"] == pytest.approx(1.0) and metrics["bbox_AP_c2"] == pytest.approx(0.0)


def test_no_detections_gives_zeros_not_missing_keys(dataset):
    metrics = dataset.evaluate(_detections(set()))
    assert metrics["bbox_mAP"] == 0.0 and metrics["bbox_mAP_novel"] == 0.0 and metrics["bbox_AP_c0"] == 0.0


def test_unknown_novel_class_is_rejected(tmp_path, dataset):
    with pytest.raises(ValueError, match="not among the dataset classes"):
        build_dataset(dict(type="CocoSplitDataset", classes=CLASSES, novel_classes=("dog",),
                           ann_file=dataset.ann_file, img_prefix=str(tmp_path), pipeline=[], test_mode=True))


def test_image_subset_metrics_score_only_the_chosen_images(dataset):
    results = _detections({0, 1, 2})
    results[2] = [np.zeros((0, 5), np.float32) for _ in CLASSES]  # image 3: its two objects missed ...
    results[2][1] = np.array([[0, 0, 10, 10, 0.99]], np.float32)  # ... and a false c1 box
    on_first_two, on_third, on_all = dataset.image_subset_metrics(results, [[1, 2], [3], [1, 2, 3]])
    assert on_first_two == pytest.approx({"bbox_mAP": 1.0, "bbox_mAP_base": 1.0, "bbox_mAP_novel": 1.0})
    # image 3 alone: c0 and c2 missed (AP 0); c1 has no ground truth there, so it does not count
    assert on_third == pytest.approx({"bbox_mAP": 0.0, "bbox_mAP_base": 0.0, "bbox_mAP_novel": 0.0})
    assert on_all["bbox_mAP"] == pytest.approx(dataset.evaluate(results)["bbox_mAP"])
