#!/usr/bin/env bash
# Install ssod and its stack into a virtual environment (idempotent).
#
# Uses the active virtual environment if there is one, else creates .venv/ in the checkout.
# Environment knobs:
#   SSOD_PYTHON            interpreter used to create .venv (default: python3)
#   SSOD_WHEEL_CACHE       where the built mmcv-full wheel is kept (default: ~/.cache/ssod/wheels)
#   SSOD_SKIP_TORCH=1      keep the torch/torchvision already installed in the environment
#   TORCH_SPEC             pip spec for torch (default: torch==2.14.1 torchvision==0.29.1)
#   FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST, MAX_JOBS   passed to the mmcv-full build
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"

mmcv_version=1.7.2
torch_spec=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
wheel_cache=${SSOD_WHEEL_CACHE:-"$HOME/.cache/ssod/wheels"}

log() { echo "[install] $*"; }

if [ -n "${VIRTUAL_ENV:-}" ]; then
    python_bin="$VIRTUAL_ENV/bin/python"
    log "using the active virtual environment $VIRTUAL_ENV"
else
    if [ ! -x .venv/bin/python ]; then
        log "creating .venv"
        "${SSOD_PYTHON:-python3}" -m venv .venv
    fi
    python_bin="$repo_root/.venv/bin/python"
fi
pip() { "$python_bin" -m pip --disable-pip-version-check "$@"; }

if "$python_bin" -c "import ssod, mmcv, mmdet; from mmcv.ops import RoIAlign, nms" 2>/dev/null \
        && [ -z "${SSOD_FORCE_INSTALL:-}" ]; then
    log "ssod, mmcv-full and mmdet already import; nothing to do (SSOD_FORCE_INSTALL=1 to redo)"
    exit 0
fi

pip install -q "setuptools>=77,<81" wheel ninja
if [ -z "${SSOD_SKIP_TORCH:-}" ]; then
    # shellcheck disable=SC2086
    pip install -q $torch_spec
fi
"$python_bin" -c "import torch; print('[install] torch', torch.__version__, 'cuda', torch.version.cuda)"

if ! "$python_bin" -c "from mmcv.ops import nms" 2>/dev/null; then
    tag=$("$python_bin" - <<'PY'
import torch
cuda = "cu" + torch.version.cuda.replace(".", "") if torch.version.cuda else "cpu"
print(f"torch{torch.__version__.split('+')[0]}-{cuda}")
PY
)
    ops_kind=cpu
    if [ "${FORCE_CUDA:-0}" = "1" ]; then
        # One cached wheel per CUDA version (in $tag) and architecture list, e.g. cudaops-8.0_9.0+PTX.
        arch_list=$(echo "${TORCH_CUDA_ARCH_LIST:-default}" | tr -s ' ;' '__')
        ops_kind="cudaops-$arch_list"
    fi
    wheel_dir="$wheel_cache/mmcv_full-$mmcv_version-$tag-$ops_kind"
    if ! ls "$wheel_dir"/mmcv_full-*.whl >/dev/null 2>&1; then
        # Built into <dir>.unchecked; it enters the cache only after check_mmcv_ops.py passed (below).
        unchecked_dir="$wheel_dir.unchecked"
        rm -rf "$unchecked_dir"
        log "building mmcv-full $mmcv_version ($ops_kind ops) into $unchecked_dir; this takes about 10 minutes"
        bash "$repo_root/tools/install/build_mmcv.sh" "$python_bin" "$mmcv_version" "$unchecked_dir"
        pip install -q --no-deps "$unchecked_dir"/mmcv_full-*.whl
    else
        log "reusing cached wheel in $wheel_dir"
        pip install -q --no-deps "$wheel_dir"/mmcv_full-*.whl
    fi
fi

pip install -q -r requirements.txt
pip install -q --no-deps --no-build-isolation -e .
if [ -n "${unchecked_dir:-}" ]; then
    "$python_bin" "$repo_root/tools/install/check_mmcv_ops.py" || {
        log "the new mmcv-full wheel failed its check (above); it stays out of the cache: $unchecked_dir"
        exit 1
    }
    rm -rf "$wheel_dir"
    mv "$unchecked_dir" "$wheel_dir"
    log "checked wheel cached in $wheel_dir"
fi
"$python_bin" -c "import ssod, mmcv, mmdet; from mmcv.ops import RoIAlign, nms; \
print('[install] ok: ssod', ssod.__version__, 'mmcv', mmcv.__version__, 'mmdet', mmdet.__version__)"
