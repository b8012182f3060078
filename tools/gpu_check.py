"""First run on a GPU node: CUDA ops against the CPU, then every setting trains, resumes and evaluates.

    sh tools/gpu_check.sh [--quick] [--settings coco1 lvis] [--iters 30] [--resume-iters 5]

On a machine with the stack installed (README "Installation") and a CUDA GPU:

1. mmcv's RoIAlign (forward and backward), nms and batched_nms on the GPU against the CPU;
2. tiny data in the real layout (tools/dataset/make_real_layout.py) under the workspace;
3. per setting (coco1, coco2, lvis, object365; ``--quick``: coco1):
   * the plain supervised Faster R-CNN of the setting (configs/baseline) at the semi runs' images
     per GPU, as the reference step time;
   * the soft-teacher baseline and CI-SSOD (GrS) through ``tools/dist_train_partially.sh`` at the
     real image scales with the configs' fp16, the GrS modules on from the start (warm-ups 0, a
     pseudo-label save and a CrS refresh inside the run), then a resume from the run's last
     checkpoint for a few iterations, then ``tools/dist_test.sh ... --eval bbox`` on the result;
   * with 2 or more GPUs, the GrS run again over 2 processes (NCCL); the rank-consistency hook
     compares the model state, GbR/GbT statistics included, across the ranks.

Prints one table (step time as the median after warm-up, data time, peak memory per GPU, the
GrS/soft-teacher and semi/supervised ratios, resume and eval results) and exits 1 if anything
failed. Without a CUDA GPU it says so and exits 0. ``--allow-cpu --tiny`` runs the same steps on
the CPU with a small model at tiny scales (how the tests check this tool).
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from mmcv import Config

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("coco1", "coco2", "lvis", "object365")
SEMI_CONFIGS = {"coco1": "{}_faster_rcnn_r50_caffe_fpn_coco1_180k", "coco2": "{}_faster_rcnn_r50_caffe_fpn_coco2_180k",
                "lvis": "{}_faster_rcnn_r50_caffe_fpn_lvis_180k",
                "object365": "{}_faster_rcnn_r50_caffe_fpn_object365_360k"}
METHODS = {"baseline": "ubsoft_teacher", "semi": "ubsoft_teacher_grs"}
METHOD_NAMES = {"supervised": "supervised", "baseline": "soft teacher", "semi": "GrS"}
SUPERVISED_CONFIGS = {"coco1": "faster_rcnn_r50_caffe_fpn_coco_split1_sup",
                      "coco2": "faster_rcnn_r50_caffe_fpn_coco_split2_sup",
                      "lvis": "faster_rcnn_r50_caffe_fpn_lvis_sup",
                      "object365": "faster_rcnn_r50_caffe_fpn_object365_sup"}
METRIC_KEYS = {"coco1": ("bbox_mAP", "bbox_mAP_novel", "bbox_mAP_base"),
               "coco2": ("bbox_mAP", "bbox_mAP_novel", "bbox_mAP_base"),
               "lvis": ("bbox_AP", "bbox_APr", "bbox_APc", "bbox_APf"),
               "object365": ("bbox_mAP", "bbox_mAP_novel", "bbox_mAP_base")}
# CrS events at t % 5 == 1 (saves) and t % 10 == 1, t > 10 (refresh), t = iterations finished, checked
# before iteration t + 1: a run of 12 or more iterations saves at t = 6 and refreshes at t = 11.
SAVE_INTERVAL, UPDATE_ITER = 5, 10
MIN_ITERS = UPDATE_ITER + 2
FOLD = "gpu_check"

# --tiny: ResNet-18, 64-channel FPN, 128-wide box head, few sampled boxes, tiny image scales.
TINY_MODEL = [
    "backbone.depth=18", "backbone.init_cfg=None", "neck.in_channels=[64,128,256,512]", "neck.out_channels=64",
    "rpn_head.in_channels=64", "rpn_head.feat_channels=64", "roi_head.bbox_roi_extractor.out_channels=64",
    "roi_head.bbox_head.in_channels=64", "roi_head.bbox_head.fc_out_channels=128", "train_cfg.rpn.sampler.num=64",
    "train_cfg.rpn_proposal.nms_pre=200", "train_cfg.rpn_proposal.max_per_img=100",
    "train_cfg.rcnn.sampler.num=64", "test_cfg.rpn.nms_pre=200", "test_cfg.rpn.max_per_img=100",
]
TINY_TRAIN_SCALE = [(128, 64), (128, 96)]  # replaces multi-scale ranges, e.g. [(1333, 400), (1333, 1200)]
TINY_TEST_SCALE = (128, 96)  # replaces single scales, e.g. (1333, 800)


# ---------------------------------------------------------------------------- config options
def _resize_options(node, path):
    """``path.img_scale=<tiny>`` for every transform (at any depth under ``node``) that has an img_scale."""
    if isinstance(node, dict):
        if "img_scale" in node:
            scale = TINY_TRAIN_SCALE if isinstance(node["img_scale"], list) else TINY_TEST_SCALE
            yield f"{path}.img_scale={scale!r}".replace(" ", "")
        for key, value in node.items():
            yield from _resize_options(value, f"{path}.{key}")
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _resize_options(value, f"{path}.{index}")


def tiny_options(config_file) -> list:
    """``--cfg-options`` that shrink a real config (semi or supervised) to a CPU-sized model and images."""
    cfg = Config.fromfile(str(config_file))
    model_prefix = "model.model." if "model" in cfg.model else "model."
    resize = list(_resize_options(cfg._cfg_dict.to_dict()["data"], "data"))
    if not resize:
        raise ValueError(f"{config_file}: no pipeline step with img_scale found under data")
    jitter = ["model.train_cfg.jitter_times=3"] if "jitter_times" in cfg.model.get("train_cfg", {}) else []
    return [model_prefix + option for option in TINY_MODEL] + jitter + resize


def grs_options(cfg, iters: int) -> list:
    """GbR, GbT and CrS active from the first iteration, with a pseudo-label save and a CrS refresh in the run."""
    if "warm_up_iter" not in cfg.model.get("train_cfg", {}):
        return []
    (hook_index,) = [i for i, hook in enumerate(cfg.custom_hooks) if hook["type"] == "GradientResamplingHook"]
    return ["model.train_cfg.warm_up_iter=0", f"model.train_cfg.max_iter={iters}",
            "model.model.roi_head.bbox_head.loss_cls.warm_up_iter=0",
            f"custom_hooks.{hook_index}.save_interval={SAVE_INTERVAL}",
            f"custom_hooks.{hook_index}.update_iter={UPDATE_ITER}"]


# ---------------------------------------------------------------------------- running the tools
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StageRunner:
    """Runs the repository's shell tools in the workspace; each stage's output goes to logs/<name>.log."""

    def __init__(self, workspace: Path, timeout: float):
        self.workspace = workspace
        self.timeout = timeout
        self.log_dir = workspace / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str, script: str, *args) -> bool:
        env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
        command = ["bash", str(REPO_ROOT / "tools" / script), *map(str, args)]
        log = self.log_dir / f"{name}.log"
        with open(log, "w") as out:
            out.write(" ".join(command) + "\n")
            out.flush()
            try:
                code = subprocess.run(command, cwd=self.workspace, env=env, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=self.timeout).returncode
            except subprocess.TimeoutExpired:
                out.write(f"\ngpu_check: timed out after {self.timeout:.0f} s\n")
                code = "timeout"
        if code != 0:
            tail = log.read_text().splitlines()[-15:]
            sys.stderr.write(f"gpu_check: stage {name} failed ({code}); log {log}\n" + "\n".join(tail) + "\n")
        return code == 0


def train_records(work_dir: Path) -> list:
    """Training records of every ``*.log.json`` in ``work_dir`` (all runs, resumes included), by iteration."""
    records = []
    for log in sorted(work_dir.glob("*.log.json")):
        with open(log) as f:
            records += [r for r in map(json.loads, filter(str.strip, f)) if r.get("mode") == "train"]
    return sorted(records, key=lambda r: r["iter"])


def step_figures(records: list, iters: int, warm_up: int) -> dict:
    """Median step and data time after ``warm_up`` iterations, and peak memory (GB), of iterations 1..iters."""
    timed = [r for r in records if warm_up < r["iter"] <= iters]
    if not timed:
        return {}
    memory = [r["memory"] for r in records if "memory" in r]
    return {"time": statistics.median(r["time"] for r in timed),
            "data_time": statistics.median(r["data_time"] for r in timed),
            "memory_gb": max(memory) / 1024 if memory else None}


def log_text(work_dir: Path) -> str:
    return "\n".join(log.read_text() for log in sorted(work_dir.glob("*.log")))


# ---------------------------------------------------------------------------- the checks
def check_ops() -> list:
    """Rows ``(name, max abs difference or mismatches, ok)`` of the CUDA ops against the CPU."""
    from mmcv.ops import RoIAlign, batched_nms, nms

    generator = torch.Generator().manual_seed(0)
    feats = torch.rand(2, 16, 48, 64, generator=generator)
    xy = torch.rand(64, 2, generator=generator) * torch.tensor([200.0, 150.0])
    wh = torch.rand(64, 2, generator=generator) * 60 + 2
    rois = torch.cat([torch.randint(0, 2, (64, 1), generator=generator).float(), xy, xy + wh], dim=1)
    upstream = torch.rand(64, 16, 7, 7, generator=generator)
    results = {}
    for device in ("cpu", "cuda"):
        f = feats.to(device).requires_grad_()
        out = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=0, aligned=True)(f, rois.to(device))
        (out * upstream.to(device)).sum().backward()
        results[device] = (out.detach().cpu(), f.grad.cpu())
    rows = [("RoIAlign forward", (results["cpu"][0] - results["cuda"][0]).abs().max().item(), 1e-4),
            ("RoIAlign backward", (results["cpu"][1] - results["cuda"][1]).abs().max().item(), 1e-4)]
    boxes = torch.cat([xy, xy + wh], dim=1).repeat(8, 1) + torch.rand(512, 4, generator=generator) * 8
    scores = torch.rand(512, generator=generator)
    classes = torch.randint(0, 5, (512,), generator=generator)
    keep = {device: nms(boxes.to(device), scores.to(device), 0.5)[1].cpu() for device in ("cpu", "cuda")}
    batched = {device: batched_nms(boxes.to(device), scores.to(device), classes.to(device),
                                   dict(type="nms", iou_threshold=0.5))[1].cpu() for device in ("cpu", "cuda")}
    rows.append(("nms kept indices", 0 if torch.equal(keep["cpu"], keep["cuda"]) else 1, 0))
    rows.append(("batched_nms kept indices", 0 if torch.equal(batched["cpu"], batched["cuda"]) else 1, 0))
    return [(name, value, value <= tolerance) for name, value, tolerance in rows]


class SettingCheck:
    """Supervised, soft teacher and GrS runs of one setting: train, resume, evaluate."""

    def __init__(self, args, run: StageRunner, data: str, processes: int):
        self.args, self.run, self.data, self.processes = args, run, data, processes

    def options(self, config_file: Path, max_iters: int, checkpoint_interval: int, samples_per_gpu: int) -> list:
        """Run length, checkpoints and logging of one stage; with --tiny also the small model and images."""
        options = [f"runner.max_iters={max_iters}", f"checkpoint_config.interval={checkpoint_interval}",
                   "log_config.interval=1", f"data.samples_per_gpu={samples_per_gpu}"]
        if self.args.tiny:
            options += tiny_options(config_file) + ["fp16=None", "data.workers_per_gpu=0"]
        return options

    def samples_per_gpu(self, configured: int) -> int:
        """The configs' images per GPU; 3 with --tiny (the CPU smoke run)."""
        return 3 if self.args.tiny else configured

    def semi_config(self, kind: str) -> Path:
        return REPO_ROOT / "configs/soft_teacher" / f"{SEMI_CONFIGS[self.data].format(METHODS[kind])}.py"

    def supervised(self) -> dict:
        config_file = REPO_ROOT / "configs/baseline" / f"{SUPERVISED_CONFIGS[self.data]}.py"
        images = Config.fromfile(str(self.semi_config("semi"))).data.samples_per_gpu  # labeled + unlabeled
        work_dir = self.args.workspace / "work_dirs" / config_file.stem / self.data / FOLD
        options = self.options(config_file, self.args.iters, self.args.iters, self.samples_per_gpu(images))
        ok = self.run(f"{self.data}_supervised", "dist_train.sh", config_file, self.processes, "--work-dir", work_dir,
                      "--no-validate", "--seed", 0, "--cfg-options", *options)
        return dict(setting=self.data, method="supervised", processes=self.processes, train_ok=ok,
                    **step_figures(train_records(work_dir), self.args.iters, self.args.warm_up))

    def semi(self, kind: str, processes: int, resume_and_eval: bool = True) -> dict:
        config_file = self.semi_config(kind)
        cfg = Config.fromfile(str(config_file))
        images = self.samples_per_gpu(cfg.data.samples_per_gpu)
        fold = FOLD if processes == self.processes else f"{FOLD}_{processes}procs"
        work_dir = Path("work_dirs") / config_file.stem / self.data / fold
        iters, more = self.args.iters, self.args.resume_iters
        train_options = grs_options(cfg, iters) + self.options(config_file, iters, iters, images)
        name = f"{self.data}_{kind}_{processes}procs"
        row = dict(setting=self.data, method=kind, processes=processes)
        row["train_ok"] = self.run(name, "dist_train_partially.sh", kind, fold, self.data, processes, "--no-validate",
                                   "--seed", 0, "--cfg-options", *train_options)
        absolute = self.args.workspace / work_dir
        row.update(step_figures(train_records(absolute), iters, self.args.warm_up))
        text = log_text(absolute)
        if kind == "semi":
            row["crs_ok"] = f"CrS save at iter {SAVE_INTERVAL + 1}" in text and \
                f"CrS refresh at iter {UPDATE_ITER + 1}" in text
        if processes > 1:
            row["ranks_equal"] = f"rank consistency at iteration {iters}" in text and "differs between" not in text
        if not (resume_and_eval and row["train_ok"]):
            return row
        resume_options = grs_options(cfg, iters) + self.options(config_file, iters + more, more, images)
        row["resume_ok"] = self.run(f"{name}_resume", "dist_train_partially.sh", kind, fold, self.data, processes,
                                    "--no-validate", "--seed", 0, "--resume-from", work_dir / f"iter_{iters}.pth",
                                    "--cfg-options", *resume_options) and \
            [r["iter"] for r in train_records(absolute)][-more:] == list(range(iters + 1, iters + more + 1))
        metrics_file = absolute / "gpu_check_metrics.json"
        test_options = tiny_options(config_file) if self.args.tiny else []
        row["eval_ok"] = row["resume_ok"] and self.run(
            f"{name}_test", "dist_test.sh", config_file, work_dir / f"iter_{iters + more}.pth", processes,
            "--eval", "bbox", "--metrics-out", metrics_file,
            *(["--cfg-options", *test_options] if test_options else [])) and self._metric_keys_present(metrics_file)
        return row

    def _metric_keys_present(self, metrics_file: Path) -> bool:
        with open(metrics_file) as f:
            metrics = json.load(f)["metric"]
        return all(key in metrics for key in METRIC_KEYS[self.data])


