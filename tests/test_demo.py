"""`make demo` in its reduced-iteration mode: every stage runs and summary.json has every key."""
import json

import cv2

from conftest import REPO_ROOT, run_tool

CLASSES = ("red_circle", "green_square", "blue_triangle", "yellow_star",
           "magenta_cross", "cyan_ring", "white_diamond", "orange_bar")


def test_quick_demo_writes_summary_table_and_plots(toy_workspace):
    work_dir = toy_workspace / "work_dirs/demo"
    proc = run_tool([REPO_ROOT / "tools/demo.py", "--work-dir", work_dir], cwd=toy_workspace,
                    extra_env={"SSOD_DEMO_QUICK": "1"})
    summary = json.loads((work_dir / "summary.json").read_text())
    assert summary["settings"]["quick"] is True
    assert summary["settings"]["novel_classes"] == ["cyan_ring", "white_diamond", "orange_bar"]
    for model in ("burn_in", "soft_teacher", "grs"):
        for key in ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_base", "bbox_mAP_novel"):
            assert 0.0 <= summary[model][key] <= 1.0
        assert set(summary[model]["per_class_AP"]) == set(CLASSES)
        assert (work_dir / model / "latest.pth").exists()
    assert "burn_in" in proc.stdout.splitlines()[0] and "grs" in proc.stdout.splitlines()[0]
    for line in ("bbox mAP (all classes)", "bbox mAP tail (novel)", "AP orange_bar (tail)"):
        assert line in proc.stdout
    for plot in ("soft_teacher/losses.png", "grs/losses.png", "grs/gbr_weights.png", "grs/gbt_thresholds.png",
                 "grs/crs_repeat_factors.png"):
        image = cv2.imread(str(work_dir / "plots" / plot))
        assert image is not None and min(image.shape[:2]) >= 400, plot
    pseudo = json.loads((work_dir / "grs/pseudo_labels/pseudo.json").read_text())
    assert "lambd" in pseudo["meta"]
