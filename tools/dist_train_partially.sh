#!/usr/bin/env bash
# Usage: tools/dist_train_partially.sh TYPE FOLD DATA GPUS [train.py args...]
#   TYPE  baseline (soft-teacher baseline) | semi (CI-SSOD, the GrS config)
#   FOLD  a name for this run (e.g. grs, or 1 for the first fold); only names the work dir
#   DATA  coco1 | coco2 | lvis | object365 | toy   (selects the config and, for COCO, the split)
#   GPUS  number of processes (GPUs; CPU processes over gloo when no GPU is visible), 1 works
# Work dir: work_dirs/<config name>/<DATA>/<FOLD>. Example: sh tools/dist_train_partially.sh semi grs coco1 8
# Users start it with `sh`: re-run under bash.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,8p' "$0" >&2
    exit 2
fi
TYPE=$1
FOLD=$2
DATA=$3
GPUS=$4
shift 4
configs="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/configs/soft_teacher"

case "$TYPE" in
    baseline) method=ubsoft_teacher ;;
    semi) method=ubsoft_teacher_grs ;;
    *) echo "dist_train_partially.sh: TYPE must be 'baseline' or 'semi', got '$TYPE'" >&2; exit 2 ;;
esac
case "$DATA" in
    coco1|coco2|lvis) config_name="${method}_faster_rcnn_r50_caffe_fpn_${DATA}_180k" ;;
    object365) config_name="${method}_faster_rcnn_r50_caffe_fpn_object365_360k" ;;
    toy)
        if [ "$TYPE" = baseline ]; then config_name=soft_teacher_faster_rcnn_r18_fpn_toy
        else config_name=ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy; fi ;;
    *) echo "dist_train_partially.sh: DATA must be coco1, coco2, lvis, object365 or toy, got '$DATA'" >&2; exit 2 ;;
esac
config="$configs/$config_name.py"
[ -f "$config" ] || { echo "dist_train_partially.sh: config $config does not exist" >&2; exit 2; }

exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_train.sh" "$config" "$GPUS" \
    --work-dir "work_dirs/$config_name/$DATA/$FOLD" "$@"
