#!/usr/bin/env bash
# Usage: tools/gpu_check.sh [--quick] [--settings coco1 lvis ...] [tools/gpu_check.py options]
# The first command to run on a new GPU node (README "First run on a GPU node"): CUDA ops against the
# CPU, then every setting trains (supervised, soft teacher, GrS), resumes and evaluates; one table.
# Users start it with `sh`: re-run under bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/python_bin.sh"
exec "$python_bin" "$repo_root/tools/gpu_check.py" "$@"
