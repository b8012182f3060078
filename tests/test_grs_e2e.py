"""CI-SSOD end to end with 2 CPU processes: GbR weights, GbT thresholds, CrS resampling, resume.

The GrS run starts from a short supervised burn-in (as `make demo` does) so that the teacher
produces pseudo labels; intervals are shrunk so that every module acts within a few iterations.
"""
import glob
import json

import pytest
import torch

from conftest import REPO_ROOT, run_tool

BASELINE = REPO_ROOT / "configs/baseline/faster_rcnn_r18_fpn_toy_sup.py"
GRS = REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"
NUM_CLASSES = 8
TAIL = (5, 6, 7)  # cyan_ring, white_diamond, orange_bar
# GbR after t > 3, class-wise thresholds and dumping from t = 2, saves at 1, 6, 11, 16, refreshes at 11, 16.
# A 60-iteration burn-in scores its boxes 0.1 to 0.6, so the thresholds are scaled down with it: the
# GbT ceiling tau (cls_pseudo_threshold) 0.9 -> 0.3 and floor (initial filter) 0.5 -> 0.1, and alpha
# 0.5 -> 100, so that a 17-iteration run has pseudo boxes that resample.
TAU = 0.3
GRS_OPTIONS = ["log_config.interval=1", "custom_hooks.2.save_interval=5", "custom_hooks.2.update_iter=5",
               "model.train_cfg.warm_up_iter=2", "model.model.roi_head.bbox_head.loss_cls.warm_up_iter=3",
               "model.train_cfg.alpha=100.0", "model.train_cfg.pseudo_label_initial_score_thr=0.1",
               f"model.train_cfg.cls_pseudo_threshold={TAU}", "model.train_cfg.max_iter=17", "data.workers_per_gpu=0",
               "data.samples_per_gpu=3", "model.train_cfg.jitter_times=3", "lr_config.warmup_iters=2",
               "checkpoint_config.interval=12"]


def _train_lines(work_dir):
    lines = []
    for log_file in sorted(glob.glob(str(work_dir / "*.log.json"))):
        with open(log_file) as f:
            lines += [json.loads(line) for line in f if line.strip()]
    return [line for line in lines if line.get("mode") == "train"]


@pytest.fixture(scope="module")
def burn_in(toy_workspace):
    work_dir = toy_workspace / "work_dirs/grs_burn_in"
    run_tool([REPO_ROOT / "tools/train.py", BASELINE, "--work-dir", work_dir, "--seed", "0", "--no-validate",
              "--cfg-options", "runner.max_iters=60", "lr_config.warmup_iters=10", "lr_config.step=[50]",
              "data.workers_per_gpu=0", "checkpoint_config.interval=60"], cwd=toy_workspace)
    return work_dir / "latest.pth"


@pytest.fixture(scope="module")
def grs_run(toy_workspace, burn_in):
    work_dir = toy_workspace / "work_dirs/grs_dist2"
    train = [REPO_ROOT / "tools/dist_train.sh", GRS, 2, "--work-dir", work_dir, "--seed", "0", "--no-validate"]
    run_tool(train + ["--load-from", burn_in, "--cfg-options", "runner.max_iters=12", *GRS_OPTIONS],
             cwd=toy_workspace)
    first = torch.load(work_dir / "iter_12.pth", map_location="cpu", weights_only=True)
    proc = run_tool(train + ["--resume-from", work_dir / "iter_12.pth", "--cfg-options", "runner.max_iters=17",
                             *GRS_OPTIONS], cwd=toy_workspace)
    return work_dir, first, proc


def test_gbr_weights_leave_one_and_keep_their_sum(grs_run):
    work_dir, _, _ = grs_run
    logged = [line for line in _train_lines(work_dir) if "gbr_weights" in line]  # at saves and refreshes
    assert logged[0]["iter"] == 2 and logged[0]["gbr_weights"] == [1.0] * (NUM_CLASSES + 1)  # warm-up
    last = torch.tensor(logged[-1]["gbr_weights"])
    assert last.sum().item() == pytest.approx(NUM_CLASSES + 1, rel=1e-4)
    # The tail weights leave 1 (by how much per class depends on the batches seen in 17 iterations).
    tail_moves = (last[list(TAIL)] - 1).abs()
    assert (tail_moves > 0.05).sum() >= 2 and tail_moves.max() > 0.2, last
    assert last[-1] < 1  # the background target is capped at 1


def test_gbt_thresholds_drop_below_tau_for_tail_classes(grs_run):
    """Tail classes, which the teacher scores low, get thresholds below the ceiling tau."""
    work_dir, _, _ = grs_run
    thresholds = torch.tensor([line for line in _train_lines(work_dir) if "gbt_thresholds" in line][-1]["gbt_thresholds"])
    assert ((thresholds >= 0.1 - 1e-6) & (thresholds <= TAU + 1e-6)).all()
    assert (thresholds[list(TAIL)] < TAU - 1e-3).all()


def test_resampling_changes_the_unlabeled_repeat_factors(grs_run):
    work_dir, _, _ = grs_run
    refreshes = [line for line in _train_lines(work_dir) if "crs_repeat_max" in line]
    assert [line["iter"] for line in refreshes] == [12, 17]  # refreshes at t = 11 and 16, logged after the step
    assert max(line["crs_repeat_max"] for line in refreshes) > 1
    store = json.loads((work_dir / "pseudo_labels/pseudo.json").read_text())
    assert store["meta"]["iter"] == 16 and store["meta"]["lambd"] == pytest.approx(100.0 * 16 / 17)
    boxes = [ann for image in store["images"].values() for ann in image["annotations"]]
    assert boxes and all(ann["score"] >= 0 and 0 <= ann["category_id"] < NUM_CLASSES for ann in boxes)


def test_resume_continues_gbr_gbt_and_crs_state(grs_run):
    work_dir, first, proc = grs_run
    assert "CrS: resumed at iter 12 with the store of iter 11" in proc.stdout + proc.stderr
    last = torch.load(work_dir / "iter_17.pth", map_location="cpu", weights_only=True)
    assert last["meta"]["iter"] == 17 and last["meta"]["hook_msgs"]["crs_refresh_store_iter"] == 16
    state, before = last["state_dict"], first["state_dict"]
    gbr = "student.roi_head.bbox_head.loss_cls."
    assert not torch.equal(state[gbr + "G_bar"], before[gbr + "G_bar"])
    assert not torch.equal(state[gbr + "theta"], before[gbr + "theta"])
    tracker = "class_score_tracker."
    assert (state[tracker + "count"] >= before[tracker + "count"]).all()
    assert state[tracker + "count"].sum() > before[tracker + "count"].sum()
    resumed_iters = [line["iter"] for line in _train_lines(work_dir)][-5:]
    assert resumed_iters == [13, 14, 15, 16, 17]