# ---------------------------------------------------------------------------- report
def _ratio(row, reference):
    if reference and row.get("time") and reference.get("time"):
        return f"{row['time'] / reference['time']:.2f}"
    return "-"


def _flag(row, key):
    return "-" if key not in row else ("ok" if row[key] else "FAILED")


def format_table(rows: list) -> str:
    header = ("setting", "method", "procs", "s/iter", "data_time", "peak GB", "vs soft teacher", "vs supervised",
              "train", "CrS", "ranks equal", "resume", "eval")
    lines = []
    for row in rows:
        same = {r["method"]: r for r in rows if r["setting"] == row["setting"] and r["processes"] == row["processes"]}
        fmt = (lambda key, spec: "-" if row.get(key) is None else format(row[key], spec))
        lines.append((row["setting"], METHOD_NAMES[row["method"]], str(row["processes"]), fmt("time", ".3f"),
                      fmt("data_time", ".3f"), fmt("memory_gb", ".1f"),
                      _ratio(row, same.get("baseline")) if row["method"] == "semi" else "-",
                      _ratio(row, same.get("supervised")) if row["method"] != "supervised" else "-",
                      _flag(row, "train_ok"), _flag(row, "crs_ok"), _flag(row, "ranks_equal"),
                      _flag(row, "resume_ok"), _flag(row, "eval_ok")))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    render = (lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)))
    return "\n".join([render(header), "-+-".join("-" * w for w in widths)] + [render(line) for line in lines])


