"""Dataset wrappers that mark which side of a ``SemiDataset`` is resampled (spec E.4, E.5).

mmdet's ``ClassBalancedDataset`` repeats indices inside the dataset. Inside a ``SemiDataset``
that would change the index space ``SemiBalanceSampler`` draws from, so these wrappers keep
one index per image (length, items and aspect flags of the inner dataset) and only describe
the repeat factors; the sampler applies them:

* ``ClassBalancedDatasetRFS(dataset, oversample_thr)``: the labeled side. :meth:`repeat_factors`
  gives the LVIS repeat-factor-sampling counts, which the data-loader builder hands to the
  sampler as ``sup_repeat_factors``.
* ``ClassBalancedDatasetCrS(dataset)`` (upstream name): the unlabeled side.
  ``GradientResamplingHook`` computes its CrS factors from the pseudo-label store during
  training; :meth:`image_keys` names every image the way the store does.

``labeled_dataset_statistics`` gives the CrS constants ``L_c`` and ``N_L`` (spec E.4) of the
built labeled dataset (a wrapper, an mmdet ``ConcatDataset`` or a plain dataset), cached
under the run's work_dir.
"""
import hashlib
import json
import os
import os.path as osp
import tempfile

import numpy as np
from mmdet.datasets import DATASETS, ConcatDataset, build_dataset

from ssod.datasets.crs import rfs_repeat_factors

STATS_CACHE_PREFIX = "labeled_stats_"


def image_keys(dataset) -> list:
    """Store key of every image: ``img_prefix/filename`` as ``LoadImageFromFile`` names it."""
    if isinstance(dataset, _IndexPreservingWrapper):
        return image_keys(dataset.dataset)
    infos = getattr(dataset, "data_infos", None)
    if infos is None:
        raise TypeError(f"{type(dataset).__name__} has no data_infos; cannot name its images "
                        "for the pseudo-label store")
    prefix = getattr(dataset, "img_prefix", None)
    return [info["filename"] if prefix is None else osp.join(prefix, info["filename"]) for info in infos]


class _IndexPreservingWrapper:
    """Same indices, items, aspect flags and classes as the wrapped dataset (built from its config).

    A list of configs builds mmdet's ``ConcatDataset`` (e.g. the two labeled parts of the
    COCO -> Objects365 setting).
    """

    def __init__(self, dataset):
        self.dataset = build_dataset(dataset) if isinstance(dataset, (dict, list, tuple)) else dataset
        self.CLASSES = self.dataset.CLASSES
        self.PALETTE = getattr(self.dataset, "PALETTE", None)
        flag = getattr(self.dataset, "flag", None)
        if flag is not None:
            self.flag = flag

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, idx):
        return self.dataset[idx]

    def get_cat_ids(self, idx):
        return self.dataset.get_cat_ids(idx)

    def get_ann_info(self, idx):
        return self.dataset.get_ann_info(idx)


@DATASETS.register_module()
class ClassBalancedDatasetRFS(_IndexPreservingWrapper):
    """Labeled dataset with repeat-factor sampling counts (spec E.5); indices are not repeated.

    Args:
        dataset (dict | list | Dataset): the labeled dataset or its config (a list: concatenated).
        oversample_thr (float): ``t_os``; classes in fewer than this fraction of images are
            oversampled by ``ceil(sqrt(t_os / f_c))``.

    Category lists come from ``dataset.get_cat_ids`` (crowd boxes included for COCO, as in
    mmdet's ``ClassBalancedDataset``).
    """

    def __init__(self, dataset, oversample_thr):
        super().__init__(dataset)
        if not oversample_thr >= 0:
            raise ValueError(f"ClassBalancedDatasetRFS: oversample_thr must be >= 0, got {oversample_thr}")
        self.oversample_thr = float(oversample_thr)

    def repeat_factors(self):
        """int64 repeat count per image."""
        return rfs_repeat_factors([self.dataset.get_cat_ids(i) for i in range(len(self.dataset))],
                                  self.oversample_thr)


@DATASETS.register_module()
class ClassBalancedDatasetCrS(_IndexPreservingWrapper):
    """Unlabeled dataset whose sampling ``GradientResamplingHook`` rebalances (spec E.4).

    Args:
        dataset (dict | Dataset): the unlabeled dataset or its config.
    """

    def image_keys(self) -> list:
        return image_keys(self.dataset)


