"""Every CI-SSOD data setting trains and evaluates through the users' launch scripts (README, train.sh).

In a workspace holding tiny data in the real layout (``tools/dataset/make_real_layout.py``: the split files come
from the split tools), for DATA in coco1, coco2, lvis, object365 and TYPE baseline (soft
teacher) and semi (GrS):

    sh tools/dist_train_partially.sh TYPE t DATA GPUS --seed 3 --cfg-options <shrink>
    sh tools/dist_test.sh CONFIG work_dirs/<config>/<DATA>/t/iter_2.pth 1 --eval bbox --cfg-options <shrink>

The real configs run unchanged except for ``--cfg-options`` built from the loaded config
(ResNet-18 and narrow heads, tiny image scales on every resizing step, few sampled boxes, 3
images per process, no fp16, 2 iterations with evaluation and a checkpoint at iteration 2).
Checked: the work dir ``work_dirs/<config>/<DATA>/<FOLD>``, extra arguments reaching
train.py, the losses, the teacher/student evaluation during training and the setting's
metric keys from the test script (COCO and Objects365: bbox_mAP and its _novel/_base
subsets; LVIS: bbox_AP and bbox_APr/c/f). Bad TYPE or DATA: exit status 2 and a message.
"""
import json
import math
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from mmcv import Config

from conftest import REPO_ROOT, free_port, load_tool
from ssod.datasets import class_names

real_layout = load_tool("dataset/make_real_layout")
gpu_check = load_tool("gpu_check")
COCO_BASE_LIST, COCO_CATEGORY_IDS, COCO_NOVEL_LIST = (
    real_layout.COCO_BASE_LIST, real_layout.COCO_CATEGORY_IDS, real_layout.COCO_NOVEL_LIST)
TRAIN_SCRIPT = REPO_ROOT / "tools/dist_train_partially.sh"
TEST_SCRIPT = REPO_ROOT / "tools/dist_test.sh"
CONFIG_DIR = REPO_ROOT / "configs/soft_teacher"
METHODS = {"baseline": "ubsoft_teacher", "semi": "ubsoft_teacher_grs"}
SCHEDULES = {"coco1": "180k", "coco2": "180k", "lvis": "180k", "object365": "360k"}
PROCESSES = {("baseline", "coco2"): 2}  # one run over two (gloo) processes, the others over one
FOLD = "t"
SEED = 3
# With tools/gpu_check.py's tiny_options (ResNet-18, narrow heads, few sampled boxes, tiny image scales).
SHORT_RUN = ["data.samples_per_gpu=3", "data.workers_per_gpu=0", "fp16=None", "runner.max_iters=2",
             "evaluation.interval=2", "checkpoint_config.interval=2", "log_config.interval=1"]
LOSS_KEYS = {"sup_loss_cls", "sup_loss_bbox", "sup_loss_rpn_cls", "sup_loss_rpn_bbox", "unsup_loss_cls",
             "unsup_loss_bbox", "unsup_loss_rpn_cls", "unsup_loss_rpn_bbox", "loss"}
