"""SemiBalanceSampler, SemiDataset and the semi data loader builder (spec E.6, I.4, I.5)."""
import copy
import itertools

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from ssod.datasets.samplers.semi_balance import SemiBalanceSampler

# Expected labeled count per batch of 5 with P(labeled) = 1/5 and the >= 1 rule (spec I.5-35):
# B ~ Binomial(5, 0.2); B = 0 becomes 1 and B = 5 becomes 4.
LABELED_COUNT_PROBS = {1: 0.8**5 + 5 * 0.2 * 0.8**4, 2: 10 * 0.2**2 * 0.8**3,
                       3: 10 * 0.2**3 * 0.8**2, 4: 5 * 0.2**4 * 0.8 + 0.2**5}
EXPECTED_LABELED_FRACTION = 1.32736 / 5


class FakeSemiDataset:
    """Only what the sampler reads: concatenated aspect flags and the two source sizes."""

    def __init__(self, sup_flags, unsup_flags):
        self.flag = np.concatenate([sup_flags, unsup_flags]).astype(np.uint8)
        self.source_sizes = (len(sup_flags), len(unsup_flags))

    def __len__(self):
        return len(self.flag)


def mixed_flags(n, seed):
    return np.random.default_rng(seed).integers(0, 2, n)


def batches_of(sampler):
    indices = list(sampler)
    assert len(indices) == len(sampler)
    return np.array(indices).reshape(-1, sampler.samples_per_gpu)


def unlabeled_draws(batch, num_labeled_images):
    return batch[batch >= num_labeled_images]


def test_every_batch_mixes_sources_within_one_aspect_group():
    dataset = FakeSemiDataset(mixed_flags(50, 0), mixed_flags(200, 1))
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=5, epoch_length=2000, num_replicas=1,
                                 rank=0)
    batches = batches_of(sampler)
    assert batches.shape == (2000, 5)
    labeled = batches < 50
    assert labeled.any(axis=1).all() and (~labeled).any(axis=1).all()
    flags = dataset.flag[batches]
    assert (flags == flags[:, :1]).all()
    assert set(np.unique(flags[:, 0])) == {0, 1}
    assert batches.min() >= 0 and batches.max() < 250


def test_labeled_fraction_follows_the_at_least_one_rule():
    dataset = FakeSemiDataset(mixed_flags(300, 2), mixed_flags(1200, 3))
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=5, sample_ratio=[1, 4], by_prob=True,
                                 epoch_length=20000, num_replicas=1, rank=0, seed=7)
    counts = (batches_of(sampler) < 300).sum(axis=1)
    assert abs(counts.mean() / 5 - EXPECTED_LABELED_FRACTION) < 0.005
    observed = np.bincount(counts, minlength=6) / len(counts)
    assert observed[0] == 0 and observed[5] == 0
    for count, prob in LABELED_COUNT_PROBS.items():
        assert abs(observed[count] - prob) < 0.01


def test_two_ranks_get_disjoint_equal_slices_of_one_global_stream():
    dataset = FakeSemiDataset(mixed_flags(400, 4), mixed_flags(1600, 5))
    kwargs = dict(samples_per_gpu=5, epoch_length=60, num_replicas=2, seed=11)
    rank_batches = [batches_of(SemiBalanceSampler(dataset, rank=r, **kwargs)) for r in (0, 1)]
    steps = list(SemiBalanceSampler(dataset, rank=0, **kwargs).global_batches())
    assert rank_batches[0].shape == rank_batches[1].shape == (60, 5)
    assert len(steps) == 60
    for step, (b0, b1) in enumerate(zip(*rank_batches)):
        assert not set(b0) & set(b1)
        np.testing.assert_array_equal(np.concatenate([b0, b1]), np.concatenate(steps[step]))
        assert len(set(dataset.flag[np.concatenate([b0, b1])])) == 1
    # With every repeat factor 1 and fewer draws than images, no image repeats in the epoch.
    all_indices = np.concatenate(rank_batches).ravel()
    assert len(np.unique(all_indices)) == len(all_indices)


def test_world_size_one_without_process_group():
    assert not (torch.distributed.is_available() and torch.distributed.is_initialized())
    dataset = FakeSemiDataset(mixed_flags(20, 6), mixed_flags(80, 7))
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=4, epoch_length=30)
    assert (sampler.num_replicas, sampler.rank) == (1, 0)
    assert batches_of(sampler).shape == (30, 4)


