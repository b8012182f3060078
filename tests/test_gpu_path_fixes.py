"""The two crashes of the first GPU run (issue 9), reproduced on the CPU.

1. mmcv's ``Scatter.forward`` handed torch's ``_get_stream`` an int device id; torch 2.x
   needs a ``torch.device`` (AttributeError on the first GPU iteration).
2. mmcv's compiled ``get_compiler_version()`` / ``get_compiling_cuda_version()`` segfault in
   the CUDA build; mmdet's ``collect_env()`` called them from tools/train.py. Here a
   ``sitecustomize`` makes them segfault in every child process, as on that machine.
"""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.parallel._functions as torch_parallel_functions
from mmcv.parallel import DataContainer, scatter_kwargs
from mmcv.parallel._functions import Scatter

import ssod  # noqa: F401  (applies ssod.compat)
from conftest import REPO_ROOT, run_tool
from ssod.apis import env_report

SEGFAULTING_INFO = textwrap.dedent("""
    import os, signal
    import mmcv.ops, mmcv.ops.info

    def _segfault():
        os.kill(os.getpid(), signal.SIGSEGV)

    for module in (mmcv.ops, mmcv.ops.info):
        module.get_compiler_version = _segfault
        module.get_compiling_cuda_version = _segfault
""")


class _StreamRequested(Exception):
    """Raised by the stand-in for torch's ``_get_stream`` once it has recorded its argument."""


@pytest.fixture
def recorded_stream_devices(monkeypatch):
    devices = []

    def record(device):
        devices.append(device)
        device.type  # what torch's own _get_stream reads first  # noqa: B018
        raise _StreamRequested

    monkeypatch.setattr(torch_parallel_functions, "_get_stream", record)
    return devices


def test_mmcv_scatter_asks_torch_for_the_stream_of_a_torch_device(recorded_stream_devices):
    with pytest.raises(_StreamRequested):
        Scatter.forward([0], torch.zeros(2, 3))
    assert recorded_stream_devices == [torch.device("cuda", 0)]


def test_scatter_of_a_data_container_batch_reaches_torch_with_a_device(recorded_stream_devices):
    """The path of every training step: MMDataParallel / MMDistributedDataParallel scatter a batch."""
    batch = {"img": DataContainer([torch.zeros(2, 3, 8, 8)], stack=True), "img_metas": DataContainer(
        [[{"filename": "a.jpg"}, {"filename": "b.jpg"}]], cpu_only=True)}
    with pytest.raises(_StreamRequested):
        scatter_kwargs((), batch, [1])
    assert recorded_stream_devices == [torch.device("cuda", 1)]


def test_cpu_scatter_needs_no_stream(recorded_stream_devices):
    ((outputs,),), _ = scatter_kwargs(({"img": DataContainer([torch.ones(1, 3, 4, 4)], stack=True)},), {}, [-1])
    assert recorded_stream_devices == [] and torch.equal(outputs["img"], torch.ones(1, 3, 4, 4))


@pytest.fixture
def segfaulting_info_env(tmp_path):
    """Environment variables under which a child Python's mmcv info functions segfault."""
    (tmp_path / "sitecustomize.py").write_text(SEGFAULTING_INFO)
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)])}


def test_the_stand_in_reproduces_the_segfault(segfaulting_info_env):
    proc = subprocess.run([sys.executable, "-c", "from mmdet.utils import collect_env; collect_env()"],
                          env=dict(os.environ, **segfaulting_info_env), capture_output=True, timeout=300)
    assert proc.returncode == -11  # SIGSEGV, as mmdet's collect_env() died on the H200


def test_environment_report_never_calls_the_compiled_info_in_process(monkeypatch):
    import mmcv.ops

    def forbidden():
        raise AssertionError("the compiled info functions were called in the training process")

    monkeypatch.setattr(mmcv.ops, "get_compiler_version", forbidden)
    monkeypatch.setattr(mmcv.ops, "get_compiling_cuda_version", forbidden)
    env = env_report.collect_environment(probe_compiled_ops=False)
    assert env["MMCV"] == mmcv.__version__ and env["PyTorch"] == torch.__version__
    assert env["CUDA available"] is torch.cuda.is_available()
    assert "MMCV Compiler" not in env


def test_compiled_ops_probe_reports_the_versions_of_a_working_build():
    info = env_report.compiled_ops_info()
    assert info["MMCV Compiler"].startswith(("GCC", "clang")), info
    cuda_compiler = info["MMCV CUDA Compiler"]  # a CPU-ops build says so; a CUDA build gives e.g. 13.0
    assert cuda_compiler == "not available" or cuda_compiler[0].isdigit(), info


def test_compiled_ops_probe_survives_a_segfaulting_build(monkeypatch, segfaulting_info_env):
    for key, value in segfaulting_info_env.items():
        monkeypatch.setenv(key, value)
    info = env_report.compiled_ops_info()
    for value in info.values():
        assert value.startswith("unavailable: the compiled info functions crashed the probe (SIGSEGV)"), value
    assert "MMCV Compiler" in env_report.collect_environment(probe_compiled_ops=True)


def test_train_py_starts_and_trains_when_the_compiled_info_segfaults(toy_workspace, segfaulting_info_env):
    work_dir = toy_workspace / "work_dirs/segfaulting_info"
    run_tool([REPO_ROOT / "tools/train.py", REPO_ROOT / "configs/baseline/faster_rcnn_r18_fpn_toy_sup.py",
              "--work-dir", work_dir, "--no-validate", "--seed", "0", "--cfg-options", "runner.max_iters=1",
              "checkpoint_config.interval=1", "data.workers_per_gpu=0"],
             cwd=toy_workspace, extra_env=segfaulting_info_env)
    (log,) = work_dir.glob("*.log")
    text = log.read_text()
    assert "environment:" in text and "MMCV: " in text and "MMDetection: " in text
    assert (work_dir / "iter_1.pth").is_file()


def test_each_gpu_process_selects_its_local_gpu_before_nccl(monkeypatch):
    """NCCL object collectives (all_gather_object of the CrS pools, rank checks) use the current device."""
    import torch.distributed as dist

    from ssod.apis import dist_env

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.append(("set_device", index)))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, timeout: calls.append(("init", backend)))
    monkeypatch.setenv("LOCAL_RANK", "3")  # e.g. the 4th GPU of the second node: RANK 11, LOCAL_RANK 3
    for key, value in (("RANK", "11"), ("WORLD_SIZE", "16"), ("MASTER_ADDR", "node0"), ("MASTER_PORT", "29500")):
        monkeypatch.setenv(key, value)
    assert dist_env.init_distributed("pytorch") is True
    assert calls == [("set_device", 3), ("init", "nccl")]
