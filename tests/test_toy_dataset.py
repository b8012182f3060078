"""Tests of the toy dataset generator (tools/dataset/make_toy_dataset.py)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "dataset" / "make_toy_dataset.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_toy_dataset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


toy = _load_script()

TINY = toy.ToyParams(seed=0, num_labeled=15, num_unlabeled=4, num_val=8)
NUM_CLASSES = len(toy.TOY_CLASSES)
NOVEL_IDS = [toy.TOY_CLASSES.index(name) + 1 for name in toy.TOY_NOVEL_CLASSES]
SPLITS = ("train_label", "train_unlabel", "val")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Default-sized labeled split (the long-tail numbers depend on it), small unlabeled and val splits."""
    root = tmp_path_factory.mktemp("toy") / "toy"
    toy.generate_toy_dataset(root, toy.ToyParams(seed=0, num_labeled=160, num_unlabeled=30, num_val=40))
    return root


def _coco(root, split):
    return json.loads((root / "annotations" / toy.ANNOTATION_FILES[split]).read_text())


def _class_counts(coco, image_ids=None):
    labels = [a["category_id"] for a in coco["annotations"] if image_ids is None or a["image_id"] in image_ids]
    return np.bincount(labels, minlength=NUM_CLASSES + 1)[1:]


def _file_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _mtimes(root):
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def _colour_fraction(pixels, colour, max_distance=60.0):
    distance = np.linalg.norm(pixels.reshape(-1, 3).astype(np.float64) - np.asarray(colour, np.float64), axis=1)
    return float(np.mean(distance < max_distance))


def test_allocate_counts_is_largest_remainder():
    # 10 * (3, 2, 1) / 6 = (5, 3.33, 1.67): floors (5, 3, 1), the one left goes to the largest remainder
    assert toy.allocate_counts(10, (3.0, 2.0, 1.0)).tolist() == [5, 3, 2]
    assert toy.allocate_counts(7, (1.0, 1.0, 1.0)).tolist() == [3, 2, 2]
    assert toy.allocate_counts(5, (1.0, 0.0, 1.0)).tolist() == [3, 0, 2]


def test_same_seed_gives_byte_identical_files_and_other_seed_differs(tmp_path):
    assert toy.generate_toy_dataset(tmp_path / "a", TINY)
    assert toy.generate_toy_dataset(tmp_path / "b", TINY)
    toy.generate_toy_dataset(tmp_path / "c", toy.ToyParams(seed=1, num_labeled=15, num_unlabeled=4, num_val=8))
    first, second, other = (_file_bytes(tmp_path / name) for name in "abc")
    assert len(first) == 15 + 4 + 8 + 3 + 1
    assert first == second
    assert set(other) == set(first)  # same names: ids do not depend on the seed
    images = [name for name in first if name.endswith(".jpg")]
    assert all(first[name] != other[name] for name in images)
    assert all(first[f"annotations/{f}"] != other[f"annotations/{f}"] for f in toy.ANNOTATION_FILES.values())


def test_coco_files_load_and_describe_the_images(dataset):
    folders = {"train_label": "train", "train_unlabel": "train", "val": "val"}
    for split in SPLITS:
        coco = COCO(str(dataset / "annotations" / toy.ANNOTATION_FILES[split]))
        assert sorted(coco.getCatIds()) == list(range(1, NUM_CLASSES + 1))
        assert [coco.cats[i]["name"] for i in range(1, NUM_CLASSES + 1)] == list(toy.TOY_CLASSES)
        assert coco.dataset["info"]["seed"] == 0
        assert coco.dataset["info"]["novel_classes"] == list(toy.TOY_NOVEL_CLASSES)
        assert coco.dataset["info"]["base_classes"] == list(toy.TOY_BASE_CLASSES)
        for image_id, info in coco.imgs.items():
            pixels = cv2.imread(str(dataset / folders[split] / info["file_name"]))
            assert pixels is not None, info["file_name"]
            assert pixels.shape == (info["height"], info["width"], 3)
            assert 128 <= min(pixels.shape[:2]) and max(pixels.shape[:2]) <= 256
            for ann in coco.imgToAnns[image_id]:
                x, y, w, h = ann["bbox"]
                assert ann["iscrowd"] == 0 and ann["area"] == w * h
                assert 0 <= x and 0 <= y and x + w <= info["width"] and y + h <= info["height"]
                assert 8 <= min(w, h) and max(w, h) <= toy.MAX_OBJECT_SIZE
            if split != "train_label":  # the labeled base part drops tail boxes
                assert 1 <= len(coco.imgToAnns[image_id]) <= 4


