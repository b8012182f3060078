"""CrS repeat factors and labeled RFS (spec E.4, E.5, I.4, I.5 item 34)."""
import math

import numpy as np
import pytest

from ssod.datasets.crs import crs_repeat_factors, rfs_repeat_factors

# Hand-built store: C = 3, L = [10, 2, 0], N_L = 20.
# U = [2, 2, 1] (image 1 holds class 1 twice but counts once), N_U = 4, denominator 24.01.
# lambd = 8: r = sqrt(8 * 24.01 / [12, 4, 1]) = [4.000833, 6.929646, 13.859293].
LABELED_COUNTS = np.array([10, 2, 0])
NUM_LABELED = 20
LABELS = [np.array([0, 1]), np.array([1, 1]), np.array([], dtype=np.int64), np.array([2]), np.array([0])]
MARGINS = [np.array([0.3, 0.45]), np.array([0.275, 0.1]), np.array([]), np.array([0.21648]),
           np.array([0.26])]
# image 0: max(1.2003, 3.1183) -> 4   image 1: 1.9057 -> 2   image 2: no boxes -> 1
# image 3: 3.00026 -> 4 (3 with denominator 24, i.e. without the 0.01)   image 4: 1.0402 -> 2
EXPECTED = [4, 2, 1, 4, 2]


def reference_repeats(labels, margins, counts, num_labeled, lambd):
    """Loop-by-loop transcription of spec E.4."""
    num_classes = len(counts)
    images_per_class = [sum(c in set(img.tolist()) for img in labels) for c in range(num_classes)]
    num_pseudo = sum(len(img) > 0 for img in labels)
    out = []
    for img_labels, img_margins in zip(labels, margins):
        best = 1.0
        for c, m in zip(img_labels.tolist(), img_margins.tolist()):
            f = (counts[c] + images_per_class[c]) / (num_pseudo + 0.01 + num_labeled)
            best = max(best, max(1.0, math.sqrt(lambd / f)) * m)
        out.append(math.ceil(best))
    return out


def random_store(seed, num_images=200, num_classes=6):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(0, 4, num_images)
    labels = [rng.integers(0, num_classes, n) for n in sizes]
    margins = [rng.uniform(0, 0.5, n) for n in sizes]
    counts = rng.integers(0, 50, num_classes)
    return labels, margins, counts


def test_repeat_formula_hand_values():
    repeats = crs_repeat_factors(LABELS, MARGINS, LABELED_COUNTS, NUM_LABELED, lambd=8.0)
    assert repeats.dtype == np.int64
    assert repeats.tolist() == EXPECTED
    assert reference_repeats(LABELS, MARGINS, LABELED_COUNTS, NUM_LABELED, 8.0) == EXPECTED


@pytest.mark.parametrize("seed", range(5))
def test_repeat_formula_matches_reference_loop(seed):
    labels, margins, counts = random_store(seed)
    for lambd in (0.05, 0.5, 3.0):
        got = crs_repeat_factors(labels, margins, counts, 100, lambd)
        assert got.tolist() == reference_repeats(labels, margins, counts, 100, lambd)


def test_lambd_zero_gives_ones():
    labels, margins, counts = random_store(7)
    repeats = crs_repeat_factors(labels, margins, counts, 100, 0.0)
    assert repeats.tolist() == [1] * len(labels)
    assert repeats.sum() == len(labels)


def test_monotone_in_lambd():
    labels, margins, counts = random_store(3)
    previous = None
    for lambd in np.linspace(0, 5, 21):
        repeats = crs_repeat_factors(labels, margins, counts, 50, lambd)
        if previous is not None:
            assert (repeats >= previous).all()
        previous = repeats
    assert previous.max() > 1


def test_monotone_in_class_frequency():
    labels, margins, counts = random_store(4)
    only_class_2 = [i for i, img in enumerate(labels) if len(img) and (img == 2).all()]
    assert only_class_2
    before = crs_repeat_factors(labels, margins, counts, 50, 3.0)
    more_labels = labels + [np.array([2, 2])] * 100
    more_margins = margins + [np.array([0.1, 0.2])] * 100
    after = crs_repeat_factors(more_labels, more_margins, counts, 50, 3.0)
    assert (after[only_class_2] <= before[only_class_2]).all()
    assert (after[only_class_2] < before[only_class_2]).any()


def test_monotone_in_margin():
    labels, margins, counts = random_store(5)
    before = crs_repeat_factors(labels, margins, counts, 50, 3.0)
    after = crs_repeat_factors(labels, [m * 1.5 for m in margins], counts, 50, 3.0)
    assert (after >= before).all()
    assert (after > before).any()


