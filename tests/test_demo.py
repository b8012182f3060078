"""`make demo` in its reduced-iteration mode: every stage runs and summary.json has every key."""
import json
import re

import cv2
import numpy as np

from conftest import REPO_ROOT, load_tool, run_tool

CLASSES = ("red_circle", "green_square", "blue_triangle", "yellow_star",
           "magenta_cross", "cyan_ring", "white_diamond", "orange_bar")
MODELS = ("burn_in", "supervised", "soft_teacher", "grs")


def test_quick_demo_writes_summary_table_and_plots(toy_workspace):
    work_dir = toy_workspace / "work_dirs/demo"
    proc = run_tool([REPO_ROOT / "tools/demo.py", "--work-dir", work_dir], cwd=toy_workspace,
                    extra_env={"SSOD_DEMO_QUICK": "1"})
    summary = json.loads((work_dir / "summary.json").read_text())
    assert summary["settings"]["quick"] is True and summary["settings"]["seeds"] == [0]
    assert summary["settings"]["novel_classes"] == ["cyan_ring", "white_diamond", "orange_bar"]
    run_dir = work_dir / "seed0"
    for model in MODELS:
        for key in ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_base", "bbox_mAP_novel"):
            assert 0.0 <= summary[model][key] <= 1.0
            assert summary[model]["std"][key] == 0.0  # one seed
            assert summary["seeds"]["0"][model][key] == summary[model][key]
        assert set(summary[model]["per_class_AP"]) == set(CLASSES)
        assert (run_dir / model / "latest.pth").exists()
    # every model starts from the burn-in (CI-SSOD: all but the GbR loss state and the GbT statistics)
    burn_in = re.escape(str(run_dir / "burn_in/latest.pth"))
    for model in ("supervised", "soft_teacher", "grs"):
        train_log = (run_dir / model / "train.out").read_text()
        loaded = re.search(rf"checkpoint {burn_in}: loaded (\d+) of (\d+) model tensors", train_log)
        assert loaded, model
        assert int(loaded[2]) - int(loaded[1]) == (0 if model != "grs" else 12), loaded[0]
    header = proc.stdout.splitlines()[1]
    assert all(model in header for model in MODELS)
    assert set(summary["paired_differences"]) == {"soft_teacher - supervised", "grs - soft_teacher",
                                                  "grs - supervised"}
    for line in ("paired difference, mean ± std", "bbox mAP (all classes)", "bbox mAP tail (novel)",
                 "AP orange_bar (tail)",
                 "pseudo-label quality on 8 unlabeled images, seed 0", "soft_teacher@0.9", "grs@GbT"):
        assert line in proc.stdout, line
    assert "iteration 4/4, eta" in proc.stderr  # progress lines

    quality = summary["pseudo_quality"]["0"]
    assert set(quality) == {"burn_in", "soft_teacher", "grs"}
    assert "gbt" in quality["grs"]["rules"] and "gbt" not in quality["soft_teacher"]["rules"]
    assert "NaN" not in (run_dir / "grs/pseudo_quality/pseudo_quality.json").read_text()  # strict JSON
    for rule in quality["grs"]["rules"].values():
        assert len(rule["precision"]) == len(CLASSES) and sum(rule["gt"]) == rule["all"]["gt"] > 0
    for plot in ("plots/soft_teacher/losses.png", "plots/grs/losses.png", "plots/grs/gbr_weights.png",
                 "plots/grs/gbt_thresholds.png", "plots/grs/crs_repeat_factors.png",
                 "grs/pseudo_quality/precision_recall.png", "soft_teacher/pseudo_quality/score_histograms.png"):
        image = cv2.imread(str(run_dir / plot))
        assert image is not None and min(image.shape[:2]) >= 400, plot
    pseudo = json.loads((run_dir / "grs/pseudo_labels/pseudo.json").read_text())
    assert "lambd" in pseudo["meta"]
    log = [json.loads(line) for line in (run_dir / "grs").glob("*.log.json").__next__().read_text().splitlines()]
    measured = [entry for entry in log if "pseudo_precision@fixed" in entry]
    assert measured and "pseudo_recall@gbt" in measured[-1]  # the training-time hook


