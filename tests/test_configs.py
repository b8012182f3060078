"""Configs: every file parses, every detector config builds, the real settings carry spec F's values,
and the GrS configs' training data builds into the wrappers the CrS hook needs."""
import ast
import inspect
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmcv import Config
from mmcv.runner import HOOKS
from mmcv.utils import build_from_cfg
from mmdet.datasets import DATASETS, CocoDataset, ConcatDataset, LVISV1Dataset, Objects365V2Dataset, build_dataset
from mmdet.datasets.pipelines import Compose
from mmdet.models import build_detector, build_head

import ssod  # noqa: F401  (registers the ssod types)
import ssod.datasets.lvis  # noqa: F401  (registers LVISV1SplitDataset)
from ssod.datasets import class_names
from ssod.datasets.class_maps import coco_to_objects365_map
from ssod.datasets.crs_wrappers import ClassBalancedDatasetCrS, ClassBalancedDatasetRFS, labeled_dataset_statistics
from ssod.datasets.lvis import LVISV1SplitDataset
from ssod.models.losses.gbr import GbRLoss
from ssod.hooks.resampling import GradientResamplingHook

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "configs"
ALL_CONFIGS = sorted(CONFIG_DIR.rglob("*.py"))
DETECTOR_CONFIGS = sorted([*(CONFIG_DIR / "soft_teacher").glob("*.py"), *(CONFIG_DIR / "baseline").glob("*.py")])
SEMI = "soft_teacher/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_{}.py"
GRS = "soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_{}.py"
GRS_BASE = "soft_teacher/grs_base.py"
UPSTREAM = "soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_{}_upstream.py"
SUP = "baseline/faster_rcnn_r50_caffe_fpn_{}_sup.py"
PRETRAINED = dict(type="Pretrained", checkpoint="open-mmlab://detectron2/resnet50_caffe")
CE_LOSS = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)
FOCAL_LOSS = dict(type="SoftmaxFocalLoss", gamma=1.0, loss_weight=1.0)

# Spec A.1, written independently of ssod/datasets/class_names.py.
VOC_CLASSES = {"person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "boat", "bird", "cat", "dog",
               "horse", "sheep", "cow", "bottle", "chair", "couch", "potted plant", "dining table", "tv"}
SPLIT2_LABELS = [4, 5, 8, 9, 10, 12, 14, 15, 17, 18, 19, 20, 22, 25, 26, 27, 28, 29, 30, 31, 35, 40, 46, 47, 48, 50,
                 52, 53, 59, 60, 62, 64, 65, 66, 69, 72, 73, 75, 78, 79]
SPLIT2_COCO_IDS = [5, 6, 9, 10, 11, 14, 16, 17, 19, 20, 21, 22, 24, 28, 31, 32, 33, 34, 35, 36, 40, 46, 52, 53, 54, 56,
                   58, 59, 65, 67, 72, 74, 75, 76, 79, 82, 84, 86, 89, 90]
COCO_MISSING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}  # COCO category ids 1..90 that have no class

# Spec B.6, E.5, E.6, F: the reference values of each soft-teacher baseline config.
SEMI_REFERENCE = {
    "coco_180k": dict(max_iters=180000, steps=[120000, 160000], eval_interval=20000, epoch_length=7330,
                      num_classes=80, inference_on="student", novel=class_names.COCO_SPLIT1_NOVEL),
    "coco1_180k": dict(max_iters=180000, steps=[120000, 160000], eval_interval=20000, epoch_length=7330,
                       num_classes=80, inference_on="student", novel=class_names.COCO_SPLIT1_NOVEL),
    "coco2_180k": dict(max_iters=180000, steps=[120000, 160000], eval_interval=20000, epoch_length=7330,
                       num_classes=80, inference_on="student", novel=class_names.COCO_SPLIT2_NOVEL),
    "lvis_180k": dict(max_iters=180000, steps=[140000, 160000], eval_interval=20000, epoch_length=10000,
                      num_classes=1203, inference_on="teacher", novel=None),
    "object365_360k": dict(max_iters=360000, steps=[280000, 320000], eval_interval=40000, epoch_length=60000,
                           num_classes=365, inference_on="student", novel=None),
}
# (labeled files, unlabeled file, val file)
SEMI_ANN_FILES = {
    "coco1_180k": (["dataset/coco/annotations/instances_train2017_coco_split1_label.json"],
                   "dataset/coco/annotations/instances_train2017_coco_split1_unlabel.json",
                   "dataset/coco/annotations/instances_val2017.json"),
    "coco2_180k": (["dataset/coco/annotations/instances_train2017_coco_split2_label.json"],
                   "dataset/coco/annotations/instances_train2017_coco_split2_unlabel.json",
                   "dataset/coco/annotations/instances_val2017.json"),
    "lvis_180k": (["dataset/lvis/annotations/lvis_v1_train_lvis_label.json"],
                  "dataset/lvis/annotations/lvis_v1_train_lvis_unlabel.json",
                  "dataset/lvis/annotations/lvis_v1_val.json"),
    "object365_360k": (["dataset/coco/annotations/instances_train2017.json",
                        "dataset/Object365/annotations/zhiyuan_objv2_train_object365_label.json"],
                       "dataset/Object365/annotations/zhiyuan_objv2_train_object365_unlabel.json",
                       "dataset/Object365/annotations/zhiyuan_objv2_val.json"),
}
# Spec C.6, D.3, E.3-E.6, F, Appendix 2: the reference values of each GrS config (GbT: True everywhere,
# see the LVIS / Objects365 configs for upstream's inherited False).
GRS_REFERENCE = {
    "coco1_180k": dict(baseline="coco1_180k", max_iters=180000, steps=[180000], eval_interval=20000,
                       epoch_length=7330, num_classes=80, beta_sup=0.5, gbr_warm_up=8000, warm_up_iter=12000,
                       alpha=0.5, update_iter=16000, oversample_thr=0.1),
    "coco2_180k": dict(baseline="coco2_180k", max_iters=180000, steps=[180000], eval_interval=20000,
                       epoch_length=7330, num_classes=80, beta_sup=0.5, gbr_warm_up=8000, warm_up_iter=12000,
                       alpha=0.5, update_iter=16000, oversample_thr=0.1),
    "lvis_180k": dict(baseline="lvis_180k", max_iters=180000, steps=[140000, 160000], eval_interval=20000,
                      epoch_length=10000, num_classes=1203, beta_sup=0.8, gbr_warm_up=8000, warm_up_iter=16000,
                      alpha=0.05, update_iter=16000, oversample_thr=0.01),
    "object365_360k": dict(baseline="object365_360k", max_iters=360000, steps=[280000, 320000],
                           eval_interval=45000, epoch_length=60000, num_classes=365, beta_sup=0.8,
                           gbr_warm_up=12000, warm_up_iter=32000, alpha=0.05, update_iter=36000,
                           oversample_thr=0.02),
}
GRS_CONFIGS = ["coco_180k", *GRS_REFERENCE]
SOFT_TEACHER_TRAIN_CFG = dict(
    use_teacher_proposal=False, pseudo_label_initial_score_thr=0.5, rpn_pseudo_threshold=0.9, cls_pseudo_threshold=0.9,
    reg_pseudo_threshold=0.02, jitter_times=10, jitter_scale=0.06, min_pseduo_box_size=0, unsup_weight=4.0)
