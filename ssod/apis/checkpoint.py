"""Reading checkpoints safely and loading their weights into a model, with a count of what loaded.

Every checkpoint ssod reads goes through :func:`read_checkpoint`, which unpickles with
``weights_only=True`` passed explicitly: torch then refuses any object other than tensors and
plain Python containers (unpickling those could run code), and neither an older torch's
default nor ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` can switch that off. Importing this module
also routes mmcv's ``load_checkpoint`` (local files, URLs and the ``open-mmlab://``-style model
names, e.g. pretrained backbones) through it, so mmcv and mmdet code paths load safely too.
"""
import os.path as osp
import re
from collections import OrderedDict, namedtuple

import torch
from mmcv.runner import CheckpointLoader
from mmcv.runner import checkpoint as mmcv_checkpoint
from torch.hub import load_state_dict_from_url

from ssod.utils.dist_utils import barrier, is_main_process, unwrap_model

MIN_LOADED_FRACTION = 0.5  # fewer loaded model tensors than this share: the checkpoint does not fit the model
WRAPPER_PREFIX = re.compile(r"^module\.")
PAIR_PREFIXES = ("student.", "teacher.")
EXAMPLES = 3


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read safely, or does not fit the model."""


def read_checkpoint(path: str, map_location="cpu") -> dict:
    """The checkpoint dict at ``path``, unpickled with ``weights_only=True``; errors name the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for bad files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path!r} cannot be read with weights_only=True: it is truncated or corrupt, or holds "
            f"objects other than tensors and plain Python types (refused: unpickling them could run code). "
            f"torch: {reason}") from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {path!r} holds a {type(checkpoint).__name__}, not a dict of weights")
    return checkpoint


def read_state_dict(path: str) -> dict:
    """The ``state_dict`` of a checkpoint file (a bare state dict is returned as is)."""
    checkpoint = read_checkpoint(path)
    return checkpoint.get("state_dict", checkpoint)


def _read_url(url: str, map_location=None) -> dict:
    """Download ``url`` once (rank 0 first) into torch's cache and read it with ``weights_only=True``."""
    if is_main_process():
        checkpoint = load_state_dict_from_url(url, map_location=map_location, weights_only=True)
    barrier()
    if not is_main_process():
        checkpoint = load_state_dict_from_url(url, map_location=map_location, weights_only=True)
    return checkpoint


def _model_url(name: str) -> str:
    """The download URL of an ``open-mmlab://``, ``torchvision://`` or ``mmcls://`` model name (mmcv's tables)."""
    scheme, model = name.split("://", 1)
    if scheme in ("open-mmlab", "openmmlab"):
        model = mmcv_checkpoint.get_deprecated_model_names().get(model, model)
        url = mmcv_checkpoint.get_external_models()[model]
        if not url.startswith(("http://", "https://")):
            return osp.join(mmcv_checkpoint._get_mmcv_home(), url)
        return url
    if scheme in ("torchvision", "modelzoo"):
        return mmcv_checkpoint.get_torchvision_models()[model.lower().replace("_weights", "")]
    return mmcv_checkpoint.get_mmcls_models()[model]


def _safe_mmcv_loader(filename, map_location=None):
    """mmcv ``CheckpointLoader`` scheme: local files, URLs and model names, all with ``weights_only=True``."""
    if "://" in filename and not filename.startswith(("http://", "https://")):
        target = _model_url(filename)
        checkpoint = read_checkpoint(target, map_location) if osp.isfile(target) else _read_url(target, map_location)
        if filename.startswith("mmcls://"):
            checkpoint = mmcv_checkpoint._process_mmcls_checkpoint(checkpoint)
        return checkpoint
    if filename.startswith(("http://", "https://")):
        return _read_url(filename, map_location)
    return read_checkpoint(osp.expanduser(filename), map_location)


CheckpointLoader.register_scheme(
    prefixes=("", "http://", "https://", "open-mmlab://", "openmmlab://", "torchvision://", "modelzoo://",
              "mmcls://"),
    loader=_safe_mmcv_loader, force=True)


WeightsReport = namedtuple("WeightsReport", "total loaded missing unexpected mismatched")


def _examples(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:EXAMPLES]) + (", ..." if len(keys) > EXAMPLES else "")


def describe(report: WeightsReport) -> str:
    """One line: loaded / missing / unexpected / shape-mismatched tensor counts with a few key names."""
    parts = [f"loaded {len(report.loaded)} of {report.total} model tensors"]
    for name in ("missing", "unexpected", "mismatched"):
        keys = getattr(report, name)
        if keys:
            label = "with another shape" if name == "mismatched" else name
            parts.append(f"{len(keys)} {label} ({_examples(keys)})")
    return "; ".join(parts)


def weights_report(module, state_dict: dict) -> WeightsReport:
    """Which tensors of ``state_dict`` match ``module`` by name and shape (``loaded``), and which do not."""
    own = module.state_dict()
    shared = own.keys() & state_dict.keys()
    mismatched = {key for key in shared if tuple(own[key].shape) != tuple(state_dict[key].shape)}
    return WeightsReport(total=len(own), loaded=shared - mismatched, missing=set(own) - set(state_dict),
                         unexpected=set(state_dict) - set(own), mismatched=mismatched)


def _as_model_keys(detector, state_dict: dict) -> dict:
    """A plain detector's state dict, duplicated for the student and teacher of a teacher-student model."""
    plain = not any(key.startswith(PAIR_PREFIXES) for key in state_dict)
    if not (plain and hasattr(detector, "student") and hasattr(detector, "teacher")):
        return state_dict
    return {f"{name}{key}": value for name in PAIR_PREFIXES for key, value in state_dict.items()}


def load_model_weights(model, path: str, logger=None, map_location="cpu",
                       min_loaded_fraction: float = MIN_LOADED_FRACTION) -> dict:
    """Load checkpoint ``path`` into ``model`` and return the checkpoint dict.

    A checkpoint of a teacher-student model (keys ``student.*``/``teacher.*``) loads as is; a
    plain detector checkpoint (e.g. a supervised burn-in) loads into both the student and the
    teacher. Tensors load by name where the shapes match. Missing, unexpected or mismatched
    tensors are logged as one warning with their counts; a checkpoint that leaves more than
    ``1 - min_loaded_fraction`` of the model's tensors unloaded is refused (CheckpointError).
    """
    checkpoint = read_checkpoint(path, map_location)
    detector = unwrap_model(model)
    state_dict = {WRAPPER_PREFIX.sub("", key): value for key, value in checkpoint.get("state_dict", checkpoint).items()}
    state_dict = _as_model_keys(detector, state_dict)
    report = weights_report(detector, state_dict)
    message = f"checkpoint {path}: {describe(report)}"
    if len(report.loaded) < min_loaded_fraction * report.total:
        raise CheckpointError(f"{message}. It does not fit this model ({type(detector).__name__}); check that "
                              "the checkpoint was trained with this config")
    detector.load_state_dict(OrderedDict((key, state_dict[key]) for key in report.loaded), strict=False)
    if logger is not None:
        if report.missing or report.unexpected or report.mismatched:
            logger.warning(f"CHECKPOINT MISMATCH: {message}")
        else:
            logger.info(message)
    return checkpoint