def test_resume_reuses_finished_stages_and_retrains_the_rest(toy_workspace, monkeypatch):
    work_dir = toy_workspace / "work_dirs/demo_resume"
    quick = {"SSOD_DEMO_QUICK": "1"}
    run_tool([REPO_ROOT / "tools/demo.py", "--work-dir", work_dir], cwd=toy_workspace, extra_env=quick)
    first = json.loads((work_dir / "summary.json").read_text())
    run_dir = work_dir / "seed0"
    # a crash between training and evaluation: the soft teacher has a checkpoint but no metrics
    (run_dir / "soft_teacher/metrics.json").unlink()
    proc = run_tool([REPO_ROOT / "tools/demo.py", "--work-dir", work_dir, "--resume"], cwd=toy_workspace,
                    extra_env=quick)
    trained = set(re.findall(r"training (\w+) \(", proc.stderr))
    reused = set(re.findall(r"(\w+): reusing the finished run", proc.stderr))
    assert trained == {"soft_teacher"} and reused == {"burn_in", "supervised", "grs"}
    second = json.loads((work_dir / "summary.json").read_text())
    for model in MODELS:
        assert second["seeds"]["0"][model] == first["seeds"]["0"][model], model  # deterministic retraining

    demo = load_tool("demo")
    monkeypatch.chdir(toy_workspace)  # the toy data the settings record is the working directory's
    seed_run = demo.SeedRun(work_dir, 0, "quick", 8, jobs=1, resume=True)
    settings = seed_run.stage_settings("grs", run_dir / "burn_in/latest.pth")
    assert json.loads((run_dir / "grs" / demo.STAGE_RECORD).read_text()) == settings
    assert seed_run.finished_stage("grs", settings) is not None
    assert seed_run.finished_stage("grs", dict(settings, options=[])) is None  # other schedule: train again
    assert demo.SeedRun(work_dir, 0, "full", 8, jobs=1).stage_settings("burn_in", None) == \
        demo.SeedRun(work_dir, 0, "demo", 8, jobs=1).stage_settings("burn_in", None)  # one burn-in for both
    assert seed_run.finished_stage("grs", dict(settings, load_from_sha256="0" * 64)) is None  # other burn-in


def test_paired_differences_by_hand():
    demo = load_tool("demo")
    metrics = {
        0: {"supervised": {"bbox_mAP": 0.50, "bbox_mAP_base": 0.60, "bbox_mAP_novel": 0.30},
            "soft_teacher": {"bbox_mAP": 0.53, "bbox_mAP_base": 0.64, "bbox_mAP_novel": 0.31},
            "grs": {"bbox_mAP": 0.52, "bbox_mAP_base": 0.60, "bbox_mAP_novel": 0.35}},
        1: {"supervised": {"bbox_mAP": 0.60, "bbox_mAP_base": 0.70, "bbox_mAP_novel": 0.40},
            "soft_teacher": {"bbox_mAP": 0.61, "bbox_mAP_base": 0.72, "bbox_mAP_novel": 0.39},
            "grs": {"bbox_mAP": 0.64, "bbox_mAP_base": 0.70, "bbox_mAP_novel": 0.44}},
    }
    differences = demo.paired_differences(metrics)
    st = differences["soft_teacher - supervised"]["bbox_mAP"]
    assert np.allclose(st["per_seed"], [0.03, 0.01])
    assert np.isclose(st["mean"], 0.02) and np.isclose(st["std"], np.sqrt(2) * 0.01)  # |0.03 - 0.01| / sqrt(2)
    tail = differences["grs - soft_teacher"]["bbox_mAP_novel"]
    assert np.allclose(tail["per_seed"], [0.04, 0.05]) and np.isclose(tail["mean"], 0.045)
    assert np.isclose(differences["grs - supervised"]["bbox_mAP_base"]["std"], 0.0)
    one_seed = demo.paired_differences({0: metrics[0]})
    assert one_seed["grs - supervised"]["bbox_mAP"]["std"] == 0.0
    table = demo.format_differences(differences)
    assert "soft_teacher - supervised" in table and "+0.020 ± 0.014" in table
