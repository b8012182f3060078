"""Run a detector over a test loader, on one process or many, and gather results in order."""
from contextlib import contextmanager

import mmcv
import torch
from mmcv.parallel import scatter

from ssod.utils.dist_utils import all_gather_objects, is_main_process, unwrap_model


@contextmanager
def inference_on(detector, submodule):
    """Temporarily make a teacher-student detector test with ``submodule`` ('teacher'/'student')."""
    if submodule is None:
        yield
        return
    previous = detector.inference_on
    detector.inference_on = submodule
    try:
        yield
    finally:
        detector.inference_on = previous


def _device_target(detector):
    param = next(detector.parameters())
    return [param.device.index if param.device.type == "cuda" else -1]


def collect_detections(model, data_loader, submodule=None, show_progress=True):
    """Detections for every image of ``data_loader.dataset``, in dataset order, on every rank.

    Each rank runs the images its sampler yields; results are gathered with
    ``all_gather_object`` (works over gloo and NCCL) and placed by dataset index, so any
    sampler (padded or not) gives the same ordered list as a single process.
    """
    detector = unwrap_model(model)
    was_training = detector.training
    detector.eval()
    dataset = data_loader.dataset
    own_indices = list(iter(data_loader.sampler)) if data_loader.sampler is not None else list(range(len(dataset)))
    own_results = []
    progress = mmcv.ProgressBar(len(own_indices)) if show_progress and is_main_process() else None
    target = _device_target(detector)
    with inference_on(detector, submodule), torch.no_grad():
        for data in data_loader:
            inputs = scatter(data, target)[0]
            batch_results = detector(return_loss=False, rescale=True, **inputs)
            own_results.extend(batch_results)
            if progress is not None:
                for _ in batch_results:
                    progress.update()
    detector.train(was_training)
    if len(own_results) != len(own_indices):
        raise RuntimeError(f"got {len(own_results)} results for {len(own_indices)} sampled images")
    ordered = [None] * len(dataset)
    for indices, results in all_gather_objects((own_indices, own_results)):
        for index, result in zip(indices, results):
            ordered[index] = result
    missing = [i for i, r in enumerate(ordered) if r is None]
    if missing:
        raise RuntimeError(f"no detections gathered for {len(missing)} images (first: {missing[:5]})")
    return ordered

