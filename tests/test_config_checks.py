"""The startup check covers every num_classes of the model config, each named with its value."""
import pytest
from mmcv import Config

from conftest import REPO_ROOT
from ssod.apis.config_checks import check_num_classes, iter_num_classes

GRS_TOY = REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"
CLASSES = tuple(f"c{i}" for i in range(8))
HEAD = "model.model.roi_head.bbox_head"


def _grs_model():
    return Config.fromfile(str(GRS_TOY)).model


def test_every_num_classes_is_found():
    assert dict(iter_num_classes(_grs_model())) == {f"{HEAD}.num_classes": 8, f"{HEAD}.loss_cls.num_classes": 8}
    check_num_classes(_grs_model(), CLASSES)


def test_only_the_gbr_loss_num_classes_wrong_is_a_clear_error():
    model = _grs_model()
    model.model.roi_head.bbox_head.loss_cls.num_classes = 5
    with pytest.raises(ValueError, match=rf"{HEAD}.loss_cls.num_classes=5 but data.train has 8 classes"):
        check_num_classes(model, CLASSES)


def test_num_classes_in_train_cfg_and_lists_are_checked():
    model = _grs_model()
    model.train_cfg.num_classes = 7
    model.model.roi_head.bbox_head = [dict(model.model.roi_head.bbox_head), dict(num_classes=9)]
    with pytest.raises(ValueError) as err:
        check_num_classes(model, CLASSES)
    assert "model.train_cfg.num_classes=7" in str(err.value)
    assert "model.model.roi_head.bbox_head[1].num_classes=9" in str(err.value)
    assert "bbox_head[0]" not in str(err.value)
