"""An mmcv IterBasedRunner whose checkpoints resume after the iteration they were saved at."""
import os
import os.path as osp

import mmcv
import torch
from mmcv.runner import RUNNERS, IterBasedRunner, Priority, save_checkpoint

from ssod.apis.checkpoint import load_model_weights
from ssod.apis.divergence import check_finite_model
from ssod.apis.train_state import TRAIN_STATE_KEY, TrainStateHook, restore_train_state


@RUNNERS.register_module()
class ResumableIterBasedRunner(IterBasedRunner):
    """``IterBasedRunner`` with an exact resume.

    mmcv 1.7 saves checkpoints from ``after_train_iter``, before ``runner.iter`` counts
    the iteration just finished, and records ``meta['iter'] = runner.iter``: ``iter_2.pth``
    says 1, so resuming from it trains its last iteration a second time (one more
    optimizer step and EMA teacher update, with the learning rate of that earlier step).
    Here ``meta['iter']`` is the number of finished iterations (the number in the file
    name), which :meth:`resume` continues from. ``resume`` also restores the hooks'
    messages (``meta['hook_msgs']``, e.g. the best score of ``save_best``), which
    ``IterBasedRunner.resume`` drops. Checkpoints are written to a temporary file and
    renamed, so ``latest.pth`` never points at a half-written file. Checkpoints also carry the
    train state (sampler position, random states, pending pseudo labels; ``train_state.py``),
    which :meth:`run` restores after :meth:`resume`. A model with non-finite tensors is never saved
    (``divergence.py``), and checkpoints are read with ssod's safe loader (``checkpoint.py``).
    """

    _resumed_train_state = None

    def register_training_hooks(self, *args, **kwargs):
        super().register_training_hooks(*args, **kwargs)
        self.register_hook(TrainStateHook(), priority="ABOVE_NORMAL")  # before the CheckpointHook

    def run(self, data_loaders, workflow, max_iters=None, **kwargs):
        if self._resumed_train_state is not None:
            train_loader = next(loader for loader, (mode, _) in zip(data_loaders, workflow) if mode == "train")
            restore_train_state(self, train_loader, self._resumed_train_state["state"])
            self._resumed_train_state = None
        super().run(data_loaders, workflow, max_iters=max_iters, **kwargs)

    def save_checkpoint(self, out_dir, filename_tmpl="iter_{}.pth", meta=None, save_optimizer=True,
                        create_symlink=True):
        if meta is not None and not isinstance(meta, dict):
            raise TypeError(f"meta should be a dict or None, got {type(meta).__name__}")
        finished_iters = self.iter + 1
        checkpoint_meta = {**(meta or {}), **(self.meta or {}), "epoch": self.epoch + 1, "iter": finished_iters}
        filename = filename_tmpl.format(finished_iters)
        filepath = osp.join(out_dir, filename)
        partial_path = filepath + ".partial"
        check_finite_model(self.model, f"training diverged at iteration {finished_iters}: checkpoint {filename}")
        save_checkpoint(self.model, partial_path, optimizer=self.optimizer if save_optimizer else None,
                        meta=checkpoint_meta)
        os.replace(partial_path, filepath)
        if create_symlink:
            mmcv.symlink(filename, osp.join(out_dir, "latest.pth"))

    def get_hook_info(self) -> str:
        """The hooks in priority order on one line (mmcv logs a ~60-line table per stage)."""
        def priority(hook):
            try:
                return Priority(hook.priority).name
            except ValueError:
                return str(hook.priority)
        return ", ".join(f"{type(hook).__name__} ({priority(hook)})" for hook in self.hooks)

    def load_checkpoint(self, filename, map_location="cpu"):
        """Load ``filename`` into the model with ``weights_only=True``; mismatches are logged, misfits refused."""
        return load_model_weights(self.model, filename, logger=self.logger, map_location=map_location)

    def resume(self, checkpoint, resume_optimizer=True, map_location="default"):
        if map_location == "default":
            map_location = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
        path = checkpoint
        checkpoint = self.load_checkpoint(path, map_location=map_location)
        meta = checkpoint.get("meta", {})
        missing = [key for key in ("epoch", "iter") if key not in meta]
        if missing:
            raise KeyError(f"checkpoint {path!r} has no meta {missing}; it cannot be resumed from")
        self._epoch = meta["epoch"]
        self._iter = meta["iter"]
        self._inner_iter = meta["iter"]
        if resume_optimizer and "optimizer" in checkpoint:
            if isinstance(self.optimizer, dict):
                for name, optimizer in self.optimizer.items():
                    optimizer.load_state_dict(checkpoint["optimizer"][name])
            else:
                self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.meta is None:
            self.meta = {}
        self.meta.setdefault("hook_msgs", {}).update(meta.get("hook_msgs", {}))
        self._resumed_train_state = dict(state=meta.get(TRAIN_STATE_KEY))
        self.logger.info(f"resumed from {path}: {self.iter} iterations done (epoch {self.epoch})")
