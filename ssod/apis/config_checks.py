"""Early, clear errors for configs that point at missing files or disagree with the data."""
import os.path as osp


def iter_ann_files(data_cfg, path="data"):
    """Yield ``(config path, ann_file)`` for every ``ann_file`` in a (nested) dataset config."""
    if isinstance(data_cfg, dict):
        for key, value in data_cfg.items():
            if key == "ann_file":
                files = value if isinstance(value, (list, tuple)) else [value]
                for ann_file in files:
                    yield f"{path}.{key}", ann_file
            else:
                yield from iter_ann_files(value, f"{path}.{key}")
    elif isinstance(data_cfg, (list, tuple)):
        for i, item in enumerate(data_cfg):
            yield from iter_ann_files(item, f"{path}[{i}]")


def check_ann_files_exist(data_cfg, path="data"):
    """Raise FileNotFoundError naming the config key of the first missing annotation file."""
    for key, ann_file in iter_ann_files(data_cfg, path):
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f"annotation file {ann_file!r} ({key}) does not exist; see dataset/README.md for the "
                "expected layout, or make the toy data with tools/dataset/make_toy_dataset.py")


def _roi_head_num_classes(model_cfg):
    if "model" in model_cfg:  # teacher-student wrappers hold the detector config under `model`
        return _roi_head_num_classes(model_cfg["model"])
    bbox_head = model_cfg.get("roi_head", {}).get("bbox_head")
    heads = bbox_head if isinstance(bbox_head, (list, tuple)) else [bbox_head]
    return {head["num_classes"] for head in heads if head and "num_classes" in head}


def check_num_classes(model_cfg, classes, dataset_name="data.train"):
    """Raise ValueError when the box head's ``num_classes`` differs from the dataset's classes."""
    expected = len(classes)
    for num_classes in _roi_head_num_classes(model_cfg):
        if num_classes != expected:
            raise ValueError(
                f"model.roi_head.bbox_head.num_classes={num_classes} but {dataset_name} has "
                f"{expected} classes {tuple(classes)[:10]}{'...' if expected > 10 else ''}; "
                "set num_classes (and the datasets' classes=) consistently")
