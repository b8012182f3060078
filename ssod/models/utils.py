"""Batch bookkeeping shared by the teacher-student detectors.

A training batch is one flat list of views; every ``img_metas[i]['tag']`` says which
stream the view belongs to. These helpers split the batch by tag, pair the teacher
and student views of each unlabeled image, and rename / rescale loss dicts.
"""
from collections import defaultdict
from typing import Dict, List, Sequence, Tuple

import torch

VIEW_TAGS = ("sup", "unsup_teacher", "unsup_student")


def group_views_by_tag(img_metas: Sequence[dict]) -> Dict[str, List[int]]:
    """Batch indices of every tag in :data:`VIEW_TAGS` (empty list when absent)."""
    groups = {tag: [] for tag in VIEW_TAGS}
    for index, meta in enumerate(img_metas):
        if "tag" not in meta:
            raise KeyError(f"img_metas[{index}] has no 'tag' key; expected one of {VIEW_TAGS}")
        if meta["tag"] not in groups:
            raise ValueError(f"img_metas[{index}]['tag'] = {meta['tag']!r} is not one of {VIEW_TAGS}")
        groups[meta["tag"]].append(index)
    return groups


def pair_teacher_student_views(img_metas: Sequence[dict], teacher_indices: Sequence[int],
                               student_indices: Sequence[int]) -> Tuple[List[int], List[int]]:
    """Order teacher and student views so that position k holds the two views of one image.

    Views are matched by ``filename``. When an image occurs several times in a batch its
    k-th teacher view pairs with its k-th student view; any such pairing is geometrically
    valid because every view carries its own transform matrix.
    """
    students_by_name = defaultdict(list)
    for index in student_indices:
        students_by_name[img_metas[index]["filename"]].append(index)
    teachers_by_name = defaultdict(list)
    for index in teacher_indices:
        teachers_by_name[img_metas[index]["filename"]].append(index)
    mismatched = sorted(name for name in set(students_by_name) | set(teachers_by_name)
                        if len(students_by_name[name]) != len(teachers_by_name[name]))
    if mismatched:
        raise ValueError("unlabeled views do not come in teacher/student pairs for filename(s) "
                         f"{mismatched[:5]}")
    paired_teachers, paired_students = [], []
    for name, teachers in teachers_by_name.items():
        paired_teachers.extend(teachers)
        paired_students.extend(students_by_name[name])
    return paired_teachers, paired_students


def select_batch_items(value, indices: Sequence[int], batch_size: int, key: str):
    """Take ``indices`` out of a per-view batch entry (tensor or list of length ``batch_size``)."""
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == batch_size:
        return value[list(indices)]
    if isinstance(value, (list, tuple)) and len(value) == batch_size:
        return [value[i] for i in indices]
    raise ValueError(f"batch entry {key!r} is not a per-view tensor or list of length {batch_size}")


def add_prefix(losses: dict, prefix: str) -> dict:
    """``{'loss_x': v}`` -> ``{prefix + 'loss_x': v}``."""
    return {f"{prefix}{key}": value for key, value in losses.items()}


def scale_loss_terms(losses: dict, factor: float) -> dict:
    """Multiply every entry whose key contains 'loss' by ``factor``; others (acc...) are kept."""
    scaled = {}
    for key, value in losses.items():
        if "loss" not in key:
            scaled[key] = value
        elif isinstance(value, (list, tuple)):
            scaled[key] = [item * factor for item in value]
        else:
            scaled[key] = value * factor
    return scaled


def zeroed_losses(losses: dict) -> dict:
    """Same keys and structure as ``losses`` with every value multiplied by 0 (keeps graph paths)."""
    return {key: [item * 0 for item in value] if isinstance(value, (list, tuple)) else value * 0
            for key, value in losses.items()}
