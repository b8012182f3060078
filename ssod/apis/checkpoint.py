"""Initial weights for a run (``load_from``), also from a plain detector into a teacher-student model."""
import os.path as osp

import torch
from mmcv.runner import load_state_dict

from ssod.utils.dist_utils import unwrap_model


def read_state_dict(path: str) -> dict:
    """The ``state_dict`` of a checkpoint file (loaded with torch's safe ``weights_only`` mode)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return checkpoint.get("state_dict", checkpoint)


def load_initial_weights(model, path: str, logger=None) -> None:
    """Load ``path`` into ``model``; a plain detector checkpoint initialises teacher and student.

    A checkpoint of a teacher-student model (keys ``student.*``/``teacher.*``) loads as is.
    A checkpoint of a single detector (e.g. a supervised burn-in) loads into both the
    student and the teacher, so semi-supervised training starts from it.
    """
    detector = unwrap_model(model)
    state_dict = read_state_dict(path)
    is_pair = any(key.startswith(("student.", "teacher.")) for key in state_dict)
    if is_pair or not hasattr(detector, "student"):
        load_state_dict(detector, state_dict, logger=logger)
        return
    for name in ("student", "teacher"):
        load_state_dict(getattr(detector, name), state_dict, logger=logger)