BASE_HOOKS = [dict(type="SetIterNumHook"), dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0)]
SUP_REFERENCE = {
    "coco_split1": dict(semi="coco1_180k", steps=[120000, 160000], num_classes=80),
    "coco_split2": dict(semi="coco2_180k", steps=[120000, 160000], num_classes=80),
    "lvis": dict(semi="lvis_180k", steps=[140000, 160000], num_classes=1203),
}


def load(relative_path, root=CONFIG_DIR):
    return Config.fromfile(str(root / relative_path))


def plain(cfg):
    return cfg._cfg_dict.to_dict()


def detector_cfg(cfg):
    """The Faster R-CNN config (inside the teacher-student wrapper when there is one)."""
    return cfg.model.model if "model" in cfg.model else cfg.model


def unwrap(dataset_cfg):
    """The dataset configs below the wrappers, as a list (a list config is a concatenation)."""
    if isinstance(dataset_cfg, (list, tuple)):
        return [leaf for part in dataset_cfg for leaf in unwrap(part)]
    if "dataset" in dataset_cfg:
        return unwrap(dataset_cfg["dataset"])
    return [dataset_cfg]


def leaf_datasets(data_cfg):
    """``(key, dataset config)`` of every train/val/test dataset, wrappers removed, concatenations split."""
    train = data_cfg["train"]
    if isinstance(train, list):  # a concatenation given as a list (e.g. the Objects365 supervised baseline)
        parts = [("train", part) for part in train]
    elif train["type"] == "SemiDataset":
        parts = [("sup", train["sup"]), ("unsup", train["unsup"])]
    else:
        parts = [("train", train)]
    parts += [("val", data_cfg["val"]), ("test", data_cfg["test"])]
    return [(key, leaf) for key, dataset in parts for leaf in unwrap(dataset)]


def dataset_classes(dataset_cfg):
    """The configured or the type's class names; None for a type that reads them from its annotation file."""
    if dataset_cfg.get("classes") is not None:
        return tuple(dataset_cfg["classes"])
    classes = DATASETS.get(dataset_cfg["type"]).CLASSES
    return None if classes is None else tuple(classes)


def strip_pretrained(node):
    """Replace every Pretrained ``init_cfg`` by None in place; return how many were replaced."""
    replaced = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "init_cfg" and isinstance(value, dict) and value.get("type") == "Pretrained":
                node[key] = None
                replaced += 1
            else:
                replaced += strip_pretrained(value)
    elif isinstance(node, (list, tuple)):
        replaced += sum(strip_pretrained(item) for item in node)
    return replaced


