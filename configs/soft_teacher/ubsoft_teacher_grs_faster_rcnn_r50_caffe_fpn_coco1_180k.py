# CI-SSOD (GrS) on COCO split 1 (20 PASCAL-VOC novel classes); the COCO settings are in grs_coco.py.
# The fixed-split config that scripts use (tools/dist_train_partially.sh semi <fold> coco1 <gpus>);
# ubsoft_teacher_grs_faster_rcnn_r50_caffe_fpn_coco_180k.py selects a split by its SPLIT line instead.
_base_ = ["grs_coco.py", "../_base_/datasets/semi_coco_split1.py"]
# GbT: class-wise thresholds with the tau / w_c term (spec D.2)
model = dict(train_cfg=dict(GbT=True))
data = dict(train=dict(
    sup=dict(_delete_=True, type="ClassBalancedDatasetRFS", oversample_thr=0.1, dataset={{_base_.data.train.sup}}),
    unsup=dict(_delete_=True, type="ClassBalancedDatasetCrS", dataset={{_base_.data.train.unsup}}),
))
