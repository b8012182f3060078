"""Class-rebalancing sampling (CrS) between iterations: pseudo-label sync and repeat-factor refresh.

``GradientResamplingHook`` does, at the start of iteration ``t`` (``before_train_iter``),
what upstream did inside ``forward_train`` and in a custom runner (spec E.2-E.4, fixes H.2,
H.6, H.10-H.13, H.26, H.36, H.37):

* save, when ``t % save_interval == 1``: the pending pseudo labels of every rank (the
  model's ``pseudo_label_pool``) are gathered; rank 0 merges them into the cumulative
  :class:`PseudoLabelStore` with ``lambd = min(alpha * t / max_iter, alpha)`` and writes
  ``work_dir/pseudo_labels/pseudo.json`` and the snapshot ``pseudo_iter{t}.json`` atomically;
  every rank clears its pending entries.
* refresh, when ``t % update_iter == 1`` and ``t > 10``: rank 0 computes the CrS repeat
  factors of the unlabeled images from the store (``crs_repeat_factors`` with ``L_c``, ``N_L``
  of the built labeled dataset, ``labeled_dataset_statistics``) and broadcasts them; every
  rank hands them to its ``SemiBalanceSampler``, which applies them from the next batch on.
  No loader is rebuilt.

In one iteration the save comes first, so the refresh sees the newest labels; the upstream
order (refresh first, one save interval of lag, H.26) is kept behind ``upstream_order=True``.

Restarts: a new run (``runner.iter == 0``) starts from an empty store, overwriting
``pseudo.json`` and deleting old snapshots. The iterations of the last save and of the store
used by the last refresh travel in the checkpoint (``meta['hook_msgs']``), so a resumed run
restores the store of its checkpoint from the snapshot and re-applies the same repeat factors.
The model's pending entries since the last save travel in the checkpoint's train state
(``ssod/apis/train_state.py``), which also restores the sampler's repeat factors and position.
"""
import glob
import os
import os.path as osp

import numpy as np
from mmcv.runner import HOOKS, Hook

from ssod.datasets.crs import crs_repeat_factors
from ssod.datasets.crs_wrappers import ClassBalancedDatasetCrS, labeled_dataset_statistics
from ssod.datasets.pseudo_store import PseudoLabelStore, linear_lambd, snapshot_path
from ssod.utils.dist_utils import (all_gather_objects, broadcast_object, get_world_size, is_main_process,
                                   unwrap_model)

PSEUDO_SUBDIR = "pseudo_labels"
STORE_FILE = "pseudo.json"
SAVE_ITER_MSG = "crs_save_iter"
REFRESH_STORE_ITER_MSG = "crs_refresh_store_iter"
MIN_REFRESH_ITER = 10  # refreshes happen only for t > 10 (spec E.3)


def is_save_iter(t: int, save_interval: int) -> bool:
    return t % save_interval == 1


def is_refresh_iter(t: int, update_iter: int) -> bool:
    return t % update_iter == 1 and t > MIN_REFRESH_ITER


def train_sampler_and_dataset(runner):
    """The sampler and dataset of the runner's current training loader (mmcv ``IterLoader`` unwrapped)."""
    loader = getattr(runner, "data_loader", None)
    loader = getattr(loader, "_dataloader", loader)
    sampler = getattr(loader, "sampler", None)
    if not hasattr(sampler, "set_repeat_factors"):
        raise TypeError(f"GradientResamplingHook needs a training loader whose sampler takes repeat factors "
                        f"(SemiBalanceSampler); got sampler {type(sampler).__name__}")
    return sampler, loader.dataset


def repeat_factor_stats(factors: np.ndarray) -> dict:
    """Plain-Python summary of unlabeled repeat factors for logs."""
    return dict(crs_repeat_mean=float(factors.mean()), crs_repeat_max=int(factors.max()),
                crs_repeated_length=int(factors.sum()), crs_dataset_length=len(factors),
                crs_repeat_hist=np.bincount(factors)[1:].tolist())


