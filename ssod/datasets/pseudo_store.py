"""The CrS pseudo-label pool and its JSON file (spec E.1, E.2, Appendix 1 with H.9-H.13, H.27).

File layout (all values JSON-plain)::

    {"meta": {"lambd": float, "iter": int, "alpha": float | null, "num_classes": C},
     "images": {"<img_prefix/file_name>": {
         "file_name": "<img_prefix/file_name>", "width": W, "height": H,
         "annotations": [{"category_id": 0..C-1, "bbox": [x1, y1, x2, y2], "score": margin >= 0}]}}}

Boxes are xyxy in original-image coordinates; ``score`` is the margin ``teacher score - thr_c``.
Each rank collects its own sightings with :meth:`PseudoLabelStore.add`; the caller gathers the
pending entries of all ranks (:meth:`PseudoLabelStore.gather_pending`), merges them and saves on
rank 0 only.
"""
import json
import math
import os
import tempfile

import numpy as np

from ssod.utils.dist_utils import all_gather_objects


def linear_lambd(alpha: float, iter_num: int, max_iters: int) -> float:
    """CrS strength at iteration ``iter_num``: ``min(alpha * t / max_iters, alpha)`` (spec E.2)."""
    if max_iters <= 0:
        raise ValueError(f"max_iters must be > 0, got {max_iters}")
    return min(alpha * iter_num / max_iters, alpha)


def snapshot_path(directory: str, iter_num: int) -> str:
    """Per-save snapshot file name, distinct from any per-rank file name (H.10)."""
    return os.path.join(directory, f"pseudo_iter{iter_num}.json")


def _as_array(values):
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def _check_entry(key, entry, num_classes, source):
    """Raise ValueError naming ``source`` and ``key`` if an image entry is malformed."""
    where = f"{source}: image {key!r}"
    if not isinstance(entry, dict) or not {"width", "height", "annotations"} <= entry.keys():
        raise ValueError(f"{where}: entry must hold width, height and annotations")
    for ann in entry["annotations"]:
        category, bbox, margin = ann.get("category_id"), ann.get("bbox"), ann.get("score")
        if not isinstance(category, int) or not 0 <= category < num_classes:
            raise ValueError(f"{where}: category_id {category!r} outside [0, {num_classes})")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ValueError(f"{where}: bbox {bbox!r} is not [x1, y1, x2, y2]")
        if not isinstance(margin, (int, float)) or not math.isfinite(margin) or margin < 0:
            raise ValueError(f"{where}: score (margin) {margin!r} must be finite and >= 0")


