"""mmcv's fp16 optimizer hook, saying when the loss scaler skipped a step."""
import torch
from mmcv.runner import Fp16OptimizerHook


def has_non_finite_grad(parameters) -> bool:
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    return bool(grads) and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())


class LoggedFp16OptimizerHook(Fp16OptimizerHook):
    """``Fp16OptimizerHook`` (same arguments) that logs each skipped step as a warning.

    The ``GradScaler`` skips ``optimizer.step()`` exactly when the unscaled gradients hold an
    infinity or NaN, and (dynamic scaling) lowers the scale. That is normal early in fp16
    training and not an error; the warning counts the skips so a run that keeps skipping shows.
    The gradients are read after the step, before the next iteration clears them.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped_steps = 0

    def after_train_iter(self, runner) -> None:
        super().after_train_iter(runner)
        if has_non_finite_grad(runner.model.parameters()):
            self.skipped_steps += 1
            runner.logger.warning(
                f"FP16 SKIPPED STEP at iteration {runner.iter + 1}: gradient overflow, no optimizer step; loss scale "
                f"now {self.loss_scaler.get_scale():g} ({self.skipped_steps} skipped steps in this run)")
