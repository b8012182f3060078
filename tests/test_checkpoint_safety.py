"""Checkpoints load with weights_only=True whatever the environment; tools/test.py refuses ill-fitting ones."""
import builtins

import pytest
import torch
from mmcv import Config
from mmcv.runner import load_checkpoint, save_checkpoint
from mmdet.models import build_detector

import ssod  # noqa: F401
from conftest import REPO_ROOT, run_tool
from ssod.apis.checkpoint import CheckpointError, load_model_weights, read_checkpoint

BASELINE = REPO_ROOT / "configs/baseline/faster_rcnn_r18_fpn_toy_sup.py"
SEMI = REPO_ROOT / "configs/soft_teacher/soft_teacher_faster_rcnn_r18_fpn_toy.py"
TOY_MODEL = REPO_ROOT / "configs/_base_/models/faster_rcnn_r18_fpn_toy.py"
UNSAFE_ENV = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
FAST_TEST = ["--cfg-options", "data.workers_per_gpu=0"]


class _Payload:
    """Unpickling this calls ``open(marker, 'w')``: the marker file proves that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@pytest.fixture
def evil_checkpoint(tmp_path):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "meta": {"x": _Payload(marker)}}, path)
    return path, marker


def _plain_detector():
    return build_detector(Config.fromfile(str(TOY_MODEL)).model)


def test_malicious_pickle_runs_no_code_even_when_torch_is_told_to_unpickle(evil_checkpoint, monkeypatch):
    path, marker = evil_checkpoint
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(CheckpointError, match="evil.pth"):
        read_checkpoint(str(path))
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(_plain_detector(), str(path), map_location="cpu")  # mmcv's loader is routed through ssod
    assert not marker.exists()


def test_tools_test_runs_no_code_from_a_malicious_checkpoint(evil_checkpoint, toy_workspace):
    path, marker = evil_checkpoint
    proc = run_tool([REPO_ROOT / "tools/test.py", BASELINE, path, "--eval", "bbox", *FAST_TEST], cwd=toy_workspace,
                    check=False, extra_env=UNSAFE_ENV)
    assert proc.returncode != 0
    assert "evil.pth" in proc.stderr and "weights_only" in proc.stderr
    assert not marker.exists()


def test_train_resume_and_load_from_run_no_code_from_a_malicious_checkpoint(evil_checkpoint, toy_workspace, tmp_path):
    path, marker = evil_checkpoint
    for flag in ("--resume-from", "--load-from"):
        proc = run_tool([REPO_ROOT / "tools/train.py", BASELINE, "--work-dir", tmp_path / flag.strip("-"), flag, path,
                         "--cfg-options", "runner.max_iters=1", "data.workers_per_gpu=0", "data.samples_per_gpu=1"],
                        cwd=toy_workspace, check=False, extra_env=UNSAFE_ENV)
        assert proc.returncode != 0, flag
        assert "evil.pth" in proc.stderr, flag
        assert not marker.exists(), flag


def test_tools_test_refuses_a_checkpoint_that_leaves_the_model_unloaded(toy_workspace, tmp_path):
    empty = tmp_path / "empty.pth"
    torch.save({"state_dict": {}, "meta": {}}, empty)
    proc = run_tool([REPO_ROOT / "tools/test.py", BASELINE, empty, "--eval", "bbox", *FAST_TEST], cwd=toy_workspace,
                    check=False)
    assert proc.returncode != 0
    total = len(_plain_detector().state_dict())
    assert f"loaded 0 of {total} model tensors; {total} missing" in proc.stderr


def test_tools_test_loads_a_plain_detector_checkpoint_into_a_semi_model(toy_workspace, tmp_path):
    plain = tmp_path / "plain.pth"
    detector = _plain_detector()
    save_checkpoint(detector, str(plain))
    metrics = tmp_path / "metrics.json"
    proc = run_tool([REPO_ROOT / "tools/test.py", SEMI, plain, "--eval", "bbox", "--metrics-out", metrics,
                     *FAST_TEST], cwd=toy_workspace)
    total = 2 * len(detector.state_dict())  # student and teacher
    assert f"loaded {total} of {total} model tensors" in proc.stdout + proc.stderr
    assert metrics.is_file()


def test_load_model_weights_counts_and_refuses(tmp_path):
    detector = _plain_detector()
    state = detector.state_dict()
    keep = dict(list(state.items())[: len(state) // 3])
    partial = tmp_path / "partial.pth"
    torch.save({"state_dict": {**keep, "extra.weight": torch.zeros(2)}}, partial)
    with pytest.raises(CheckpointError, match=rf"loaded {len(keep)} of {len(state)} model tensors; "
                                              rf"{len(state) - len(keep)} missing .*; 1 unexpected \(extra.weight\)"):
        load_model_weights(_plain_detector(), str(partial))
    most = dict(list(state.items())[: len(state) - 2])
    torch.save({"state_dict": most}, partial)
    target = _plain_detector()
    load_model_weights(target, str(partial))
    assert all(torch.equal(target.state_dict()[key], value) for key, value in most.items())
