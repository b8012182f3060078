# CI-SSOD (GrS) on a COCO split, 180k iterations on 8 GPUs x 5 images (spec F).
# SPLIT: the COCO split, 1 (20 PASCAL-VOC novel classes) or 2 (40 novel classes).
# To modify the split of COCO, change the SPLIT in line 7.
# This config inherits the fixed-split config ..._grs_..._coco{SPLIT}_180k.py, which holds every value;
# tools/dist_train_partially.sh semi <fold> coco1|coco2 <gpus> trains those directly, so no script
# reads SPLIT.
SPLIT = 1
if SPLIT not in (1, 2):
    raise ValueError(f"SPLIT = {SPLIT!r} in the COCO GrS config; the COCO splits are 1 and 2")
_base_ = [f"ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco{SPLIT}_180k.py"]
