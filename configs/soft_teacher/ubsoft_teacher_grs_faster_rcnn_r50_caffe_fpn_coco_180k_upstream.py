# Upstream-exact preset of CI-SSOD (GrS) on a COCO split: ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco_180k.py
# with every documented deviation from the reference code switched back (README "Differences from the
# reference code"). SPLIT: the COCO split, 1 (20 PASCAL-VOC novel classes) or 2 (40 novel classes).
# To modify the split of COCO, change the SPLIT in line 7.
# This config inherits the fixed-split preset ..._grs_..._coco{SPLIT}_180k_upstream.py, which holds the
# switches.
SPLIT = 1
if SPLIT not in (1, 2):
    raise ValueError(f"SPLIT = {SPLIT!r} in the COCO GrS upstream config; the COCO splits are 1 and 2")
_base_ = [f"ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco{SPLIT}_180k_upstream.py"]
