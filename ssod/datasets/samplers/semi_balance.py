"""Semi-supervised batch sampler: every per-GPU batch mixes labeled and unlabeled images.

How a sampler epoch is drawn (spec E.6, fixes H.3 and H.42):

* One generator, seeded from ``(seed, epoch)``, runs identically on every rank. Each step it
  picks one aspect-ratio group, builds one batch per rank and yields only this rank's batch.
  Rank slices are therefore disjoint, of equal length, and need no communication; world
  size 1 needs no process group.
* The group is drawn with probability proportional to its size in the repeated index lists
  of both sources together. Per batch, the number of labeled images is Binomial
  (``by_prob``) or fixed from ``sample_ratio``, then moved into ``[1, samples_per_gpu - 1]``
  so that every batch holds at least one labeled and one unlabeled image.
* Each (source, group) pair has an endless stream: shuffled passes over its repeated index
  list. Within a group, an image is drawn with frequency proportional to its repeat factor;
  across groups this holds exactly when both sources split into groups in the same shares.
* A group that holds images of only one source (small custom data sets) takes the missing
  source from the other groups, chosen in proportion to that source's repeated size there,
  and logs a warning once; such batches mix aspect ratios. ``allow_mixed_groups=False``
  turns this case into an error instead.

Repeat factors (labeled RFS, unlabeled CrS) live here, in the main process, where the
training loop can reach them as ``data_loader.sampler``. ``set_repeat_factors`` applies to
every batch drawn from the sampler afterwards, without restarting the iterator (a
DataLoader may already hold a few prefetched batches). No data loader is rebuilt, so no old
workers are left behind (H.37).

Exact resume: the sampler remembers its state at the start of each recently drawn batch, so
``state_dict(consumed)`` describes the position after ``consumed`` batches *used by training*
(a DataLoader draws a few batches ahead). ``load_state_dict`` continues from there: the same
epoch, batch, random state, stream positions and repeat factors.
"""
import collections

import numpy as np
import torch
from mmdet.utils import get_root_logger
from torch.utils.data import Sampler

from ssod.utils import dist_utils

SOURCE_NAMES = ("labeled", "unlabeled")


SNAPSHOTS_KEPT = 4096  # batch-start states kept for state_dict (more than any prefetch depth)
FACTOR_CHANGES_KEPT = 16


def _generator(state):
    """A numpy Generator in ``state`` (a ``bit_generator.state`` dict)."""
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state
    return rng


class _Stream:
    """Endless shuffled passes over a fixed pool of dataset indices.

    ``order_state`` is the generator state the current pass was drawn from, so a stream is
    rebuilt from ``(pool, order_state, pos)``.
    """

    def __init__(self, pool, order_state=None, pos=0):
        self.pool = pool
        self.order_state = order_state
        self.order = pool[:0] if order_state is None else _generator(order_state).permutation(pool)
        self.pos = pos

    def take(self, count, rng):
        chunks = [self.pool[:0]]
        while count > 0:
            if self.pos == len(self.order):
                self.order_state = rng.bit_generator.state
                self.order = rng.permutation(self.pool)
                self.pos = 0
            chunk = self.order[self.pos:self.pos + count]
            self.pos += len(chunk)
            count -= len(chunk)
            chunks.append(chunk)
        return np.concatenate(chunks)


