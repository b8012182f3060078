"""Mapping boxes between image views through 3x3 homogeneous transform matrices.

Every geometric pipeline step records a matrix ``M`` that maps original-image pixel
coordinates to view coordinates (``view = M @ [x, y, 1]``); the steps of one view
compose into ``results['transform_matrix']``.
"""
from typing import Optional, Sequence

import numpy as np
import torch


def relative_transform(src_matrix, dst_matrix):
    """Matrix mapping coordinates of the ``src`` view to the ``dst`` view: ``dst @ inv(src)``."""
    src = torch.as_tensor(src_matrix, dtype=torch.float64)
    dst = torch.as_tensor(dst_matrix, dtype=torch.float64)
    return dst @ torch.linalg.inv(src)


def transform_bboxes(bboxes: torch.Tensor, matrix, max_shape: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Map ``[N, 4+]`` xyxy boxes through ``matrix``; extra columns (scores...) are kept.

    Each box becomes the axis-aligned box enclosing its four transformed corners,
    clipped to ``max_shape = (height, width)`` when given.
    """
    if bboxes.numel() == 0:
        return bboxes.clone()
    matrix = torch.as_tensor(matrix, dtype=torch.float64, device=bboxes.device)
    x1, y1, x2, y2 = bboxes[:, :4].double().unbind(dim=1)
    corners_x = torch.stack([x1, x2, x2, x1], dim=1)
    corners_y = torch.stack([y1, y1, y2, y2], dim=1)
    ones = torch.ones_like(corners_x)
    points = torch.stack([corners_x, corners_y, ones], dim=1)  # [N, 3, 4]
    mapped = torch.einsum("ij,njk->nik", matrix, points)
    xs = mapped[:, 0] / mapped[:, 2]
    ys = mapped[:, 1] / mapped[:, 2]
    boxes = torch.stack([xs.min(1).values, ys.min(1).values, xs.max(1).values, ys.max(1).values], dim=1)
    if max_shape is not None:
        height, width = max_shape[:2]
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
    return torch.cat([boxes.to(bboxes.dtype), bboxes[:, 4:]], dim=1)


def transform_bboxes_numpy(bboxes: np.ndarray, matrix: np.ndarray, max_shape=None) -> np.ndarray:
    """NumPy version of :func:`transform_bboxes` for data pipelines."""
    mapped = transform_bboxes(torch.from_numpy(np.ascontiguousarray(bboxes, dtype=np.float32)), matrix, max_shape)
    return mapped.numpy().astype(bboxes.dtype, copy=False)