def string_values(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from string_values(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from string_values(item)


def dict_diff(a, b, path=""):
    """Dotted paths at which two plain nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return sorted(p for key in set(a) | set(b)
                      for p in (dict_diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)))
    return [] if a == b else [path]


def copy_configs_with(tmp_path, relative_path, pattern, replacement):
    """Copy configs/ to ``tmp_path``; in its copy of ``relative_path`` replace the line ``pattern``."""
    root = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, root)
    target = root / relative_path
    text, count = re.subn(pattern, replacement, target.read_text(), flags=re.MULTILINE)
    assert count == 1, f"{pattern!r} not found once in {relative_path}"
    target.write_text(text)
    return root


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ every config
@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_parses_with_relative_paths(path):
    cfg = Config.fromfile(str(path))
    assert len(plain(cfg)) > 0
    for value in string_values(plain(cfg)):
        assert not value.startswith(("/", "~")) and "/home/" not in value, f"{path.name}: absolute path {value!r}"


@pytest.mark.parametrize("path", DETECTOR_CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_detector_builds_and_num_classes_match_datasets(path):
    cfg = Config.fromfile(str(path))
    strip_pretrained(cfg.model)
    model = build_detector(cfg.model)
    num_classes = detector_cfg(cfg).roi_head.bbox_head.num_classes
    detectors = [model.student, model.teacher] if hasattr(model, "teacher") else [model]
    for detector in detectors:
        assert detector.roi_head.bbox_head.fc_cls.out_features == num_classes + 1
        loss_cls = detector.roi_head.bbox_head.loss_cls
        if isinstance(loss_cls, GbRLoss):
            assert loss_cls.num_outputs == num_classes + 1 and loss_cls.class_weights.shape == (num_classes + 1,)
    if hasattr(model, "teacher"):
        assert not any(p.requires_grad for p in model.teacher.parameters())
        assert all(p.requires_grad for p in model.student.roi_head.parameters())
    if "data" in cfg:
        for key, dataset in leaf_datasets(cfg.data):
            classes = dataset_classes(dataset)
            assert classes is None or len(classes) == num_classes, f"{path.name}: data {key} classes"


@pytest.mark.parametrize("path", [SEMI.format(name) for name in sorted(SEMI_REFERENCE)]
                         + [GRS.format(name) for name in sorted(GRS_REFERENCE)]
                         + [SUP.format(name) for name in sorted(SUP_REFERENCE)])
def test_every_dataset_pipeline_builds(path):
    for key, dataset in leaf_datasets(load(path).data):
        assert len(Compose(dataset.pipeline).transforms) == len(dataset.pipeline), f"{path}: data {key}"


# ------------------------------------------------------------------ class lists
def test_class_lists_of_configs_mirror_the_python_module():
    coco = load("_base_/datasets/coco_class_lists.py")
    assert tuple(coco.coco_classes) == class_names.COCO_CLASSES
    assert tuple(coco.coco_split1_novel) == class_names.COCO_SPLIT1_NOVEL
    assert tuple(coco.coco_split2_novel) == class_names.COCO_SPLIT2_NOVEL


def test_coco_novel_classes_follow_spec_a1():
    classes = class_names.COCO_CLASSES
    coco_ids = [i for i in range(1, 91) if i not in COCO_MISSING_IDS]
    assert len(classes) == len(coco_ids) == 80
    assert len(class_names.COCO_SPLIT1_NOVEL) == 20 and set(class_names.COCO_SPLIT1_NOVEL) == VOC_CLASSES
    split2_labels = [classes.index(name) for name in class_names.COCO_SPLIT2_NOVEL]
    assert split2_labels == SPLIT2_LABELS
    assert [coco_ids[label] for label in split2_labels] == SPLIT2_COCO_IDS


def test_objects365_configs_take_classes_and_novel_classes_from_the_annotation_files():
    for path in (SEMI.format("object365_360k"), GRS.format("object365_360k")):
        cfg = load(path)
        assert detector_cfg(cfg).roi_head.bbox_head.num_classes == len(Objects365V2Dataset.CLASSES) == 365
        leaves = leaf_datasets(cfg.data)
        assert [dataset.type for _, dataset in leaves] == ["COCO2Objects365Dataset", "Objects365Dataset",
                                                             "Objects365Dataset", "Objects365Dataset",
                                                             "Objects365Dataset"]
        # no class list in the configs: names from the files, novel = not reached by the COCO map (derived)
        assert all("classes" not in dataset for _, dataset in leaves)
        assert cfg.data.val.get("novel_classes") is None and cfg.data.test.get("novel_classes") is None


def test_lvis_configs_have_the_1203_lvis_v1_classes():
    for path in (SEMI.format("lvis_180k"), GRS.format("lvis_180k"), SUP.format("lvis")):
        cfg = load(path)
        assert detector_cfg(cfg).roi_head.bbox_head.num_classes == len(LVISV1Dataset.CLASSES) == 1203
        assert {dataset.type for _, dataset in leaf_datasets(cfg.data)} == {"LVISV1SplitDataset"}


# ------------------------------------------------------------------ soft-teacher baselines
@pytest.mark.parametrize("name", sorted(SEMI_REFERENCE))
def test_soft_teacher_reference_values(name):
    ref = SEMI_REFERENCE[name]
    cfg = load(SEMI.format(name))
    assert cfg.runner == dict(type="IterBasedRunner", max_iters=ref["max_iters"])
    assert cfg.lr_config == dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001,
                                 step=ref["steps"])
    assert cfg.optimizer == dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0001)
    assert cfg.optimizer_config == dict(grad_clip=None)
    assert cfg.fp16 == dict(loss_scale="dynamic")
    assert cfg.evaluation == dict(interval=ref["eval_interval"], metric="bbox")
    assert cfg.checkpoint_config == dict(by_epoch=False, interval=4000, max_keep_ckpts=20)
    assert cfg.find_unused_parameters is True
    assert cfg.custom_hooks == [dict(type="SetIterNumHook"),
                                dict(type="MeanTeacherHook", momentum=0.999, interval=1, warm_up=0)]
    assert cfg.model.type == "SoftTeacher"
    assert cfg.model.test_cfg == dict(inference_on=ref["inference_on"])
    assert cfg.model.train_cfg == dict(
        use_teacher_proposal=False, pseudo_label_initial_score_thr=0.5, rpn_pseudo_threshold=0.9,
        cls_pseudo_threshold=0.9, reg_pseudo_threshold=0.02, jitter_times=10, jitter_scale=0.06,
        min_pseduo_box_size=0, unsup_weight=4.0)
    head = cfg.model.model.roi_head.bbox_head
    assert head.type == "Shared2FCBBoxHead" and head.num_classes == ref["num_classes"]
    assert head.loss_cls == CE_LOSS and cfg.USE_FOCAL is False
    assert cfg.data.samples_per_gpu == 5 and cfg.data.workers_per_gpu == 1
    assert cfg.data.sampler.train == dict(type="SemiBalanceSampler", sample_ratio=[1, 4], by_prob=True,
                                          epoch_length=ref["epoch_length"])
    assert cfg.data.train.type == "SemiDataset"
    assert cfg.data.train.unsup.filter_empty_gt is False
    assert all(leaf.get("filter_empty_gt", True) is True for leaf in unwrap(cfg.data.train.sup))
    if ref["novel"] is not None:
        assert tuple(cfg.data.val.novel_classes) == tuple(cfg.data.test.novel_classes) == ref["novel"]
        assert cfg.data.val.type == "CocoSplitDataset" and cfg.data.val.per_class_metrics is False


@pytest.mark.parametrize("name", sorted(SEMI_ANN_FILES))
def test_soft_teacher_annotation_files_follow_the_readme_layout(name):
    cfg = load(SEMI.format(name))
    label, unlabel, val = SEMI_ANN_FILES[name]
    assert [leaf.ann_file for leaf in unwrap(cfg.data.train.sup)] == label
    assert cfg.data.train.unsup.ann_file == unlabel
    assert cfg.data.val.ann_file == cfg.data.test.ann_file == val


def test_lvis_labeled_side_uses_repeat_factor_sampling_and_coco_images():
    cfg = load(SEMI.format("lvis_180k"))
    assert cfg.data.train.sup.type == "ClassBalancedDatasetRFS" and cfg.data.train.sup.oversample_thr == 0.01
    for _, dataset in leaf_datasets(cfg.data):
        assert dataset.img_prefix == "dataset/coco/"


def test_objects365_labeled_side_concatenates_mapped_coco_and_labeled_objects365():
    cfg = load(SEMI.format("object365_360k"))
    coco, o365 = cfg.data.train.sup
    assert coco.img_prefix == "dataset/coco/train2017/" and coco.get("upstream_teddy_bear", False) is False
    assert o365.img_prefix == cfg.data.train.unsup.img_prefix == "dataset/Object365/images/train/"
    assert cfg.data.val.img_prefix == "dataset/Object365/images/val/"


def test_coco_baseline_has_no_labeled_resampling_and_uses_coco_images():
    cfg = load(SEMI.format("coco1_180k"))
    assert cfg.data.train.sup.type == cfg.data.train.unsup.type == "CocoDataset"
    assert cfg.data.train.sup.img_prefix == cfg.data.train.unsup.img_prefix == "dataset/coco/train2017/"
    assert cfg.data.val.img_prefix == "dataset/coco/val2017/"


def test_r50_caffe_backbone_and_pipelines_follow_spec_b1_b3():
    cfg = load(SEMI.format("coco1_180k"))
    backbone = cfg.model.model.backbone
    assert (backbone.depth, backbone.style, backbone.frozen_stages, backbone.norm_eval) == (50, "caffe", 1, True)
    assert backbone.norm_cfg == dict(type="BN", requires_grad=False) and backbone.init_cfg == PRETRAINED
    assert strip_pretrained(cfg.model) == 1  # the backbone's is the only download
    assert cfg.img_norm_cfg == dict(mean=[103.530, 116.280, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)
    sup = cfg.data.train.sup.pipeline
    assert sup[2] == dict(type="RandResize", img_scale=[(1333, 400), (1333, 1200)], multiscale_mode="range",
                          keep_ratio=True)
    assert sup[3] == dict(type="RandFlip", flip_ratio=0.5)
    assert [op.type for op in sup[4].transforms] == [
        "Identity", "AutoContrast", "RandEqualize", "RandSolarize", "RandColor", "RandContrast", "RandBrightness",
        "RandSharpness", "RandPosterize"]
    branches = cfg.data.train.unsup.pipeline[2]
    assert branches.type == "MultiBranch"
    assert [op.type for op in branches.unsup_teacher][:2] == ["RandResize", "RandFlip"]
    assert [op.type for op in branches.unsup_student][:4] == ["RandResize", "RandFlip", "ShuffledSequential",
                                                              "RandErase"]
    assert cfg.data.val.pipeline[1].img_scale == (1333, 800) and cfg.data.val.pipeline[1].flip is False
    rcnn_test = cfg.model.model.test_cfg.rcnn
    assert rcnn_test == dict(score_thr=0.05, nms=dict(type="nms", iou_threshold=0.5), max_per_img=100)


def pipeline_steps(pipeline):
    """Type names of a pipeline's steps, the branches of a MultiBranch flattened after it."""
    steps = []
    for step in pipeline:
        steps.append(step["type"])
        if step["type"] == "MultiBranch":
            steps += [name for key, branch in step.items() if key != "type" for name in pipeline_steps(branch)]
    return steps


@pytest.mark.parametrize("path", ["_base_/datasets/semi_pipelines.py", "_base_/datasets/toy_semi.py",
                                  "_base_/datasets/toy_detection.py"])
def test_training_pipelines_pad_then_normalise_and_test_pipelines_the_reverse(path):
    """As the reference (spec B.3): training pads to a multiple of 32 before normalising; test normalises first."""
    cfg = load(path)
    train_keys = [key for key in ("sup_pipeline", "unsup_pipeline", "supervised_pipeline", "train_pipeline")
                  if key in cfg]
    assert train_keys
    for key in train_keys:
        steps = [name for name in pipeline_steps(cfg[key]) if name in ("Pad", "Normalize")]
        assert steps and steps == ["Pad", "Normalize"] * (len(steps) // 2), f"{path}: {key}"
    test_steps = [step.type for step in cfg.test_pipeline[1].transforms]
    assert test_steps.index("Normalize") < test_steps.index("Pad")
    assert all(step.get("size_divisor") == 32 for step in cfg.test_pipeline[1].transforms if step.type == "Pad")


# ------------------------------------------------------------------ SPLIT and USE_FOCAL switches
def test_split_configs_differ_only_in_split_dependent_keys():
    diff = dict_diff(plain(load(SEMI.format("coco1_180k"))), plain(load(SEMI.format("coco2_180k"))))
    assert diff == ["coco_split", "data.test.novel_classes", "data.train.sup.ann_file", "data.train.unsup.ann_file",
                    "data.val.novel_classes", "split_annotations"]


@pytest.mark.parametrize("split", [1, 2])
def test_split_line_selects_the_fixed_split_config(tmp_path, split):
    root = copy_configs_with(tmp_path, SEMI.format("coco_180k"), r"^SPLIT = 1$", f"SPLIT = {split}")
    selected = plain(load(SEMI.format("coco_180k"), root))
    assert selected.pop("SPLIT") == split
    assert selected == plain(load(SEMI.format(f"coco{split}_180k")))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # mmcv's temp file on a raise
def test_split_line_rejects_an_unknown_split(tmp_path):
    root = copy_configs_with(tmp_path, SEMI.format("coco_180k"), r"^SPLIT = 1$", "SPLIT = 3")
    with pytest.raises(ValueError, match="SPLIT = 3"):
        load(SEMI.format("coco_180k"), root)


@pytest.mark.parametrize("name", sorted(SEMI_REFERENCE))
def test_use_focal_switches_the_roi_classification_loss(tmp_path, name):
    root = copy_configs_with(tmp_path, SEMI.format(name), r"^USE_FOCAL = False$", "USE_FOCAL = True")
    cfg = load(SEMI.format(name), root)
    head_cfg = cfg.model.model.roi_head.bbox_head
    assert head_cfg.loss_cls == FOCAL_LOSS
    head = build_head(head_cfg)
    assert type(head.loss_cls).__name__ == "SoftmaxFocalLoss" and head.loss_cls.gamma == 1.0
    unchanged = plain(load(SEMI.format(name)))
    changed = {re.sub(r"(loss_cls|roi_cls_loss)\..*", r"\1", path) for path in dict_diff(plain(cfg), unchanged)}
    assert changed == {"USE_FOCAL", "model.model.roi_head.bbox_head.loss_cls", "roi_cls_loss"}


# ------------------------------------------------------------------ supervised baselines
@pytest.mark.parametrize("name", sorted(SUP_REFERENCE))
def test_supervised_baseline_trains_on_the_labeled_side_of_its_setting(name):
    ref = SUP_REFERENCE[name]
    cfg, semi = load(SUP.format(name)), load(SEMI.format(ref["semi"]))
    assert cfg.model.type == "FasterRCNN" and cfg.model.roi_head.bbox_head.num_classes == ref["num_classes"]
    assert cfg.model.roi_head.bbox_head.loss_cls == CE_LOSS
    assert cfg.runner == dict(type="IterBasedRunner", max_iters=180000)
    assert cfg.lr_config.step == ref["steps"] and cfg.optimizer.lr == 0.01
    assert cfg.fp16 == dict(loss_scale="dynamic")
    assert cfg.evaluation == dict(interval=20000, metric="bbox")
    assert cfg.checkpoint_config == dict(by_epoch=False, interval=4000, max_keep_ckpts=20)
    assert set(cfg.data) == {"samples_per_gpu", "workers_per_gpu", "train", "val", "test"}
    assert cfg.data.samples_per_gpu == 1 and cfg.data.workers_per_gpu == 1
    labeled, semi_labeled = cfg.data.train, semi.data.train.sup
    # the same repeat factor sampling: mmdet's index-repeating wrapper for a plain detector, the
    # sampler-applied one inside a SemiDataset
    semi_type = {"ClassBalancedDatasetRFS": "ClassBalancedDataset"}.get(semi_labeled.type, semi_labeled.type)
    assert labeled.type == semi_type and labeled.get("oversample_thr") == semi_labeled.get("oversample_thr")
    (labeled_leaf,), (semi_leaf,) = unwrap(labeled), unwrap(semi_labeled)
    for key in ("type", "ann_file", "img_prefix", "classes"):
        assert labeled_leaf.get(key) == semi_leaf.get(key)
    steps = [step.type for step in labeled_leaf.pipeline]
    assert steps == ["LoadImageFromFile", "LoadAnnotations", "RandResize", "RandFlip", "OneOf", "Pad", "Normalize",
                     "DefaultFormatBundle", "Collect"]
    assert plain(cfg)["data"]["val"] == plain(semi)["data"]["val"]


# ------------------------------------------------------------------ CI-SSOD (GrS) configs
@pytest.mark.parametrize("name", sorted(GRS_REFERENCE))
def test_grs_reference_values(name):
    ref = GRS_REFERENCE[name]
    cfg = load(GRS.format(name))
    assert cfg.runner == dict(type="IterBasedRunner", max_iters=ref["max_iters"])
    assert cfg.lr_config == dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001,
                                 step=ref["steps"])
    assert cfg.optimizer == dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=0.0001)
    assert cfg.optimizer_config == dict(grad_clip=None)
    assert cfg.fp16 == dict(loss_scale="dynamic")
    assert cfg.evaluation == dict(interval=ref["eval_interval"], metric="bbox")
    assert cfg.checkpoint_config == dict(by_epoch=False, interval=4000, max_keep_ckpts=20)
    assert cfg.find_unused_parameters is True
    assert cfg.model.type == "SoftTeacherGrS" and cfg.model.test_cfg == dict(inference_on="teacher")
    assert cfg.model.train_cfg == dict(SOFT_TEACHER_TRAIN_CFG, GbT=True, warm_up_iter=ref["warm_up_iter"],
                                       alpha=ref["alpha"], max_iter=ref["max_iters"], score_rule="mean")
    head = cfg.model.model.roi_head.bbox_head
    assert head.type == "GbRShared2FCBBoxHead" and head.num_classes == ref["num_classes"]
    assert head.loss_cls == dict(type="GbRLoss", num_classes=ref["num_classes"], loss_weight=1.0, focal=True,
                                 gamma=1.0, beta_sup=ref["beta_sup"], warm_up_iter=ref["gbr_warm_up"])
    assert cfg.custom_hooks == BASE_HOOKS + [
        dict(type="GradientResamplingHook", save_interval=4000, update_iter=ref["update_iter"])]
    assert cfg.data.samples_per_gpu == 5 and cfg.data.workers_per_gpu == 1
    assert cfg.data.sampler.train == dict(type="SemiBalanceSampler", sample_ratio=[1, 4], by_prob=True,
                                          epoch_length=ref["epoch_length"])
    train = cfg.data.train
    assert train.type == "SemiDataset"
    assert set(train.sup) == {"type", "oversample_thr", "dataset"} and set(train.unsup) == {"type", "dataset"}
    assert train.sup.type == "ClassBalancedDatasetRFS" and train.sup.oversample_thr == ref["oversample_thr"]
    assert train.unsup.type == "ClassBalancedDatasetCrS" and train.unsup.dataset.filter_empty_gt is False


@pytest.mark.parametrize("name", sorted(GRS_REFERENCE))
def test_grs_config_is_its_baseline_plus_the_grs_pieces(name):
    """Same backbone, pipelines, data, val and optimiser as the soft-teacher baseline; only the GrS keys differ."""
    grs, baseline = plain(load(GRS.format(name))), plain(load(SEMI.format(GRS_REFERENCE[name]["baseline"])))
    baseline_labeled = baseline["data"]["train"]["sup"]
    if isinstance(baseline_labeled, dict) and "dataset" in baseline_labeled:  # LVIS baseline: RFS wrapper
        baseline_labeled = baseline_labeled["dataset"]
    assert grs["data"]["train"]["sup"]["dataset"] == baseline_labeled
    assert grs["data"]["train"]["unsup"]["dataset"] == baseline["data"]["train"]["unsup"]
    loss_or_train_cfg = r"(model\.model\.roi_head\.bbox_head\.loss_cls|data\.train)\..*"
    changed = {re.sub(loss_or_train_cfg, r"\1", path) for path in dict_diff(grs, baseline)}
    allowed = {"USE_FOCAL", "roi_cls_loss", "num_classes", "max_iters", "custom_hooks", "data.train", "data.train.sup",
               "lr_config.step", "evaluation.interval", "model.type", "model.test_cfg.inference_on",
               "model.model.roi_head.bbox_head.type", "model.model.roi_head.bbox_head.loss_cls",
               "model.train_cfg.GbT", "model.train_cfg.warm_up_iter", "model.train_cfg.alpha",
               "model.train_cfg.max_iter", "model.train_cfg.score_rule"}
    assert changed <= allowed, changed - allowed


def gbt_settings(path):
    """Values of the ``GbT=`` keywords written in a config file itself (comments and bases not included)."""
    tree = ast.parse(path.read_text())  # "{{_base_.x}}" parses as a set display
    return [node.value.value for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == "GbT"]


def test_gbt_is_explicit_in_every_grs_config_and_not_inherited():
    """Spec D.3: upstream's LVIS/O365 GrS configs silently inherited GbT=False; here each config sets it."""
    assert gbt_settings(CONFIG_DIR / GRS_BASE) == []
    assert "GbT" not in load(GRS_BASE).model.train_cfg
    for name in GRS_REFERENCE:
        assert gbt_settings(CONFIG_DIR / GRS.format(name)) == [True], name
        assert load(GRS.format(name)).model.train_cfg.GbT is True
    for name in ("lvis_180k", "object365_360k"):  # the deviation from upstream is documented in place
        assert "GbT=False to reproduce" in (CONFIG_DIR / GRS.format(name)).read_text()


@pytest.mark.parametrize("name", GRS_CONFIGS)
def test_grs_hooks_build_with_the_configured_intervals(name):
    cfg = load(GRS.format(name))
    hooks = [build_from_cfg(hook, HOOKS) for hook in cfg.custom_hooks]
    (resampling,) = [hook for hook in hooks if isinstance(hook, GradientResamplingHook)]
    update_iter = GRS_REFERENCE.get(name, GRS_REFERENCE["coco1_180k"])["update_iter"]
    assert (resampling.save_interval, resampling.update_iter) == (4000, update_iter)
    assert resampling.alpha is None and resampling.max_iter is None  # taken from model.train_cfg at run start
    assert resampling.upstream_order is False
    assert [type(hook).__name__ for hook in hooks] == ["SetIterNumHook", "MeanTeacherHook", "GradientResamplingHook"]


def test_grs_split_configs_differ_only_in_split_dependent_keys():
    diff = dict_diff(plain(load(GRS.format("coco1_180k"))), plain(load(GRS.format("coco2_180k"))))
    assert diff == ["coco_split", "data.test.novel_classes", "data.train.sup.dataset.ann_file",
                    "data.train.unsup.dataset.ann_file", "data.val.novel_classes", "split_annotations"]


def test_grs_split_line_is_line_7():
    lines = (CONFIG_DIR / GRS.format("coco_180k")).read_text().splitlines()
    assert lines[6] == "SPLIT = 1" and "line 7" in "\n".join(lines[:6])


@pytest.mark.parametrize("split", [1, 2])
def test_grs_split_line_selects_the_fixed_split_config(tmp_path, split):
    root = copy_configs_with(tmp_path, GRS.format("coco_180k"), r"^SPLIT = 1$", f"SPLIT = {split}")
    selected = plain(load(GRS.format("coco_180k"), root))
    assert selected.pop("SPLIT") == split
    assert selected == plain(load(GRS.format(f"coco{split}_180k")))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # mmcv's temp file on a raise
def test_grs_split_line_rejects_an_unknown_split(tmp_path):
    root = copy_configs_with(tmp_path, GRS.format("coco_180k"), r"^SPLIT = 1$", "SPLIT = 0")
    with pytest.raises(ValueError, match="SPLIT = 0"):
        load(GRS.format("coco_180k"), root)


# ------------------------------------------------------------------ GrS training data on tiny annotation files
# One labeled file's images: id -> (width, [(class role, xywh box, iscrowd)]). Roles a, b, c are given
# categories per dataset type below. Image 3 holds only a crowd box (kept by mmdet's filter, no target),
# image 4 nothing (filtered), image 5 is too small (filtered): L_a = 2, L_b = 1, L_c = 0, N_L = 3.
LABELED_IMAGES = {
    1: (64, [("a", [2, 2, 20, 20], 0), ("a", [30, 10, 20, 20], 0), ("b", [5, 25, 20, 15], 0)]),
    2: (64, [("a", [4, 4, 30, 30], 0), ("c", [1, 1, 10, 10], 1)]),
    3: (64, [("c", [3, 3, 20, 20], 1)]),
    4: (64, []),
    5: (20, [("a", [1, 1, 10, 10], 0)]),
}
UNLABELED_IMAGES = {11: (64, [("a", [2, 2, 20, 20], 0)]), 12: (64, [])}
COCO_CATEGORIES = [dict(id=cat_id, name=name) for cat_id, name in
                   zip([i for i in range(1, 91) if i not in COCO_MISSING_IDS], CocoDataset.CLASSES)]
COCO_ROLES = {"a": 1, "b": 3, "c": 18}  # person, car, dog
# per dataset type: categories, role -> category id, role -> contiguous label of the model
TINY_FILE_KINDS = {
    "CocoDataset": (COCO_CATEGORIES, COCO_ROLES, {"a": 0, "b": 2, "c": 16}),
    "COCO2Objects365Dataset": (COCO_CATEGORIES, COCO_ROLES, {"a": 0, "b": 5, "c": 92}),  # Person, Car, Dog
    "Objects365Dataset": ([dict(id=i + 1, name=name) for i, name in enumerate(Objects365V2Dataset.CLASSES)],
                          {"a": 1, "b": 3, "c": 5}, {"a": 0, "b": 2, "c": 4}),
    "LVISV1SplitDataset": ([dict(id=i + 1, name=name, frequency="f") for i, name in enumerate(LVISV1Dataset.CLASSES)],
                           {"a": 1, "b": 5, "c": 10}, {"a": 0, "b": 4, "c": 9}),
}


def write_tiny_annotation_file(path, dataset_type, images):
    categories, roles, _ = TINY_FILE_KINDS[dataset_type]
    image_dicts, annotations = [], []
    for image_id, (width, objects) in images.items():
        name = f"{image_id:012d}.jpg"
        image = dict(id=image_id, width=width, height=48, file_name=name)
        if dataset_type == "LVISV1SplitDataset":
            image = dict(image, coco_url=f"http://images.cocodataset.org/train2017/{name}")
        elif dataset_type == "Objects365Dataset":
            image["file_name"] = f"images/v2/patch0/{name}"
        image_dicts.append(image)
        for role, box, crowd in objects:
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=roles[role], bbox=box,
                                    area=box[2] * box[3], iscrowd=crowd))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(images=image_dicts, annotations=annotations, categories=categories)))


