"""An 8-iteration toy GrS run: a short console, per-class vectors summarised in text, whole in .log.json."""
import json
import re

import pytest
from mmcv import Config
from mmcv.runner import save_checkpoint
from mmdet.models import build_detector

import ssod  # noqa: F401
from conftest import REPO_ROOT, run_tool
from ssod.apis.text_logger import summarise

GRS = REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"
TOY_MODEL = REPO_ROOT / "configs/_base_/models/faster_rcnn_r18_fpn_toy.py"
# Saves (GbT thresholds and GbR weights logged) at t = 1 and 6; evaluation at the end.
OPTIONS = ["runner.max_iters=8", "evaluation.interval=8", "checkpoint_config.interval=8", "log_config.interval=1",
           "custom_hooks.2.save_interval=5", "custom_hooks.2.update_iter=5", "model.train_cfg.warm_up_iter=2",
           "model.model.roi_head.bbox_head.loss_cls.warm_up_iter=3", "data.samples_per_gpu=3",
           "data.workers_per_gpu=0", "model.train_cfg.jitter_times=3", "lr_config.warmup_iters=2"]
MAX_CONSOLE_LINES = 150  # was about 1,590 lines before the readable logs


@pytest.fixture(scope="module")
def grs_run(toy_workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("readable_logs")
    plain = root / "plain.pth"  # a plain detector: the GrS model's GbR/GbT tensors are missing from it
    save_checkpoint(build_detector(Config.fromfile(str(TOY_MODEL)).model), str(plain))
    work_dir = root / "run"
    proc = run_tool([REPO_ROOT / "tools/train.py", GRS, "--work-dir", work_dir, "--seed", "0", "--load-from", plain,
                     "--cfg-options", *OPTIONS], cwd=toy_workspace)
    (text_log,) = work_dir.glob("*.log")
    (json_log,) = work_dir.glob("*.log.json")
    records = [json.loads(line) for line in json_log.read_text().splitlines() if line.strip()]
    return proc.stdout + proc.stderr, text_log.read_text(), records


def test_console_is_short_and_free_of_git_noise(grs_run):
    console, _, _ = grs_run
    assert len(console.splitlines()) < MAX_CONSOLE_LINES
    assert "not a git repository" not in console
    assert len(re.findall(r"Iter \[\d/8\]", console)) == 8 and "eta:" in console and "loss:" in console


def test_per_class_vectors_are_summarised_in_text_and_whole_in_json(grs_run):
    console, text_log, records = grs_run
    for text in (console, text_log):
        lines = [line for line in text.splitlines() if "gbt_thresholds" in line]
        assert lines
        for line in lines:
            assert re.search(r"gbt_thresholds: min \S+ med \S+ max \S+, lowest [a-z_]+ \S+, [a-z_]+ \S+, [a-z_]+", line)
            assert re.search(r"gbr_weights: min \S+ med \S+ max \S+, highest [a-z_]+ \S+", line)
            assert "[" not in line.split("gbt_thresholds")[1].split(",")[0]
    logged = [r for r in records if "gbt_thresholds" in r]
    assert logged and all(len(r["gbt_thresholds"]) == 8 and len(r["gbr_weights"]) == 9 for r in logged)


def test_missing_checkpoint_keys_stand_out(grs_run):
    console, _, _ = grs_run
    (line,) = [line for line in console.splitlines() if "CHECKPOINT MISMATCH" in line]
    assert " - WARNING - " in line and "plain.pth" in line and "missing (" in line


def test_summary_of_a_per_class_vector():
    names = ["a", "b", "c", "d"]
    assert summarise("gbt_thresholds", [0.9, 0.5, 0.7, 0.6], names) == (
        "min 0.5 med 0.65 max 0.9, lowest b 0.5, d 0.6, c 0.7")
    assert summarise("gbr_weights", [1.0, 3.0, 2.0, 0.5, 1.0], names) == (
        "min 0.5 med 1 max 3, highest b 3, c 2, background 1")
    assert summarise("crs_repeat_hist", [5, 2]) == "[5, 2]"
    assert summarise("other", list(range(20))) == "20 values, min 0 med 9.5 max 19"
