"""Tests of the CI-SSOD split tools (tools/dataset/split_*.py, make_split_lists.py): spec A, I.7 item 42."""
import json
import sys
from collections import Counter

import numpy as np
import pytest

from conftest import REPO_ROOT, run_tool

TOOLS = REPO_ROOT / "tools" / "dataset"
sys.path.insert(0, str(TOOLS))

import make_split_lists  # noqa: E402
import split_coco  # noqa: E402
import split_common  # noqa: E402
import split_stats  # noqa: E402
from split_common import ImageIndex, SplitError, read_image_list  # noqa: E402

COCO_CATEGORIES = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"), (7, "train"),
    (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"), (13, "stop sign"),
    (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"), (20, "sheep"),
    (21, "cow"), (22, "elephant"), (23, "bear"), (24, "zebra"), (25, "giraffe"), (27, "backpack"),
    (28, "umbrella"), (31, "handbag"), (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"),
    (36, "snowboard"), (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"), (46, "wine glass"),
    (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"), (52, "banana"), (53, "apple"),
    (54, "sandwich"), (55, "orange"), (56, "broccoli"), (57, "carrot"), (58, "hot dog"), (59, "pizza"),
    (60, "donut"), (61, "cake"), (62, "chair"), (63, "couch"), (64, "potted plant"), (65, "bed"),
    (67, "dining table"), (70, "toilet"), (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"),
    (76, "keyboard"), (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"), (88, "teddy bear"),
    (89, "hair drier"), (90, "toothbrush"),
)
# spec A.1, by name
SPLIT1_NOVEL_NAMES = {"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "boat", "bird", "cat",
                      "dog", "horse", "sheep", "cow", "bottle", "chair", "couch", "potted plant", "dining table",
                      "tv"}
SPLIT2_NOVEL_NAMES = {"airplane", "bus", "boat", "traffic light", "fire hydrant", "parking meter", "bird", "cat",
                      "horse", "sheep", "cow", "elephant", "zebra", "umbrella", "handbag", "tie", "suitcase",
                      "frisbee", "skis", "snowboard", "baseball glove", "wine glass", "banana", "apple",
                      "sandwich", "broccoli", "hot dog", "pizza", "bed", "dining table", "tv", "mouse", "remote",
                      "keyboard", "oven", "refrigerator", "book", "vase", "hair drier", "toothbrush"}
SPLIT2_NOVEL_LABELS = [4, 5, 8, 9, 10, 12, 14, 15, 17, 18, 19, 20, 22, 25, 26, 27, 28, 29, 30, 31, 35, 40, 46, 47,
                       48, 50, 52, 53, 59, 60, 62, 64, 65, 66, 69, 72, 73, 75, 78, 79]
PERSON, CAR, TRUCK, BIRD, DOG, GIRAFFE = 1, 3, 8, 16, 18, 25

# tiny COCO train: (annotation id, image id, category id, iscrowd)
TINY_ANNOTATIONS = [(1, 1, PERSON, 0), (2, 1, TRUCK, 0), (3, 2, DOG, 0), (4, 2, DOG, 0), (5, 2, GIRAFFE, 0),
                    (6, 3, GIRAFFE, 0), (7, 3, PERSON, 0), (8, 4, TRUCK, 0), (9, 4, PERSON, 0), (10, 6, CAR, 0),
                    (11, 7, TRUCK, 1), (12, 8, BIRD, 0)]
BASE_LIST = [1, 3, 5, 7]
NOVEL_LIST = [2, 3]


def coco_categories():
    return [{"id": i, "name": name, "supercategory": "thing"} for i, name in COCO_CATEGORIES]


def tiny_coco(reverse=False):
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 64 + i, "height": 48} for i in range(1, 9)]
    annotations = [{"id": a, "image_id": i, "category_id": c, "iscrowd": crowd, "bbox": [1.0, 2.0, 3.0, 4.0],
                    "area": 12.0} for a, i, c, crowd in TINY_ANNOTATIONS]
    if reverse:
        images, annotations = images[::-1], annotations[::-1]
    return {"info": {"description": "tiny"}, "licenses": [], "images": images, "annotations": annotations,
            "categories": coco_categories()}


def write(path, obj):
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def ann_ids(data):
    return [a["id"] for a in data["annotations"]]


def img_ids(data):
    return [i["id"] for i in data["images"]]


def test_coco_category_table_matches_mmdet():
    from mmdet.datasets import CocoDataset
    assert tuple(name for _, name in COCO_CATEGORIES) == CocoDataset.CLASSES


@pytest.mark.parametrize("split,names", [(1, SPLIT1_NOVEL_NAMES), (2, SPLIT2_NOVEL_NAMES)])
def test_novel_category_ids_match_spec_names(split, names):
    data = tiny_coco()
    ids = split_common.coco_novel_category_ids(split, data)
    id_to_name = split_common.category_names(data)
    assert len(ids) == len(set(ids)) == len(names)
    assert {id_to_name[i] for i in ids} == names
    if split == 2:
        sorted_ids = sorted(id_to_name)
        assert sorted(sorted_ids.index(i) for i in ids) == SPLIT2_NOVEL_LABELS


def test_novel_ids_must_exist_in_categories():
    data = tiny_coco()
    data["categories"] = [c for c in data["categories"] if c["id"] != 90]
    with pytest.raises(SplitError, match=r"\[90\]"):
        split_common.coco_novel_category_ids(2, data)


def test_coco_split_invariants():
    """I.7 item 42, on hand-computed ids."""
    data = tiny_coco()
    labeled, unlabeled = split_coco.build_coco_split(data, BASE_LIST, NOVEL_LIST, split=1)
    assert img_ids(labeled) == [1, 2, 3, 5, 7]
    assert img_ids(unlabeled) == [4, 6, 8]
    assert ann_ids(labeled) == [2, 3, 4, 5, 6, 7, 11]  # person (1) dropped from base image 1
    assert ann_ids(unlabeled) == [8, 9, 10, 12]
    novel = set(split_common.COCO_SPLIT_NOVEL_CATEGORY_IDS[1])
    only_base = set(BASE_LIST) - set(NOVEL_LIST)
    assert not [a for a in labeled["annotations"] if a["image_id"] in only_base and a["category_id"] in novel]
    by_image = {i: sorted(a["id"] for a in data["annotations"] if a["image_id"] == i) for i in NOVEL_LIST}
    for image_id, expected in by_image.items():
        assert sorted(a["id"] for a in labeled["annotations"] if a["image_id"] == image_id) == expected
    assert set(img_ids(labeled)).isdisjoint(img_ids(unlabeled))
    assert set(img_ids(labeled)) | set(img_ids(unlabeled)) == set(img_ids(data))
    for part in (labeled, unlabeled):
        assert part["categories"] == data["categories"]
        assert list(part) == list(data)
        assert part["info"]["description"] == "tiny"
        assert part["info"]["novel_category_ids"] == list(split_common.COCO_SPLIT_NOVEL_CATEGORY_IDS[1])
    assert labeled["info"]["annotations_are_labels"] is True
    assert unlabeled["info"]["annotations_are_labels"] is False
    assert labeled["info"]["few_shot_image_ids"] == [2, 3]
    assert len(labeled["info"]["base_classes"]) == 60


def test_split_rejects_annotations_of_unknown_images():
    data = tiny_coco()
    data["annotations"].append({"id": 99, "image_id": 42, "category_id": TRUCK})
    with pytest.raises(SplitError, match="annotation 99 refers to image id 42"):
        split_coco.build_coco_split(data, BASE_LIST, NOVEL_LIST, split=1)


def test_image_list_parsing(tmp_path):
    index = ImageIndex(tiny_coco())
    good = tmp_path / "good.txt"
    good.write_text("# header\n\n5\n000000000002.jpg  # a file name\n   3   \n5\n7 # id\n")
    assert read_image_list(good, index) == [5, 2, 3, 7]
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("1\n# comment\n000000000099.jpg\n")
    with pytest.raises(SplitError, match=r"unknown\.txt:3: '000000000099\.jpg'"):
        read_image_list(unknown, index)
    unknown.write_text("1\n9\n")
    with pytest.raises(SplitError, match=r"unknown\.txt:2: '9'"):
        read_image_list(unknown, index)
    two = tmp_path / "two.txt"
    two.write_text("1 2\n")
    with pytest.raises(SplitError, match=r"two\.txt:1: one entry per line"):
        read_image_list(two, index)
    with pytest.raises(SplitError, match="does not exist"):
        read_image_list(tmp_path / "missing.txt", index)


def test_image_list_names_in_folders_and_urls(tmp_path):
    data = {"images": [{"id": 10, "file_name": "images/v1/patch0/a.jpg"},
                       {"id": 11, "file_name": "images/v2/patch1/a.jpg"},
                       {"id": 12, "coco_url": "http://images.cocodataset.org/train2017/000000000012.jpg"}],
            "annotations": [], "categories": []}
    index = ImageIndex(data)
    listed = tmp_path / "list.txt"
    listed.write_text("images/v2/patch1/a.jpg\n000000000012.jpg\n")
    assert read_image_list(listed, index) == [11, 12]
    listed.write_text("a.jpg\n")
    with pytest.raises(SplitError, match=r"list\.txt:1: .*several images"):
        read_image_list(listed, index)


def test_write_json_matches_json_dumps(tmp_path):
    data = {"info": {"ü": 1}, "images": [{"id": i} for i in range(7)], "empty": [], "annotations": [[1, 2]]}
    path = tmp_path / "out.json"
    split_common.write_json(data, path, chunk=2)
    assert path.read_text(encoding="utf-8") == json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    assert not list(tmp_path.glob("*.partial"))


def test_split_coco_cli_deterministic(tmp_path):
    ann = write(tmp_path / "instances_train2017.json", tiny_coco())
    shuffled = tmp_path / "shuffled" / "instances_train2017.json"
    shuffled.parent.mkdir()
    write(shuffled, tiny_coco(reverse=True))
    base = tmp_path / "base.txt"
    base.write_text("# base\n000000000001.jpg\n3\n5\n000000000007.jpg\n")
    novel = tmp_path / "novel.txt"
    novel.write_text("2\n3\n")
    outputs = []
    for run, source in enumerate((ann, ann, shuffled)):
        out = tmp_path / f"out{run}"
        proc = run_tool([TOOLS / "split_coco.py", "--ann", source, "--base-list", base, "--novel-list", novel,
                         "--split", "1", "--out-dir", out], cwd=tmp_path)
        assert "5 images, 7 annotations" in proc.stdout and "images on both lists (kept with all annotations): 1" \
            in proc.stdout
        outputs.append([(out / f"instances_train2017_coco_split1_{p}.json").read_bytes()
                        for p in ("label", "unlabel")])
    assert outputs[0] == outputs[1] == outputs[2]
    labeled = json.loads(outputs[0][0])
    assert ann_ids(labeled) == [2, 3, 4, 5, 6, 7, 11]
    assert labeled["info"]["base_list"]["file"] == "base.txt" and labeled["info"]["base_list"]["num_images"] == 4


def test_split_coco_cli_reports_bad_list_line(tmp_path):
    ann = write(tmp_path / "instances_train2017.json", tiny_coco())
    base = tmp_path / "base.txt"
    base.write_text("1\nnot_an_image.jpg\n")
    novel = tmp_path / "novel.txt"
    novel.write_text("2\n")
    proc = run_tool([TOOLS / "split_coco.py", "--ann", ann, "--base-list", base, "--novel-list", novel,
                     "--split", "2", "--out-dir", tmp_path], cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "base.txt:2: 'not_an_image.jpg'" in proc.stderr
    assert not list(tmp_path.glob("*_label.json"))


def tiny_lvis():
    images = [{"id": i, "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg", "height": 50,
               "width": 60, "neg_category_ids": [i % 3 + 1], "not_exhaustive_category_ids": [2] if i % 2 else [],
               "license": 1, "flickr_url": f"http://flickr/{i}"} for i in (9, 25, 30, 34, 36)]
    annotations = [{"id": k + 1, "image_id": i, "category_id": c, "bbox": [0, 0, 5, 5], "area": 25}
                   for k, (i, c) in enumerate([(9, 1), (9, 2), (9, 2), (25, 3), (30, 1), (36, 2), (36, 3)])]
    categories = [{"id": c, "name": f"class{c}", "frequency": f, "synonyms": [f"class{c}"]}
                  for c, f in ((1, "f"), (2, "c"), (3, "r"))]
    return {"info": {"year": 2020}, "images": images, "annotations": annotations, "categories": categories}


def test_split_lvis_cli_keeps_all_annotations_and_fields(tmp_path):
    data = tiny_lvis()
    ann = write(tmp_path / "lvis_v1_train.json", data)
    listed = tmp_path / "lvis_split.txt"
    listed.write_text("36\n000000000009.jpg\n")
    run_tool([TOOLS / "split_lvis.py", "--ann", ann, "--labeled-list", listed, "--out-dir", tmp_path / "out"],
             cwd=tmp_path)
    labeled = json.loads((tmp_path / "out/lvis_v1_train_lvis_label.json").read_text())
    unlabeled = json.loads((tmp_path / "out/lvis_v1_train_lvis_unlabel.json").read_text())
    assert img_ids(labeled) == [9, 36] and ann_ids(labeled) == [1, 2, 3, 6, 7]
    assert img_ids(unlabeled) == [25, 30, 34] and ann_ids(unlabeled) == [4, 5]
    originals = {i["id"]: i for i in data["images"]}
    for image in labeled["images"] + unlabeled["images"]:
        assert image == originals[image["id"]]
    assert labeled["categories"] == data["categories"]
    assert labeled["info"]["year"] == 2020 and labeled["info"]["split"] == "lvis"
    assert labeled["info"]["labeled_list"]["num_images"] == 2
    assert unlabeled["info"]["annotations_are_labels"] is False


def test_split_objects365_cli(tmp_path):
    images = [{"id": i, "file_name": f"images/v1/patch{i % 2}/objects365_v1_{i:08d}.jpg", "height": 40,
               "width": 40} for i in range(1, 7)]
    annotations = [{"id": 100 + i, "image_id": i, "category_id": 1 + i % 3, "bbox": [0, 0, 4, 4], "iscrowd": 0,
                    "isfake": 0} for i in range(6, 0, -1)] + [{"id": 50, "image_id": 4, "category_id": 3}]
    categories = [{"id": c, "name": f"o{c}"} for c in (1, 2, 3)]
    data = {"images": images, "annotations": annotations, "categories": categories, "licenses": [{"id": 1}]}
    ann = write(tmp_path / "zhiyuan_objv2_train.json", data)
    listed = tmp_path / "object365_novel2.txt"
    listed.write_text("objects365_v1_00000004.jpg\n2\n")
    proc = run_tool([TOOLS / "split_objects365.py", "--ann", ann, "--labeled-list", listed, "--out-dir", tmp_path],
                    cwd=tmp_path)
    assert "zhiyuan_objv2_train_object365_label.json: 2 images, 3 annotations" in proc.stdout
    labeled = json.loads((tmp_path / "zhiyuan_objv2_train_object365_label.json").read_text())
    unlabeled = json.loads((tmp_path / "zhiyuan_objv2_train_object365_unlabel.json").read_text())
    assert ann_ids(labeled) == [50, 102, 104] and img_ids(labeled) == [2, 4]
    assert ann_ids(unlabeled) == [101, 103, 105, 106] and img_ids(unlabeled) == [1, 3, 5, 6]
    assert list(labeled) == ["info", "images", "annotations", "categories", "licenses"]
    assert labeled["info"]["generator"] == "ssod-split-objects365"


def synthetic_coco(num_images=400, seed=3):
    """Long-tailed random COCO train file: every class has at least 8 boxes, but toothbrush (90) has 3."""
    rng = np.random.default_rng(seed)
    ids = [c for c, _ in COCO_CATEGORIES if c != 90]
    weights = 1.0 / np.arange(1, len(ids) + 1)
    images, annotations = [], []
    for image_id in range(1000, 1000 + num_images):
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": 100, "height": 100})
        for category in rng.choice(ids, size=rng.integers(0, 5), p=weights / weights.sum()):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(category),
                                "iscrowd": int(rng.random() < 0.05), "bbox": [0, 0, 9, 9], "area": 81})
    extra = [(int(i), c) for c in ids for i in rng.choice(num_images, size=8) + 1000]  # >= 8 boxes a class
    for image_id, category in extra + [(1001, 90), (1002, 90), (1003, 90)]:
        annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category, "iscrowd": 0,
                            "bbox": [0, 0, 9, 9], "area": 81})
    return {"images": images, "annotations": annotations, "categories": coco_categories()}


def non_crowd_counts(data, image_set, categories):
    return Counter(a["category_id"] for a in data["annotations"]
                   if a["image_id"] in image_set and not a["iscrowd"] and a["category_id"] in categories)


@pytest.mark.parametrize("split,shots", [(1, 5), (2, 4)])
def test_make_coco_lists_recipe(split, shots):
    data = synthetic_coco()
    lists = make_split_lists.make_coco_lists(data, split, base_fraction=0.1, shots=shots, seed=0)
    again = make_split_lists.make_coco_lists(data, split, base_fraction=0.1, shots=shots, seed=0)
    other = make_split_lists.make_coco_lists(data, split, base_fraction=0.1, shots=shots, seed=1)
    assert lists == again and lists["base"] != other["base"]
    assert len(lists["base"]) == 40 == len(set(lists["base"]))
    assert set(lists["base"]).isdisjoint(lists["novel"])
    novel = split_common.COCO_SPLIT_NOVEL_CATEGORY_IDS[split]
    available = non_crowd_counts(data, set(img_ids(data)) - set(lists["base"]), novel)
    reached = non_crowd_counts(data, set(lists["novel"]), novel)
    assert lists["novel_boxes"] == {c: reached[c] for c in novel}
    for category in novel:
        assert reached[category] >= min(shots, available[category])
    assert lists["short_classes"] == [c for c in novel if available[c] < shots]
    assert len(lists["short_classes"]) == (split == 2)
    if split == 2:  # toothbrush has 3 boxes in all
        assert 90 in lists["short_classes"] and reached[90] == available[90]
    # every selected image holds at least one novel box
    assert all(non_crowd_counts(data, {i}, novel) for i in lists["novel"])


def test_few_shot_passes():
    """Pass 1 skips images that would push the visited class past ``shots``; pass 2 fills a remaining gap."""
    counts = {1: Counter({"a": 2}), 2: Counter({"a": 1}), 4: Counter({"a": 1}), 3: Counter({"b": 5}),
              5: Counter({"b": 1}), 6: Counter({"b": 1})}
    for seed in range(6):
        selected, boxes, short = make_split_lists.few_shot_images(counts, ["a", "b"], 2, np.random.default_rng(seed))
        assert boxes == {"a": 2, "b": 2} and short == [] and selected[-2:] == [5, 6]
        selected, boxes, short = make_split_lists.few_shot_images(counts, ["a", "b"], 3, np.random.default_rng(seed))
        assert boxes["b"] == 7 and {3, 5, 6} <= set(selected) and boxes["a"] in (3, 4) and short == []
    co_occurring = {1: Counter({"a": 1, "b": 1}), 2: Counter({"a": 1})}
    selected, boxes, short = make_split_lists.few_shot_images(co_occurring, ["a", "b"], 2, np.random.default_rng(0))
    assert selected == [1, 2] and boxes == {"a": 2, "b": 1} and short == ["b"]


def test_make_split_lists_cli_then_split(tmp_path):
    data = synthetic_coco()
    ann = write(tmp_path / "instances_train2017.json", data)
    args = ["coco", "--ann", ann, "--split", "2", "--base-fraction", "0.1", "--shots", "3", "--seed", "7"]
    for out in ("lists_a", "lists_b"):
        proc = run_tool([TOOLS / "make_split_lists.py", *args, "--out-dir", tmp_path / out], cwd=tmp_path)
    base, novel = "coco_split2_base_10percent_seed7.txt", "coco_split2_novel_3shot_seed7.txt"
    for name in (base, novel):
        assert (tmp_path / "lists_a" / name).read_bytes() == (tmp_path / "lists_b" / name).read_bytes()
    assert f"{base}: 40 images" in proc.stdout
    expected = make_split_lists.make_coco_lists(data, 2, 0.1, 3, 7)
    index = ImageIndex(data)
    assert read_image_list(tmp_path / "lists_a" / base, index) == expected["base"]
    assert read_image_list(tmp_path / "lists_a" / novel, index) == expected["novel"]
    run_tool([TOOLS / "split_coco.py", "--ann", ann, "--base-list", tmp_path / "lists_a" / base, "--novel-list",
              tmp_path / "lists_a" / novel, "--split", "2", "--out-dir", tmp_path], cwd=tmp_path)
    labeled = json.loads((tmp_path / "instances_train2017_coco_split2_label.json").read_text())
    unlabeled = json.loads((tmp_path / "instances_train2017_coco_split2_unlabel.json").read_text())
    novel_ids = set(split_common.COCO_SPLIT_NOVEL_CATEGORY_IDS[2])
    base_only = set(expected["base"])
    assert not [a for a in labeled["annotations"] if a["image_id"] in base_only and a["category_id"] in novel_ids]
    assert set(img_ids(labeled)) == base_only | set(expected["novel"])
    assert sorted(img_ids(labeled) + img_ids(unlabeled)) == sorted(img_ids(data))
    stats = split_stats.annotation_stats(labeled)
    for category, boxes in expected["novel_boxes"].items():
        row = stats["classes"][stats["category_ids"].index(category)]
        assert row["boxes"] - row["crowd_boxes"] == boxes and row["subset"] == "novel"


def test_make_random_lists_cli(tmp_path):
    ann = write(tmp_path / "lvis_v1_train.json", tiny_lvis())
    proc = run_tool([TOOLS / "make_split_lists.py", "lvis", "--ann", ann, "--fraction", "0.4", "--seed", "3",
                     "--out-dir", tmp_path], cwd=tmp_path)
    path = tmp_path / "lvis_labeled_40percent_seed3.txt"
    assert f"{path}: 2 images" in proc.stdout
    lines = path.read_text().splitlines()
    assert lines[1] == "# recipe: make_split_lists.py lvis --fraction 0.4 --seed 3"
    ids = read_image_list(path, ImageIndex(tiny_lvis()))
    assert ids == make_split_lists.random_subset([9, 25, 30, 34, 36], 0.4, np.random.default_rng(3))
    assert f"{ids[0]}  # {ids[0]:012d}.jpg" in lines
    many = list(range(1000))
    picked = make_split_lists.random_subset(many, 0.1, np.random.default_rng(0))
    assert len(picked) == 100 == len(set(picked)) and picked == sorted(picked)
    with pytest.raises(SplitError, match="selects no image"):
        make_split_lists.random_subset([1, 2], 0.1, np.random.default_rng(0))
    proc = run_tool([TOOLS / "make_split_lists.py", "objects365", "--ann", ann, "--fraction", "1.5",
                     "--out-dir", tmp_path], cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "fraction must be in (0, 1]" in proc.stderr


def test_split_stats_counts(tmp_path):
    labeled, _ = split_coco.build_coco_split(tiny_coco(), BASE_LIST, NOVEL_LIST, split=1)
    stats = split_stats.annotation_stats(labeled)
    assert (stats["num_images"], stats["num_images_with_annotations"], stats["num_boxes"],
            stats["num_crowd_boxes"]) == (5, 4, 7, 1)
    rows = {row["id"]: row for row in stats["classes"]}
    assert (rows[TRUCK]["images"], rows[TRUCK]["boxes"], rows[TRUCK]["crowd_boxes"]) == (2, 2, 1)
    assert (rows[DOG]["images"], rows[DOG]["boxes"]) == (1, 2)
    assert (rows[GIRAFFE]["images"], rows[GIRAFFE]["boxes"]) == (2, 2)
    assert (rows[PERSON]["images"], rows[PERSON]["boxes"], rows[PERSON]["subset"]) == (1, 1, "novel")
    assert rows[TRUCK]["subset"] == "base"
    assert sum(stats["image_counts"]) == 6 and sum(stats["box_counts"]) == 7 and len(stats["box_counts"]) == 80

    path = write(tmp_path / "label.json", labeled)
    proc = run_tool([TOOLS / "split_stats.py", path, "--json", tmp_path / "stats.json"], cwd=tmp_path)
    assert [line.split() for line in proc.stdout.splitlines() if line.split()[:1] == ["8"]] == \
        [["8", "truck", "2", "2", "1", "base"]]
    assert "total: 80 classes, 5 images (4 with annotations), 7 boxes (1 crowd)" in proc.stdout
    written = json.loads((tmp_path / "stats.json").read_text())
    assert written == {"file": "label.json", **stats}

    few = write(tmp_path / "few_classes.json", {"categories": [{"id": TRUCK, "name": "lorry"},
                                                               {"id": DOG, "name": "dog"}]})
    proc = run_tool([TOOLS / "split_stats.py", path, "--classes-from", few], cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "has category_id" in proc.stderr
    only = {**labeled, "annotations": [a for a in labeled["annotations"] if a["category_id"] in (TRUCK, DOG)]}
    stats = split_stats.annotation_stats(only, {"categories": [{"id": TRUCK, "name": "lorry"},
                                                               {"id": DOG, "name": "dog"}]})
    assert stats["image_counts"] == [2, 1] and stats["box_counts"] == [2, 2]
    assert stats["classes"][0]["name"] == "lorry"