@pytest.mark.parametrize("name", sorted(GRS_REFERENCE))
def test_grs_training_data_builds_for_the_crs_hook(tmp_path, monkeypatch, name):
    """data.train of each GrS config on tiny files at its paths: RFS and CrS wrappers, hand-counted L_c and N_L."""
    cfg = load(GRS.format(name))
    monkeypatch.chdir(tmp_path)
    labeled_leaves = unwrap(cfg.data.train.sup)
    for leaf in labeled_leaves:
        write_tiny_annotation_file(tmp_path / leaf.ann_file, leaf.type, LABELED_IMAGES)
    unlabeled = cfg.data.train.unsup.dataset
    write_tiny_annotation_file(tmp_path / unlabeled.ann_file, unlabeled.type, UNLABELED_IMAGES)

    train = build_dataset(cfg.data.train)
    num_classes = GRS_REFERENCE[name]["num_classes"]
    assert isinstance(train.sup, ClassBalancedDatasetRFS) and isinstance(train.unsup, ClassBalancedDatasetCrS)
    assert isinstance(train.sup.dataset, ConcatDataset) == (len(labeled_leaves) > 1)
    assert len(train.sup) == 3 * len(labeled_leaves) and len(train.unsup) == 2  # unlabeled: no GT filter
    assert len(train.CLASSES) == num_classes
    assert train.sup_repeat_factors().shape == (len(train.sup),)
    keys = train.unsup.image_keys()
    assert len(keys) == 2 and all(key.startswith(unlabeled.img_prefix) for key in keys)

    expected = np.zeros(num_classes, dtype=np.int64)
    for leaf in labeled_leaves:
        labels = TINY_FILE_KINDS[leaf.type][2]
        expected[labels["a"]] += 2
        expected[labels["b"]] += 1
    counts, num_labeled, cached = labeled_dataset_statistics(train.sup, num_classes)
    np.testing.assert_array_equal(counts, expected)
    assert num_labeled == 3 * len(labeled_leaves) and cached is False


