"""EMA teacher hook and iteration setter (spec B.2, I.6 item 41)."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmcv.parallel import MMDataParallel
from mmcv.runner import HOOKS, IterBasedRunner, build_optimizer
from mmcv.utils import build_from_cfg
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ssod.hooks.mean_teacher import MeanTeacherHook, SetIterNumHook, ema_momentum


def small_net():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


class TeacherStudent(nn.Module):
    def __init__(self):
        super().__init__()
        self.student = small_net()
        self.teacher = small_net()
        self.teacher.requires_grad_(False)
        self.iter_num = -1
        self.seen = []

    def train_step(self, data, optimizer):
        self.seen.append((self.iter_num, {k: v.clone() for k, v in self.teacher.state_dict().items()},
                          {k: v.clone() for k, v in self.student.state_dict().items()}))
        loss = self.student(data[0]).pow(2).mean()
        return dict(loss=loss, log_vars=dict(loss=loss.item()), num_samples=len(data[0]))


def fake_runner(model, iteration):
    return SimpleNamespace(model=model, iter=iteration)


def randomise(module, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in list(module.parameters()) + [b for b in module.buffers() if b.is_floating_point()]:
            tensor.copy_(torch.randn(tensor.shape, generator=generator))


def test_momentum_schedule():
    for t in range(0, 3000, 7):
        assert ema_momentum(t, 0.999, 0) == pytest.approx(min(0.999, t / (t + 1)))
    assert ema_momentum(0, 0.999, 0) == 0.0
    assert ema_momentum(1, 0.999, 0) == pytest.approx(0.5)
    assert ema_momentum(999, 0.999, 0) == pytest.approx(0.999)
    assert ema_momentum(10, 0.999, 4) == pytest.approx(1 - 5 / 15)
    assert ema_momentum(10 ** 6, 0.99, 4) == 0.99


def test_registry_names_and_bad_arguments():
    assert HOOKS.get("MeanTeacher") is MeanTeacherHook and HOOKS.get("MeanTeacherHook") is MeanTeacherHook
    hook = build_from_cfg(dict(type="MeanTeacher", momentum=0.99, interval=2, warm_up=3), HOOKS)
    assert (hook.momentum, hook.interval, hook.warm_up) == (0.99, 2, 3)
    assert isinstance(build_from_cfg(dict(type="SetIterNumHook"), HOOKS), SetIterNumHook)
    with pytest.raises(ValueError, match="momentum"):
        MeanTeacherHook(momentum=1.5)
    with pytest.raises(ValueError, match="interval"):
        MeanTeacherHook(interval=0)


def test_before_run_copies_student_only_when_not_resumed():
    model = TeacherStudent()
    randomise(model.student, 1)
    randomise(model.teacher, 2)
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    MeanTeacherHook().before_run(fake_runner(MMDataParallel(model), iteration=7))  # resumed run
    assert all(torch.equal(v, teacher_before[k]) for k, v in model.teacher.state_dict().items())

    MeanTeacherHook().before_run(fake_runner(MMDataParallel(model), iteration=0))
    for (name, t_param), s_param in zip(model.teacher.named_parameters(), model.student.parameters()):
        assert torch.equal(t_param, s_param), name
    # buffers are not parameters: BN statistics keep the teacher's own values
    assert torch.equal(model.teacher[1].running_mean, teacher_before["1.running_mean"])


def test_ema_update_averages_parameters_only():
    model = TeacherStudent()
    randomise(model.student, 3)
    randomise(model.teacher, 4)
    hook = MeanTeacherHook(momentum=0.999, interval=1, warm_up=0)
    for t in (0, 1, 2, 9, 5000):
        randomise(model.student, 10 + t)
        teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
        hook.before_train_iter(fake_runner(MMDataParallel(model), iteration=t))
        m = min(0.999, t / (t + 1))
        for name, param in model.teacher.named_parameters():
            expected = m * teacher_before[name] + (1 - m) * dict(model.student.named_parameters())[name]
            torch.testing.assert_close(param, expected, rtol=0, atol=1e-6)
        for name, buffer in model.teacher.named_buffers():
            assert torch.equal(buffer, teacher_before[name]), name
    # at t = 0 the teacher equals the student exactly
    randomise(model.student, 99)
    hook.before_train_iter(fake_runner(model, iteration=0))
    assert all(torch.equal(t, s) for t, s in zip(model.teacher.parameters(), model.student.parameters()))


def test_interval_skips_iterations():
    model = TeacherStudent()
    randomise(model.student, 5)
    randomise(model.teacher, 6)
    before = [p.clone() for p in model.teacher.parameters()]
    MeanTeacherHook(interval=2).before_train_iter(fake_runner(model, iteration=3))
    assert all(torch.equal(p, b) for p, b in zip(model.teacher.parameters(), before))
    MeanTeacherHook(interval=2).before_train_iter(fake_runner(model, iteration=4))
    assert not all(torch.equal(p, b) for p, b in zip(model.teacher.parameters(), before))


def test_hook_needs_teacher_and_student():
    with pytest.raises(AttributeError, match="teacher"):
        MeanTeacherHook().before_run(fake_runner(nn.Linear(2, 2), iteration=0))


def test_hooks_in_an_iter_based_runner(tmp_path):
    """Hook order within mmcv's runner: teacher copy at start, EMA and iter_num before each step."""
    torch.manual_seed(0)
    model = TeacherStudent()
    randomise(model.teacher, 8)
    optimizer = build_optimizer(model, dict(type="SGD", lr=0.1, momentum=0.9, weight_decay=1e-4))
    runner = IterBasedRunner(model=MMDataParallel(model), optimizer=optimizer, work_dir=str(tmp_path),
                             logger=logging.getLogger("test_mean_teacher"), max_iters=4)
    runner.register_optimizer_hook(dict(grad_clip=None))
    runner.register_hook(MeanTeacherHook(momentum=0.999))
    runner.register_hook(SetIterNumHook(), priority="VERY_HIGH")
    loader = DataLoader(TensorDataset(torch.randn(16, 3)), batch_size=4)
    runner.run([loader], [("train", 4)])
    assert [seen[0] for seen in model.seen] == [0, 1, 2, 3]
    # step 0: the teacher is a copy of the student; afterwards it lags with m = t / (t + 1)
    iter0_teacher, iter0_student = model.seen[0][1], model.seen[0][2]
    assert all(torch.equal(iter0_teacher[k], iter0_student[k]) for k, _ in model.student.named_parameters())
    previous_teacher = iter0_teacher
    for t in (1, 2, 3):
        teacher, student = model.seen[t][1], model.seen[t][2]
        m = t / (t + 1)
        for name, _ in model.student.named_parameters():
            torch.testing.assert_close(teacher[name], m * previous_teacher[name] + (1 - m) * student[name])
        previous_teacher = teacher
    assert not torch.equal(model.seen[3][1]["0.weight"], model.seen[3][2]["0.weight"])
