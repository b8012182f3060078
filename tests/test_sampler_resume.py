"""SemiBalanceSampler state for exact resume: the position of the batches training used, not drawn."""
import collections
import io
import itertools

import numpy as np
import pytest
import torch

from ssod.datasets.samplers.semi_balance import SemiBalanceSampler
from test_sampler import FakeSemiDataset


class PrefetchingIterLoader:
    """mmcv's ``IterLoader`` over a loader that draws ``prefetch`` batches ahead (0: on demand)."""

    def __init__(self, sampler, prefetch):
        self.sampler, self.prefetch, self.epoch = sampler, prefetch, 0
        self._start()

    def _start(self):
        indices = iter(self.sampler)
        self.batches = iter(lambda: list(itertools.islice(indices, self.sampler.samples_per_gpu)), [])
        self.queue = collections.deque()
        self._fill(self.prefetch)

    def _fill(self, size):
        self.queue.extend(itertools.islice(self.batches, max(size - len(self.queue), 0)))

    def __next__(self):
        self._fill(1)
        if not self.queue:  # the epoch is over
            self.epoch += 1
            self.sampler.set_epoch(self.epoch)
            self._start()
            self._fill(1)
        batch = self.queue.popleft()
        self._fill(self.prefetch)
        return batch


def make_sampler(seed=3, epoch_length=6):
    rng = np.random.default_rng(0)
    dataset = FakeSemiDataset(rng.integers(0, 2, 7), rng.integers(0, 2, 11))
    return SemiBalanceSampler(dataset, samples_per_gpu=4, epoch_length=epoch_length, num_replicas=1, rank=0,
                              seed=seed)


REFRESHES = {4: np.arange(1, 12) % 3 + 1, 13: np.arange(11) % 2 + 1}  # consumed batches -> unlabeled factors


def train(sampler, loader, start, stop, states=None):
    """Batches ``start..stop-1`` as a training loop uses them; a refresh before a batch when due."""
    used = []
    for consumed in range(start, stop):
        used.append(next(loader))
        if consumed in REFRESHES:  # GradientResamplingHook.before_train_iter, after the batch was fetched
            sampler.set_repeat_factors(1, REFRESHES[consumed])
        if states is not None:  # checkpoint after the iteration
            states[consumed + 1] = weights_only_roundtrip(sampler.state_dict(consumed + 1))
    return used


def weights_only_roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("prefetch", [0, 1, 4])
def test_resumed_sampler_continues_the_uninterrupted_batches(prefetch):
    """Across epoch ends and repeat-factor refreshes (also just before the checkpoint), with the checkpoint's seed."""
    sampler = make_sampler()
    states = {}
    uninterrupted = train(sampler, PrefetchingIterLoader(sampler, prefetch), 0, 24, states)
    for checkpoint in (3, 5, 6, 12, 14, 16):
        resumed = make_sampler(seed=99)  # a resume without --seed draws another seed
        resumed.load_state_dict(states[checkpoint])
        batches = train(resumed, PrefetchingIterLoader(resumed, prefetch), checkpoint, 24)
        assert batches == uninterrupted[checkpoint:], f"checkpoint after {checkpoint} batches"


def test_state_of_a_batch_not_yet_drawn_or_forgotten_is_an_error():
    sampler = make_sampler()
    loader = PrefetchingIterLoader(sampler, 2)
    next(loader)
    assert sampler.state_dict(1)["batch"] == 1
    with pytest.raises(ValueError, match="no state for 5 consumed batches"):
        sampler.state_dict(5)


def test_changed_settings_refuse_the_state():
    state = make_sampler().state_dict(0)
    with pytest.raises(ValueError, match="epoch_length 9 .checkpoint: 6."):
        make_sampler(epoch_length=9).load_state_dict(state)


def test_equal_repeat_factors_leave_the_streams_alone():
    reference, sampler = make_sampler(), make_sampler()
    expected = list(reference)
    iterator = iter(sampler)
    first = list(itertools.islice(iterator, 8))
    sampler.set_repeat_factors(1, np.ones(11, dtype=np.int64))
    assert first + list(iterator) == expected
