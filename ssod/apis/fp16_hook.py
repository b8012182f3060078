"""mmcv's fp16 optimizer hook, saying when the loss scaler skipped a step."""
from mmcv.runner import Fp16OptimizerHook

from ssod.apis.divergence import all_finite


def has_non_finite_grad(parameters) -> bool:
    return not all_finite([p.grad.detach() for p in parameters if p.grad is not None])


class LoggedFp16OptimizerHook(Fp16OptimizerHook):
    """``Fp16OptimizerHook`` (same arguments) that logs each skipped step as a warning.

    The ``GradScaler`` skips ``optimizer.step()`` exactly when the unscaled gradients hold an
    infinity or NaN. That is normal early in fp16 training and not an error; the warning counts
    the skips so a run that keeps skipping shows. A dynamic scaler (the configs' ``loss_scale=
    'dynamic'``) lowers its scale exactly on a skipped step, so comparing the scale before and
    after the step tells without touching the gradients; a static scale never moves, and then
    the gradients are read after the step, before the next iteration clears them.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped_steps = 0

    def after_train_iter(self, runner) -> None:
        scale_before = self.loss_scaler.get_scale()
        super().after_train_iter(runner)
        if self._scale_update_param is None:  # dynamic scaling
            skipped = self.loss_scaler.get_scale() < scale_before
        else:
            skipped = has_non_finite_grad(runner.model.parameters())
        if skipped:
            self.skipped_steps += 1
            runner.logger.warning(
                f"FP16 SKIPPED STEP at iteration {runner.iter + 1}: gradient overflow, no optimizer step; loss scale "
                f"now {self.loss_scaler.get_scale():g} ({self.skipped_steps} skipped steps in this run)")
