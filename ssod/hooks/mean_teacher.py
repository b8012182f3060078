"""Runner hooks of the teacher-student wrapper: EMA teacher update and iteration setter.

Both unwrap (MM)DataParallel / DistributedDataParallel. Register the iteration setter
with a high priority, e.g. ``dict(type='SetIterNumHook', priority='VERY_HIGH')``, so that
hooks reading ``model.iter_num`` in ``before_train_iter`` see the current value.
"""
import torch
from mmcv.runner import HOOKS, Hook

from ssod.utils.dist_utils import unwrap_model


def ema_momentum(iteration: int, momentum: float, warm_up: int) -> float:
    """``min(momentum, 1 - (1 + warm_up) / (t + 1 + warm_up))``: 0 at t = 0, then ramps up."""
    return min(momentum, 1.0 - (1.0 + warm_up) / (iteration + 1.0 + warm_up))


@torch.no_grad()
def ema_update_parameters(teacher, student, momentum: float) -> None:
    """``teacher <- momentum * teacher + (1 - momentum) * student`` on parameters only."""
    teacher_params = dict(teacher.named_parameters())
    student_params = dict(student.named_parameters())
    if teacher_params.keys() != student_params.keys():
        missing = sorted(set(teacher_params) ^ set(student_params))
        raise KeyError(f"teacher and student parameters differ: {missing[:5]}")
    for name, teacher_param in teacher_params.items():
        if momentum == 0.0:
            teacher_param.copy_(student_params[name])
        else:
            teacher_param.mul_(momentum).add_(student_params[name], alpha=1.0 - momentum)


def _teacher_student(runner):
    model = unwrap_model(runner.model)
    if not (hasattr(model, "teacher") and hasattr(model, "student")):
        raise AttributeError(f"{type(model).__name__} has no 'teacher' and 'student' submodules")
    return model.teacher, model.student


@HOOKS.register_module()
class MeanTeacherHook(Hook):
    """EMA teacher: ``teacher <- m * teacher + (1 - m) * student`` before every ``interval``-th iteration.

    ``m = min(momentum, 1 - (1 + warm_up) / (t + 1 + warm_up))``. Parameters only; buffers
    (e.g. BN statistics) are left alone. A run starting at iteration 0 (not resumed) first
    copies the student's parameters into the teacher.
    """

    def __init__(self, momentum: float = 0.999, interval: int = 1, warm_up: int = 0):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"MeanTeacherHook momentum = {momentum}; expected a value in [0, 1]")
        if int(interval) != interval or interval < 1:
            raise ValueError(f"MeanTeacherHook interval = {interval}; expected a positive integer")
        if warm_up < 0:
            raise ValueError(f"MeanTeacherHook warm_up = {warm_up}; expected >= 0")
        self.momentum = momentum
        self.interval = int(interval)
        self.warm_up = warm_up

    def before_run(self, runner):
        teacher, student = _teacher_student(runner)
        if runner.iter == 0:
            ema_update_parameters(teacher, student, momentum=0.0)

    def before_train_iter(self, runner):
        if runner.iter % self.interval != 0:
            return
        teacher, student = _teacher_student(runner)
        ema_update_parameters(teacher, student, ema_momentum(runner.iter, self.momentum, self.warm_up))


HOOKS.register_module(name="MeanTeacher", module=MeanTeacherHook)


@HOOKS.register_module()
class SetIterNumHook(Hook):
    """Sets ``model.iter_num = runner.iter`` (0-based) before every training iteration."""

    def before_run(self, runner):
        unwrap_model(runner.model).iter_num = runner.iter

    def before_train_iter(self, runner):
        unwrap_model(runner.model).iter_num = runner.iter
