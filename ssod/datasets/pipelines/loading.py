"""``LoadImageFromFile`` that names the file it cannot read (zero-byte, truncated or garbage images).

Registered under mmdet's own name, so every config's ``dict(type='LoadImageFromFile')`` gets it.
mmdet's loader lets ``cv2.error ... !buf.empty()`` (empty file) or ``'NoneType' object has no
attribute 'shape'`` (undecodable bytes) through without the path; this one raises
``ImageReadError`` with the path and the cause.
"""
import os.path as osp

from mmdet.datasets import PIPELINES
from mmdet.datasets.pipelines import LoadImageFromFile as MMDetLoadImageFromFile


class ImageReadError(OSError):
    """An image file that exists but cannot be decoded."""


def image_file(results):
    """The path mmdet's ``LoadImageFromFile`` reads for ``results``."""
    prefix = results.get("img_prefix")
    name = results["img_info"]["filename"]
    return osp.join(prefix, name) if prefix is not None else name


@PIPELINES.register_module(name="LoadImageFromFile", force=True)
class LoadImageFromFile(MMDetLoadImageFromFile):
    """mmdet's ``LoadImageFromFile``; an unreadable image raises ``ImageReadError`` naming the file."""

    def __call__(self, results):
        path = image_file(results)
        try:
            results = super().__call__(results)
        except FileNotFoundError:
            raise
        except Exception as err:
            raise ImageReadError(f"cannot decode image {path}: {type(err).__name__}: {err} "
                                 "(zero-byte, truncated or not an image; "
                                 "tools/dataset/check_dataset.py CONFIG lists every bad file)") from err
        return results
