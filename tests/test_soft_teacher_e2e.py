"""End-to-end runs of the soft teacher through the real tools on toy data (CPU).

torchrun training with one and two processes, distributed and single-process testing of
the teacher and the student, and resuming (``--resume-from``, ``--auto-resume``), checked
through the checkpoints: the iteration count, the learning-rate schedule, the optimizer
state and the EMA teacher all continue where the checkpoint left them.
"""
import json
import math
import os
import pickle

import numpy as np
import pytest
import torch

from conftest import REPO_ROOT, run_tool

CONFIG = REPO_ROOT / "configs/soft_teacher/soft_teacher_faster_rcnn_r18_fpn_toy.py"
# Small batches, short warm-up, few jitter copies: a few seconds per iteration on 2 CPU cores.
SMALL = ["data.samples_per_gpu=3", "data.workers_per_gpu=0", "log_config.interval=1", "lr_config.warmup_iters=2",
         "model.train_cfg.jitter_times=3"]
# Every teacher detection becomes a pseudo box for every unsupervised loss, so that a few
# iterations from random init exercise the whole pseudo-label path (RPN, RCNN cls and reg).
ALL_PSEUDO_BOXES = ["model.model.test_cfg.rcnn.score_thr=0.0", "model.train_cfg.pseudo_label_initial_score_thr=0.0",
                    "model.train_cfg.rpn_pseudo_threshold=0.0", "model.train_cfg.cls_pseudo_threshold=0.0",
                    "model.train_cfg.reg_pseudo_threshold=1000.0"]
# The EMA momentum of the hook at 0-based iteration t: min(0.999, 1 - 1 / (t + 1)).
EMA_MOMENTUM = {0: 0.0, 1: 1 / 2, 2: 2 / 3, 3: 3 / 4}
# Linear warm-up over 2 iterations from 0.001 * 0.02, then the base lr 0.02 (0-based iteration).
LR = {0: 0.02 * 0.001, 1: 0.02 * (1 - 0.5 * 0.999), 2: 0.02, 3: 0.02}
LOSS_KEYS = {"sup_loss_cls", "sup_loss_bbox", "sup_loss_rpn_cls", "sup_loss_rpn_bbox",
             "unsup_loss_cls", "unsup_loss_bbox", "unsup_loss_rpn_cls", "unsup_loss_rpn_bbox", "loss"}
COCO_KEYS = {"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l"}


# ---------------------------------------------------------------------------- helpers
def _json_logs(work_dir):
    return sorted(work_dir.glob("*.log.json"))  # named by start time: oldest run first


def _records(json_log, mode):
    with open(json_log) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r.get("mode") == mode]


def _text_log(json_log):
    return json_log.with_suffix("").read_text()  # 20261125_125432.log.json -> 20261125_125432.log


def _checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _submodule(checkpoint, name):
    prefix = name + "."
    return {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}


def _max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _ema(teacher, student, momentum):
    return {k: momentum * teacher[k].double() + (1 - momentum) * student[k].double() for k in teacher}


def _assert_ema_step(after, before, iteration, distinct=True):
    """teacher(after) == m * teacher(before) + (1 - m) * student(before), m of 0-based ``iteration``.

    ``distinct``: also check that this is not what a reset teacher (a copy of the student)
    or a repeated earlier iteration (the momentum of ``iteration - 1``) would give.
    """
    teacher, old_teacher, old_student = (_submodule(after, "teacher"), _submodule(before, "teacher"),
                                         _submodule(before, "student"))
    assert _max_abs_diff(teacher, _ema(old_teacher, old_student, EMA_MOMENTUM[iteration])) < 1e-6
    if distinct:
        assert _max_abs_diff(teacher, old_student) > 1e-4
        assert _max_abs_diff(teacher, _ema(old_teacher, old_student, EMA_MOMENTUM[iteration - 1])) > 1e-4


def _assert_training_log(json_log, iters):
    records = _records(json_log, "train")
    assert [r["iter"] for r in records] == iters
    for record in records:
        assert LOSS_KEYS <= set(record)
        assert all(math.isfinite(record[k]) for k in LOSS_KEYS), record
        assert record["lr"] == pytest.approx(LR[record["iter"] - 1], rel=1e-3)
    return records


