"""`import ssod` registers its modules, and the numpy-2/CPU compatibility glue is in place."""
import numpy as np
import pytest


def test_version_and_registration():
    import ssod
    from mmcv.runner import HOOKS
    from mmdet.datasets import DATASETS, PIPELINES
    from mmdet.models import HEADS, LOSSES

    assert ssod.__version__ == "0.1.0"
    for name in ("SemiDataset", "CocoSplitDataset"):
        assert name in DATASETS.module_dict
    for name in ("MultiBranch", "RandResize", "RandFlip", "PseudoSamples", "ExtraAttrs", "RandErase"):
        assert name in PIPELINES.module_dict
    for name in ("GbRLoss", "GbROptim", "SoftmaxFocalLoss"):
        assert name in LOSSES.module_dict
    assert {"GbRShared2FCBBoxHead", "MyShared2FCBBoxHead"} <= set(HEADS.module_dict)
    assert "DetEvalHook" in HOOKS.module_dict


def test_class_balanced_dataset_works_on_numpy_2(tmp_path):
    """mmdet's CustomDataset.get_cat_ids used np.int; RFS over a CustomDataset must work."""
    import ssod  # noqa: F401
    from mmdet.datasets import ClassBalancedDataset, CustomDataset

    assert not hasattr(np, "int") or np.__version__ < "1.24"

    class ListDataset(CustomDataset):
        CLASSES = ("c0", "c1", "c2")

        def load_annotations(self, ann_file):
            labels = [[0], [0], [0], [0], [1], [0, 2]]
            return [dict(filename=f"{i}.jpg", width=64, height=48,
                         ann=dict(bboxes=np.zeros((len(l), 4), np.float32), labels=np.array(l)))
                    for i, l in enumerate(labels)]

    dataset = ListDataset(ann_file="unused", pipeline=[], test_mode=True)
    assert dataset.get_cat_ids(5) == [0, 2]
    assert all(isinstance(c, int) for c in dataset.get_cat_ids(5))
    # f(c0)=5/6, f(c1)=1/6, f(c2)=1/6; thr 0.5: r(c1)=r(c2)=ceil(sqrt(0.5*6))=ceil(1.732)=2
    balanced = ClassBalancedDataset(dataset, oversample_thr=0.5)
    assert len(balanced) == 6 + 1 + 1


def test_sampler_seed_sync_needs_no_cuda():
    import ssod  # noqa: F401
    from mmdet.datasets.samplers import distributed_sampler, infinite_sampler

    assert distributed_sampler.sync_random_seed(7) == 7
    assert infinite_sampler.sync_random_seed(None) >= 0
