"""MS-COCO -> Objects365 setting: the label map (spec A.2, H.31, I.7 item 44), the Objects365 and
COCO->Objects365 datasets, their concatenation, and the labeled-set class statistics for CrS."""
import json
import random

import cv2
import numpy as np
import pytest
from mmdet.datasets import CocoDataset, ConcatDataset, Objects365V2Dataset, build_dataset

import ssod  # noqa: F401
from ssod.datasets import class_maps
from ssod.datasets.class_maps import (COCO_TO_OBJECTS365_UPSTREAM, OBJECTS365_ANCHOR_NAMES, check_objects365_names,
                                      coco_to_objects365_map, mapped_objects365_labels)
from ssod.datasets.crs import rfs_repeat_factors
from ssod.datasets.crs_wrappers import labeled_dataset_statistics
from ssod.datasets.semi_dataset import SemiDataset

O365_NAMES = Objects365V2Dataset.CLASSES  # the 365 v2 names in category-id order (id = label + 1)
O365 = {name: label for label, name in enumerate(O365_NAMES)}
PERSON, SNEAKERS, STUFFED_TOY, BEAR = O365["Person"], O365["Sneakers"], O365["Stuffed Toy"], O365["Bear"]
COCO_IDS = {"person": 1, "sports ball": 37, "bear": 23, "teddy bear": 88, "tv": 72}
WIDTH, HEIGHT = 64, 48


def o365_categories():
    categories = [dict(id=label + 1, name=name) for label, name in enumerate(O365_NAMES)]
    random.Random(0).shuffle(categories)  # files need not list categories in id order
    return categories


# Objects365 images: id -> (file_name in the JSON, [(label, xywh box)])
O365_VAL = {
    1: ("images/v2/patch0/objects365_v2_00000001.jpg", [(PERSON, [4, 4, 20, 30]), (SNEAKERS, [30, 30, 10, 8])]),
    2: ("images/v1/patch1/objects365_v1_00000002.jpg", [(BEAR, [10, 5, 40, 30])]),
    3: ("images/v2/patch1/objects365_v2_00000003.jpg", [(STUFFED_TOY, [2, 2, 30, 30]), (SNEAKERS, [40, 10, 12, 12])]),
    4: ("images/v2/patch0/objects365_v2_00000004.jpg", []),
}
# COCO images: id -> [(COCO class, xywh box, iscrowd)]
COCO_TRAIN = {
    11: [("person", [1, 1, 20, 20], 0), ("teddy bear", [25, 5, 20, 20], 0), ("bear", [5, 25, 30, 20], 0)],
    12: [("sports ball", [10, 10, 8, 8], 0)],
    13: [("teddy bear", [3, 3, 30, 30], 0), ("sports ball", [40, 30, 6, 6], 0)],
    14: [("person", [0, 0, 40, 40], 1), ("tv", [10, 10, 30, 20], 0)],
}


def write_json(path, images, annotations, categories):
    path.write_text(json.dumps(dict(images=images, annotations=annotations, categories=categories)))
    return str(path)


def annotation(ann_id, image_id, category_id, box, iscrowd=0):
    return dict(id=ann_id, image_id=image_id, category_id=category_id, bbox=box, area=box[2] * box[3],
                iscrowd=iscrowd)


@pytest.fixture()
def data(tmp_path):
    """Objects365 val (images on disk under train/patchN/) and COCO train annotation files."""
    o365_images, o365_anns = [], []
    for image_id, (file_name, objects) in O365_VAL.items():
        o365_images.append(dict(id=image_id, file_name=file_name, width=WIDTH, height=HEIGHT))
        for label, box in objects:
            o365_anns.append(annotation(len(o365_anns) + 1, image_id, label + 1, box))
        disk_path = tmp_path / "o365" / "train" / file_name.split("/", 2)[2]
        disk_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(disk_path), np.full((HEIGHT, WIDTH, 3), 120, np.uint8))
    o365 = write_json(tmp_path / "o365_val.json", o365_images, o365_anns, o365_categories())
    coco_images = [dict(id=i, file_name=f"{i:012d}.jpg", width=WIDTH, height=HEIGHT) for i in COCO_TRAIN]
    coco_anns = [annotation(n + 1, image_id, COCO_IDS[name], box, crowd) for n, (image_id, name, box, crowd) in
                 enumerate((i, *obj) for i, objects in COCO_TRAIN.items() for obj in objects)]
    coco_categories = [dict(id=cat_id, name=name) for name, cat_id in COCO_IDS.items()]
    coco = write_json(tmp_path / "coco_train.json", coco_images, coco_anns, coco_categories)
    return dict(root=tmp_path, o365=o365, coco=coco, o365_images=str(tmp_path / "o365" / "train"))


