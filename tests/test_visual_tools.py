"""Pictures of a run: training plots from .log.json files, the dataset and pseudo-label browsers,
and the TensorBoard logger hook for list-valued log entries."""
import json
import math
import os

import cv2
import mmcv
import numpy as np
import pytest
import torch
from mmcv import Config
from mmcv.runner import LogBuffer, save_checkpoint
from mmdet.models import build_detector

import ssod  # noqa: F401  (registers ssod's modules)
from conftest import REPO_ROOT, load_tool, run_tool
from ssod.hooks.tensorboard_logger import PerClassTensorboardLoggerHook, element_names

GRS_CONFIG = REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"
CLASSES = ["red_circle", "green_square", "blue_triangle", "yellow_star", "magenta_cross", "cyan_ring",
           "white_diamond", "orange_bar"]
LOSS_KEYS = ["sup_loss_rpn_cls", "sup_loss_cls", "sup_loss_grad", "sup_loss_bbox",
             "unsup_loss_rpn_cls", "unsup_loss_cls", "unsup_loss_grad", "unsup_loss_bbox", "loss"]
PLOTS = {"losses.png", "gbr_weights.png", "gbt_thresholds.png", "crs_repeat_factors.png", "metrics.png"}


@pytest.fixture(scope="module")
def plot_tool():
    return load_tool("analysis/plot_training")


def assert_picture(path, min_width=400, min_height=400):
    """A decodable PNG of plausible size that is not a blank canvas."""
    assert os.path.getsize(path) > 10_000, path
    image = cv2.imread(str(path))
    assert image is not None, f"{path} does not decode"
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height, (path, image.shape)
    assert image.std() > 10 and (image < 200).any(axis=2).mean() > 0.02, f"{path} looks blank"


