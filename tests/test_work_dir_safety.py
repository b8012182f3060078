"""A new run never destroys an earlier run's files; --auto-resume falls back to a checkpoint that loads."""
import logging
import os

import pytest

from conftest import REPO_ROOT, run_tool
from ssod.apis.work_dir import WorkDirInUseError, find_resume_checkpoint, prepare_work_dir

BASELINE = REPO_ROOT / "configs/baseline/faster_rcnn_r18_fpn_toy_sup.py"
TINY = ["--cfg-options", "checkpoint_config.interval=1", "data.samples_per_gpu=1", "data.workers_per_gpu=0",
        "log_config.interval=1", "lr_config.warmup_iters=1"]


def _train(work_dir, cwd, max_iters, *extra, check=True):
    return run_tool([REPO_ROOT / "tools/train.py", BASELINE, "--work-dir", work_dir, "--seed", "0", "--no-validate",
                     *extra, *TINY, f"runner.max_iters={max_iters}"], cwd=cwd, check=check)


@pytest.fixture(scope="module")
def two_iterations(toy_workspace, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("work_dir_safety") / "run"
    _train(work_dir, toy_workspace, 2)
    return work_dir


def test_new_run_in_a_used_work_dir_is_refused_and_leaves_it_intact(two_iterations, toy_workspace):
    before = {p.name: p.read_bytes() for p in two_iterations.glob("iter_*.pth")}
    proc = _train(two_iterations, toy_workspace, 2, check=False)
    assert proc.returncode != 0
    assert "--auto-resume" in proc.stderr and "--overwrite" in proc.stderr and "iter_2.pth" in proc.stderr
    assert {p.name: p.read_bytes() for p in two_iterations.glob("iter_*.pth")} == before
    assert os.readlink(two_iterations / "latest.pth") == "iter_2.pth"


def test_auto_resume_skips_a_corrupt_checkpoint_and_a_missing_latest(two_iterations, toy_workspace, tmp_path):
    work_dir = tmp_path / "run"
    work_dir.mkdir()
    (work_dir / "iter_1.pth").write_bytes((two_iterations / "iter_1.pth").read_bytes())
    (work_dir / "iter_2.pth").write_bytes((two_iterations / "iter_2.pth").read_bytes()[:5000])  # truncated
    (work_dir / "iter_3.pth.partial").write_bytes(b"cut short")  # a write killed midway
    proc = _train(work_dir, toy_workspace, 2, "--auto-resume")
    log = proc.stdout + proc.stderr
    assert "skipping" in log and "iter_2.pth" in log and "truncated or corrupt" in log
    assert f"resumed from {work_dir / 'iter_1.pth'}: 1 iterations done" in log
    assert not (work_dir / "iter_3.pth.partial").exists()
    assert (work_dir / "iter_2.pth").stat().st_size > 5000  # iteration 2 trained again and saved whole


def test_auto_resume_of_a_finished_run_says_so(two_iterations, toy_workspace):
    proc = _train(two_iterations, toy_workspace, 2, "--auto-resume")
    assert "already finished" in proc.stdout + proc.stderr


def test_overwrite_deletes_the_earlier_run_first(tmp_path):
    work_dir = tmp_path / "run"
    (work_dir / "pseudo_labels").mkdir(parents=True)
    for name in ("iter_4.pth", "iter_8.pth", "pseudo_labels/pseudo_iter5.json", "iter_9.pth.partial"):
        (work_dir / name).write_bytes(b"x")
    os.symlink("iter_8.pth", work_dir / "latest.pth")
    with pytest.raises(WorkDirInUseError, match="4 checkpoint / pseudo-label file"):
        prepare_work_dir(str(work_dir), resume=False, overwrite=False)
    assert (work_dir / "iter_8.pth").exists() and not (work_dir / "iter_9.pth.partial").exists()
    notes = prepare_work_dir(str(work_dir), resume=False, overwrite=True)
    assert "deleted 4 file(s)" in notes[0]
    assert sorted(p.name for p in work_dir.rglob("*") if p.is_file()) == []


def test_find_resume_checkpoint_order(tmp_path, caplog):
    logger = logging.getLogger("test_work_dir")
    assert find_resume_checkpoint(str(tmp_path), logger) is None
    for name in ("iter_10.pth", "iter_9.pth"):
        (tmp_path / name).write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING), pytest.raises(WorkDirInUseError, match="none of the 2 checkpoint"):
        find_resume_checkpoint(str(tmp_path), logger)
    assert "iter_10.pth" in caplog.text and "iter_9.pth" in caplog.text