COCO_STATS = ("mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l")
COCO_KEYS = [f"bbox_{stat}{subset}" for subset in ("", "_novel", "_base") for stat in COCO_STATS]
LVIS_KEYS = [f"bbox_{stat}" for stat in ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf")]
METRIC_KEYS = {"coco1": COCO_KEYS, "coco2": COCO_KEYS, "lvis": LVIS_KEYS, "object365": COCO_KEYS}
# Keys every setting's tiny validation set has ground truth for (never -1); object sizes may leave
# the _s/_m/_l keys undefined (-1).
DEFINED_KEYS = {"coco1": ["bbox_mAP", "bbox_mAP_novel", "bbox_mAP_base"],
                "coco2": ["bbox_mAP", "bbox_mAP_novel", "bbox_mAP_base"],
                "lvis": ["bbox_AP", "bbox_APr", "bbox_APc", "bbox_APf"],
                "object365": ["bbox_mAP", "bbox_mAP_novel", "bbox_mAP_base"]}
SETTINGS = [(kind, data) for kind in METHODS for data in SCHEDULES]


# ---------------------------------------------------------------------------- helpers
def config_name(kind, data):
    return f"{METHODS[kind]}_faster_rcnn_r50_caffe_fpn_{data}_{SCHEDULES[data]}"


def _grs_options(cfg):
    """GrS: GbR reweighting, GbT thresholds and pseudo-label dumping act from the start; lambd ramps over the run."""
    options = []
    if "warm_up_iter" in cfg.model.train_cfg:
        options += ["model.train_cfg.warm_up_iter=0", "model.train_cfg.max_iter=2"]
    if "warm_up_iter" in cfg.model.model.roi_head.bbox_head.loss_cls:
        options.append("model.model.roi_head.bbox_head.loss_cls.warm_up_iter=0")
    return options


def shrink_options(config_file):
    """The ``--cfg-options`` that make a real config train and test in seconds on a CPU (see module doc)."""
    return gpu_check.tiny_options(config_file) + SHORT_RUN + _grs_options(Config.fromfile(str(config_file)))


def run_script(args, cwd, timeout=600):
    """``sh <script> args...`` as the users start it (the scripts re-run themselves under bash)."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(["sh", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _check(proc):
    assert proc.returncode == 0, f"{proc.args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-8000:]}"
    return proc


def _json_log(work_dir):
    (log,) = work_dir.glob("*.log.json")
    with open(log) as f:
        return [json.loads(line) for line in f if line.strip()]


def _assert_metric_values(metrics, data, prefix=""):
    keys = [prefix + k for k in METRIC_KEYS[data]]
    assert set(keys) <= set(metrics), sorted(set(keys) - set(metrics))
    for key in keys:
        assert metrics[key] == -1.0 or 0.0 <= metrics[key] <= 1.0, (key, metrics[key])
    for key in DEFINED_KEYS[data]:
        assert 0.0 <= metrics[prefix + key] <= 1.0, (prefix + key, metrics[prefix + key])


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_layout")
    real_layout.write_real_layout(root)
    return root


@pytest.fixture(scope="module")
def trained(workspace):
    """Train each setting once (lazily); maps (TYPE, DATA) to (config file, work dir, train process)."""
    runs = {}

    def train(kind, data):
        if (kind, data) not in runs:
            config = CONFIG_DIR / f"{config_name(kind, data)}.py"
            assert config.is_file(), f"{config} does not exist"
            work_dir = workspace / "work_dirs" / config_name(kind, data) / data / FOLD
            proc = _check(run_script([TRAIN_SCRIPT, kind, FOLD, data, PROCESSES.get((kind, data), 1),
                                      "--seed", SEED, "--cfg-options", *shrink_options(config)], workspace))
            runs[kind, data] = config, work_dir, proc
        return runs[kind, data]

    return train


# ---------------------------------------------------------------------------- tests
@pytest.mark.parametrize("kind,data", SETTINGS)
def test_train_then_test_each_setting(kind, data, trained, workspace):
    config, work_dir, _ = trained(kind, data)
    # Work dir work_dirs/<config>/<DATA>/<FOLD>, holding the dumped config with the options applied.
    assert (work_dir / "iter_2.pth").is_file() and (work_dir / "latest.pth").exists()
    dumped = Config.fromfile(str(work_dir / config.name))
    assert dumped.model.model.backbone.depth == 18 and dumped.get("fp16") is None
    records = _json_log(work_dir)
    train_records = [r for r in records if r.get("mode") == "train"]
    assert [r["iter"] for r in train_records] == [1, 2]
    for record in train_records:
        assert LOSS_KEYS <= set(record) and all(math.isfinite(record[k]) for k in LOSS_KEYS), record
    (evaluation,) = [r for r in records if r.get("mode") == "val"]
    for submodule in ("teacher", "student"):
        _assert_metric_values(evaluation, data, prefix=f"{submodule}.")
    text = next(work_dir.glob("*.log.json")).with_suffix("").read_text()
    processes = PROCESSES.get((kind, data), 1)
    assert f"seed {SEED}," in text and f"training on {processes} process(es)" in text  # extra args reached train.py
    if kind == "semi":  # the CrS hook saved the (empty: warm-up) pseudo-label store at t = 1
        assert (work_dir / "pseudo_labels/pseudo.json").is_file()
        assert (work_dir / "pseudo_labels/pseudo_iter1.json").is_file()

    metrics_file = work_dir / "metrics.json"
    _check(run_script([TEST_SCRIPT, config, work_dir / "iter_2.pth", 1, "--eval", "bbox", "--metrics-out",
                       metrics_file, "--cfg-options", *shrink_options(config),
                       "model.model.test_cfg.rcnn.score_thr=0.0"], workspace))
    with open(metrics_file) as f:
        _assert_metric_values(json.load(f)["metric"], data)


def test_shrink_options_cover_every_resizing_step():
    """Each real config's train (labeled, weak, strong) and val/test pipelines get the tiny scales."""
    options = shrink_options(CONFIG_DIR / f"{config_name('baseline', 'object365')}.py")
    resized = sorted(o.split(".img_scale=")[0] for o in options if ".img_scale=" in o)
    assert resized == ["data.test.pipeline.1", "data.train.sup.0.pipeline.2", "data.train.sup.1.pipeline.2",
                       "data.train.unsup.pipeline.2.unsup_student.0", "data.train.unsup.pipeline.2.unsup_teacher.0",
                       "data.val.pipeline.1"]
    assert "data.test.pipeline.1.img_scale=(128,96)" in options
    assert "data.train.sup.0.pipeline.2.img_scale=[(128,64),(128,96)]" in options


@pytest.mark.parametrize("args,message", [
    (["bogus", FOLD, "coco1", 1], "TYPE must be 'baseline' or 'semi', got 'bogus'"),
    (["baseline", FOLD, "coco3", 1], "DATA must be coco1, coco2, lvis, object365 or toy, got 'coco3'"),
    (["semi", FOLD, "coco", 1], "DATA must be coco1, coco2, lvis, object365 or toy, got 'coco'"),
    (["baseline", FOLD, "coco1"], "Usage: tools/dist_train_partially.sh TYPE FOLD DATA GPUS"),
])
def test_bad_arguments_exit_2_with_a_message(args, message, tmp_path):
    proc = run_script([TRAIN_SCRIPT, *args], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, (proc.returncode, proc.stderr)
    assert not (tmp_path / "work_dirs").exists()


def _train_sh_commands():
    """The ``sh tools/...`` command lines of train.sh (continuation lines joined), as argument lists."""
    text = (REPO_ROOT / "train.sh").read_text().replace("\\\n", " ")
    return [shlex.split(line) for line in text.splitlines() if line.startswith("sh tools/")]


def test_train_sh_trains_and_evaluates_every_setting_into_its_work_dir():
    """Each training line of train.sh is followed by the test of its config on its final checkpoint."""
    commands = _train_sh_commands()
    trainings = [c for c in commands if c[1] == "tools/dist_train_partially.sh"]
    assert sorted((c[2], c[4]) for c in trainings) == sorted(SETTINGS)
    for kind, fold, data, gpus in (c[2:6] for c in trainings):
        config = f"configs/soft_teacher/{config_name(kind, data)}.py"
        cfg = Config.fromfile(str(REPO_ROOT / config))
        max_iters = cfg.runner.max_iters
        assert max_iters % cfg.checkpoint_config.interval == 0  # the final iteration is checkpointed
        checkpoint = f"work_dirs/{config_name(kind, data)}/{data}/{fold}/iter_{max_iters}.pth"
        test = ["sh", "tools/dist_test.sh", config, checkpoint, gpus, "--eval", "bbox"]
        assert test in commands, test
        assert commands.index(test) == commands.index(["sh", "tools/dist_train_partially.sh", kind, fold, data,
                                                       gpus]) + 1
    assert len(commands) == 2 * len(trainings)


def test_split_line_of_the_coco_config_selects_the_split_for_dist_train(workspace, tmp_path):
    """README: edit SPLIT (line 7) of the COCO GrS config and train it with dist_train.sh directly."""
    configs = tmp_path / "configs"
    shutil.copytree(REPO_ROOT / "configs", configs)
    config = configs / "soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco_180k.py"
    lines = config.read_text().splitlines(keepends=True)
    assert lines[6] == "SPLIT = 1\n"
    config.write_text("".join(lines[:6] + ["SPLIT = 2\n"] + lines[7:]))
    options = [o for o in shrink_options(config) if not o.startswith(("evaluation.", "data.val.", "data.test."))]
    _check(run_script([REPO_ROOT / "tools/dist_train.sh", config, 1, "--no-validate", "--cfg-options", *options],
                      workspace))
    work_dir = workspace / "work_dirs" / config.stem  # the default work dir: work_dirs/<config name>
    assert (work_dir / "iter_2.pth").is_file()
    dumped = Config.fromfile(str(work_dir / config.name))
    split2 = "dataset/coco/annotations/instances_train2017_coco_split2_"
    assert dumped.data.train.sup.dataset.ann_file == split2 + "label.json"
    assert dumped.data.train.unsup.dataset.ann_file == split2 + "unlabel.json"
    assert "airplane" in dumped.data.val.novel_classes and "person" not in dumped.data.val.novel_classes
    # The CrS hook counted the labeled images per class (L_c) of the split-2 label file, in which the
    # split tool left split-2 novel classes only on the novel-list images.
    (stats_file,) = (work_dir / "pseudo_labels").glob("labeled_stats_*.json")
    stats = json.loads(stats_file.read_text())
    assert [s["ann_file"] for s in stats["signature"]] == [str(workspace / (split2 + "label.json"))]
    assert stats["image_counts"] == _labeled_image_counts(workspace / (split2 + "label.json"))
    assert stats["num_images"] == len(COCO_BASE_LIST + COCO_NOVEL_LIST)


def _labeled_image_counts(ann_file):
    """Images per COCO class (contiguous label order) of a label file; split-2 novel classes only on novel-list images."""
    data = json.loads(ann_file.read_text())
    label_of = {cat_id: label for label, cat_id in enumerate(COCO_CATEGORY_IDS)}
    novel_ids = {c["id"] for c in data["categories"] if c["name"] in class_names.COCO_SPLIT2_NOVEL}
    images = [set() for _ in COCO_CATEGORY_IDS]
    for ann in data["annotations"]:
        images[label_of[ann["category_id"]]].add(ann["image_id"])
        assert ann["category_id"] not in novel_ids or ann["image_id"] in COCO_NOVEL_LIST
    assert any(ann["category_id"] in novel_ids for ann in data["annotations"])
    return [len(ids) for ids in images]