def o365_cfg(data, **kwargs):
    cfg = dict(type="Objects365Dataset", ann_file=data["o365"], img_prefix=data["o365_images"], pipeline=[],
               strip_prefixes=("images/v1/", "images/v2/"))
    cfg.update(kwargs)
    return cfg


def coco2o365_cfg(data, **kwargs):
    cfg = dict(type="COCO2Objects365Dataset", ann_file=data["coco"], img_prefix=str(data["root"]), pipeline=[])
    cfg.update(kwargs)
    return cfg


def labels_by_image(dataset):
    return {info["id"]: sorted(dataset.get_ann_info(i)["labels"].tolist()) for i, info in enumerate(dataset.data_infos)}


# ---------------------------------------------------------------- the label map


def test_upstream_map_sends_79_coco_classes_to_78_objects365_classes():
    """Spec I.7 item 44: sports ball dropped, bear and teddy bear collide on "Bear"."""
    upstream = coco_to_objects365_map(upstream_teddy_bear=True)
    assert upstream == COCO_TO_OBJECTS365_UPSTREAM and len(upstream) == 80
    kept = [label for label in upstream if label != -1]
    assert len(kept) == 79 and len(set(kept)) == 78 and len(mapped_objects365_labels(True)) == 78
    assert upstream[class_maps.COCO_TEDDY_BEAR] == upstream[21] == BEAR  # COCO label 21 is bear


def test_default_map_sends_teddy_bear_to_stuffed_toy_and_drops_sports_ball():
    fixed = coco_to_objects365_map()
    kept = [label for label in fixed if label != -1]
    assert len(kept) == 79 and len(set(kept)) == 79 and len(mapped_objects365_labels()) == 79
    assert fixed[class_maps.COCO_TEDDY_BEAR] == STUFFED_TOY and fixed[21] == BEAR
    assert fixed[class_maps.COCO_SPORTS_BALL] == -1
    assert [a for a, b in zip(fixed, COCO_TO_OBJECTS365_UPSTREAM) if a != b] == [STUFFED_TOY]


def test_map_targets_are_the_matching_objects365_classes():
    """Checked against mmdet's Objects365 v2 class names (anchors are those the spec names)."""
    for label, name in OBJECTS365_ANCHOR_NAMES.items():
        assert O365_NAMES[label] == name
    coco_names = ("person", "car", "dog", "bear", "teddy bear", "suitcase", "tv", "dining table", "toothbrush")
    targets = [O365_NAMES[coco_to_objects365_map()[CocoDataset.CLASSES.index(n)]] for n in coco_names]
    assert targets == ["Person", "Car", "Dog", "Bear", "Stuffed Toy", "Luggage", "Moniter/TV", "Dinning Table",
                       "Toothbrush"]


def test_name_check_rejects_other_category_lists():
    check_objects365_names(O365_NAMES, "mmdet")
    with pytest.raises(ValueError, match="got 364 names"):
        check_objects365_names(O365_NAMES[:-1], "short.json")
    swapped = list(O365_NAMES)
    swapped[BEAR], swapped[STUFFED_TOY] = swapped[STUFFED_TOY], swapped[BEAR]
    with pytest.raises(ValueError, match=r"swapped.json.*labels \[70, 295\]"):
        check_objects365_names(swapped, "swapped.json")


# ---------------------------------------------------------------- COCO -> Objects365 dataset