def test_boxes_are_tight_around_the_drawn_objects(dataset):
    coco = _coco(dataset, "val")
    images = {info["id"]: cv2.imread(str(dataset / "val" / info["file_name"])) for info in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = (int(v) for v in ann["bbox"])
        colour = toy.CLASS_STYLES[toy.TOY_CLASSES[ann["category_id"] - 1]][1]
        pixels = images[ann["image_id"]]
        inside = pixels[y:y + h, x:x + w]
        # two-pixel frame just outside the box (the image border is at least 3 pixels away)
        frame = np.concatenate([pixels[y - 2:y, x - 2:x + w + 2].reshape(-1, 3),
                                pixels[y + h:y + h + 2, x - 2:x + w + 2].reshape(-1, 3),
                                pixels[y:y + h, x - 2:x].reshape(-1, 3),
                                pixels[y:y + h, x + w:x + w + 2].reshape(-1, 3)])
        assert _colour_fraction(inside, colour) > 0.25, ann
        assert _colour_fraction(frame, colour) < 0.05, ann


def test_labeled_split_is_long_tailed(dataset):
    counts = _class_counts(_coco(dataset, "train_label"))
    tail = counts[np.array(NOVEL_IDS) - 1]
    head = np.delete(counts, np.array(NOVEL_IDS) - 1)
    assert np.all(np.diff(counts) <= 0), counts  # frequencies fall along the category order
    assert np.all(np.diff(head) < 0), head
    assert head.min() > tail.max()
    assert counts[0] >= 5 * tail.max()
    assert np.all((10 <= tail) & (tail <= 20)), tail


def test_base_part_lacks_tail_boxes_but_keeps_tail_objects_drawn(dataset):
    coco = _coco(dataset, "train_label")
    few_shot = set(coco["info"]["few_shot_image_ids"])
    base = {info["id"] for info in coco["images"]} - few_shot
    assert len(few_shot) == 32 and len(base) == 128
    assert _class_counts(coco, base)[np.array(NOVEL_IDS) - 1].tolist() == [0, 0, 0]
    assert np.all(_class_counts(coco, few_shot)[np.array(NOVEL_IDS) - 1] >= 10)
    by_image = {image_id: [] for image_id in base | few_shot}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    assert all(any(a["category_id"] in NOVEL_IDS for a in by_image[i]) for i in few_shot)
    assert all(by_image[i] for i in base)  # every base image keeps at least one head box
    # unannotated cyan rings still sit in base images: cyan pixels outside every box
    cyan = toy.CLASS_STYLES["cyan_ring"][1]
    names = {info["id"]: info["file_name"] for info in coco["images"]}
    images_with_hidden_rings = 0
    for image_id in sorted(base):
        pixels = cv2.imread(str(dataset / "train" / names[image_id]))
        visible = np.ones(pixels.shape[:2], dtype=bool)
        for ann in by_image[image_id]:
            x, y, w, h = (int(v) for v in ann["bbox"])
            visible[y:y + h, x:x + w] = False
        hidden_cyan = _colour_fraction(pixels[visible], cyan) * visible.sum()
        images_with_hidden_rings += hidden_cyan >= 100
    assert images_with_hidden_rings >= 5


def test_val_is_class_balanced_and_unlabeled_keeps_all_classes(dataset):
    val_counts = _class_counts(_coco(dataset, "val"))
    assert val_counts.min() > 0 and val_counts.max() / val_counts.min() <= 1.5, val_counts
    unlabeled_counts = _class_counts(_coco(dataset, "train_unlabel"))
    assert np.all(unlabeled_counts > 0) and unlabeled_counts[0] > unlabeled_counts[-1]


def test_labeled_and_unlabeled_images_are_disjoint(dataset):
    label, unlabel, val = (_coco(dataset, split) for split in SPLITS)
    assert len(label["images"]) == 160 and len(unlabel["images"]) == 30 and len(val["images"]) == 40
    label_ids = {i["id"] for i in label["images"]}
    unlabel_ids = {i["id"] for i in unlabel["images"]}
    assert not label_ids & unlabel_ids
    assert not {i["file_name"] for i in label["images"]} & {i["file_name"] for i in unlabel["images"]}
    assert {p.name for p in (dataset / "train").iterdir()} == (
        {i["file_name"] for i in label["images"]} | {i["file_name"] for i in unlabel["images"]})
    annotation_ids = [a["id"] for coco in (label, unlabel, val) for a in coco["annotations"]]
    assert len(set(annotation_ids)) == len(annotation_ids)


def test_every_split_has_both_aspect_ratio_groups(dataset):
    for split in SPLITS:
        landscape = [info["width"] > info["height"] for info in _coco(dataset, split)["images"]]
        assert any(landscape) and not all(landscape), split


def test_rerun_without_force_keeps_files_and_force_rewrites(tmp_path):
    out = tmp_path / "toy"
    assert toy.main(["--out", str(out), "--num-labeled", "15", "--num-unlabeled", "4", "--num-val", "8"]) == 0
    before, contents = _mtimes(out), _file_bytes(out)
    assert not toy.generate_toy_dataset(out, TINY)
    assert _mtimes(out) == before
    assert toy.generate_toy_dataset(out, TINY, force=True)
    assert _file_bytes(out) == contents and _mtimes(out) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]  # no staging or old copy left behind


