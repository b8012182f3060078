"""Stop a diverged run before its non-finite values reach the weights, the EMA teacher or a checkpoint.

:class:`DivergenceCheckHook` runs first in ``after_train_iter``, after the forward pass and
before mmcv's optimizer hook (backward and step), the checkpoint hook and the logger; the EMA
teacher update of the next iteration never comes. It stops training with
:class:`DivergenceError` naming the iteration and the non-finite loss keys or model tensors.
``ResumableIterBasedRunner.save_checkpoint`` checks the model once more before writing, so a
checkpoint never holds non-finite weights and, as nothing new is saved, ``max_keep_ckpts``
never rotates the last finite checkpoint away.

fp16: mmcv's ``Fp16OptimizerHook`` (a dynamic ``GradScaler``) scales only the backward pass.
A step whose scaled gradients overflow is skipped by the scaler and is not an error here; the
gradients are not looked at. The logged loss values are computed in fp32 (mmdet's
``force_fp32`` losses) from the unscaled forward pass, and the GbR/GbT statistics are updated
from that same pass outside the scaler's protection, so a non-finite loss value or state is
divergence under fp16 too.
"""
import math

import torch
from mmcv.runner import Hook

from ssod.utils.dist_utils import unwrap_model

EXAMPLES = 5


class DivergenceError(RuntimeError):
    """Training produced non-finite losses or model state."""


def non_finite_log_vars(log_vars: dict) -> dict:
    """The scalar entries of ``log_vars`` that are NaN or infinite."""
    return {key: value for key, value in log_vars.items()
            if isinstance(value, (int, float)) and not math.isfinite(value)}


def all_finite(tensors) -> bool:
    """True if no tensor holds a NaN or infinity: one fused norm and one device sync, not one per tensor."""
    if not tensors:
        return True
    if not hasattr(torch.nn.utils, "get_total_norm"):  # torch < 2.6 (README: TORCH_SPEC)
        return all(bool(torch.isfinite(tensor).all()) for tensor in tensors)
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(tensors, error_if_nonfinite=False)))


def non_finite_tensors(module) -> list:
    """Names of the floating-point parameters and buffers of ``module`` holding a NaN or infinity."""
    named = [(name, tensor.detach()) for name, tensor in module.state_dict(keep_vars=True).items()
             if tensor.is_floating_point() and tensor.numel()]
    if all_finite([tensor for _, tensor in named]):
        return []
    return [name for name, tensor in named if not bool(torch.isfinite(tensor).all())]


def _describe(names) -> str:
    return f"{len(names)} ({', '.join(names[:EXAMPLES])}{', ...' if len(names) > EXAMPLES else ''})"


def check_finite_model(model, where: str) -> None:
    """Raise DivergenceError if any parameter or buffer of ``model`` is non-finite."""
    bad = non_finite_tensors(unwrap_model(model))
    if bad:
        raise DivergenceError(f"{where}: non-finite model tensors {_describe(bad)}; not saved")


class DivergenceCheckHook(Hook):
    """Raise DivergenceError after a forward pass with non-finite losses or model state (see module doc).

    Register it with priority ``VERY_HIGH`` so that it runs before the optimizer hook
    (``ABOVE_NORMAL``) in ``after_train_iter``.
    """

    def after_train_iter(self, runner):
        outputs = runner.outputs or {}
        losses = non_finite_log_vars(outputs.get("log_vars", {}))
        tensors = non_finite_tensors(unwrap_model(runner.model))
        if not (losses or tensors):
            return
        found = []
        if losses:
            found.append("non-finite losses " + ", ".join(f"{key}={value}" for key, value in losses.items()))
        if tensors:
            found.append(f"non-finite model tensors {_describe(tensors)}")
        last = ((runner.meta or {}).get("hook_msgs") or {}).get("last_ckpt")
        raise DivergenceError(
            f"training diverged at iteration {runner.iter + 1}: {'; '.join(found)}. Stopped before the optimizer "
            f"step, EMA update and checkpoint of this iteration; the last checkpoint is "
            f"{last or 'none of this run'}. Lower the learning rate or add warm-up / gradient clipping, then "
            "resume from a finite checkpoint")