@HOOKS.register_module()
class GradientResamplingHook(Hook):
    """Pseudo-label sync and CrS repeat-factor refresh of a ``SoftTeacherGrS`` run (spec E.2-E.4).

    Args:
        save_interval (int): gather and save pseudo labels when ``t % save_interval == 1``.
        update_iter (int): refresh the unlabeled repeat factors when ``t % update_iter == 1``, ``t > 10``.
        alpha (float, optional): final CrS strength; default ``model.train_cfg.alpha``.
        max_iter (int, optional): length of the lambd ramp; default ``model.train_cfg.max_iter``,
            else ``runner.max_iters``.
        upstream_order (bool): refresh before the same-iteration save (spec H.26).

    ``L_c`` and ``N_L`` come from the training set's labeled side as built (all parts of a
    concatenation, after mmdet's filters): images per class of their training targets (crowd
    boxes excluded, spec H.29) and the number of labeled images. They are counted once on rank 0
    and cached under ``work_dir/pseudo_labels`` (see ``labeled_dataset_statistics``).

    Needs ``data.train`` = ``SemiDataset`` with ``unsup`` a ``ClassBalancedDatasetCrS``, the
    ``SemiBalanceSampler``, and a model with ``pseudo_label_pool`` (``SoftTeacherGrS``).
    """

    def __init__(self, save_interval=4000, update_iter=16000, alpha=None, max_iter=None, upstream_order=False):
        for name, value in (("save_interval", save_interval), ("update_iter", update_iter)):
            if int(value) != value or value < 2:
                raise ValueError(f"GradientResamplingHook: {name} = {value}; expected an integer >= 2 "
                                 f"(events happen at t % {name} == 1)")
        if alpha is not None and not alpha >= 0:
            raise ValueError(f"GradientResamplingHook: alpha = {alpha}; expected >= 0")
        if max_iter is not None and not max_iter > 0:
            raise ValueError(f"GradientResamplingHook: max_iter = {max_iter}; expected > 0")
        self.save_interval = int(save_interval)
        self.update_iter = int(update_iter)
        self.alpha = alpha
        self.max_iter = max_iter
        self.upstream_order = upstream_order
        self.store = None  # rank 0 only
        self._restored_factor_store = None  # rank 0, resumed runs: the store of the last refresh
        self._set_up = False

    # ------------------------------------------------------------------ run start
    def before_run(self, runner):
        model = self._model(runner)
        self.alpha = self._resolve("alpha", self.alpha, model.train_cfg.get("alpha"))
        if self.alpha is None:
            raise ValueError("GradientResamplingHook: set alpha (hook argument or model.train_cfg.alpha)")
        self.max_iter = self._resolve("max_iter", self.max_iter, model.train_cfg.get("max_iter"))
        if self.max_iter is None:
            self.max_iter = runner.max_iters
        self.pseudo_dir = osp.join(runner.work_dir, PSEUDO_SUBDIR)
        self.store_path = osp.join(self.pseudo_dir, STORE_FILE)
        self._set_up = False
        if not is_main_process():
            return
        os.makedirs(self.pseudo_dir, exist_ok=True)
        if runner.iter == 0:
            self._start_new_store(runner, model.num_classes)
        else:
            self._restore_store(runner, model.num_classes)

    @staticmethod
    def _resolve(name, hook_value, cfg_value):
        if hook_value is not None and cfg_value is not None and hook_value != cfg_value:
            raise ValueError(f"GradientResamplingHook {name} = {hook_value} but model.train_cfg.{name} = "
                             f"{cfg_value}; set one of them")
        return hook_value if hook_value is not None else cfg_value

    def _start_new_store(self, runner, num_classes):
        stale = glob.glob(osp.join(self.pseudo_dir, "pseudo_iter*.json"))
        for path in stale:
            os.remove(path)
        self.store = PseudoLabelStore(num_classes, alpha=self.alpha)
        self.store.save(self.store_path)
        runner.logger.info(f"CrS: new run, empty pseudo-label store {self.store_path}"
                           + (f" ({len(stale)} old snapshots removed)" if stale else ""))

    def _restore_store(self, runner, num_classes):
        messages = (runner.meta or {}).get("hook_msgs", {})
        save_iter = messages.get(SAVE_ITER_MSG)
        if save_iter is None:
            runner.logger.warning(f"CrS: the resumed checkpoint (iter {runner.iter}) carries no pseudo-label "
                                  "state; starting from an empty store")
            self._start_new_store(runner, num_classes)
            return
        self.store = self._load_snapshot(save_iter, num_classes)
        self.store.save(self.store_path)
        refresh_iter = messages.get(REFRESH_STORE_ITER_MSG)
        if refresh_iter is not None:
            self._restored_factor_store = self._load_snapshot(refresh_iter, num_classes)
        runner.logger.info(f"CrS: resumed at iter {runner.iter} with the store of iter {save_iter} "
                           f"({len(self.store)} images); repeat factors "
                           + ("uniform" if refresh_iter is None else f"from the store of iter {refresh_iter}"))

    def _load_snapshot(self, store_iter, num_classes):
        if store_iter == 0:
            return PseudoLabelStore(num_classes, alpha=self.alpha)
        path = snapshot_path(self.pseudo_dir, store_iter)
        if not osp.isfile(path):
            raise FileNotFoundError(f"CrS resume: snapshot {path} of the checkpoint's pseudo-label store is "
                                    "missing; resume in the work_dir of the original run")
        return PseudoLabelStore.load(path, num_classes=num_classes)

    def _set_up_data(self, runner):
        """First iteration: find the sampler and the unlabeled images; re-apply resumed factors."""
        self.sampler, dataset = train_sampler_and_dataset(runner)
        unsup = getattr(dataset, "unsup", None)
        if not isinstance(unsup, ClassBalancedDatasetCrS):
            raise TypeError("GradientResamplingHook needs data.train = SemiDataset whose unsup dataset is a "
                            f"ClassBalancedDatasetCrS; got {type(dataset).__name__} with unsup "
                            f"{type(unsup).__name__}")
        if is_main_process():
            self.image_keys = unsup.image_keys()
            self.labeled_counts, self.num_labeled, cached = labeled_dataset_statistics(
                dataset.sup, self._model(runner).num_classes, cache_dir=self.pseudo_dir)
            absent = int((self.labeled_counts == 0).sum())
            runner.logger.info(f"CrS labeled statistics ({'cached' if cached else 'counted'}): N_L = "
                               f"{self.num_labeled} images, {absent} of {len(self.labeled_counts)} classes "
                               "without a labeled image")
        self._set_up = True
        if broadcast_object(self._restored_factor_store is not None):
            self._apply_factors(self._restored_factor_store)
            self._restored_factor_store = None

    # ------------------------------------------------------------------ every iteration
    def before_train_iter(self, runner):
        if not self._set_up:
            self._set_up_data(runner)
        t = runner.iter
        save, refresh = is_save_iter(t, self.save_interval), is_refresh_iter(t, self.update_iter)
        if refresh and self.upstream_order:
            self._refresh(runner)
        if save:
            self._save(runner, t)
        if refresh and not self.upstream_order:
            self._refresh(runner)

    def _save(self, runner, t):
        pool = self._model(runner).pseudo_label_pool
        gathered = all_gather_objects(pool.pending())
        pool.clear_pending()
        if not is_main_process():
            return
        lambd = linear_lambd(self.alpha, t, self.max_iter)
        self.store.merge(gathered, lambd, t)
        self.store.save(self.store_path, snapshot=True)
        self._hook_messages(runner)[SAVE_ITER_MSG] = t
        runner.logger.info(f"CrS save at iter {t}: {sum(map(len, gathered))} sightings from {get_world_size()} "
                           f"rank(s); {len(self.store)} images in the store, lambd {lambd:.6g}")
        self._log_class_state(runner)

    def _refresh(self, runner):
        factors, num_pseudo_images = self._apply_factors(self.store)
        if not is_main_process():
            return
        self._hook_messages(runner)[REFRESH_STORE_ITER_MSG] = self.store.meta["iter"]
        stats = dict(crs_lambd=self.store.lambd, crs_pseudo_images=num_pseudo_images,
                     **repeat_factor_stats(factors))
        runner.logger.info(
            f"CrS refresh at iter {runner.iter}: lambd {stats['crs_lambd']:.6g}, "
            f"{stats['crs_pseudo_images']} of {len(factors)} unlabeled images with pseudo boxes, repeats "
            f"mean {stats['crs_repeat_mean']:.4f} max {stats['crs_repeat_max']}, histogram (1..max) "
            f"{stats['crs_repeat_hist']}, repeated length {stats['crs_repeated_length']}")
        runner.log_buffer.output.update(stats)
        self._log_class_state(runner)

    def _apply_factors(self, store):
        """Rank 0 computes the CrS factors from ``store``; every rank sets them on its sampler.

        Returns the factors and (rank 0; None elsewhere) the number of unlabeled images with pseudo boxes.
        """
        factors = num_pseudo_images = None
        if is_main_process():
            labels, margins = store.labels_and_margins(self.image_keys)
            factors = crs_repeat_factors(labels, margins, self.labeled_counts, self.num_labeled, store.lambd)
            num_pseudo_images = sum(1 for image_labels in labels if len(image_labels))
        factors = broadcast_object(factors)
        self.sampler.set_repeat_factors(1, factors)
        return factors, num_pseudo_images

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _model(runner):
        model = unwrap_model(runner.model)
        for name in ("pseudo_label_pool", "current_class_thresholds", "gbr_class_weights", "num_classes"):
            if not hasattr(model, name):
                raise TypeError(f"GradientResamplingHook needs a SoftTeacherGrS-like model; "
                                f"{type(model).__name__} has no {name!r}")
        return model

    @staticmethod
    def _hook_messages(runner):
        if runner.meta is None:
            runner.meta = {}
        return runner.meta.setdefault("hook_msgs", {})

    def _log_class_state(self, runner):
        """Current GbT thresholds and GbR weights into the log buffer (next log line, .log.json)."""
        model = self._model(runner)
        state = dict(gbt_thresholds=model.current_class_thresholds().tolist())
        weights = model.gbr_class_weights()
        if weights is not None:
            state["gbr_weights"] = weights.tolist()
        runner.log_buffer.output.update(state)