def _assert_evaluated_teacher_and_student(json_log):
    (evaluation,) = _records(json_log, "val")
    for submodule in ("teacher", "student"):
        for key in COCO_KEYS:
            value = evaluation[f"{submodule}.{key}"]
            assert value == -1.0 or 0.0 <= value <= 1.0  # -1: no ground truth of that size
    text = _text_log(json_log)
    assert "teacher.bbox_mAP" in text and "student.bbox_mAP" in text


def _train(work_dir, cwd, *options, processes=None, extra_args=()):
    args = ["--work-dir", work_dir, "--seed", "0", *extra_args, "--cfg-options", *SMALL, *options]
    if processes is None:
        return run_tool([REPO_ROOT / "tools/train.py", CONFIG, *args], cwd=cwd)
    return run_tool([REPO_ROOT / "tools/dist_train.sh", CONFIG, processes, *args], cwd=cwd)


# ---------------------------------------------------------------------------- torchrun training
@pytest.fixture(scope="module")
def one_process_run(toy_workspace):
    work_dir = toy_workspace / "work_dirs/soft_teacher_dist1"
    _train(work_dir, toy_workspace, "runner.max_iters=4", "checkpoint_config.interval=4", "evaluation.interval=4",
           processes=1)
    return work_dir


@pytest.fixture(scope="module")
def two_process_run(toy_workspace):
    work_dir = toy_workspace / "work_dirs/soft_teacher_dist2"
    proc = _train(work_dir, toy_workspace, "runner.max_iters=4", "checkpoint_config.interval=4",
                  "evaluation.interval=4", *ALL_PSEUDO_BOXES, processes=2)
    return work_dir, proc


def test_dist_train_one_process(one_process_run):
    (json_log,) = _json_logs(one_process_run)
    records = _assert_training_log(json_log, [1, 2, 3, 4])
    assert all(r["sup_loss_cls"] > 0 and r["unsup_loss_cls"] > 0 for r in records)
    _assert_evaluated_teacher_and_student(json_log)
    text = _text_log(json_log)
    assert "training on 1 process(es)" in text and "sup_loss_cls" in text and "unsup_loss_cls" in text
    checkpoint = _checkpoint(one_process_run / "iter_4.pth")
    assert checkpoint["meta"]["iter"] == 4
    assert _max_abs_diff(_submodule(checkpoint, "teacher"), _submodule(checkpoint, "student")) > 1e-4
    assert os.readlink(one_process_run / "latest.pth") == "iter_4.pth"


def test_dist_train_two_processes_uses_pseudo_boxes(two_process_run):
    work_dir, proc = two_process_run
    (json_log,) = _json_logs(work_dir)
    records = _assert_training_log(json_log, [1, 2, 3, 4])
    # Pseudo boxes reached every unsupervised loss, the box regression ones included.
    assert all(r["unsup_loss_rpn_bbox"] > 0 and r["unsup_loss_bbox"] > 0 for r in records)
    _assert_evaluated_teacher_and_student(json_log)
    assert "training on 2 process(es)" in _text_log(json_log)
    assert not (work_dir / "iter_2.pth").exists()
    checkpoint = _checkpoint(work_dir / "iter_4.pth")
    assert checkpoint["meta"]["iter"] == 4
    assert {k.split(".")[0] for k in checkpoint["state_dict"]} == {"teacher", "student"}
    assert _submodule(checkpoint, "teacher").keys() == _submodule(checkpoint, "student").keys()


