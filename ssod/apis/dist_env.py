"""Process-group setup for `torchrun` launches on GPUs (NCCL) or CPUs (gloo)."""
import datetime
import os

import torch
import torch.distributed as dist


def local_rank() -> int:
    """The rank of this process on its node, as set by torchrun (``LOCAL_RANK``)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def init_distributed(launcher: str, timeout_minutes: int = 120) -> bool:
    """Initialise the default process group for ``launcher``; return True if distributed.

    ``launcher='none'`` runs a single process without a process group. ``'pytorch'``
    expects the torchrun environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
    LOCAL_RANK); each process uses GPU ``LOCAL_RANK`` when CUDA is available (correct
    on multi-node jobs) and gloo on CPU otherwise.
    """
    if launcher == "none":
        return False
    if launcher != "pytorch":
        raise ValueError(f"unsupported launcher {launcher!r}; use 'none' or 'pytorch' (torchrun)")
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"--launcher pytorch needs the torchrun environment; missing {missing}. "
                           "Start with tools/dist_train.sh or torchrun.")
    if not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank())
            backend = "nccl"
        else:
            backend = "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return True
