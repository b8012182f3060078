"""Early, clear errors for configs that point at missing files or disagree with the data."""
import os.path as osp


def iter_key(cfg, name, path):
    """Yield ``(config path, value)`` for every key ``name`` in a (nested) config of dicts and lists."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == name:
                yield f"{path}.{key}", value
            else:
                yield from iter_key(value, name, f"{path}.{key}")
    elif isinstance(cfg, (list, tuple)):
        for i, item in enumerate(cfg):
            yield from iter_key(item, name, f"{path}[{i}]")


def iter_ann_files(data_cfg, path="data"):
    """Yield ``(config path, ann_file)`` for every annotation file (``ann_file`` may be a list)."""
    for key, value in iter_key(data_cfg, "ann_file", path):
        for ann_file in value if isinstance(value, (list, tuple)) else [value]:
            yield key, ann_file


def check_ann_files_exist(data_cfg, path="data"):
    """Raise FileNotFoundError naming the config key of the first missing annotation file."""
    for key, ann_file in iter_ann_files(data_cfg, path):
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f"annotation file {ann_file!r} ({key}) does not exist; see dataset/README.md for the "
                "expected layout, or make the toy data with tools/dataset/make_toy_dataset.py")


def iter_num_classes(cfg, path="model"):
    """Yield ``(config path, value)`` for every ``num_classes`` key in a (nested) config."""
    return iter_key(cfg, "num_classes", path)


def check_num_classes(model_cfg, classes, dataset_name="data.train"):
    """Raise ValueError naming every ``num_classes`` of the model config that differs from the dataset's classes.

    Covers each occurrence: the box head, its GbR loss, and any other head, loss or train/test setting.
    """
    expected = len(classes)
    wrong = [f"{key}={value}" for key, value in iter_num_classes(model_cfg) if value != expected]
    if wrong:
        raise ValueError(
            f"{', '.join(wrong)} but {dataset_name} has {expected} classes "
            f"{tuple(classes)[:10]}{'...' if expected > 10 else ''}; set every num_classes (and the datasets' "
            "classes=) consistently")