# ----------------------------------------------------------------------------- synthetic logs
def train_line(t, offset):
    line = {"mode": "train", "epoch": 1, "iter": t, "lr": 0.02}
    if t % 50 == 10:  # a pseudo-label save: GbT thresholds and GbR weights
        line["gbt_thresholds"] = [round(0.5 + 0.4 * (c + 1) / 8 * t / 300, 5) for c in range(8)]
        line["gbr_weights"] = [round(1 + 0.5 * math.sin(c) * t / 300, 5) for c in range(8)] + [0.6]
    if t % 100 == 10:  # a CrS refresh
        line.update(crs_lambd=0.5 * (t - 1) / 300, crs_pseudo_images=300 + t, crs_repeat_mean=1.3,
                    crs_repeat_max=5, crs_repeated_length=832, crs_dataset_length=640,
                    crs_repeat_hist=[500, 80, 30, 10 * t // 100 + 1, 5])
    line.update({key: round((k + 1) * 0.3 * math.exp(-t / 150) + offset, 5) for k, key in enumerate(LOSS_KEYS)})
    line.update(grad_norm=3.0, time=0.5, data_time=0.01)
    return line


def val_line(t):
    line = {"mode": "val", "epoch": 1, "iter": 80, "lr": 0.02}  # iter: the size of the val set
    for model, shift in (("teacher", 0.05), ("student", 0.0)):
        for key, scale in (("bbox_mAP", 400), ("bbox_mAP_50", 300), ("bbox_mAP_novel", 600),
                           ("bbox_mAP_base", 350), ("bbox_mAP_s", 500)):
            line[f"{model}.{key}"] = round(t / scale + shift, 4)
        line[f"{model}.bbox_mAP_copypaste"] = "0.1 0.2 0.3"
        line.update({f"{model}.bbox_AP_{name}": round((c + 1) / 10 + shift, 4) for c, name in enumerate(CLASSES)})
    return line


def write_log(path, iterations, offset, meta=None):
    with open(path, "w") as f:
        if meta is not None:
            f.write(json.dumps(meta) + "\n")
        for t in iterations:
            f.write(json.dumps(train_line(t, offset)) + "\n")
            if t % 100 == 0:
                f.write(json.dumps(val_line(t)) + "\n")


@pytest.fixture
def resumed_run(tmp_path):
    """A run logged to iteration 250, resumed from 200 in a second log (all key types present)."""
    meta = {"seed": 0, "exp_name": "toy.py", "config": "x = 1", "CLASSES": CLASSES}
    write_log(tmp_path / "20260101_000000.log.json", range(10, 251, 10), offset=0.0, meta=meta)
    write_log(tmp_path / "20260101_010000.log.json", range(210, 301, 10), offset=1.0, meta=meta)
    return tmp_path


# ----------------------------------------------------------------------------- plot_training
def test_logs_merge_in_iteration_order(plot_tool, resumed_run):
    metas, records = plot_tool.load_history(str(resumed_run))
    train = [r for r in records if r["mode"] == "train"]
    assert [r["x"] for r in train] == list(range(10, 301, 10))
    # iterations 210..250 of the first run are replaced by those of the resumed run (offset 1.0)
    assert [r["sup_loss_rpn_cls"] > 1.0 for r in train] == [t > 200 for t in range(10, 301, 10)]
    # val lines sit at the iteration of the train line before them, not at their 'iter' (80)
    assert [r["x"] for r in records if r["mode"] == "val"] == [100, 200, 300]
    assert plot_tool.class_names(metas, str(resumed_run)) == CLASSES
    iterations, values = plot_tool.series(records, "gbr_weights")
    assert iterations == [10, 60, 110, 160, 210, 260] and all(len(v) == 9 for v in values)
    assert plot_tool.per_class_labels(9, CLASSES) == CLASSES + ["background"]
    assert plot_tool.per_class_labels(3, CLASSES) == ["class 0", "class 1", "class 2"]
    assert plot_tool.merge_runs([[{"x": 1}, {"x": 5}], [{"x": 3}], []]) == [{"x": 1}, {"x": 3}]


def test_plot_training_writes_every_plot(plot_tool, resumed_run, tmp_path):
    out = tmp_path / "plots"
    plot_tool.main([str(resumed_run), "--out", str(out)])
    assert {p for p in os.listdir(out)} == PLOTS
    for name in PLOTS:
        assert_picture(out / name)
    # --latest-only reads the second file only: its first refresh is at 210, its first val line at 300
    _, records = plot_tool.load_history(str(resumed_run), latest_only=True)
    assert min(r["x"] for r in records) == 210


def test_plot_training_skips_missing_keys_and_names_classes_from_config(plot_tool, tmp_path):
    """A baseline-like log: only losses, no meta line; the classes come from the dumped config."""
    with open(tmp_path / "20260101_000000.log.json", "w") as f:
        for t in range(10, 101, 10):
            f.write(json.dumps({"mode": "train", "iter": t, "lr": 0.02, "loss_cls": 1 / t, "loss": 2 / t}) + "\n")
    (tmp_path / "faster_rcnn.py").write_text(
        "data = dict(train=dict(type='SemiDataset', sup=dict(type='ClassBalancedDatasetRFS', oversample_thr=0.1, "
        "dataset=dict(type='CocoDataset', classes=('cat', 'dog'))), unsup=dict(type='CocoDataset')))\n")
    written = plot_tool.plot_all(str(tmp_path))
    assert set(written) == {"losses.png"}
    assert_picture(written["losses.png"])
    assert plot_tool.class_names([None], str(tmp_path)) == ["cat", "dog"]
    with pytest.raises(FileNotFoundError, match="no \\*.log.json"):
        plot_tool.plot_all(str(tmp_path / "plots"))


def test_per_class_plot_with_many_classes(plot_tool, tmp_path):
    """More than 20 classes: no legend, a colour bar and the extreme classes named."""
    names = [f"class_{c:02d}" for c in range(30)]
    records = [{"mode": "train", "x": t, "gbt_thresholds": [0.5 + 0.4 * c / 29 for c in range(30)]}
               for t in (10, 20, 30)]
    path, reason = plot_tool.plot_per_class(records, "gbt_thresholds", names, "GbT", "thr",
                                            str(tmp_path / "thr.png"))
    assert reason is None
    assert_picture(path)
    assert plot_tool.plot_per_class(records, "gbr_weights", names, "GbR", "w", str(tmp_path / "w.png"))[0] is None


# ----------------------------------------------------------------------------- browse_dataset
def test_browse_dataset_draws_labeled_images_and_views(toy_workspace, tmp_path):
    out = tmp_path / "browse"
    run_tool([REPO_ROOT / "tools/misc/browse_dataset.py", GRS_CONFIG, "--out", out, "--num", "2"], cwd=toy_workspace)
    files = sorted(os.listdir(out))
    assert [f.split("_")[0] for f in files] == ["labeled"] * 2 + ["unlabeled"] * 2
    for name in files:
        assert_picture(out / name)


def test_browse_dataset_geometry_helpers():
    tool = load_tool("misc/browse_dataset")
    # hflip of a 100-wide image after a 0.5 resize: x -> 50 - 0.5 x
    matrix = np.array([[-0.5, 0, 50], [0, 0.5, 0], [0, 0, 1]])
    np.testing.assert_allclose(tool.map_points(tool.box_corners((0, 0, 100, 60)), matrix),
                               [[50, 0], [0, 0], [0, 30], [50, 30]])
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    norm = dict(mean=np.array([123.675, 116.28, 103.53], dtype=np.float32),
                std=np.array([58.395, 57.12, 57.375], dtype=np.float32), to_rgb=True)
    normalised = mmcv.imnormalize(rgb[..., ::-1], norm["mean"], norm["std"], to_rgb=True)  # from BGR, as loaded
    padded = np.zeros((32, 32, 3), dtype=np.float32)
    padded[:20, :30] = normalised
    meta = dict(img_norm_cfg=norm, img_shape=(20, 30, 3), filename="x.png")
    restored = tool.unnormalise(torch.from_numpy(padded).permute(2, 0, 1), meta)
    assert restored.shape == (20, 30, 3)
    assert np.abs(restored.astype(int) - rgb).max() <= 1


# ----------------------------------------------------------------------------- browse_pseudo_labels
def test_box_categories_and_thresholds_by_iteration():
    tool = load_tool("misc/browse_pseudo_labels")
    boxes = torch.tensor([[0, 0, 10, 10, 0.95], [0, 0, 10, 10, 0.7], [0, 0, 10, 10, 0.45], [0, 0, 1, 1, 0.99],
                          [0, 0, 10, 10, 0.6], [0, 0, 10, 10, 0.5]])
    labels = torch.tensor([0, 0, 1, 1, 1, 1])
    categories = tool.box_categories(boxes, labels, torch.tensor([0.9, 0.55]), initial_thr=0.5, min_size=2)
    P, T, I = tool.PSEUDO_LABEL, tool.BELOW_CLASS_THR, tool.BELOW_INITIAL
    # 0.7 < thr 0.9; 0.45 and 0.5 are not > 0.5; the 1x1 box is too small; 0.6 > thr 0.55
    assert categories.tolist() == [P, T, I, I, P, I]


def grs_checkpoint(path, finished_iters):
    """A toy GrS model whose teacher scores every box as green_square (~0.87) and known GbT/GbR state."""
    torch.manual_seed(0)
    cfg = Config.fromfile(str(GRS_CONFIG))
    model = build_detector(cfg.model)
    model.teacher.roi_head.bbox_head.fc_cls.bias.data[1] = 4.0
    tracker = model.class_score_tracker
    tracker.score_mean.copy_(torch.tensor([0.9, 0.3, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6], dtype=torch.float64))
    tracker.count.fill_(tracker.window)
    model.student.roi_head.bbox_head.loss_cls.class_weights.copy_(
        torch.tensor([1.0, 1.0, 1.5, 1.0, 1.0, 1.0, 1.0, 1.8, 0.7]))
    save_checkpoint(model, str(path), meta=dict(iter=finished_iters))
    return cfg


def test_browse_pseudo_labels_uses_the_checkpointed_thresholds(toy_workspace, tmp_path):
    checkpoint = tmp_path / "iter_200.pth"
    cfg = grs_checkpoint(checkpoint, finished_iters=200)  # past warm_up_iter = 150
    out = tmp_path / "pseudo"
    run_tool([REPO_ROOT / "tools/misc/browse_pseudo_labels.py", GRS_CONFIG, checkpoint, "--out", out, "--num", "2"],
             cwd=toy_workspace)
    with open(out / "summary.json") as f:
        summary = json.load(f)
    # mean score 0.6: base 0.9 * s / 0.6 = [1.35, 0.45, 0.9 ...]; GbT min with 0.9 / w (w_2 = 1.5, w_7 = 1.8);
    # clamp to [0.5, 0.9]
    expected = [0.9, 0.5, 0.6, 0.9, 0.9, 0.9, 0.9, 0.5]
    assert summary["checkpoint_iter"] == 200 and summary["threshold_source"].startswith("GbT")
    np.testing.assert_allclose([summary["thresholds"][n] for n in CLASSES], expected, atol=1e-6)
    assert len(summary["images"]) == 2
    boxes = [box for image in summary["images"] for box in image["boxes"]]
    assert boxes and all(box["label"] == "green_square" and box["score"] > 0.8 for box in boxes)
    assert all(box["category"] == "pseudo_label" for box in boxes)  # > 0.5 and > thr 0.5
    for image in summary["images"]:
        assert_picture(image["png"])
        height, width = mmcv.imread(os.path.join(toy_workspace, image["filename"])).shape[:2]
        assert all(0 <= b["box"][0] < b["box"][2] <= width and 0 <= b["box"][1] < b["box"][3] <= height
                   for b in image["boxes"]), "boxes are drawn in original image coordinates"

    # before warm_up_iter training uses the fixed cls_pseudo_threshold: the same boxes fall below it
    tool = load_tool("misc/browse_pseudo_labels")
    model, finished = tool.load_model(cfg, str(checkpoint), "cpu")
    thresholds, _ = tool.pseudo_thresholds(model, finished)
    np.testing.assert_allclose(thresholds.numpy(), expected, atol=1e-6)
    thresholds, source = tool.pseudo_thresholds(model, 149)
    assert thresholds.tolist() == pytest.approx([0.9] * 8) and "149 < warm_up_iter 150" in source
    assert tool.box_categories(torch.tensor([[0, 0, 9, 9, 0.87]]), torch.tensor([1]), thresholds, 0.5,
                               0).tolist() == [tool.BELOW_CLASS_THR]


# ----------------------------------------------------------------------------- TensorBoard
class RecordingWriter:
    def __init__(self):
        self.scalars, self.texts = {}, {}

    def add_scalar(self, tag, value, step):
        assert np.ndim(value) == 0, f"{tag}: add_scalar takes one number, got {value!r}"
        self.scalars[tag] = (value, step)

    def add_text(self, tag, value, step):
        self.texts[tag] = (value, step)


class FakeRunner:
    def __init__(self, output):
        self.mode, self.iter, self.meta, self.model = "train", 11, {"CLASSES": ["cat", "dog"]}, None
        self.work_dir, self.hooks = "unused", []
        self.log_buffer = LogBuffer()
        self.log_buffer.output.update(output)

    def current_lr(self):
        return [0.02]

    def current_momentum(self):
        return [0.9]


def test_tensorboard_hook_splits_lists_into_named_scalars():
    assert element_names("gbr_weights", 3, ["cat", "dog"]) == ["cat", "dog", "background"]
    assert element_names("gbt_thresholds", 2, ["cat", "dog"]) == ["cat", "dog"]
    assert element_names("crs_repeat_hist", 3, ["cat", "dog"]) == ["repeat_1", "repeat_2", "repeat_3"]
    assert element_names("other", 3, None) == ["0", "1", "2"]
    hook = PerClassTensorboardLoggerHook(by_epoch=False)
    hook.class_names = ["cat", "dog"]
    hook.writer = RecordingWriter()
    hook.log(FakeRunner(dict(time=0.5, loss=1.5, gbt_thresholds=[0.6, 0.9], gbr_weights=[1.2, 0.8, 0.5],
                             crs_repeat_hist=[7, 2], note="text")))
    assert hook.writer.scalars == {
        "train/loss": (1.5, 12), "train/gbt_thresholds/cat": (0.6, 12), "train/gbt_thresholds/dog": (0.9, 12),
        "train/gbr_weights/cat": (1.2, 12), "train/gbr_weights/dog": (0.8, 12),
        "train/gbr_weights/background": (0.5, 12), "train/crs_repeat_hist/repeat_1": (7, 12),
        "train/crs_repeat_hist/repeat_2": (2, 12), "learning_rate": (0.02, 12), "momentum": (0.9, 12)}
    assert hook.writer.texts == {"train/note": ("text", 12)}


def test_tensorboard_hook_needs_the_tensorboard_package(tmp_path):
    hook = PerClassTensorboardLoggerHook(by_epoch=False, log_dir=str(tmp_path / "tf_logs"))
    runner = FakeRunner({})
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="tensorboard"):
            hook.before_run(runner)
        return
    hook.before_run(runner)
    assert hook.class_names == ["cat", "dog"]
    hook.after_run(runner)
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tf_logs"))
