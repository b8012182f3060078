"""Exact resume: the training state a checkpoint needs besides weights, optimizer and iteration.

At every iteration the checkpoint hook saves, :class:`TrainStateHook` (on every rank, after the
optimizer step, before the checkpoint hook) puts into ``runner.meta['train_state']``:

* ``iter``: the number of finished iterations the state belongs to;
* ``sampler``: the training sampler's position after those iterations, i.e. the batches used
  by training, not those the loader drew ahead (``SemiBalanceSampler.state_dict``);
* ``rng``: per rank, the python ``random``, numpy and torch (CPU, CUDA) random states;
* ``pending_pseudo_labels``: per rank, the model's CrS pseudo labels collected since the last
  save of the store (None for a model without ``pseudo_label_pool``).

:func:`restore_train_state` puts them back before the first iteration of the resumed run.
Everything is tensors and plain Python values, so checkpoints load with ``weights_only=True``.
"""
import random

import numpy as np
import torch
from mmcv.runner import CheckpointHook, Hook
from torch.utils.data import BatchSampler

from ssod.utils.dist_utils import all_gather_objects, get_rank, get_world_size, is_main_process, unwrap_model

TRAIN_STATE_KEY = "train_state"


def rng_state() -> dict:
    """This process's python, numpy and torch random states as tensors and plain values."""
    version, internal, gauss_next = random.getstate()
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(python=[version, list(internal), gauss_next],
                 numpy=dict(keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos), has_gauss=int(has_gauss),
                            cached_gaussian=float(cached_gaussian)),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train_sampler(data_loader):
    """The sampler of a training loader (mmcv's ``IterLoader`` unwrapped): its own batch sampler if it has one."""
    loader = getattr(data_loader, "_dataloader", data_loader)
    batch_sampler = getattr(loader, "batch_sampler", None)
    if batch_sampler is not None and not isinstance(batch_sampler, BatchSampler):
        return batch_sampler
    return getattr(loader, "sampler", None)


def _pseudo_label_pool(runner):
    return getattr(unwrap_model(runner.model), "pseudo_label_pool", None)


def capture_train_state(runner):
    """Collective: the train state after the current iteration, on rank 0 (None on other ranks)."""
    pool = _pseudo_label_pool(runner)
    local = dict(rng=rng_state(), pending=None if pool is None else dict(pool.pending()))
    gathered = all_gather_objects(local)
    if not is_main_process():
        return None
    finished = runner.iter + 1
    sampler = train_sampler(runner.data_loader)
    return dict(iter=finished,
                sampler=sampler.state_dict(finished) if hasattr(sampler, "state_dict") else None,
                rng=[entry["rng"] for entry in gathered],
                pending_pseudo_labels=None if pool is None else [entry["pending"] for entry in gathered])


def restore_train_state(runner, data_loader, state) -> None:
    """Restore a :func:`capture_train_state` result before the first iteration of a resumed run."""
    logger = runner.logger
    if state is None:
        logger.warning(f"the checkpoint of iteration {runner.iter} holds no train state: the data order, random "
                       "numbers and pending pseudo labels restart")
        return
    if state["iter"] != runner.iter:
        logger.warning(f"the checkpoint's train state belongs to iteration {state['iter']}, not {runner.iter}: "
                       "ignored; the data order, random numbers and pending pseudo labels restart")
        return
    _restore_sampler(logger, train_sampler(data_loader), state["sampler"])
    world_size, rank = get_world_size(), get_rank()
    if len(state["rng"]) == world_size:
        set_rng_state(state["rng"][rank])
    else:
        logger.warning(f"random states saved by {len(state['rng'])} processes, resumed on {world_size}: not restored")
    pending = state["pending_pseudo_labels"]
    pool = _pseudo_label_pool(runner)
    if pending is not None and pool is not None:
        if len(pending) != world_size:  # rank 0 takes them all, in the original rank order
            pending = [{key: entry for entries in pending for key, entry in entries.items()}] + \
                [{}] * (world_size - 1)
        pool.restore_pending(pending[rank], source=f"checkpoint of iteration {runner.iter}")
    logger.info(f"train state of iteration {runner.iter} restored (sampler position, random states"
                + (", pending pseudo labels)" if pending is not None else ")"))


def _restore_sampler(logger, sampler, state):
    if state is None or not hasattr(sampler, "load_state_dict"):
        logger.warning(f"the data order restarts: sampler {type(sampler).__name__} does not resume its position")
        return
    try:
        sampler.load_state_dict(state)
    except ValueError as err:
        logger.warning(f"the data order restarts: {err}")


class TrainStateHook(Hook):
    """Records :func:`capture_train_state` in ``runner.meta`` at the iterations a checkpoint is saved.

    Register it with a priority above the ``CheckpointHook`` (``ABOVE_NORMAL``); the runner does.
    """

    def after_train_iter(self, runner):
        if runner.meta is None:
            runner.meta = {}
        runner.meta.pop(TRAIN_STATE_KEY, None)
        if not self._checkpoint_due(runner):
            return
        state = capture_train_state(runner)
        if state is not None:
            runner.meta[TRAIN_STATE_KEY] = state

    @staticmethod
    def _checkpoint_due(runner):
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.by_epoch and (
                    hook.every_n_iters(runner, hook.interval) or (hook.save_last and hook.is_last_iter(runner))):
                return True
        return False
