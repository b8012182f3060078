"""Shared fixtures: the repository root, a small toy dataset, and a runner for the real tools."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_tool(args, cwd, timeout=900, check=True, extra_env=None):
    """Run a repository tool (python script or shell script) and return the completed process."""
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO_ROOT))
    env.update(extra_env or {})
    command = [str(a) for a in args]
    if command[0].endswith(".py"):
        command = [sys.executable] + command
    elif command[0].endswith(".sh"):
        command = ["bash"] + command
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


@pytest.fixture(scope="session")
def toy_workspace(tmp_path_factory):
    """A working directory holding a small toy dataset at ``dataset/toy`` (the configs' data root)."""
    workspace = tmp_path_factory.mktemp("toy_workspace")
    run_tool([REPO_ROOT / "tools/dataset/make_toy_dataset.py", "--out", workspace / "dataset/toy", "--seed", "0",
              "--num-labeled", "24", "--num-unlabeled", "24", "--num-val", "8"], cwd=workspace)
    return workspace


def load_tool(name):
    """Import ``tools/<name>.py`` as a module (to call its functions directly)."""
    import importlib.util

    module_name = "ssod_tool_" + name.replace("/", "_")
    spec = importlib.util.spec_from_file_location(module_name, REPO_ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