def _as_repeat_factors(factors, size, source):
    """Validate repeat factors for one source and return them as an int64 array."""
    name = SOURCE_NAMES[source]
    factors = np.asarray(factors)
    if factors.ndim != 1 or len(factors) != size:
        raise ValueError(
            f"repeat factors of the {name} source need shape ({size},), got {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
        if not np.issubdtype(factors.dtype, np.floating) or not np.all(
                np.isfinite(factors) & (factors == np.round(factors))):
            raise ValueError(f"repeat factors of the {name} source must be integers, "
                             f"got dtype {factors.dtype}")
    factors = factors.astype(np.int64)
    bad = np.flatnonzero(factors < 1)
    if len(bad):
        raise ValueError(f"repeat factors of the {name} source must be >= 1: image {bad[0]} "
                         f"has {factors[bad[0]]}")
    return factors


class SemiBalanceSampler(Sampler):
    """Yields this rank's dataset indices, ``samples_per_gpu`` per batch, batch by batch.

    Args:
        dataset: a ``SemiDataset`` (or any object with ``flag`` over the concatenated
            images and ``source_sizes = (num_labeled, num_unlabeled)``).
        samples_per_gpu: images per per-GPU batch (at least 2).
        sample_ratio: relative weights (labeled, unlabeled) of the two sources.
        by_prob: draw the per-batch source counts at random (True) or fix them.
        epoch_length: batches per GPU per sampler epoch.
        num_replicas, rank: world size and rank; default from the process group (1, 0
            without one).
        seed: sampling seed; the stream depends on (seed, epoch) only.
        sup_repeat_factors: labeled repeat factors (e.g. RFS), one int >= 1 per image.
        allow_mixed_groups: if False, a group with no image of one source is an error.
    """

    def __init__(self, dataset, samples_per_gpu, sample_ratio=(1, 4), by_prob=True,
                 epoch_length=7330, num_replicas=None, rank=None, seed=0,
                 sup_repeat_factors=None, allow_mixed_groups=True):
        if int(samples_per_gpu) < 2:
            raise ValueError(f"samples_per_gpu must be >= 2 to hold a labeled and an unlabeled "
                             f"image, got {samples_per_gpu}")
        if len(sample_ratio) != 2 or min(sample_ratio) <= 0:
            raise ValueError(f"sample_ratio must be two positive numbers (labeled, unlabeled), "
                             f"got {sample_ratio}")
        if int(epoch_length) < 1:
            raise ValueError(f"epoch_length must be >= 1, got {epoch_length}")
        self.samples_per_gpu = int(samples_per_gpu)
        self.sample_ratio = tuple(float(r) for r in sample_ratio)
        self.by_prob = bool(by_prob)
        self.epoch_length = int(epoch_length)
        if num_replicas is None:
            num_replicas = dist_utils.get_world_size()
        self.num_replicas = int(num_replicas)
        self.rank = dist_utils.get_rank() if rank is None else int(rank)
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank {self.rank} is outside [0, {self.num_replicas})")
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        if self.num_replicas > 1 and dist_utils.is_distributed():
            self.seed = dist_utils.broadcast_object(self.seed)
        self.epoch = 0
        self._epoch_offset = 0  # set_epoch(e) means epoch offset + e (see load_state_dict)
        self._resume_point = None  # state (as _describe returns it) the next __iter__ starts from
        self._snapshots = collections.OrderedDict()  # global batch index -> state at its start
        self._live = None  # the running generator's (epoch, next batch, rng, streams, versions)
        self._factor_changes = collections.deque(maxlen=FACTOR_CHANGES_KEPT)  # (from batch, source, factors)
        self._scheduled_factors = []  # restored changes not yet reached: (from batch, source, factors)

        self._source_sizes = self._read_source_sizes(dataset)
        self._flags = self._read_flags(dataset, sum(self._source_sizes))
        self._offsets = (0, self._source_sizes[0])
        self.groups = np.unique(self._flags)
        self._factors = [np.ones(n, dtype=np.int64) for n in self._source_sizes]
        self._pools = [self._build_pools(source) for source in (0, 1)]
        self._versions = [0, 0]
        self._check_groups(allow_mixed_groups)
        if sup_repeat_factors is not None:
            self.set_repeat_factors(0, sup_repeat_factors)

    @staticmethod
    def _read_source_sizes(dataset):
        sizes = getattr(dataset, "source_sizes", None)
        if sizes is None or len(sizes) != 2:
            raise ValueError(f"{type(dataset).__name__} has no source_sizes "
                             f"(num_labeled, num_unlabeled); use SemiDataset")
        for name, size in zip(SOURCE_NAMES, sizes):
            if size == 0:
                raise ValueError(f"the {name} dataset is empty; check its ann_file, "
                                 f"img_prefix and filter_empty_gt")
        return tuple(int(n) for n in sizes)

    @staticmethod
    def _read_flags(dataset, total):
        flags = getattr(dataset, "flag", None)
        if flags is None or len(flags) != total:
            raise ValueError(f"{type(dataset).__name__}.flag must hold one aspect-ratio group "
                             f"per image ({total} images)")
        return np.asarray(flags, dtype=np.int64)

    def _build_pools(self, source):
        """Repeated dataset indices of one source, split by aspect-ratio group."""
        offset, size = self._offsets[source], self._source_sizes[source]
        repeated = np.repeat(np.arange(offset, offset + size), self._factors[source])
        repeated_flags = self._flags[repeated]
        return {int(g): repeated[repeated_flags == g] for g in self.groups}

    def _check_groups(self, allow_mixed_groups):
        logger = get_root_logger()
        for group in self.groups:
            for source, name in enumerate(SOURCE_NAMES):
                if len(self._pools[source][int(group)]):
                    continue
                message = (f"aspect-ratio group {group} has no {name} image, so its batches "
                           f"take {name} images from the other groups")
                if not allow_mixed_groups:
                    raise ValueError(message + " (refused: allow_mixed_groups=False)")
                logger.warning(message)

    def set_repeat_factors(self, source, factors):
        """Replace the repeat factors of one source (0 labeled, 1 unlabeled).

        Takes effect from the next batch drawn; call it with the same factors on every rank.
        Factors equal to the current ones change nothing (the streams continue).
        """
        if source not in (0, 1):
            raise ValueError(f"source must be 0 (labeled) or 1 (unlabeled), got {source}")
        factors = _as_repeat_factors(factors, self._source_sizes[source], source)
        if self._set_factors(source, factors):
            self._factor_changes.append((self._next_global_index(), source, factors))

    def _set_factors(self, source, factors):
        """Install validated factors; False if they equal the current ones."""
        if np.array_equal(factors, self._factors[source]):
            return False
        self._factors[source] = factors
        self._pools[source] = self._build_pools(source)
        self._versions[source] += 1
        return True

    def repeat_factors(self, source):
        """Current repeat factors of one source (a copy)."""
        return self._factors[source].copy()

    def repeated_indices(self, source):
        """(dataset indices, aspect flags) of one source's repeated index list."""
        indices = np.concatenate([self._pools[source][int(g)] for g in self.groups])
        return indices, self._flags[indices]

    def set_epoch(self, epoch):
        """Epoch ``epoch`` counted from the epoch :meth:`load_state_dict` restored (0 if none).

        mmcv's ``IterLoader`` counts its epochs from 0 in every run, resumed or not.
        """
        self.epoch = self._epoch_offset + int(epoch)

    def __len__(self):
        return self.epoch_length * self.samples_per_gpu

    def __iter__(self):
        for batches in self.global_batches():
            yield from batches[self.rank].tolist()

    def global_batches(self):
        """Per step, the list of all ranks' batches (arrays of dataset indices)."""
        epoch, start, rng, streams = self._epoch_start()
        versions = list(self._versions)
        self._live = (epoch, start, rng, streams, versions)
        for batch in range(start, self.epoch_length):
            self._apply_scheduled_factors(self._global_index(epoch, batch))
            streams = self._current_streams(streams, versions)
            versions = list(self._versions)
            self._remember(self._describe(epoch, batch, rng, streams))
            group = self._choose_group(rng, sources=(0, 1))
            batches = [self._draw_batch(rng, group, streams) for _ in range(self.num_replicas)]
            self._live = (epoch, batch + 1, rng, streams, versions)
            yield batches

    def _epoch_start(self):
        """(epoch, first batch, generator, streams) where iteration of this epoch starts."""
        point, self._resume_point = self._resume_point, None
        if point is None or point["epoch"] != self.epoch or point["rng"] is None:
            return self.epoch, 0, np.random.default_rng([self.seed, self.epoch]), {}
        streams = {key: _Stream(self._pools[key[0]][key[1]], state, pos)
                   for key, (state, pos) in point["streams"].items()}
        return self.epoch, point["batch"], _generator(point["rng"]), streams

    def _current_streams(self, streams, versions):
        """``streams`` without those of sources whose repeat factors changed since ``versions``."""
        changed = [source for source in (0, 1) if versions[source] != self._versions[source]]
        return {key: s for key, s in streams.items() if key[0] not in changed}

    # ------------------------------------------------------------------ exact resume
    def _global_index(self, epoch, batch):
        return epoch * self.epoch_length + batch

    def _next_global_index(self):
        """Global index (``epoch * epoch_length + batch``) of the next batch to draw."""
        if self._resume_point is not None:
            return self._global_index(self._resume_point["epoch"], self._resume_point["batch"])
        if self._live is not None:
            return self._global_index(*self._live[:2])
        return self._global_index(self.epoch, 0)

    def _apply_scheduled_factors(self, index):
        while self._scheduled_factors and self._scheduled_factors[0][0] <= index:
            _, source, factors = self._scheduled_factors.pop(0)
            self._set_factors(source, factors)

    def _describe(self, epoch, batch, rng, streams):
        """The state at the start of batch ``batch`` of ``epoch``, after its factor changes."""
        return dict(epoch=epoch, batch=batch, rng=rng.bit_generator.state if rng is not None else None,
                    streams={key: (s.order_state, s.pos) for key, s in streams.items()},
                    factors=list(self._factors), scheduled=list(self._scheduled_factors))

    def _remember(self, state):
        self._snapshots[self._global_index(state["epoch"], state["batch"])] = state
        while len(self._snapshots) > SNAPSHOTS_KEPT:
            self._snapshots.popitem(last=False)

    def _next_state(self):
        """The state at the start of the next batch to draw."""
        if self._resume_point is not None:
            return self._resume_point
        if self._live is None:
            return self._describe(self.epoch, 0, None, {})
        epoch, batch, rng, streams, versions = self._live
        if batch == self.epoch_length:
            return self._describe(epoch + 1, 0, None, {})
        return self._describe(epoch, batch, rng, self._current_streams(streams, versions))

    def state_dict(self, consumed):
        """The sampler's state after training used ``consumed`` batches (counted from iteration 0).

        A DataLoader draws batches ahead of training: the state is the one remembered at the
        start of batch ``consumed``, with the repeat-factor changes made since then scheduled at
        the batch they took effect from. Tensors and plain Python values only. ``ValueError``
        if that batch is neither the next one to draw nor among the last ``SNAPSHOTS_KEPT``.
        """
        consumed = int(consumed)
        state = self._snapshots.get(consumed)
        if state is None:
            state = self._next_state()
            if self._global_index(state["epoch"], state["batch"]) != consumed:
                raise ValueError(f"SemiBalanceSampler: no state for {consumed} consumed batches (next batch to "
                                 f"draw: epoch {state['epoch']} batch {state['batch']})")
        scheduled = sorted(state["scheduled"] + [change for change in self._factor_changes if change[0] > consumed],
                           key=lambda change: change[0])
        return dict(
            epoch=state["epoch"], batch=state["batch"], rng=_plain_rng_state(state["rng"]),
            streams=[[source, group, _plain_rng_state(order_state), pos]
                     for (source, group), (order_state, pos) in state["streams"].items()],
            factors=[_factor_tensor(f) for f in state["factors"]],
            scheduled_factors=[[index, source, _factor_tensor(f)] for index, source, f in scheduled],
            seed=self.seed, config=self._config())

    def _config(self):
        return dict(epoch_length=self.epoch_length, samples_per_gpu=self.samples_per_gpu,
                    num_replicas=self.num_replicas, source_sizes=list(self._source_sizes),
                    sample_ratio=list(self.sample_ratio), by_prob=self.by_prob)

    def load_state_dict(self, state):
        """Continue from a :meth:`state_dict`, with its seed; ``ValueError`` naming the settings that changed."""
        changed = [f"{key} {value} (checkpoint: {state['config'].get(key)})"
                   for key, value in self._config().items() if state["config"].get(key) != value]
        if changed:
            raise ValueError("SemiBalanceSampler: cannot continue the checkpoint's data order, settings "
                             "changed: " + ", ".join(changed))
        self.seed = int(state["seed"])
        for source, factors in enumerate(state["factors"]):
            self._set_factors(source, _as_repeat_factors(factors.numpy(), self._source_sizes[source], source))
        self._epoch_offset = self.epoch = int(state["epoch"])
        self._snapshots.clear()
        self._factor_changes.clear()
        self._live = None
        self._scheduled_factors = [(int(index), int(source), factors.numpy().astype(np.int64))
                                   for index, source, factors in state["scheduled_factors"]]
        self._resume_point = dict(
            epoch=self.epoch, batch=int(state["batch"]), rng=_numpy_rng_state(state["rng"]),
            streams={(int(source), int(group)): (_numpy_rng_state(order_state), int(pos))
                     for source, group, order_state, pos in state["streams"]},
            factors=list(self._factors), scheduled=list(self._scheduled_factors))

    def _choose_group(self, rng, sources):
        sizes = np.array([sum(len(self._pools[s][int(g)]) for s in sources) for g in self.groups])
        cumulative = np.cumsum(sizes)
        return int(self.groups[np.searchsorted(cumulative, rng.random() * cumulative[-1],
                                               side="right")])

    def _draw_batch(self, rng, group, streams):
        num_labeled = self._num_labeled(rng)
        counts = (num_labeled, self.samples_per_gpu - num_labeled)
        parts = []
        for source, count in enumerate(counts):
            source_group = group
            if not len(self._pools[source][group]):
                source_group = self._choose_group(rng, sources=(source,))
            key = (source, source_group)
            if key not in streams:
                streams[key] = _Stream(self._pools[source][source_group])
            parts.append(streams[key].take(count, rng))
        return np.concatenate(parts)

    def _num_labeled(self, rng):
        labeled_share = self.sample_ratio[0] / sum(self.sample_ratio)
        if self.by_prob:
            num_labeled = int(rng.binomial(self.samples_per_gpu, labeled_share))
        else:
            num_labeled = int(round(self.samples_per_gpu * labeled_share))
        return min(max(num_labeled, 1), self.samples_per_gpu - 1)


def _factor_tensor(factors):
    return torch.from_numpy(np.asarray(factors, dtype=np.int32))


def _plain_rng_state(state):
    """A PCG64 ``bit_generator.state`` with its 128-bit integers as strings (None stays None)."""
    if state is None:
        return None
    inner = state["state"]
    return dict(state, state=dict(state=str(inner["state"]), inc=str(inner["inc"])))


def _numpy_rng_state(state):
    if state is None:
        return None
    inner = state["state"]
    return dict(state, state=dict(state=int(inner["state"]), inc=int(inner["inc"])))