# ---------------------------------------------------------------------- labeled statistics for CrS
def leaf_datasets(dataset) -> list:
    """The annotation-file datasets below the wrappers of this module and mmdet ``ConcatDataset``."""
    if isinstance(dataset, _IndexPreservingWrapper):
        return leaf_datasets(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [leaf for part in dataset.datasets for leaf in leaf_datasets(part)]
    return [dataset]


def count_images_per_class(dataset, num_classes):
    """``(L_c, N_L)`` of a built labeled dataset, counted from its training targets.

    ``L_c`` = number of images with at least one box of contiguous label c in
    ``get_ann_info(i)['labels']``, the labels the detector trains on (the dataset's own
    ``cat2label`` / class map applied; crowd and ignored boxes excluded, unlike upstream's
    category lists, spec H.29). ``get_cat_ids`` is not used: mmdet's ``CocoDataset`` returns raw
    category ids there (crowd included, any category of the file), not contiguous labels.
    An image counts once per class however many boxes it has; the parts of a concatenation
    are different images and add up. ``N_L`` = ``len(dataset)``, the images training draws
    from after mmdet's filters (``filter_empty_gt``, min size 32).
    """
    labels = [np.asarray(dataset.get_ann_info(i)["labels"], dtype=np.int64).reshape(-1)
              for i in range(len(dataset))]
    lengths = np.fromiter(map(len, labels), dtype=np.int64, count=len(labels))
    flat = np.concatenate(labels) if lengths.sum() else np.zeros(0, dtype=np.int64)
    outside = (flat < 0) | (flat >= num_classes)
    if outside.any():
        image = int(np.repeat(np.arange(len(labels)), lengths)[outside][0])
        raise ValueError(f"labeled image {image} has label {int(flat[outside][0])} outside [0, {num_classes})")
    image_index = np.repeat(np.arange(len(labels), dtype=np.int64), lengths)
    image_class_pairs = np.unique(image_index * num_classes + flat)
    return np.bincount(image_class_pairs % num_classes, minlength=num_classes).astype(np.int64), len(dataset)


def _leaf_signature(leaf, classes):
    """What the counts of one annotation-file dataset depend on (file identity, settings, size)."""
    ann_file = getattr(leaf, "ann_file", None)
    if not isinstance(ann_file, str) or not osp.isfile(ann_file):
        raise ValueError(f"labeled dataset part {type(leaf).__name__} has ann_file {ann_file!r}, not an existing "
                         "file; the labeled statistics are cached by annotation file")
    stat = os.stat(ann_file)
    settings = {key: value for key, value in sorted(vars(leaf).items())
                if value is None or isinstance(value, (bool, int, float, str))}
    return dict(type=type(leaf).__name__, ann_file=osp.abspath(ann_file), size=stat.st_size,
                mtime_ns=stat.st_mtime_ns, num_images=len(leaf), settings=settings,
                classes=hashlib.sha1(json.dumps(list(classes)).encode()).hexdigest())


def _read_cache(path, signature):
    """The cached ``(L_c, N_L)`` if ``path`` holds them for ``signature``, else None."""
    if not osp.isfile(path):
        return None
    with open(path) as f:
        try:
            cached = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: corrupt labeled-statistics cache ({err}); delete it to recompute") from err
    if cached.get("signature") != signature:
        return None
    return np.asarray(cached["image_counts"], dtype=np.int64), int(cached["num_images"])


def _write_cache(path, signature, counts, num_images):
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(path), prefix=".labeled_stats_", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(dict(signature=signature, image_counts=counts.tolist(), num_images=num_images), f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def labeled_dataset_statistics(dataset, num_classes, cache_dir=None):
    """CrS labeled constants ``(L_c as int64[C], N_L)`` of a built labeled dataset (spec E.4).

    Counted by :func:`count_images_per_class`. Every part must have ``num_classes`` classes,
    the same as the dataset's ``CLASSES``. With ``cache_dir`` the result is cached in
    ``cache_dir/labeled_stats_<hash of the annotation paths>.json``, valid while every part's
    type, annotation file (path, size, mtime), image count, classes and scalar settings
    (e.g. ``filter_empty_gt``, ``upstream_teddy_bear``) are unchanged, so a resumed run does not
    recount. Returns ``(np.ndarray, int, bool)``: the counts, ``N_L`` and whether the cache served them.
    """
    classes = tuple(dataset.CLASSES)
    if len(classes) != num_classes:
        raise ValueError(f"the labeled dataset has {len(classes)} classes, the model {num_classes}")
    leaves = leaf_datasets(dataset)
    for leaf in leaves:
        if tuple(leaf.CLASSES) != classes:
            raise ValueError(f"labeled dataset part {type(leaf).__name__} ({getattr(leaf, 'ann_file', None)}) has "
                             "other CLASSES than the first part; their labels would not match")
    if cache_dir is None:
        return (*count_images_per_class(dataset, num_classes), False)
    signature = [_leaf_signature(leaf, classes) for leaf in leaves]
    key = hashlib.sha1(json.dumps([part["ann_file"] for part in signature]).encode()).hexdigest()[:16]
    path = osp.join(cache_dir, f"{STATS_CACHE_PREFIX}{key}.json")
    cached = _read_cache(path, signature)
    if cached is not None:
        return (*cached, True)
    counts, num_images = count_images_per_class(dataset, num_classes)
    os.makedirs(cache_dir, exist_ok=True)
    _write_cache(path, signature, counts, num_images)
    return counts, num_images, False
