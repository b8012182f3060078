#!/usr/bin/env bash
# Build an mmcv-full wheel from the PyPI sdist against the installed torch.
# Usage: build_mmcv.sh PYTHON VERSION OUT_DIR
# torch >= 2.10 headers need C++20, so the sdist's -std=c++14/17 flags are rewritten.
set -euo pipefail
python_bin=$1
version=$2
out_dir=$3

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python_bin" -m pip download -q --no-deps --no-binary :all: "mmcv-full==$version" -d "$work"
tar -xzf "$work"/mmcv-full-"$version".tar.gz -C "$work"
src="$work/mmcv-full-$version"
sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
grep -q -- '-std=c++20' "$src/setup.py" || { echo "build_mmcv: C++ standard flag not found in setup.py" >&2; exit 1; }

mkdir -p "$out_dir"
(
    cd "$src"
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$python_bin" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" .
)
# Move into the cache only once complete, so an interrupted build leaves no half wheel.
mv "$work"/dist/mmcv_full-*.whl "$out_dir"/