def test_coco_labels_are_mapped_into_objects365(data):
    dataset = build_dataset(coco2o365_cfg(data))
    assert tuple(dataset.CLASSES) == O365_NAMES
    # image 12 (sports ball only) has no annotation left: filtered; the crowd person of 14 is ignored
    assert labels_by_image(dataset) == {11: [PERSON, STUFFED_TOY, BEAR], 13: [STUFFED_TOY], 14: [O365["Moniter/TV"]]}
    assert dataset.get_ann_info(2)["bboxes_ignore"].tolist() == [[0, 0, 40, 40]]
    assert [dataset.get_cat_ids(i) for i in range(len(dataset))] == [[PERSON, STUFFED_TOY, BEAR], [STUFFED_TOY],
                                                                     [O365["Moniter/TV"]]]
    loaded = build_dataset(coco2o365_cfg(data, pipeline=[dict(type="LoadAnnotations", with_bbox=True)]))[1]
    assert loaded["gt_labels"].tolist() == [STUFFED_TOY] and loaded["gt_bboxes"].tolist() == [[3, 3, 33, 33]]


def test_upstream_teddy_bear_flag_merges_teddy_bear_into_bear(data):
    dataset = build_dataset(coco2o365_cfg(data, upstream_teddy_bear=True, filter_empty_gt=False))
    assert labels_by_image(dataset) == {11: [PERSON, BEAR, BEAR], 12: [], 13: [BEAR], 14: [O365["Moniter/TV"]]}
    assert dataset.get_cat_ids(0) == [PERSON, BEAR]  # one class set per image


def test_class_names_from_an_objects365_file_or_config(data):
    from_file = build_dataset(coco2o365_cfg(data, o365_ann_file="o365_val.json", data_root=str(data["root"]),
                                            ann_file="coco_train.json"))
    assert tuple(from_file.CLASSES) == O365_NAMES
    from_config = build_dataset(coco2o365_cfg(data, classes=list(O365_NAMES)))
    assert labels_by_image(from_config) == labels_by_image(from_file)


def test_coco2objects365_errors(data):
    with pytest.raises(ValueError, match="not both"):
        build_dataset(coco2o365_cfg(data, classes=list(O365_NAMES), o365_ann_file=data["o365"]))
    with pytest.raises(FileNotFoundError, match="o365_ann_file not found: .*missing.json"):
        build_dataset(coco2o365_cfg(data, o365_ann_file=str(data["root"] / "missing.json")))
    with pytest.raises(FileNotFoundError, match="COCO2Objects365Dataset: ann_file not found: .*nope.json"):
        build_dataset(coco2o365_cfg(data, ann_file=str(data["root"] / "nope.json")))
    with pytest.raises(ValueError, match="got 3 names"):
        build_dataset(coco2o365_cfg(data, classes=["a", "b", "c"]))
    coco = json.loads(open(data["coco"]).read())
    coco["categories"].append(dict(id=99, name="unicorn"))
    bad = write_json(data["root"] / "bad_coco.json", coco["images"], coco["annotations"], coco["categories"])
    with pytest.raises(ValueError, match=r"not COCO classes: \['unicorn'\]"):
        build_dataset(coco2o365_cfg(data, ann_file=bad))
    with pytest.raises(NotImplementedError, match="training set"):
        build_dataset(coco2o365_cfg(data)).evaluate([])


# ---------------------------------------------------------------- Objects365 dataset


