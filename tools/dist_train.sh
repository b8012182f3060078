#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py args...]
# Starts GPUS processes with torchrun (one per GPU; CPU processes over gloo when no GPU is visible).
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
# Users start it with `sh`: re-run under bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
CONFIG=$1
GPUS=$2
shift 2
source "$(dirname "${BASH_SOURCE[0]}")/lib/python_bin.sh"
exec "$python_bin" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$GPUS" \
    "$repo_root/tools/train.py" "$CONFIG" --launcher pytorch "$@"
