"""Model wrappers for mmcv's runner: one process or DDP, on GPUs or on CPUs (gloo)."""
import torch
from mmcv.parallel import MMDataParallel, MMDistributedDataParallel


class CPUDistributedDataParallel(MMDistributedDataParallel):
    """MMDistributedDataParallel for CPU processes (``device_ids=None``).

    mmcv's wrapper only unpacks ``DataContainer`` inputs when it has device ids; here
    the batch is scattered to the CPU first, then the usual DDP step runs.
    """

    def _scatter_to_cpu(self, inputs, kwargs):
        inputs, kwargs = self.scatter(inputs, kwargs, [-1])
        return inputs[0], kwargs[0]

    def train_step(self, *inputs, **kwargs):
        inputs, kwargs = self._scatter_to_cpu(inputs, kwargs)
        return super().train_step(*inputs, **kwargs)

    def val_step(self, *inputs, **kwargs):
        inputs, kwargs = self._scatter_to_cpu(inputs, kwargs)
        return super().val_step(*inputs, **kwargs)


def wrap_model(model, cfg, distributed: bool):
    """Put the detector on its device and wrap it for mmcv's runner."""
    find_unused = cfg.get("find_unused_parameters", False)
    if torch.cuda.is_available():
        if distributed:
            return MMDistributedDataParallel(model.cuda(), device_ids=[torch.cuda.current_device()],
                                             broadcast_buffers=False, find_unused_parameters=find_unused)
        return MMDataParallel(model.cuda(), device_ids=[0])
    if distributed:
        return CPUDistributedDataParallel(model, device_ids=None, broadcast_buffers=False,
                                          find_unused_parameters=find_unused)
    return MMDataParallel(model, device_ids=None)