def test_objects365_classes_file_names_and_subsets(data):
    dataset = build_dataset(o365_cfg(data, filter_empty_gt=False))
    assert tuple(dataset.CLASSES) == O365_NAMES and dataset.cat_ids == list(range(1, 366))
    assert [info["filename"] for info in dataset.data_infos] == [
        "patch0/objects365_v2_00000001.jpg", "patch1/objects365_v1_00000002.jpg",
        "patch1/objects365_v2_00000003.jpg", "patch0/objects365_v2_00000004.jpg"]
    assert labels_by_image(dataset) == {1: [PERSON, SNEAKERS], 2: [BEAR], 3: [SNEAKERS, STUFFED_TOY], 4: []}
    assert [dataset.get_cat_ids(i) for i in range(4)] == [[PERSON, SNEAKERS], [BEAR], [SNEAKERS, STUFFED_TOY], []]
    assert len(dataset.novel_classes) == 286 and "Stuffed Toy" not in dataset.novel_classes
    assert "Sneakers" in dataset.novel_classes and "Bear" not in dataset.novel_classes
    upstream = build_dataset(o365_cfg(data, test_mode=True, upstream_teddy_bear=True))
    assert len(upstream.novel_classes) == 287 and "Stuffed Toy" in upstream.novel_classes
    without = build_dataset(o365_cfg(data, strip_prefixes=(), filter_empty_gt=True))
    assert [info["filename"] for info in without.data_infos] == [O365_VAL[i][0] for i in (1, 2, 3)]


def test_objects365_class_subset_and_skipped_files(data):
    dataset = build_dataset(o365_cfg(data, classes=("Sneakers", "Bear"), novel_classes=("Sneakers",),
                                     skip_file_names=(O365_VAL[2][0],), test_mode=True))
    assert labels_by_image(dataset) == {1: [0], 3: [0], 4: []}
    assert dataset.img_ids == [1, 3, 4]
    with pytest.raises(ValueError, match="category-id order"):
        build_dataset(o365_cfg(data, classes=("Bear", "Sneakers"), novel_classes=(), test_mode=True))


def test_objects365_errors(data):
    with pytest.raises(ValueError, match=r"classes not among the categories of .*o365_val.json: \['Unicorn'\]"):
        build_dataset(o365_cfg(data, classes=("Bear", "Unicorn"), test_mode=True))
    with pytest.raises(FileNotFoundError, match="Objects365Dataset: ann_file not found: .*gone.json"):
        build_dataset(o365_cfg(data, ann_file=str(data["root"] / "gone.json")))
    small = write_json(data["root"] / "small.json", [], [], [dict(id=1, name="Person"), dict(id=2, name="Bear")])
    with pytest.raises(ValueError, match="needs the 365 Objects365 v2 classes"):  # novel/base from the map
        build_dataset(o365_cfg(data, ann_file=small, test_mode=True))
    assert build_dataset(o365_cfg(data, ann_file=small, test_mode=True, novel_classes=())).CLASSES == ("Person", "Bear")


def test_missing_image_file_error_names_the_path(data):
    dataset = build_dataset(o365_cfg(data, test_mode=True, pipeline=[dict(type="LoadImageFromFile")]))
    assert dataset[1]["img"].shape == (HEIGHT, WIDTH, 3)
    unstripped = build_dataset(o365_cfg(data, test_mode=True, strip_prefixes=(),
                                        pipeline=[dict(type="LoadImageFromFile")]))
    with pytest.raises(FileNotFoundError, match="train/images/v1/patch1/objects365_v1_00000002.jpg"):
        unstripped[1]