def failed(ops_rows, rows) -> bool:
    flags = ("train_ok", "crs_ok", "ranks_equal", "resume_ok", "eval_ok")
    return any(not ok for _, _, ok in ops_rows) or any(row.get(key) is False for row in rows for key in flags)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="coco1 only, supervised + both methods (< 2 min)")
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, help="settings to check (default: all)")
    parser.add_argument("--iters", type=int, default=30, help=f"training iterations per run (>= {MIN_ITERS})")
    parser.add_argument("--resume-iters", type=int, default=5, help="iterations after the resume")
    parser.add_argument("--warm-up", type=int, default=5, help="iterations left out of the step-time median")
    parser.add_argument("--dist-procs", type=int, default=None,
                        help="processes of the distributed GrS run (default: 2 with 2 or more GPUs, else none)")
    parser.add_argument("--workspace", type=Path, default=Path("work_dirs/gpu_check"),
                        help="where the tiny data, work dirs and stage logs go (emptied first)")
    parser.add_argument("--stage-timeout", type=float, default=600, help="seconds one stage may take")
    parser.add_argument("--allow-cpu", action="store_true", help="run without a GPU (with --tiny: the tests)")
    parser.add_argument("--tiny", action="store_true", help="small model and tiny images (CPU smoke run)")
    args = parser.parse_args(argv)
    if args.iters < MIN_ITERS:
        parser.error(f"--iters must be >= {MIN_ITERS} so that a CrS refresh happens inside the run")
    args.settings = ["coco1"] if args.quick else (args.settings or list(SETTINGS))
    args.workspace = args.workspace.resolve()
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == 0 and not args.allow_cpu:
        print("gpu_check: no CUDA GPU is visible (torch.cuda.is_available() is False); nothing to check.")
        return 0
    dist_procs = args.dist_procs if args.dist_procs is not None else (2 if gpus >= 2 else 0)
    started = time.time()
    from ssod.apis.env_report import collect_environment, format_environment

    print(format_environment(collect_environment()), flush=True)
    ops_rows = check_ops() if gpus else []
    for name, value, ok in ops_rows:
        print(f"{name:26s} CPU vs CUDA: {value:.3g} {'ok' if ok else 'FAILED'}", flush=True)
    shutil.rmtree(args.workspace, ignore_errors=True)
    args.workspace.mkdir(parents=True)
    subprocess.run([sys.executable, str(REPO_ROOT / "tools/dataset/make_real_layout.py"), "--root",
                    str(args.workspace)], check=True)
    run = StageRunner(args.workspace, args.stage_timeout)
    rows = []
    for data in args.settings:
        setting = SettingCheck(args, run, data, processes=1)
        rows.append(setting.supervised())
        rows += [setting.semi("baseline", 1), setting.semi("semi", 1)]
        if dist_procs >= 2:
            rows.append(setting.semi("semi", dist_procs, resume_and_eval=False))
        print(f"gpu_check: {data} done at {time.time() - started:.0f} s", flush=True)
    print(format_table(rows))
    print(f"gpu_check: {len(rows)} runs in {time.time() - started:.0f} s; stage logs in {args.workspace / 'logs'}")
    return 1 if failed(ops_rows, rows) else 0


if __name__ == "__main__":
    sys.exit(main())