def test_unlabeled_frequencies_follow_repeat_factors():
    factors = np.array([1, 1, 2, 3, 1, 4, 1, 2, 5, 1])
    dataset = FakeSemiDataset(np.zeros(4), np.zeros(10))
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=16, sample_ratio=[1, 15],
                                 epoch_length=14000, num_replicas=1, rank=0, seed=3)
    sampler.set_repeat_factors(1, factors)
    draws = unlabeled_draws(batches_of(sampler), 4) - 4
    assert len(draws) > 200_000
    counts = np.bincount(draws, minlength=10)
    assert chisquare(counts, len(draws) * factors / factors.sum()).pvalue > 0.001
    # The test has power: uniform frequencies are rejected outright.
    assert chisquare(counts).pvalue < 1e-12


def test_repeated_index_list_keeps_flags_consistent():
    sup_flags, unsup_flags = mixed_flags(6, 8), np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    dataset = FakeSemiDataset(sup_flags, unsup_flags)
    factors = np.array([1, 1, 2, 3, 1, 4, 1, 2, 5, 1])
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=5, num_replicas=1, rank=0,
                                 sup_repeat_factors=np.array([1, 2, 1, 1, 3, 1]))
    sampler.set_repeat_factors(1, factors)
    indices, flags = sampler.repeated_indices(1)
    assert len(indices) == len(flags) == factors.sum()
    np.testing.assert_array_equal(flags, dataset.flag[indices])
    np.testing.assert_array_equal(np.bincount(indices - 6, minlength=10), factors)
    np.testing.assert_array_equal(sampler.repeat_factors(1), factors)
    sup_indices, _ = sampler.repeated_indices(0)
    np.testing.assert_array_equal(np.bincount(sup_indices, minlength=6), [1, 2, 1, 1, 3, 1])


def take_batches(iterator, count, samples_per_gpu):
    return [np.array(list(itertools.islice(iterator, samples_per_gpu))) for _ in range(count)]


def test_repeat_factor_update_applies_from_the_next_batch_on_a_live_iterator():
    dataset = FakeSemiDataset(np.zeros(5), np.zeros(10))
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=5, epoch_length=200, num_replicas=1,
                                 rank=0, seed=5)
    iterator = iter(sampler)
    before = np.concatenate([unlabeled_draws(b, 5) for b in take_batches(iterator, 10, 5)])
    # Each pass over the stream is a permutation of the repeated list: factors all 1 here.
    np.testing.assert_array_equal(np.sort(before[:10]), np.arange(5, 15))

    new_factors = np.array([30, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    sampler.set_repeat_factors(1, new_factors)
    after = np.concatenate([unlabeled_draws(b, 5) for b in take_batches(iterator, 40, 5)])
    assert len(after) >= 2 * new_factors.sum()
    # The first pass after the update is exactly one copy of the new repeated list.
    np.testing.assert_array_equal(
        np.bincount(after[:new_factors.sum()] - 5, minlength=10), new_factors)
    remaining = list(iterator)
    assert 50 * 5 + len(remaining) == len(sampler)


def test_same_seed_same_stream_other_seed_or_epoch_differs():
    dataset = FakeSemiDataset(mixed_flags(30, 9), mixed_flags(120, 10))

    def stream(seed, epoch=0):
        sampler = SemiBalanceSampler(dataset, samples_per_gpu=5, epoch_length=100,
                                     num_replicas=1, rank=0, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert stream(1) == stream(1)
    assert stream(1) != stream(2)
    assert stream(1, epoch=1) != stream(1, epoch=0)
    assert stream(1, epoch=1) == stream(1, epoch=1)


def test_fixed_counts_without_by_prob():
    dataset = FakeSemiDataset(mixed_flags(20, 11), mixed_flags(80, 12))
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=5, sample_ratio=[1, 4], by_prob=False,
                                 epoch_length=300, num_replicas=1, rank=0)
    assert ((batches_of(sampler) < 20).sum(axis=1) == 1).all()
    # SoftTeacher #8/#62/#109: small batch, large ratio. Still one of each, full length.
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=2, sample_ratio=[1, 10],
                                 by_prob=False, epoch_length=300, num_replicas=1, rank=0)
    assert ((batches_of(sampler) < 20).sum(axis=1) == 1).all()


def test_tiny_sources_wrap_around():
    dataset = FakeSemiDataset(np.zeros(1), np.zeros(2))
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=8, epoch_length=50, num_replicas=3,
                                 rank=2)
    batches = batches_of(sampler)
    assert batches.shape == (50, 8)
    assert ((batches == 0).sum(axis=1) >= 1).all() and ((batches > 0).sum(axis=1) >= 1).all()


