"""Repeat factors for Class-rebalancing Sampling (CrS, spec E.4) and labeled-side RFS (E.5).

Pure numpy functions, vectorised over all boxes of all images. The labeled-set constants
``L_c`` and ``N_L`` of E.4 come from ``crs_wrappers.labeled_dataset_statistics``.
"""
import itertools

import numpy as np

# Added to the CrS frequency denominator, as upstream (spec E.4).
FREQ_DENOMINATOR_EPS = 0.01


def _flatten_per_image(per_image_arrays, dtype, name):
    """Concatenate a list of 1-D arrays; return (values as ``dtype``, per-image lengths)."""
    lengths = np.fromiter(map(len, per_image_arrays), dtype=np.int64, count=len(per_image_arrays))
    if lengths.sum() == 0:
        return np.zeros(0, dtype=dtype), lengths
    values = np.concatenate(per_image_arrays).reshape(-1)
    if len(values) != lengths.sum():
        raise ValueError(f"{name}: every per-image entry must be a 1-D array")
    with np.errstate(invalid="ignore"):  # NaN/inf casts are caught by the comparison below
        converted = values.astype(dtype)
    if not np.array_equal(converted, values, equal_nan=True):
        raise ValueError(f"{name}: values are not representable as {np.dtype(dtype).name}")
    return converted, lengths


def _count_images_per_class(image_index, labels, num_classes):
    """Number of distinct images per class, from per-box image indices (non-decreasing)."""
    # the keys are grouped by image already, so a stable (tim)sort is near linear
    keys = np.sort(image_index * num_classes + labels, kind="stable")
    first_of_key = np.ones(len(keys), dtype=bool)
    first_of_key[1:] = keys[1:] != keys[:-1]
    return np.bincount(keys[first_of_key] % num_classes, minlength=num_classes)


def crs_repeat_factors(pseudo_labels, pseudo_margins, labeled_image_counts, num_labeled,
                       lambd) -> np.ndarray:
    """CrS repeat count per unlabeled image (spec E.4), as an int64 array.

    ``pseudo_labels[i]`` / ``pseudo_margins[i]``: 1-D arrays (possibly empty) of contiguous
    class labels and margins ``score - thr`` of image i's pseudo boxes.
    ``labeled_image_counts``: ``L_c``, labeled images containing class c (length C);
    ``num_labeled``: ``N_L``. With ``U_c`` = images whose pseudo label set contains c and ``N_U``
    = images with at least one pseudo box::

        f_c = (L_c + U_c) / (N_U + 0.01 + N_L);  r_c = max(1, sqrt(lambd / f_c))
        repeats_i = ceil(max(1, max_b r_{c_b} * m_b))      (1 for an image without boxes)

    The margin is used raw (upstream's released choice, H.25), which caps the repeat at
    ``ceil(0.5 * r_c)`` for a threshold floor of 0.5. A class with ``f_c = 0`` has no pseudo box,
    so its ``r_c`` is never used; it is set to 1 so that no inf/NaN can arise.
    """
    if len(pseudo_labels) != len(pseudo_margins):
        raise ValueError(f"pseudo_labels has {len(pseudo_labels)} images but pseudo_margins has "
                         f"{len(pseudo_margins)}")
    if not (np.isfinite(lambd) and lambd >= 0):
        raise ValueError(f"lambd must be finite and >= 0, got {lambd}")
    labeled_image_counts = np.asarray(labeled_image_counts, dtype=np.float64)
    if labeled_image_counts.ndim != 1 or (labeled_image_counts < 0).any():
        raise ValueError("labeled_image_counts must be a 1-D array of non-negative counts")
    if num_labeled < 0:
        raise ValueError(f"num_labeled must be >= 0, got {num_labeled}")
    num_classes = len(labeled_image_counts)

    labels, lengths = _flatten_per_image(pseudo_labels, np.int64, "pseudo_labels")
    margins, margin_lengths = _flatten_per_image(pseudo_margins, np.float64, "pseudo_margins")
    mismatch = np.flatnonzero(lengths != margin_lengths)
    if len(mismatch):
        i = mismatch[0]
        raise ValueError(f"image {i}: {lengths[i]} pseudo labels but {margin_lengths[i]} margins")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"pseudo label {bad} outside [0, {num_classes})")
    if not np.isfinite(margins).all():
        raise ValueError("pseudo_margins contain a non-finite value")

    num_images = len(lengths)
    image_index = np.repeat(np.arange(num_images, dtype=np.int64), lengths)
    images_per_class = _count_images_per_class(image_index, labels, num_classes)
    has_boxes = lengths > 0
    num_pseudo_images = int(has_boxes.sum())

    freq = (labeled_image_counts + images_per_class) / (
        num_pseudo_images + FREQ_DENOMINATOR_EPS + num_labeled)
    class_repeat = np.ones(num_classes, dtype=np.float64)
    seen = freq > 0
    class_repeat[seen] = np.maximum(1.0, np.sqrt(lambd / freq[seen]))

    repeats = np.ones(num_images, dtype=np.int64)
    if num_pseudo_images:
        box_factor = class_repeat[labels] * margins
        starts = (np.cumsum(lengths) - lengths)[has_boxes]
        image_factor = np.maximum.reduceat(box_factor, starts)
        repeats[has_boxes] = np.ceil(np.maximum(1.0, image_factor)).astype(np.int64)
    return repeats


def rfs_repeat_factors(image_category_sets, oversample_thr) -> np.ndarray:
    """LVIS repeat-factor sampling counts for the labeled images (spec E.5), int64.

    ``image_category_sets[i]``: the category ids of image i (any hashable ints; duplicates
    allowed). ``f_c`` = fraction of all images containing c, ``r_c = max(1, sqrt(t / f_c))``,
    ``repeats_i = ceil(max_{c in image i} r_c)``, 1 for an image without categories.
    """
    if oversample_thr < 0:
        raise ValueError(f"oversample_thr must be >= 0, got {oversample_thr}")
    per_image = [list(c) for c in image_category_sets]
    num_images = len(per_image)
    lengths = np.fromiter(map(len, per_image), dtype=np.int64, count=num_images)
    repeats = np.ones(num_images, dtype=np.int64)
    if lengths.sum() == 0:
        return repeats
    categories = np.fromiter(itertools.chain.from_iterable(per_image), dtype=np.int64,
                             count=int(lengths.sum()))
    _, class_index = np.unique(categories, return_inverse=True)
    num_classes = int(class_index.max()) + 1
    image_index = np.repeat(np.arange(num_images, dtype=np.int64), lengths)
    images_per_class = _count_images_per_class(image_index, class_index, num_classes)
    freq = images_per_class / num_images
    class_repeat = np.maximum(1.0, np.sqrt(oversample_thr / freq))
    has_categories = lengths > 0
    starts = (np.cumsum(lengths) - lengths)[has_categories]
    image_repeat = np.maximum.reduceat(class_repeat[class_index], starts)
    repeats[has_categories] = np.ceil(image_repeat).astype(np.int64)
    return repeats
