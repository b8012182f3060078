"""tools/analysis/val_set_noise.py: the spread of a model's score over disjoint val subsets."""
import json

import mmcv
import numpy as np
import pytest

from conftest import REPO_ROOT, load_tool, run_tool

# four images with one c0 object each; the model finds it on images 1 and 2 only
BOXES = {1: [4, 4, 20, 20], 2: [10, 12, 24, 18], 3: [2, 2, 30, 30], 4: [20, 4, 20, 20]}
FOUND = (1, 2)
HALF_FOUND_AP = 51 / 101  # recall 0.5 at precision 1: 51 of COCO's 101 recall points


@pytest.fixture()
def toy_eval(tmp_path):
    """A two-class CocoSplitDataset config (c1 the tail class, absent from the images) and detections."""
    images = [dict(id=i, file_name=f"{i}.jpg", width=64, height=48) for i in BOXES]
    annotations = [dict(id=i, image_id=i, category_id=1, bbox=box, area=box[2] * box[3], iscrowd=0)
                   for i, box in BOXES.items()]
    ann_file = tmp_path / "val.json"
    ann_file.write_text(json.dumps(dict(images=images, annotations=annotations,
                                        categories=[dict(id=1, name="c0"), dict(id=2, name="c1")])))
    config = tmp_path / "config.py"
    config.write_text(f"data = dict(test=dict(type='CocoSplitDataset', classes=('c0', 'c1'), novel_classes=('c1',), "
                      f"ann_file={str(ann_file)!r}, img_prefix={str(tmp_path)!r}, pipeline=[]))\n")
    results = []
    for i, (x, y, w, h) in BOXES.items():
        found = np.array([[x, y, x + w, y + h, 0.9]] if i in FOUND else np.zeros((0, 5)), np.float32)
        results.append([found, np.zeros((0, 5), np.float32)])
    detections = tmp_path / "dets.pkl"
    mmcv.dump(results, str(detections))
    return config, detections


def test_disjoint_subsets_are_disjoint_reproducible_and_leave_the_remainder_out():
    tool = load_tool("analysis/val_set_noise")
    subsets = tool.disjoint_subsets(list(range(10, 21)), 3, seed=5)
    assert len(subsets) == 3 and all(len(s) == 3 for s in subsets)
    assert len(set(sum(subsets, []))) == 9 and set(sum(subsets, [])) <= set(range(10, 21))
    assert subsets == tool.disjoint_subsets(list(range(10, 21)), 3, seed=5)
    assert subsets != tool.disjoint_subsets(list(range(10, 21)), 3, seed=6)
    with pytest.raises(ValueError, match="half the 11 test images"):
        tool.disjoint_subsets(list(range(10, 21)), 6, seed=0)


def test_spread_by_hand(toy_eval):
    tool = load_tool("analysis/val_set_noise")
    from mmcv import Config
    from mmdet.datasets import build_dataset
    config, detections = toy_eval
    dataset = build_dataset(dict(Config.fromfile(str(config)).data.test, test_mode=True))
    results = tool.load_detections(str(detections), dataset)
    # the found and the missed images apart: AP 1 and 0; mixed: half the objects found on each
    apart_scores = tool.subset_scores(dataset, results, [[1, 2], [3, 4]])
    apart = tool.spread(apart_scores)["bbox_mAP"]
    assert apart["whole"] == pytest.approx(HALF_FOUND_AP, abs=1e-4)
    assert apart["mean"] == pytest.approx(0.5) and apart["std"] == pytest.approx(np.sqrt(0.5))
    mixed = tool.spread(tool.subset_scores(dataset, results, [[1, 3], [2, 4]]))["bbox_mAP"]
    assert mixed["mean"] == pytest.approx(HALF_FOUND_AP, abs=1e-4) and mixed["std"] == pytest.approx(0.0)
    # a perfect model minus this one: 0 on images 1-2, +1 on images 3-4
    perfect = [[np.array([[x, y, x + w, y + h, 0.9]], np.float32), np.zeros((0, 5), np.float32)]
               for x, y, w, h in BOXES.values()]
    difference = tool.spread(tool.subset_scores(dataset, perfect, [[1, 2], [3, 4]]), apart_scores)["bbox_mAP"]
    assert difference["whole"] == pytest.approx(1 - HALF_FOUND_AP, abs=1e-4)
    assert difference["mean"] == pytest.approx(0.5) and difference["std"] == pytest.approx(np.sqrt(0.5))
    with pytest.raises(ValueError, match="detections for 3 images, but the test set of the config has 4"):
        mmcv.dump(results[:3], str(detections))
        tool.load_detections(str(detections), dataset)


def test_command_line_prints_and_writes_the_figures(toy_eval, tmp_path):
    config, detections = toy_eval
    out = tmp_path / "noise.json"
    proc = run_tool([REPO_ROOT / "tools/analysis/val_set_noise.py", config, detections, "--subset-size", "2",
                     "--baseline", detections, "--out", out], cwd=tmp_path)
    assert "mean ± std over 2 disjoint subsets of 2 images" in proc.stdout and f"minus {detections}" in proc.stdout
    figures = json.loads(out.read_text())
    assert figures["num_subsets"] == 2 and set(figures["models"][str(detections)]) == {
        "bbox_mAP", "bbox_mAP_base", "bbox_mAP_novel"}
    assert figures["differences"][str(detections)]["bbox_mAP"] == {"whole": 0.0, "mean": 0.0, "std": 0.0}