def test_group_without_one_source_borrows_from_the_other_group_or_refuses():
    dataset = FakeSemiDataset(np.zeros(10), mixed_flags(40, 13))
    with pytest.raises(ValueError, match="group 1 has no labeled image"):
        SemiBalanceSampler(dataset, samples_per_gpu=5, num_replicas=1, rank=0,
                           allow_mixed_groups=False)
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=5, epoch_length=500, num_replicas=1,
                                 rank=0)
    batches = batches_of(sampler)
    labeled = batches < 10
    assert labeled.any(axis=1).all() and (~labeled).any(axis=1).all()
    unlabeled_flags = np.where(labeled, -1, dataset.flag[batches])
    group_one = (unlabeled_flags == 1).any(axis=1)
    assert group_one.sum() > 100
    # Group-1 batches: all unlabeled images are landscape, the labeled ones come from group 0.
    assert (unlabeled_flags[group_one] != 0).all()


def test_clear_errors_for_bad_input():
    with pytest.raises(ValueError, match="unlabeled dataset is empty"):
        SemiBalanceSampler(FakeSemiDataset(np.zeros(3), np.zeros(0)), samples_per_gpu=5)
    with pytest.raises(ValueError, match="labeled dataset is empty"):
        SemiBalanceSampler(FakeSemiDataset(np.zeros(0), np.zeros(3)), samples_per_gpu=5)
    dataset = FakeSemiDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="samples_per_gpu"):
        SemiBalanceSampler(dataset, samples_per_gpu=1)
    with pytest.raises(ValueError, match="rank 2"):
        SemiBalanceSampler(dataset, samples_per_gpu=2, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="source_sizes"):
        SemiBalanceSampler(np.zeros(7), samples_per_gpu=2)
    sampler = SemiBalanceSampler(dataset, samples_per_gpu=2)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        sampler.set_repeat_factors(1, [1, 1, 1])
    with pytest.raises(ValueError, match="image 2 has 0"):
        sampler.set_repeat_factors(1, [1, 1, 0, 1])
    with pytest.raises(ValueError, match="integers"):
        sampler.set_repeat_factors(0, [1.5, 1, 1])
    with pytest.raises(ValueError, match="source must be"):
        sampler.set_repeat_factors(2, [1, 1, 1])
    sampler.set_repeat_factors(0, np.array([1.0, 2.0, 1.0]))
    np.testing.assert_array_equal(sampler.repeat_factors(0), [1, 2, 1])


class ToyFlagDataset(torch.utils.data.Dataset):
    """Registered in mmdet's DATASETS for these tests: items are dicts, no image I/O."""

    CLASSES = ("a", "b")

    def __init__(self, flags, tag, classes=("a", "b")):
        self.flag = np.asarray(flags, dtype=np.uint8)
        self.tag = tag
        self.CLASSES = tuple(classes)

    def __len__(self):
        return len(self.flag)

    def __getitem__(self, idx):
        from mmcv.parallel import DataContainer

        return dict(img=DataContainer(torch.full((3, 4, 4), float(idx)), stack=True),
                    source=DataContainer(self.tag, cpu_only=True))


def register_toy_dataset():
    from mmdet.datasets import DATASETS

    DATASETS.register_module(name="SamplerTestToyDataset", module=ToyFlagDataset, force=True)


def toy_semi_cfg(sup_flags=(0, 1, 1), unsup_flags=(1, 0, 0, 1, 1)):
    return dict(type="SemiDataset",
                sup=dict(type="SamplerTestToyDataset", flags=list(sup_flags), tag="sup"),
                unsup=dict(type="SamplerTestToyDataset", flags=list(unsup_flags), tag="unsup",
                           classes=("x",)))


