"""tools/gpu_check.py: its table and verdict, the rank-consistency check, and a CPU smoke run of every step.

On this CPU-only machine the real check exits 0 with a message; ``--allow-cpu --tiny`` runs the
same stages (supervised, soft teacher and GrS through the launch scripts, resume, dist_test, a
2-process GrS run with the rank-consistency check) with a small model at tiny scales.
"""
import torch

from conftest import REPO_ROOT, load_tool, run_tool
from ssod.hooks.rank_consistency import mismatched_tensors, state_fingerprint

gpu_check = load_tool("gpu_check")


def _row(method, time, **flags):
    return dict(setting="coco1", method=method, processes=1, time=time, data_time=0.01, memory_gb=8.0,
                train_ok=True, **flags)


def test_table_ratios_and_verdict():
    rows = [_row("supervised", 0.30), _row("baseline", 0.40, resume_ok=True, eval_ok=True),
            _row("semi", 0.44, crs_ok=True, resume_ok=True, eval_ok=True)]
    table = gpu_check.format_table(rows).splitlines()
    cells = [[c.strip() for c in line.split("|")] for line in table[2:]]
    assert [c[1] for c in cells] == ["supervised", "soft teacher", "GrS"]
    assert cells[2][6] == "1.10" and cells[2][7] == "1.47"  # 0.44 / 0.40 and 0.44 / 0.30
    assert cells[1][6] == "-" and cells[1][7] == "1.33"
    assert cells[2][9:] == ["ok", "-", "ok", "ok"]
    assert not gpu_check.failed([("nms kept indices", 0, True)], rows)
    assert gpu_check.failed([("RoIAlign forward", 0.1, False)], rows)
    rows[2]["eval_ok"] = False
    assert gpu_check.failed([], rows) and "FAILED" in gpu_check.format_table(rows)


def test_step_figures_skip_the_warm_up_and_the_resumed_iterations():
    records = [dict(iter=i, time=float(i), data_time=i / 10, memory=1024 * i) for i in range(1, 13)]
    figures = gpu_check.step_figures(records, iters=10, warm_up=5)
    assert figures["time"] == 8.0 and abs(figures["data_time"] - 0.8) < 1e-12  # median of iterations 6..10
    assert figures["memory_gb"] == 12.0  # the peak over every record


def test_grs_options_switch_the_modules_on_from_the_start():
    from mmcv import Config

    cfg = Config.fromfile(str(REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_lvis_180k.py"))
    options = gpu_check.grs_options(cfg, 30)
    index = [h["type"] for h in cfg.custom_hooks].index("GradientResamplingHook")
    assert {"model.train_cfg.warm_up_iter=0", "model.model.roi_head.bbox_head.loss_cls.warm_up_iter=0",
            "model.train_cfg.max_iter=30", f"custom_hooks.{index}.save_interval=5",
            f"custom_hooks.{index}.update_iter=10"} == set(options)
    baseline = Config.fromfile(str(REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_lvis_180k.py"))
    assert gpu_check.grs_options(baseline, 30) == []


def test_tiny_options_address_the_detector_of_semi_and_supervised_configs():
    semi = gpu_check.tiny_options(REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_coco1_180k.py")
    sup = gpu_check.tiny_options(REPO_ROOT / "configs/baseline/faster_rcnn_r50_caffe_fpn_object365_sup.py")
    assert "model.model.backbone.depth=18" in semi and "model.train_cfg.jitter_times=3" in semi
    assert "model.backbone.depth=18" in sup and not any("jitter" in o for o in sup)
    assert "data.train.0.pipeline.2.img_scale=[(128,64),(128,96)]" in sup  # both parts of the concatenation


def test_rank_fingerprints_name_the_differing_tensors():
    first = torch.nn.Linear(3, 2)
    second = torch.nn.Linear(3, 2)
    second.load_state_dict(first.state_dict())
    prints = [state_fingerprint(first), state_fingerprint(second)]
    assert mismatched_tensors(prints) == [] and set(prints[0]) == {"weight", "bias"}
    with torch.no_grad():
        second.bias[0] += 1e-6
    assert mismatched_tensors([state_fingerprint(first), state_fingerprint(second)]) == ["bias"]
    assert mismatched_tensors([{"a": (1.0, 1.0)}, {}]) == ["a"]


def test_rank_local_buffers_are_left_out_of_the_fingerprint():
    """GbR's RoI-weight normaliser is per-rank in the reference (sync_weights_mean=False, spec H.5)."""
    from ssod.models.losses.gbr import GbRLoss

    model = torch.nn.ModuleDict({"synced": GbRLoss(num_classes=2), "upstream": GbRLoss(2, sync_weights_mean=False)})
    names = set(state_fingerprint(model))
    assert "synced.weights_mean" in names and "upstream.weights_mean" not in names
    assert "upstream.G_bar" in names and "upstream.theta" in names


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    proc = run_tool([REPO_ROOT / "tools/gpu_check.sh", "--workspace", tmp_path / "ws"], cwd=tmp_path)
    assert "no CUDA GPU is visible" in proc.stdout and not (tmp_path / "ws").exists()


def test_cpu_smoke_run_of_every_stage(tmp_path):
    """coco1: supervised, soft teacher and GrS (train, resume, dist_test), and GrS over 2 gloo processes."""
    proc = run_tool([REPO_ROOT / "tools/gpu_check.sh", "--allow-cpu", "--tiny", "--quick", "--iters", 12,
                     "--resume-iters", 1, "--warm-up", 2, "--dist-procs", 2, "--workspace", tmp_path / "ws"],
                    cwd=tmp_path, timeout=1500)
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("setting"))
    cells = [[c.strip() for c in line.split("|")] for line in lines[start + 2:start + 6]]
    assert [(c[0], c[1], c[2]) for c in cells] == [("coco1", "supervised", "1"), ("coco1", "soft teacher", "1"),
                                                   ("coco1", "GrS", "1"), ("coco1", "GrS", "2")]
    for c in cells:
        assert float(c[3]) > 0 and float(c[4]) >= 0 and c[8] == "ok", c  # timed and trained
    assert cells[1][11:] == ["ok", "ok"] and cells[2][9:] == ["ok", "-", "ok", "ok"]  # CrS, resume, eval
    assert cells[3][9:11] == ["ok", "ok"]  # CrS and the rank-consistency check over 2 processes
    work_dir = tmp_path / "ws/work_dirs/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco1_180k/coco1/gpu_check"
    assert (work_dir / "iter_13.pth").is_file() and (work_dir / "pseudo_labels/pseudo_iter11.json").is_file()