# ------------------------------------------------------------------ upstream-exact presets
def hooks_with_upstream_order(hooks):
    return [dict(hook, upstream_order=True) if hook["type"] == "GradientResamplingHook" else hook for hook in hooks]


@pytest.mark.parametrize("name", sorted(GRS_REFERENCE))
def test_upstream_preset_switches_every_documented_deviation_and_nothing_else(name):
    """README "Differences from the reference code": the preset is its GrS config with each option set to upstream."""
    preset, default = load(UPSTREAM.format(name)), load(GRS.format(name))
    assert preset.model.train_cfg.score_rule == "upstream"  # spec H.17
    assert preset.model.model.roi_head.bbox_head.loss_cls.warmup_mean == "upstream"  # H.18
    assert preset.model.model.roi_head.bbox_head.loss_cls.sync_weights_mean is False  # H.5
    assert preset.model.train_cfg.GbT is name.startswith("coco")  # D.3, H.33: only the COCO config had GbT
    assert preset.data.train.unsup.dataset.filter_empty_gt is True  # H.30
    hooks = [build_from_cfg(hook, HOOKS) for hook in preset.custom_hooks]
    (resampling,) = [hook for hook in hooks if isinstance(hook, GradientResamplingHook)]
    assert resampling.upstream_order is True  # H.26
    assert plain(preset)["custom_hooks"] == hooks_with_upstream_order(plain(default)["custom_hooks"])

    expected = {"model.train_cfg.score_rule", "model.model.roi_head.bbox_head.loss_cls.warmup_mean",
                "model.model.roi_head.bbox_head.loss_cls.sync_weights_mean",
                "data.train.unsup.dataset.filter_empty_gt", "custom_hooks"}
    if not name.startswith("coco"):
        expected.add("model.train_cfg.GbT")
    if name == "lvis_180k":  # the LVIS API's 300 detections per image
        assert preset.evaluation.max_dets_per_image == 300
        assert "max_dets_per_image" in inspect.signature(LVISV1SplitDataset.evaluate).parameters
        expected.add("evaluation.max_dets_per_image")
    if name == "object365_360k":  # H.31 teddy bear -> Bear; H.32 the three skipped unlabeled files
        coco, o365 = preset.data.train.sup.dataset
        assert coco.type == "COCO2Objects365Dataset" and coco.upstream_teddy_bear is True
        default_coco, default_o365 = plain(default)["data"]["train"]["sup"]["dataset"]
        assert plain(preset)["data"]["train"]["sup"]["dataset"] == [dict(default_coco, upstream_teddy_bear=True),
                                                                     default_o365]
        assert preset.data.val.upstream_teddy_bear is True and preset.data.test.upstream_teddy_bear is True
        assert len(preset.data.train.unsup.dataset.skip_file_names) == 3
        expected |= {"data.train.sup.dataset", "data.val.upstream_teddy_bear", "data.test.upstream_teddy_bear",
                     "data.train.unsup.dataset.skip_file_names"}
    assert set(dict_diff(plain(preset), plain(default))) == expected