def test_existing_output_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "toy"
    toy.generate_toy_dataset(out, TINY)
    with pytest.raises(toy.ToyDatasetError, match="seed"):
        toy.generate_toy_dataset(out, toy.ToyParams(seed=1, num_labeled=15, num_unlabeled=4, num_val=8))
    (out / "val" / "000000000020.jpg").unlink()
    with pytest.raises(toy.ToyDatasetError, match="000000000020.jpg is missing"):
        toy.generate_toy_dataset(out, TINY)
    # an interrupted run leaves no manifest: never taken for a complete dataset
    (out / toy.MANIFEST_NAME).unlink()
    with pytest.raises(toy.ToyDatasetError, match="no manifest.json"):
        toy.generate_toy_dataset(out, TINY)
    assert toy.generate_toy_dataset(out, TINY, force=True)
    assert (out / "val" / "000000000020.jpg").is_file()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(toy.ToyDatasetError, match="notes.txt"):
        toy.generate_toy_dataset(out, TINY, force=True)


def test_replace_other_sizes_replaces_only_a_generated_toy_dataset(tmp_path):
    out = tmp_path / "toy"
    toy.generate_toy_dataset(out, TINY)
    more_val = toy.ToyParams(seed=0, num_labeled=15, num_unlabeled=4, num_val=16)
    with pytest.raises(toy.ToyDatasetError, match="--replace-other-sizes"):
        toy.generate_toy_dataset(out, more_val)
    assert toy.generate_toy_dataset(out, more_val, replace_other_sizes=True)
    assert len(_coco(out, "val")["images"]) == 16
    assert not toy.generate_toy_dataset(out, more_val, replace_other_sizes=True)  # already there: untouched
    (out / "notes.txt").write_text("mine")
    with pytest.raises(toy.ToyDatasetError, match="notes.txt"):
        toy.generate_toy_dataset(out, TINY, replace_other_sizes=True)
    (out / "notes.txt").unlink()
    manifest = json.loads((out / toy.MANIFEST_NAME).read_text())
    (out / toy.MANIFEST_NAME).write_text(json.dumps(dict(manifest, generator="someone else")))
    with pytest.raises(toy.ToyDatasetError, match="someone else"):
        toy.generate_toy_dataset(out, TINY, replace_other_sizes=True)


def test_stale_staging_folder_is_replaced(tmp_path):
    staging = tmp_path / "toy.partial"
    (staging / "train").mkdir(parents=True)
    (staging / "train" / "leftover.jpg").write_bytes(b"half")
    toy.generate_toy_dataset(tmp_path / "toy", TINY)
    assert not staging.exists()
    assert not (tmp_path / "toy" / "train" / "leftover.jpg").exists()


@pytest.mark.parametrize("flag, value, message", [
    ("--num-labeled", "3", "num_labeled (--num-labeled) must be at least 15, got 3"),
    ("--num-val", "0", "num_val (--num-val) must be at least 8, got 0"),
    ("--seed", "-1", "seed (--seed) must be at least 0, got -1"),
])
def test_bad_arguments_exit_with_a_clear_message(tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        toy.main(["--out", str(tmp_path / "toy"), flag, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "toy").exists()


def test_script_reports_errors_on_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "toy"), "--num-unlabeled", "x"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "--num-unlabeled: invalid int value: 'x'" in result.stderr
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "toy")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "no manifest.json" in result.stderr and "--force" in result.stderr


@pytest.mark.parametrize("name", toy.TOY_CLASSES)
def test_every_shape_stays_inside_its_drawing_box(name):
    shape = toy.CLASS_STYLES[name][0]
    for size in (toy.MIN_OBJECT_SIZE, 33, 50, toy.MAX_OBJECT_SIZE):
        for variant in (0.0, 0.3, 0.6, 0.9):
            width, height = toy.shape_extent(shape, size, variant)
            mask = np.zeros((90, 90), dtype=np.uint8)
            toy.draw_shape(mask, shape, (7, 9, width, height), variant, 255)
            x, y, w, h = cv2.boundingRect(mask)
            assert 7 <= x and 9 <= y and x + w <= 7 + width and y + h <= 9 + height, (size, variant)
            assert mask.sum() / 255 >= 0.25 * width * height  # a solid object, not a thin outline
            assert max(w, h) >= 0.8 * size  # rotated triangles and stars span at least 0.87 of it