def test_semi_dataset_concatenates_sources_without_repeating():
    from mmdet.datasets import build_dataset

    import ssod.datasets.semi_dataset  # noqa: F401  (registers SemiDataset)

    register_toy_dataset()
    cfg = toy_semi_cfg()
    cfg_before = copy.deepcopy(cfg)
    dataset = build_dataset(cfg)
    assert cfg == cfg_before
    assert type(dataset).__name__ == "SemiDataset"
    assert len(dataset) == 8 and dataset.source_sizes == (3, 5)
    np.testing.assert_array_equal(dataset.flag, [0, 1, 1, 1, 0, 0, 1, 1])
    assert dataset.CLASSES == ("a", "b")
    assert (dataset.sup.tag, dataset.unsup.tag) == ("sup", "unsup")
    assert dataset[2]["source"].data == "sup" and dataset[3]["source"].data == "unsup"
    assert dataset[7]["img"].data[0, 0, 0].item() == 4.0

    cfg["unsup"]["flags"] = []
    empty = build_dataset(cfg)
    with pytest.raises(ValueError, match="unlabeled dataset is empty"):
        SemiBalanceSampler(empty, samples_per_gpu=2)


@pytest.mark.parametrize("sampler_type", ["SemiBalanceSampler", "GroupSemiBalanceSampler",
                                          "DistributedGroupSemiBalanceSampler"])
def test_builder_uses_the_semi_sampler_and_collate(sampler_type):
    from mmdet.datasets import build_dataset

    import ssod.datasets.semi_dataset  # noqa: F401
    from ssod.datasets.builder import build_dataloader

    register_toy_dataset()
    dataset = build_dataset(toy_semi_cfg())
    sampler_cfg = dict(type=sampler_type, sample_ratio=[1, 4], by_prob=True, epoch_length=6)
    cfg_before = copy.deepcopy(sampler_cfg)
    loader = build_dataloader(dataset, samples_per_gpu=3, workers_per_gpu=0, dist=True, seed=4,
                              sampler_cfg=sampler_cfg, runner_type="IterBasedRunner")
    assert sampler_cfg == cfg_before
    assert type(loader.sampler) is SemiBalanceSampler
    assert (loader.sampler.num_replicas, loader.sampler.rank, loader.sampler.seed) == (1, 0, 4)
    batches = list(loader)
    assert len(batches) == len(loader) == 6
    expected = batches_of(loader.sampler)
    for batch, indices in zip(batches, expected):
        assert batch["img"].data[0].shape == (3, 3, 4, 4)
        np.testing.assert_array_equal(batch["img"].data[0][:, 0, 0, 0].numpy(),
                                      [i if i < 3 else i - 3 for i in indices])
        assert batch["source"].data[0] == ["sup" if i < 3 else "unsup" for i in indices]


def test_builder_without_sampler_cfg_is_mmdet_stock():
    from mmdet.datasets.samplers import GroupSampler

    from ssod.datasets.builder import build_dataloader

    dataset = FakeSemiDataset(np.zeros(3), np.ones(3))
    loader = build_dataloader(dataset, samples_per_gpu=2, workers_per_gpu=0, dist=False)
    assert type(loader.sampler) is GroupSampler
    with pytest.raises(ValueError, match="num_gpus=2"):
        build_dataloader(dataset, 2, 0, num_gpus=2, dist=False,
                         sampler_cfg=dict(type="SemiBalanceSampler"))


def test_repeat_factors_set_through_the_loader_reach_its_live_iterator():
    from mmdet.datasets import build_dataset

    import ssod.datasets.semi_dataset  # noqa: F401
    from ssod.datasets.builder import build_dataloader

    register_toy_dataset()
    dataset = build_dataset(toy_semi_cfg(sup_flags=[1, 1, 1], unsup_flags=[1] * 5))
    loader = build_dataloader(dataset, samples_per_gpu=3, workers_per_gpu=0, seed=0,
                              sampler_cfg=dict(type="SemiBalanceSampler", epoch_length=100))
    batches = iter(loader)
    for _ in range(5):
        next(batches)
    new_factors = np.array([1, 1, 1, 1, 40])
    loader.sampler.set_repeat_factors(1, new_factors)
    unlabeled = []
    for batch in batches:
        local_indices = batch["img"].data[0][:, 0, 0, 0].long().tolist()
        unlabeled += [i for i, s in zip(local_indices, batch["source"].data[0]) if s == "unsup"]
    assert len(unlabeled) >= new_factors.sum()
    # The first pass after the update is exactly one copy of the new repeated list.
    np.testing.assert_array_equal(
        np.bincount(unlabeled[:new_factors.sum()], minlength=5), new_factors)
