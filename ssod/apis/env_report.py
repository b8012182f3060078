"""The environment report at the top of every training log, safe on any mmcv-full build.

mmdet's ``collect_env()`` calls mmcv's compiled ``get_compiler_version()`` and
``get_compiling_cuda_version()`` in the training process. In an mmcv-full 1.7.2 CUDA
build made against torch 2.11 / CUDA 13 (H200, 2026-11-30) both segfault, which killed
``tools/train.py`` before its first log line. This report never calls them in-process:
on a CUDA machine it asks a child process (``compiled_ops_info``), so a crashing build
costs one line of the report, not the run.
"""
import os
import os.path as osp
import platform
import signal
import subprocess
import sys
from collections import OrderedDict

import cv2
import mmcv
import mmdet
import torch
import torchvision

# Printed by the child process: the two compiled info functions, one per line.
_OPS_PROBE = ("from mmcv.ops import get_compiler_version, get_compiling_cuda_version\n"
              "print(get_compiler_version()); print(get_compiling_cuda_version())")


def compiled_ops_info(timeout: float = 120.0, python: str = sys.executable) -> dict:
    """mmcv's compiler and CUDA compiler versions, read in a child process.

    Returns both as strings; when the child crashes, fails or hangs, both say so (with the
    signal or exit status) instead of raising.
    """
    try:
        proc = subprocess.run([python, "-c", _OPS_PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        failure = f"unavailable: the probe did not finish in {timeout:.0f} s"
        return {"MMCV Compiler": failure, "MMCV CUDA Compiler": failure}
    lines = proc.stdout.splitlines()
    if proc.returncode == 0 and len(lines) >= 2:
        return {"MMCV Compiler": lines[-2], "MMCV CUDA Compiler": lines[-1]}
    if proc.returncode < 0:
        reason = f"the compiled info functions crashed the probe ({signal.Signals(-proc.returncode).name})"
    else:
        last = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        reason = f"the probe failed (exit status {proc.returncode}: {last[0]})"
    failure = f"unavailable: {reason}; see README 'First run on a GPU node'"
    return {"MMCV Compiler": failure, "MMCV CUDA Compiler": failure}


def _gpu_names() -> dict:
    """``{'GPU 0,1': name}``: visible devices grouped by name."""
    groups = OrderedDict()
    for index in range(torch.cuda.device_count()):
        groups.setdefault(torch.cuda.get_device_name(index), []).append(str(index))
    return {f"GPU {','.join(ids)}": name for name, ids in groups.items()}


def _cuda_toolkit() -> dict:
    from torch.utils.cpp_extension import CUDA_HOME

    info = {"CUDA_HOME": CUDA_HOME}
    nvcc = osp.join(CUDA_HOME, "bin", "nvcc") if CUDA_HOME else None
    if nvcc and osp.isfile(nvcc):
        out = subprocess.run([nvcc, "-V"], capture_output=True, text=True).stdout.strip().splitlines()
        info["NVCC"] = out[-1] if out else "unknown"
    return info


def collect_environment(probe_compiled_ops: bool = None) -> "OrderedDict[str, str]":
    """Platform, Python, CUDA and GPUs, and the versions of torch, torchvision, OpenCV, mmcv, mmdet, ssod.

    ``probe_compiled_ops`` (default: when CUDA is available) adds mmcv's compiled
    compiler/CUDA versions through :func:`compiled_ops_info`.
    """
    import ssod

    cuda = torch.cuda.is_available()
    probe = cuda if probe_compiled_ops is None else probe_compiled_ops
    env = OrderedDict()
    env["sys.platform"] = sys.platform
    env["Python"] = sys.version.replace("\n", "")
    env["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    env["CUDA available"] = cuda
    if cuda:
        env.update(_gpu_names())
        env.update(_cuda_toolkit())
    env["PyTorch"] = torch.__version__
    env["PyTorch CUDA"] = torch.version.cuda
    env["PyTorch cuDNN"] = torch.backends.cudnn.version() if cuda else None
    env["TorchVision"] = torchvision.__version__
    env["OpenCV"] = cv2.__version__
    env["MMCV"] = mmcv.__version__
    if probe:
        env.update(compiled_ops_info())
    env["MMDetection"] = mmdet.__version__
    env["ssod"] = ssod.__version__
    return env


def format_environment(env: dict) -> str:
    return "\n".join(f"{key}: {value}" for key, value in env.items())