def test_coco_upstream_preset_selects_the_split_on_line_7(tmp_path):
    lines = (CONFIG_DIR / UPSTREAM.format("coco_180k")).read_text().splitlines()
    assert lines[6] == "SPLIT = 1" and "line 7" in "\n".join(lines[:6])
    for split in (1, 2):
        root = copy_configs_with(tmp_path / str(split), UPSTREAM.format("coco_180k"), r"^SPLIT = 1$",
                                 f"SPLIT = {split}")
        selected = plain(load(UPSTREAM.format("coco_180k"), root))
        assert selected.pop("SPLIT") == split
        assert selected == plain(load(UPSTREAM.format(f"coco{split}_180k")))


@pytest.mark.parametrize("name", ["coco1_180k", "object365_360k"])
def test_upstream_preset_training_data_drops_unlabeled_images_without_ground_truth(tmp_path, monkeypatch, name):
    """filter_empty_gt=True on the unlabeled side: image 12 (no hidden annotation) is gone; O365: Bear map."""
    cfg = load(UPSTREAM.format(name))
    monkeypatch.chdir(tmp_path)
    for leaf in unwrap(cfg.data.train.sup):
        write_tiny_annotation_file(tmp_path / leaf.ann_file, leaf.type, LABELED_IMAGES)
    unlabeled = cfg.data.train.unsup.dataset
    write_tiny_annotation_file(tmp_path / unlabeled.ann_file, unlabeled.type, UNLABELED_IMAGES)
    train = build_dataset(cfg.data.train)
    assert len(train.unsup) == 1 and train.unsup.image_keys()[0].endswith("000000000011.jpg")
    if name == "object365_360k":
        coco_part = train.sup.dataset.datasets[0]
        assert tuple(coco_part.label_map) == coco_to_objects365_map(upstream_teddy_bear=True)
        assert coco_part.label_map != coco_to_objects365_map()


