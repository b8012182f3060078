"""`load_from`: a supervised checkpoint initialises both teacher and student of a semi model."""
import pytest
import torch
from mmcv import Config
from mmcv.runner import save_checkpoint
from mmdet.models import build_detector

import ssod  # noqa: F401
from ssod.apis.checkpoint import load_model_weights
from conftest import REPO_ROOT

TOY_MODEL = REPO_ROOT / "configs/_base_/models/faster_rcnn_r18_fpn_toy.py"


def _plain_detector():
    return build_detector(Config.fromfile(str(TOY_MODEL)).model)


def _soft_teacher():
    return build_detector(dict(type="SoftTeacher", model=Config.fromfile(str(TOY_MODEL)).model,
                               test_cfg=dict(inference_on="teacher")))


def test_plain_checkpoint_initialises_teacher_and_student(tmp_path):
    source = _plain_detector()
    with torch.no_grad():
        for param in source.parameters():
            param.add_(torch.randn_like(param))
    path = tmp_path / "sup.pth"
    save_checkpoint(source, str(path))
    target = _soft_teacher()
    load_model_weights(target, str(path))
    expected = source.state_dict()
    for name in ("student", "teacher"):
        loaded = getattr(target, name).state_dict()
        assert all(torch.equal(loaded[key], expected[key]) for key in expected), name


def test_teacher_student_checkpoint_loads_as_is(tmp_path):
    source = _soft_teacher()
    with torch.no_grad():
        for param in source.student.parameters():
            param.add_(1.0)
    path = tmp_path / "semi.pth"
    save_checkpoint(source, str(path))
    target = _soft_teacher()
    load_model_weights(target, str(path))
    assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), source.state_dict().values()))
    assert not torch.equal(next(target.student.parameters()), next(target.teacher.parameters()))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_model_weights(_plain_detector(), str(tmp_path / "nope.pth"))
