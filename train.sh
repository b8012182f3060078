#!/usr/bin/env sh
# Training and evaluation commands of every CI-SSOD setting, on 8 GPUs (README "Training", "Evaluation").
# Copy the lines you need and run them from the repository root; running this whole file trains and
# evaluates all eight runs one after the other (days on 8 GPUs). Data layout: dataset/README.md.
#
# Training: sh tools/dist_train_partially.sh TYPE FOLD DATA GPUS [tools/train.py arguments]
#   TYPE  baseline: the (unbiased) soft teacher; semi: CI-SSOD (GrS = GbR + GbT + CrS)
#   FOLD  a name for the run (here: soft, grs); it only names the work dir
#   DATA  coco1 | coco2 (MS-COCO split 1 / 2), lvis, object365 (MS-COCO -> Objects365)
#   GPUS  processes on this node
# Work dir: work_dirs/<config name>/<DATA>/<FOLD>, with a checkpoint every 4000 iterations and latest.pth.
# Extra arguments go to tools/train.py, e.g. --seed 0, --auto-resume, --cfg-options key=value.
# Port: PORT (default 29500 for training, 29499 for testing); multi-node: NNODES, NODE_RANK, MASTER_ADDR.
#
# Evaluation: sh tools/dist_test.sh CONFIG CHECKPOINT GPUS --eval bbox [tools/test.py arguments]
#   It tests the config's `inference_on` model (GrS configs and the LVIS baseline: the EMA teacher;
#   the COCO and Objects365 baselines: the student; --cfg-options model.test_cfg.inference_on=... switches) and prints
#   COCO / Objects365: bbox_mAP (_50, _75, _s, _m, _l) over all classes and on the novel / base subsets;
#   LVIS: bbox_AP (AP50, AP75, APs, APm, APl) and bbox_APr, bbox_APc, bbox_APf.
#   --metrics-out FILE.json also writes them to a file; --out FILE.pkl keeps the raw detections.
set -e

# ---------------------------------------------------------------- MS-COCO, split 1 (20 VOC novel classes)
# soft-teacher baseline, 180k iterations
sh tools/dist_train_partially.sh baseline soft coco1 8
sh tools/dist_test.sh configs/soft_teacher/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_coco1_180k.py \
    work_dirs/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_coco1_180k/coco1/soft/iter_180000.pth 8 --eval bbox
# CI-SSOD (GrS), 180k iterations
sh tools/dist_train_partially.sh semi grs coco1 8
sh tools/dist_test.sh configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco1_180k.py \
    work_dirs/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco1_180k/coco1/grs/iter_180000.pth 8 --eval bbox

# ---------------------------------------------------------------- MS-COCO, split 2 (40 novel classes)
sh tools/dist_train_partially.sh baseline soft coco2 8
sh tools/dist_test.sh configs/soft_teacher/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_coco2_180k.py \
    work_dirs/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_coco2_180k/coco2/soft/iter_180000.pth 8 --eval bbox
sh tools/dist_train_partially.sh semi grs coco2 8
sh tools/dist_test.sh configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco2_180k.py \
    work_dirs/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco2_180k/coco2/grs/iter_180000.pth 8 --eval bbox
# The split can also be chosen by editing SPLIT (line 7) of ..._coco_180k.py and training that config
# directly: sh tools/dist_train.sh configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco_180k.py 8
# (work dir work_dirs/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco_180k unless --work-dir is given).

# ---------------------------------------------------------------- LVIS v1 (1203 classes)
sh tools/dist_train_partially.sh baseline soft lvis 8
sh tools/dist_test.sh configs/soft_teacher/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_lvis_180k.py \
    work_dirs/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_lvis_180k/lvis/soft/iter_180000.pth 8 --eval bbox
sh tools/dist_train_partially.sh semi grs lvis 8
sh tools/dist_test.sh configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_lvis_180k.py \
    work_dirs/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_lvis_180k/lvis/grs/iter_180000.pth 8 --eval bbox

# ---------------------------------------------------------------- MS-COCO -> Objects365 (365 classes), 360k iterations
sh tools/dist_train_partially.sh baseline soft object365 8
sh tools/dist_test.sh configs/soft_teacher/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_object365_360k.py \
    work_dirs/ubsoft_teacher_faster_rcnn_r50_caffe_fpn_object365_360k/object365/soft/iter_360000.pth 8 --eval bbox
sh tools/dist_train_partially.sh semi grs object365 8
sh tools/dist_test.sh configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_object365_360k.py \
    work_dirs/ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_object365_360k/object365/grs/iter_360000.pth 8 --eval bbox
