"""Exact resume on CPU: a toy GrS run killed after a checkpoint and resumed ends as the uninterrupted run.

Equality is exact (``torch.equal``, identical JSON): on one CPU process with ``data.workers_per_gpu=0``
every random number (sampler, augmentations, RoI sampling, box jitter) comes from state the
checkpoint restores. The run starts from random weights with low thresholds, so the teacher's
pseudo labels pass from the first iterations and the pending pool is non-empty at the checkpoint.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO_ROOT, free_port, run_tool

GRS = REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"
MAX_ITERS, KILL_AFTER = 14, 12
# Pseudo-label saves at t = 1, 4, 7, 10, 13, a CrS refresh at t = 11, checkpoints after 6, 12 and 14
# iterations, sampler epochs of 5 batches: the checkpoint of iteration 12 is mid-epoch, after a refresh,
# with pending pseudo labels of iterations 10 and 11.
OPTIONS = ["data.workers_per_gpu=0", "data.samples_per_gpu=2", "data.sampler.train.epoch_length=5",
           f"runner.max_iters={MAX_ITERS}", "checkpoint_config.interval=6", "log_config.interval=1",
           "lr_config.warmup_iters=2", "model.train_cfg.jitter_times=2", "model.train_cfg.warm_up_iter=2",
           "model.model.roi_head.bbox_head.loss_cls.warm_up_iter=3", "model.train_cfg.alpha=100.0",
           f"model.train_cfg.max_iter={MAX_ITERS}", "model.train_cfg.pseudo_label_initial_score_thr=0.05",
           "model.train_cfg.cls_pseudo_threshold=0.1", "custom_hooks.2.save_interval=3",
           "custom_hooks.2.update_iter=10"]


def train_command(work_dir, *extra):
    return [sys.executable, str(REPO_ROOT / "tools/train.py"), str(GRS), "--work-dir", str(work_dir), "--seed", "0",
            "--deterministic", "--no-validate", *extra, "--cfg-options", *OPTIONS]


def run_and_kill_after_checkpoint(work_dir, cwd, checkpoint, timeout=600):
    """Start a run and SIGKILL it as soon as ``checkpoint`` exists (written atomically)."""
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS="1", PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(train_command(work_dir), cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while not (work_dir / checkpoint).exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before writing {checkpoint}:\n{proc.stderr.read()[-4000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {checkpoint} after {timeout} s")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (work_dir / f"iter_{MAX_ITERS}.pth").exists()


@pytest.fixture(scope="module")
def runs(toy_workspace):
    uninterrupted = toy_workspace / "work_dirs/exact_resume_uninterrupted"
    killed = toy_workspace / "work_dirs/exact_resume_killed"
    run_tool(train_command(uninterrupted)[1:], cwd=toy_workspace)
    run_and_kill_after_checkpoint(killed, toy_workspace, f"iter_{KILL_AFTER}.pth")
    run_tool(train_command(killed, "--resume-from", killed / f"iter_{KILL_AFTER}.pth")[1:], cwd=toy_workspace)
    return uninterrupted, killed


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same(a, b, where):
    """Recursive exact equality of checkpoint content (tensors, dicts, lists, plain values)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {set(a) ^ set(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_the_checkpoint_holds_the_train_state(runs):
    _, killed = runs
    state = load(killed / f"iter_{KILL_AFTER}.pth")["meta"]["train_state"]
    assert state["iter"] == KILL_AFTER
    assert (state["sampler"]["epoch"], state["sampler"]["batch"]) == divmod(KILL_AFTER, 5)
    assert len(state["rng"]) == 1 and len(state["pending_pseudo_labels"][0]) > 0


def test_killed_and_resumed_run_ends_with_the_same_weights_and_state(runs):
    uninterrupted, resumed = (load(work_dir / f"iter_{MAX_ITERS}.pth") for work_dir in runs)
    gbr, tracker = "student.roi_head.bbox_head.loss_cls.", "class_score_tracker."
    assert any(key.startswith(gbr) for key in uninterrupted["state_dict"])
    assert any(key.startswith(tracker) for key in uninterrupted["state_dict"])
    assert_same(uninterrupted["state_dict"], resumed["state_dict"], "state_dict")  # weights, GbR, GbT
    assert_same(uninterrupted["optimizer"], resumed["optimizer"], "optimizer")
    for meta in (uninterrupted["meta"], resumed["meta"]):
        meta["hook_msgs"].pop("last_ckpt")  # a path in each run's own work_dir
    for key in ("iter", "hook_msgs", "train_state"):
        assert_same(uninterrupted["meta"][key], resumed["meta"][key], f"meta.{key}")


def test_killed_and_resumed_run_ends_with_the_same_pseudo_label_store(runs):
    stores = [json.loads((work_dir / "pseudo_labels/pseudo.json").read_text()) for work_dir in runs]
    assert stores[0]["meta"]["iter"] == 13 and len(stores[0]["images"]) > 0
    assert stores[0] == stores[1]
    snapshots = [json.loads((work_dir / "pseudo_labels/pseudo_iter13.json").read_text()) for work_dir in runs]
    assert snapshots[0] == snapshots[1]


def test_resumed_losses_match(runs):
    def losses(work_dir):
        lines = []
        for log in sorted(work_dir.glob("*.log.json")):
            lines += [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        return {line["iter"]: {k: v for k, v in line.items() if k.startswith(("loss", "unsup", "sup"))}
                for line in lines if line.get("mode") == "train" and line["iter"] > KILL_AFTER}

    uninterrupted, resumed = (losses(work_dir) for work_dir in runs)
    assert sorted(uninterrupted) == [13, 14] and uninterrupted == resumed