def test_demo_arms_share_every_setting_but_the_method():
    """The toy protocol's fairness (issue 10): the control and both semi-supervised arms run the same
    iterations, schedule and labeled images per iteration; the two semi-supervised arms share every
    hyper-parameter, and CI-SSOD differs from the soft teacher only in its own modules."""
    control, soft_teacher, grs = (plain(load(f"demo/{name}.py")) for name in
                                  ("supervised_finetune", "soft_teacher_finetune", "grs_finetune"))
    for arm in (soft_teacher, grs):
        for key in ("optimizer", "optimizer_config", "lr_config", "runner"):
            assert arm[key] == control[key], key
        sampler = arm["data"]["sampler"]["train"]
        ratio = sampler["sample_ratio"]
        labeled_per_iteration = arm["data"]["samples_per_gpu"] * ratio[0] // sum(ratio)
        assert not sampler["by_prob"] and labeled_per_iteration == control["data"]["samples_per_gpu"] == 2
    assert soft_teacher["model"]["train_cfg"]["unsup_weight"] == 1.0
    loss_or_train_cfg = r"(model\.model\.roi_head\.bbox_head\.loss_cls|data\.train)\..*"
    changed = {re.sub(loss_or_train_cfg, r"\1", path) for path in dict_diff(grs, soft_teacher)}
    ci_ssod_modules = {"num_classes", "custom_hooks", "data.train", "model.type", "model.model.roi_head.bbox_head.type",
                       "model.model.roi_head.bbox_head.loss_cls", "model.train_cfg.GbT", "model.train_cfg.warm_up_iter",
                       "model.train_cfg.alpha", "model.train_cfg.max_iter", "model.train_cfg.score_rule"}
    assert changed <= ci_ssod_modules, changed - ci_ssod_modules