def test_images_without_boxes():
    extra = 1000
    labels = LABELS + [np.array([], dtype=np.int64)] * extra
    margins = MARGINS + [np.array([])] * extra
    repeats = crs_repeat_factors(labels, margins, LABELED_COUNTS, NUM_LABELED, 8.0)
    # empty images get 1 and do not enter N_U: the other counts are unchanged
    assert repeats.tolist() == EXPECTED + [1] * extra
    all_empty = crs_repeat_factors([np.array([])] * 3, [np.array([])] * 3, LABELED_COUNTS, 0, 8.0)
    assert all_empty.tolist() == [1, 1, 1]


def test_zero_frequency_class_is_guarded():
    # class 2 has neither labeled nor pseudo images: f_2 = 0 must not produce inf/NaN warnings
    with np.errstate(all="raise"):
        repeats = crs_repeat_factors([np.array([0])], [np.array([0.4])], np.array([0, 3, 0]), 3, 2.0)
    # f_0 = 1 / 4.01, r_0 = sqrt(8.02) = 2.832, 2.832 * 0.4 = 1.133 -> 2
    assert repeats.tolist() == [2]


def test_repeat_factors_reject_bad_input():
    with pytest.raises(ValueError, match="outside"):
        crs_repeat_factors([np.array([3])], [np.array([0.1])], LABELED_COUNTS, 1, 1.0)
    with pytest.raises(ValueError, match="image 0"):
        crs_repeat_factors([np.array([1, 2])], [np.array([0.1])], LABELED_COUNTS, 1, 1.0)
    with pytest.raises(ValueError, match="lambd"):
        crs_repeat_factors(LABELS, MARGINS, LABELED_COUNTS, NUM_LABELED, -1.0)
    with pytest.raises(ValueError, match="not representable as int64"):
        crs_repeat_factors([np.array([1.5])], [np.array([0.1])], LABELED_COUNTS, 1, 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        crs_repeat_factors([np.array([1])], [np.array([np.nan])], LABELED_COUNTS, 1, 1.0)
    with pytest.raises(ValueError, match="pseudo_margins has"):
        crs_repeat_factors(LABELS, MARGINS[:2], LABELED_COUNTS, NUM_LABELED, 1.0)


# ---------------------------------------------------------------- labeled RFS (I.5 item 34)
def test_rfs_hand_values():
    # 10 images; f = {1: 0.1, 5: 0.4, 7: 0.6, 9: 0.1}; t = 0.5
    # r = {1: sqrt(5) = 2.236, 5: sqrt(1.25) = 1.118, 7: 1, 9: 2.236}
    sets = [{1, 5, 7}, {5, 7}, {5}, [5, 5], {7}, {7}, {7}, {7}, [], {9}]
    repeats = rfs_repeat_factors(sets, 0.5)
    assert repeats.dtype == np.int64
    assert repeats.tolist() == [3, 2, 2, 2, 1, 1, 1, 1, 1, 3]


def test_rfs_rarest_class_rule():
    # class 0 in 1 of 100 images (f = 0.01), class 1 in all: t = 0.09 -> ceil(sqrt(9)) = 3
    sets = [{0, 1}] + [{1}] * 99
    assert rfs_repeat_factors(sets, 0.09).tolist() == [3] + [1] * 99
    assert rfs_repeat_factors(sets, 0.01).tolist() == [1] * 100
    assert rfs_repeat_factors([[], []], 0.5).tolist() == [1, 1]


class CategorySetsDataset:
    """Minimal dataset for mmdet's ClassBalancedDataset: per-image category lists only."""

    CLASSES = tuple(f"c{i}" for i in range(12))

    def __init__(self, category_sets):
        self.category_sets = category_sets

    def __len__(self):
        return len(self.category_sets)

    def get_cat_ids(self, idx):
        return list(self.category_sets[idx])


def test_rfs_matches_mmdet_class_balanced_dataset():
    from mmdet.datasets import ClassBalancedDataset

    rng = np.random.default_rng(0)
    sets = [rng.choice(12, size=rng.integers(0, 4), p=np.arange(12, 0, -1) / 78).tolist()
            for _ in range(300)]
    for thr in (0.01, 0.1, 0.3):
        reference = ClassBalancedDataset(CategorySetsDataset(sets), thr, filter_empty_gt=True)
        ours = rfs_repeat_factors(sets, thr)
        assert np.bincount(reference.repeat_indices, minlength=300).tolist() == ours.tolist()
    assert ours.max() > 1
