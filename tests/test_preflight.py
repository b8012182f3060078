"""Data preflight: bad boxes counted with examples, missing or corrupt images named, before training."""
import json
import logging
import shutil

import mmcv
import numpy as np
import pytest
from mmdet.datasets import CocoDataset, build_dataset
from mmdet.datasets.pipelines import Compose

import ssod  # noqa: F401
from ssod.datasets.pipelines.loading import ImageReadError
from ssod.datasets.preflight import DataPreflightError, check_datasets, preflight

from conftest import REPO_ROOT, run_tool

GRS = REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"
CLASSES = ("circle", "square")


def write_coco(root, annotations, images=None, missing=()):
    """Four 64x48 images (files minus ``missing``) and a COCO file with ``annotations``."""
    images = images or [dict(id=i, file_name=f"img{i}.png", width=64, height=48) for i in (1, 2, 3, 4)]
    (root / "images").mkdir(exist_ok=True)
    for image in images:
        if image["file_name"] not in missing:
            mmcv.imwrite(np.full((48, 64, 3), 128, np.uint8), str(root / "images" / image["file_name"]))
    ann_file = root / "instances.json"
    ann_file.write_text(json.dumps(dict(
        images=images, categories=[dict(id=1, name="circle"), dict(id=2, name="square")],
        annotations=[dict(dict(iscrowd=0, area=100.0, category_id=1), **ann) for ann in annotations])))
    return str(ann_file)


def coco_dataset(root, annotations, **kwargs):
    ann_file = write_coco(root, annotations, missing=kwargs.pop("missing", ()))
    return CocoDataset(ann_file, pipeline=[], img_prefix=str(root / "images"), classes=CLASSES, **kwargs)


BAD_BOXES = [
    dict(id=10, image_id=1, bbox=[5, 5, 20, 20]),
    dict(id=11, image_id=1, bbox=[5, 5, 0, 20]),  # zero width
    dict(id=12, image_id=1, bbox=[30, 5, -10, 20]),  # negative width
    dict(id=13, image_id=1, bbox=[5000, 5, 20, 20]),  # far outside the 64x48 image
    dict(id=14, image_id=1, bbox=[5, 5, 20, 20], category_id=99),  # unknown category
    dict(id=20, image_id=2, bbox=[1, 1, 30, 30], category_id=2),
    dict(id=30, image_id=3, bbox=[1, 1, 0.5, 30]),  # the only box of image 3: below 1 px
    dict(id=40, image_id=4, bbox=[1, 1, 10, 10]),
]


def findings(report):
    return {what: (count, examples) for (_, what), (count, examples) in report.findings.items()}


def test_dropped_boxes_are_counted_by_reason_with_examples(tmp_path):
    report, = check_datasets({"data.train": coco_dataset(tmp_path, BAD_BOXES)})
    found = findings(report)
    count, examples = found["boxes dropped: width or height below 1 px"]
    assert count == 3 and "img1.png (image 1, ann 11" in examples[0] and "ann 30" in examples[2]
    assert found["boxes dropped: outside the image"][0] == 1 and "ann 13" in found["boxes dropped: outside the image"][1][0]
    assert found["boxes dropped: category_id not among the file's categories"][0] == 1
    assert found["labeled images without any valid box (trained as background only)"][0] == 1
    assert report.num_boxes == 3 and not report.lines("error")


def test_missing_images_and_empty_sets_stop_training_naming_them(tmp_path, caplog):
    dataset = coco_dataset(tmp_path, BAD_BOXES, missing=("img2.png",))
    logger = logging.getLogger("test_preflight")
    with caplog.at_level(logging.INFO, logger="test_preflight"), \
            pytest.raises(DataPreflightError, match=r"data.train: 1 image files missing; e.g. .*img2.png \(image 2\)"):
        preflight({"data.train": dataset}, logger)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("data.train: 3 boxes dropped: width or height below 1 px" in w for w in warnings)

    empty = coco_dataset(tmp_path, [dict(id=1, image_id=1, bbox=[1, 1, 0, 0])])
    with pytest.raises(DataPreflightError, match="labeled set without a single valid box"):
        preflight({"data.train": empty}, logger)
    malformed = coco_dataset(tmp_path, [dict(id=1, image_id=1, bbox=[1, 1, 5])])
    with pytest.raises(DataPreflightError, match="1 annotations malformed"):
        preflight({"data.train": malformed}, logger)


def test_semi_toy_data_is_clean_and_unlabeled_images_are_checked_without_boxes(toy_workspace, monkeypatch):
    monkeypatch.chdir(toy_workspace)
    cfg = mmcv.Config.fromfile(str(GRS))
    reports = check_datasets({"data.train": build_dataset(cfg.data.train)})
    assert [r.name for r in reports] == ["data.train.sup", "data.train.unsup"]
    assert all(not r.lines("error") and not r.lines("warning") for r in reports)
    assert reports[0].num_boxes > 0 and reports[1].num_boxes is None


@pytest.mark.parametrize("content", [b"", b"this is not an image"])
def test_corrupt_image_in_the_pipeline_is_named(tmp_path, content):
    (tmp_path / "bad.jpg").write_bytes(content)
    load = Compose([dict(type="LoadImageFromFile")])
    with pytest.raises(ImageReadError, match=f"cannot decode image {tmp_path / 'bad.jpg'}"):
        load(dict(img_prefix=str(tmp_path), img_info=dict(filename="bad.jpg")))


def copy_toy_data(toy_workspace, tmp_path):
    shutil.copytree(toy_workspace / "dataset", tmp_path / "dataset")
    return tmp_path / "dataset/toy/train"


def test_check_dataset_tool_names_bad_images(toy_workspace, tmp_path):
    clean = run_tool([REPO_ROOT / "tools/dataset/check_dataset.py", GRS, "--workers", "1"], cwd=toy_workspace)
    assert "no errors" in clean.stdout and "decoded " in clean.stdout
    images = copy_toy_data(toy_workspace, tmp_path)
    names = sorted(p.name for p in images.iterdir())
    (images / names[0]).write_bytes(b"")
    (images / names[1]).write_bytes(b"garbage" * 10)
    proc = run_tool([REPO_ROOT / "tools/dataset/check_dataset.py", GRS, "--workers", "1"], cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert f"dataset/toy/train/{names[0]}: zero-byte file" in proc.stdout
    assert f"dataset/toy/train/{names[1]}: cannot be decoded" in proc.stdout


def test_training_stops_before_the_first_iteration_naming_missing_images(toy_workspace, tmp_path):
    images = copy_toy_data(toy_workspace, tmp_path)
    missing = sorted(images.iterdir())[0]
    missing.unlink()
    proc = run_tool([REPO_ROOT / "tools/train.py", GRS, "--work-dir", tmp_path / "work", "--no-validate",
                     "--cfg-options", "runner.max_iters=1", "data.workers_per_gpu=0"], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "DataPreflightError" in proc.stderr and f"dataset/toy/train/{missing.name}" in proc.stderr
    assert "Iter [1/1]" not in proc.stdout + proc.stderr
