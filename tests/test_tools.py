"""End-to-end runs of tools/train.py, tools/test.py and the torchrun scripts on toy data (CPU)."""
import json

import pytest

from conftest import REPO_ROOT, load_tool, run_tool

BASELINE = REPO_ROOT / "configs/baseline/faster_rcnn_r18_fpn_toy_sup.py"
SHORT_RUN = ["--cfg-options", "runner.max_iters=4", "checkpoint_config.interval=4", "evaluation.interval=4",
             "data.samples_per_gpu=2", "data.workers_per_gpu=0", "log_config.interval=1",
             "lr_config.warmup_iters=2"]
# A 4-iteration model scores every box low: keep them all so the metrics see real detections.
ALL_SCORES = ["--cfg-options", "model.test_cfg.rcnn.score_thr=0.0"]
COCO_KEYS = {"bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s", "bbox_mAP_m", "bbox_mAP_l"}


def _read_metrics(path):
    with open(path) as f:
        return json.load(f)["metric"]


@pytest.fixture(scope="module")
def two_process_run(toy_workspace):
    work_dir = toy_workspace / "work_dirs/dist2"
    proc = run_tool([REPO_ROOT / "tools/dist_train.sh", BASELINE, 2, "--work-dir", work_dir, "--seed", "0",
                     *SHORT_RUN], cwd=toy_workspace)
    return work_dir, proc


def test_dist_train_two_processes_writes_checkpoint_and_evaluates(two_process_run):
    work_dir, proc = two_process_run
    assert (work_dir / "iter_4.pth").is_file()
    assert (work_dir / "latest.pth").exists()
    log = proc.stdout + proc.stderr
    assert "training on 2 process(es)" in log
    assert "eta:" in log and "bbox_mAP" in log


def test_dist_test_two_processes_reports_coco_metrics(two_process_run, toy_workspace):
    work_dir, _ = two_process_run
    metrics_file = work_dir / "metrics_dist.json"
    proc = run_tool([REPO_ROOT / "tools/dist_test.sh", BASELINE, work_dir / "iter_4.pth", 2, "--eval", "bbox",
                     "--metrics-out", metrics_file, *ALL_SCORES], cwd=toy_workspace)
    metrics = _read_metrics(metrics_file)
    assert COCO_KEYS <= set(metrics)
    assert 0.0 <= metrics["bbox_mAP"] <= 1.0
    assert all(metrics[k] == -1.0 or 0.0 <= metrics[k] <= 1.0 for k in COCO_KEYS)  # -1: no GT of that size
    assert "Average Precision" in proc.stdout + proc.stderr


def test_single_and_two_process_test_agree(two_process_run, toy_workspace):
    work_dir, _ = two_process_run
    single = work_dir / "metrics_single.json"
    run_tool([REPO_ROOT / "tools/test.py", BASELINE, work_dir / "iter_4.pth", "--eval", "bbox",
              "--metrics-out", single, "--out", work_dir / "dets.pkl", *ALL_SCORES], cwd=toy_workspace)
    double = work_dir / "metrics_dist.json"
    if not double.exists():
        run_tool([REPO_ROOT / "tools/dist_test.sh", BASELINE, work_dir / "iter_4.pth", 2, "--eval", "bbox",
                  "--metrics-out", double, *ALL_SCORES], cwd=toy_workspace)
    assert _read_metrics(single) == pytest.approx(_read_metrics(double), abs=1e-6)
    assert (work_dir / "dets.pkl").stat().st_size > 0


def test_single_process_train(toy_workspace):
    work_dir = toy_workspace / "work_dirs/single"
    run_tool([REPO_ROOT / "tools/train.py", BASELINE, "--work-dir", work_dir, "--seed", "0", "--no-validate",
              *SHORT_RUN], cwd=toy_workspace)
    assert (work_dir / "iter_4.pth").is_file()


def test_missing_annotation_file_is_a_clear_error(toy_workspace):
    proc = run_tool([REPO_ROOT / "tools/train.py", BASELINE, "--work-dir", toy_workspace / "work_dirs/missing",
                     "--cfg-options", "data.train.ann_file=dataset/toy/annotations/nope.json"],
                    cwd=toy_workspace, check=False)
    assert proc.returncode != 0
    assert "FileNotFoundError" in proc.stderr
    assert "nope.json" in proc.stderr and "data.train.ann_file" in proc.stderr


def test_num_classes_mismatch_is_a_clear_error(toy_workspace):
    proc = run_tool([REPO_ROOT / "tools/train.py", BASELINE, "--work-dir", toy_workspace / "work_dirs/classes",
                     "--cfg-options", "model.roi_head.bbox_head.num_classes=5"], cwd=toy_workspace, check=False)
    assert proc.returncode != 0
    assert "num_classes=5" in proc.stderr and "8 classes" in proc.stderr


def test_local_rank_arguments_are_accepted():
    train = load_tool("train")
    for flag in ("--local-rank", "--local_rank"):
        args = train.parse_args([str(BASELINE), flag, "0"])
        assert args.local_rank == 0