class PseudoLabelStore:
    """Cumulative pseudo-label pool (``images``), its metadata, and this rank's pending entries."""

    def __init__(self, num_classes: int, alpha: float = None):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.meta = {"lambd": 0.0, "iter": 0, "alpha": alpha, "num_classes": num_classes}
        self.images = {}
        self._pending = {}

    @property
    def lambd(self) -> float:
        return self.meta["lambd"]

    def __len__(self) -> int:
        return len(self.images)

    def add(self, image_key, width, height, labels, boxes, margins) -> None:
        """Record one sighting of an unlabeled image (overwrites an earlier pending one).

        ``labels [n]`` contiguous classes, ``boxes [n, 4]`` xyxy in original-image coordinates,
        ``margins [n]`` = score - threshold (>= 0); tensors or arrays. ``n`` may be 0.
        """
        labels, boxes, margins = _as_array(labels), _as_array(boxes), _as_array(margins)
        n = len(labels)
        if labels.shape != (n,) or margins.shape != (n,) or boxes.size != 4 * n:
            raise ValueError(f"image {image_key!r}: shapes labels {labels.shape}, boxes "
                             f"{boxes.shape}, margins {margins.shape} do not describe {n} boxes")
        entry = {
            "file_name": image_key,
            "width": int(width),
            "height": int(height),
            "annotations": [
                {"category_id": category, "bbox": bbox, "score": margin}
                for category, bbox, margin in zip(labels.astype(np.int64).tolist(),
                                                  boxes.reshape(-1, 4).astype(np.float64).tolist(),
                                                  margins.astype(np.float64).tolist())],
        }
        _check_entry(image_key, entry, self.num_classes, "PseudoLabelStore.add")
        self._pending[image_key] = entry

    def pending(self) -> dict:
        """This rank's entries added since the last :meth:`clear_pending`."""
        return self._pending

    def clear_pending(self) -> None:
        self._pending = {}

    def restore_pending(self, entries: dict, source: str = "checkpoint") -> None:
        """Replace this rank's pending entries by ``entries`` (from :meth:`pending`, e.g. of a checkpoint)."""
        for key, entry in entries.items():
            _check_entry(key, entry, self.num_classes, source)
        self._pending = dict(entries)

    def gather_pending(self) -> list:
        """Pending dicts of all ranks, in rank order (collective; ``[pending]`` without one)."""
        return all_gather_objects(self._pending)

    def merge(self, pending_dicts, lambd: float, iter_num: int) -> None:
        """Merge pending dicts in order into the pool (later ones win) and update the meta."""
        if not (math.isfinite(lambd) and lambd >= 0):
            raise ValueError(f"lambd must be finite and >= 0, got {lambd}")
        for pending in pending_dicts:
            for key, entry in pending.items():
                _check_entry(key, entry, self.num_classes, "PseudoLabelStore.merge")
            self.images.update(pending)
        self.meta["lambd"] = float(lambd)
        self.meta["iter"] = int(iter_num)

    def to_dict(self) -> dict:
        return {"meta": dict(self.meta), "images": self.images}

    def save(self, path: str, snapshot: bool = False) -> list:
        """Write the pool to ``path`` atomically; with ``snapshot`` also ``pseudo_iter{t}.json``.

        Each file is written to a temporary file in its directory and renamed over the target,
        so a failed write leaves the previous file intact. Returns the written paths.
        """
        payload = self.to_dict()
        written = [path]
        if snapshot:
            written.append(snapshot_path(os.path.dirname(path), self.meta["iter"]))
        for target in written:
            _atomic_json_dump(payload, target)
        return written

    @classmethod
    def load(cls, path: str, num_classes: int = None) -> "PseudoLabelStore":
        """Read and validate a pool file; ``num_classes``, if given, must match its meta."""
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: corrupt pseudo-label JSON ({err})") from err
        if not isinstance(data, dict) or set(data) != {"meta", "images"}:
            raise ValueError(f"{path}: expected exactly the top-level keys 'meta' and 'images'")
        meta = data["meta"]
        for key in ("lambd", "iter", "alpha", "num_classes"):
            if key not in meta:
                raise ValueError(f"{path}: meta lacks {key!r}")
        if num_classes is not None and meta["num_classes"] != num_classes:
            raise ValueError(f"{path}: holds {meta['num_classes']} classes, expected {num_classes}")
        lambd = meta["lambd"]
        if not isinstance(lambd, (int, float)) or not math.isfinite(lambd) or lambd < 0:
            raise ValueError(f"{path}: meta lambd {lambd!r} must be finite and >= 0")
        store = cls(meta["num_classes"], alpha=meta["alpha"])
        for key, entry in data["images"].items():
            _check_entry(key, entry, store.num_classes, path)
        store.images = data["images"]
        store.meta.update(lambd=float(lambd), iter=int(meta["iter"]))
        return store

    def labels_and_margins(self, image_keys):
        """Per-key int64 label and float64 margin arrays (empty for keys without entry)."""
        labels, margins = [], []
        for key in image_keys:
            annotations = self.images.get(key, {"annotations": ()})["annotations"]
            labels.append(np.array([a["category_id"] for a in annotations], dtype=np.int64))
            margins.append(np.array([a["score"] for a in annotations], dtype=np.float64))
        return labels, margins


def _atomic_json_dump(payload, path):
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pseudo_", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