# ---------------------------------------------------------------------------- testing tools
def _detections(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def test_dist_test_teacher_and_single_process_student(two_process_run, toy_workspace):
    work_dir, _ = two_process_run
    checkpoint = work_dir / "iter_4.pth"
    metrics_file = work_dir / "metrics_teacher.json"
    run_tool([REPO_ROOT / "tools/dist_test.sh", CONFIG, checkpoint, 2, "--eval", "bbox", "--metrics-out",
              metrics_file, "--out", work_dir / "teacher.pkl",
              "--cfg-options", "model.model.test_cfg.rcnn.score_thr=0.0"], cwd=toy_workspace)
    with open(metrics_file) as f:
        metrics = json.load(f)["metric"]
    assert COCO_KEYS <= set(metrics)
    assert all(metrics[k] == -1.0 or 0.0 <= metrics[k] <= 1.0 for k in COCO_KEYS)

    run_tool([REPO_ROOT / "tools/test.py", CONFIG, checkpoint, "--out", work_dir / "student.pkl",
              "--cfg-options", "model.model.test_cfg.rcnn.score_thr=0.0", "model.test_cfg.inference_on=student"],
             cwd=toy_workspace)
    teacher, student = _detections(work_dir / "teacher.pkl"), _detections(work_dir / "student.pkl")
    assert len(teacher) == len(student) == 8  # one entry per val image, in dataset order
    assert all(len(per_image) == 8 for per_image in teacher + student)  # one array per class
    teacher_boxes = np.concatenate([np.concatenate(per_image) for per_image in teacher])
    student_boxes = np.concatenate([np.concatenate(per_image) for per_image in student])
    assert len(teacher_boxes) > 0 and len(student_boxes) > 0
    # inference_on switches the detector: the EMA teacher and the student see differently.
    assert teacher_boxes.shape != student_boxes.shape or not np.allclose(teacher_boxes, student_boxes)


# ---------------------------------------------------------------------------- resume
@pytest.fixture(scope="module")
def resumed_run(toy_workspace):
    """Two iterations, then a second run resumed from iter_2.pth up to iteration 4 (a checkpoint per iteration)."""
    work_dir = toy_workspace / "work_dirs/soft_teacher_resume"
    every_iteration = ["checkpoint_config.interval=1", "checkpoint_config.max_keep_ckpts=4"]
    _train(work_dir, toy_workspace, "runner.max_iters=2", *every_iteration, extra_args=["--no-validate"])
    _train(work_dir, toy_workspace, "runner.max_iters=4", *every_iteration,
           extra_args=["--no-validate", "--resume-from", work_dir / "iter_2.pth"])
    return work_dir


def test_resume_continues_iterations_and_lr_schedule(resumed_run):
    first, resumed = _json_logs(resumed_run)
    _assert_training_log(first, [1, 2])
    _assert_training_log(resumed, [3, 4])  # iteration 2 is not trained a second time
    assert "resumed from" in _text_log(resumed) and "2 iterations done" in _text_log(resumed)
    for i in (1, 2, 3, 4):
        assert _checkpoint(resumed_run / f"iter_{i}.pth")["meta"]["iter"] == i
    assert os.readlink(resumed_run / "latest.pth") == "iter_4.pth"
    assert not list(resumed_run.glob("*.partial"))


def test_resume_continues_the_ema_teacher(resumed_run):
    checkpoints = {i: _checkpoint(resumed_run / f"iter_{i}.pth") for i in (1, 2, 3, 4)}
    assert _max_abs_diff(_submodule(checkpoints[2], "teacher"), _submodule(checkpoints[2], "student")) > 1e-4
    # Within the first run (the first step, at lr 2e-5, barely moved the student).
    _assert_ema_step(checkpoints[2], checkpoints[1], 1, distinct=False)
    # Across the resume: the teacher was neither reset to the student nor stepped with t = 1 again.
    _assert_ema_step(checkpoints[3], checkpoints[2], 2)
    _assert_ema_step(checkpoints[4], checkpoints[3], 3)


def _runner_with_soft_teacher(work_dir):
    from mmcv import Config
    from mmcv.runner import build_optimizer
    from mmdet.models import build_detector
    from mmdet.utils import get_root_logger

    import ssod  # noqa: F401  (registers SoftTeacher)
    from ssod.apis.runner import ResumableIterBasedRunner

    cfg = Config.fromfile(str(CONFIG))
    model = build_detector(cfg.model)
    optimizer = build_optimizer(model, cfg.optimizer)
    return ResumableIterBasedRunner(model, optimizer=optimizer, work_dir=str(work_dir), logger=get_root_logger(),
                                    meta={}, max_iters=4)


def test_resume_restores_optimizer_and_keeps_teacher_before_run(resumed_run, tmp_path):
    from ssod.hooks.mean_teacher import MeanTeacherHook, SetIterNumHook

    torch.set_num_threads(1)
    saved = _checkpoint(resumed_run / "iter_2.pth")
    runner = _runner_with_soft_teacher(tmp_path)
    runner.resume(str(resumed_run / "iter_2.pth"), map_location="cpu")
    assert runner.iter == 2 and runner.inner_iter == 2
    state = runner.optimizer.state_dict()
    assert state["state"].keys() == saved["optimizer"]["state"].keys()
    assert len(state["state"]) == len(list(runner.model.student.parameters()))  # the teacher gets no gradient
    for index, param_state in state["state"].items():
        assert torch.equal(param_state["momentum_buffer"], saved["optimizer"]["state"][index]["momentum_buffer"])
    assert [g["lr"] for g in state["param_groups"]] == [g["lr"] for g in saved["optimizer"]["param_groups"]]
    assert any(param_state["momentum_buffer"].abs().sum() > 0 for param_state in state["state"].values())

    teacher_before = {k: v.clone() for k, v in runner.model.teacher.state_dict().items()}
    assert _max_abs_diff(teacher_before, _submodule(saved, "teacher")) == 0.0
    MeanTeacherHook().before_run(runner)
    SetIterNumHook().before_run(runner)
    assert _max_abs_diff(runner.model.teacher.state_dict(), teacher_before) == 0.0
    assert runner.model.iter_num == 2


def test_auto_resume_picks_latest(resumed_run, toy_workspace):
    work_dir = toy_workspace / "work_dirs/soft_teacher_auto_resume"
    work_dir.mkdir(parents=True)
    os.link(resumed_run / "iter_2.pth", work_dir / "iter_2.pth")
    os.symlink("iter_2.pth", work_dir / "latest.pth")
    _train(work_dir, toy_workspace, "runner.max_iters=3", "checkpoint_config.interval=1",
           extra_args=["--no-validate", "--auto-resume"])
    (json_log,) = _json_logs(work_dir)
    _assert_training_log(json_log, [3])
    assert f"resumed from {work_dir / 'latest.pth'}: 2 iterations done" in _text_log(json_log)
    after = _checkpoint(work_dir / "iter_3.pth")
    assert after["meta"]["iter"] == 3
    _assert_ema_step(after, _checkpoint(work_dir / "iter_2.pth"), 2)


# ---------------------------------------------------------------------------- runner unit checks
class _Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def train_step(self, data, optimizer):
        raise AssertionError("not trained here")


def _linear_runner(work_dir, meta):
    from mmdet.utils import get_root_logger

    from ssod.apis.runner import ResumableIterBasedRunner

    model = _Linear()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return ResumableIterBasedRunner(model, optimizer=optimizer, work_dir=str(work_dir), logger=get_root_logger(),
                                    meta=meta, max_iters=10)


def test_runner_round_trips_iteration_optimizer_and_hook_messages(tmp_path):
    runner = _linear_runner(tmp_path, meta={"seed": 3, "hook_msgs": {"best_score": 0.5}})
    runner.model.fc(torch.ones(1, 3)).sum().backward()
    runner.optimizer.step()  # creates momentum buffers
    runner._iter = 6  # inside after_train_iter of the 7th iteration (0-based index 6)
    runner.save_checkpoint(str(tmp_path))
    saved = _checkpoint(tmp_path / "iter_7.pth")
    assert saved["meta"]["iter"] == 7 and saved["meta"]["seed"] == 3
    assert os.readlink(tmp_path / "latest.pth") == "iter_7.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["iter_7.pth", "latest.pth"]

    resumed = _linear_runner(tmp_path, meta={"seed": 4})
    resumed.resume(str(tmp_path / "latest.pth"), map_location="cpu")
    assert resumed.iter == 7
    assert resumed.meta == {"seed": 4, "hook_msgs": {"best_score": 0.5}}
    buffers = [resumed.optimizer.state[p]["momentum_buffer"] for p in resumed.model.parameters()]
    expected = [runner.optimizer.state[p]["momentum_buffer"] for p in runner.model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(buffers, expected))
    assert torch.equal(resumed.model.fc.weight, runner.model.fc.weight)


def test_runner_refuses_a_checkpoint_without_iteration(tmp_path):
    torch.save({"meta": {"epoch": 1}, "state_dict": _Linear().state_dict()}, tmp_path / "weights.pth")
    runner = _linear_runner(tmp_path, meta={})
    with pytest.raises(KeyError, match=r"weights\.pth.*\['iter'\]"):
        runner.resume(str(tmp_path / "weights.pth"), map_location="cpu")