def test_unlabeled_objects365_keeps_empty_images_and_hides_ground_truth(data):
    pipeline = [dict(type="LoadImageFromFile"), dict(type="PseudoSamples", with_bbox=True),
                dict(type="DefaultFormatBundle"),
                dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"], meta_keys=("filename",))]
    dataset = build_dataset(o365_cfg(data, filter_empty_gt=False, pipeline=pipeline))
    assert len(dataset) == 4
    for i in range(4):
        sample = dataset[i]
        assert set(sample) == {"img", "img_metas", "gt_bboxes", "gt_labels"}
        assert sample["gt_bboxes"].data.shape == (0, 4) and sample["gt_labels"].data.numel() == 0
    assert len(build_dataset(o365_cfg(data, filter_empty_gt=True, pipeline=pipeline))) == 3  # upstream (H.30)


def detections(dataset, keep):
    results = []
    for info in dataset.data_infos:
        per_class = [np.zeros((0, 5), np.float32) for _ in dataset.CLASSES]
        for label, (x, y, w, h) in O365_VAL[info["id"]][1]:
            if label in keep:
                per_class[label] = np.array([[x, y, x + w, y + h, 0.9]], np.float32)
        results.append(per_class)
    return results


def test_objects365_evaluation_on_novel_and_base_classes(data):
    dataset = build_dataset(o365_cfg(data, test_mode=True))
    perfect = dataset.evaluate(detections(dataset, {PERSON, SNEAKERS, BEAR, STUFFED_TOY}))
    for key in ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_novel", "bbox_mAP_base"):
        assert perfect[key] == pytest.approx(1.0), key
    no_novel = dataset.evaluate(detections(dataset, {PERSON, BEAR, STUFFED_TOY}))  # Sneakers is novel
    assert no_novel["bbox_mAP_novel"] == pytest.approx(0.0) and no_novel["bbox_mAP_base"] == pytest.approx(1.0)
    assert no_novel["bbox_mAP"] == pytest.approx(0.75, abs=1e-3)  # per-class APs 1, 1, 1, 0
    upstream = build_dataset(o365_cfg(data, test_mode=True, upstream_teddy_bear=True))
    no_toy = upstream.evaluate(detections(upstream, {PERSON, SNEAKERS, BEAR}))  # Stuffed Toy novel upstream
    assert no_toy["bbox_mAP_novel"] == pytest.approx(0.5) and no_toy["bbox_mAP_base"] == pytest.approx(1.0)


# ---------------------------------------------------------------- the concatenated labeled set


def test_coco_and_objects365_parts_concatenate_in_one_label_space(data):
    concat = build_dataset([coco2o365_cfg(data), o365_cfg(data)])
    assert isinstance(concat, ConcatDataset) and len(concat) == 3 + 3
    assert [tuple(d.CLASSES) for d in concat.datasets] == [O365_NAMES, O365_NAMES]
    class_sets = [concat.get_cat_ids(i) for i in range(len(concat))]
    assert class_sets == [[PERSON, STUFFED_TOY, BEAR], [STUFFED_TOY], [O365["Moniter/TV"]],
                          [PERSON, SNEAKERS], [BEAR], [SNEAKERS, STUFFED_TOY]]
    # RFS over both parts, t = 0.4: Stuffed Toy is in 3 of the 6 images (two COCO, one Objects365),
    # so r = 1 for the image holding only it; every other class is in at most 2 images: r = 2.
    assert rfs_repeat_factors(class_sets, 0.4).tolist() == [2, 1, 2, 2, 2, 2]
    semi = SemiDataset(sup=[coco2o365_cfg(data), o365_cfg(data)], unsup=o365_cfg(data, filter_empty_gt=False))
    assert semi.source_sizes == (6, 4)


@pytest.mark.parametrize("upstream", [False, True])
def test_labeled_statistics_count_images_once_per_mapped_class(data, upstream):
    """CrS ``L_c`` / ``N_L`` of the COCO->Objects365 labeled concatenation, by hand."""
    concat = build_dataset([coco2o365_cfg(data, upstream_teddy_bear=upstream), o365_cfg(data)])
    counts, num_images, cached = labeled_dataset_statistics(concat, 365)
    expected = np.zeros(365, np.int64)
    if upstream:  # COCO image 11 has bear and teddy bear: one "Bear" image, not two
        expected[BEAR], expected[STUFFED_TOY] = 2 + 1, 0 + 1
    else:
        expected[BEAR], expected[STUFFED_TOY] = 1 + 1, 2 + 1
    expected[PERSON] = 1 + 1  # the crowd person of COCO image 14 does not count
    expected[SNEAKERS] = 2
    expected[O365["Moniter/TV"]] = 1
    assert counts.tolist() == expected.tolist() and cached is False
    assert num_images == 3 + 3  # COCO 12 (sports ball only) and Objects365 4 (empty) are filtered out
    from_class_sets = np.zeros(365, np.int64)  # the class sets RFS reads agree with the CrS counts
    for i in range(len(concat)):
        from_class_sets[concat.get_cat_ids(i)] += 1
    assert from_class_sets.tolist() == counts.tolist() and len(concat) == num_images
