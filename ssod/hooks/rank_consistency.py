"""Check that every rank of a distributed run holds the same model state (weights, EMA teacher, GbR/GbT).

DDP keeps the student's weights equal by averaging gradients; the EMA teacher, the GbR
statistics and weights, and the GbT score tracker stay equal only if every collective that
feeds them is right (all-reduce, NCCL device placement). A silent divergence would make
rank 0's checkpoint differ from what the other ranks trained with; this hook turns it
into an error that names the tensors.
"""
import torch
from mmcv.runner import HOOKS, Hook

from ssod.utils.dist_utils import all_gather_objects, get_world_size, unwrap_model


def rank_local_names(module: torch.nn.Module) -> set:
    """State-dict names of buffers that submodules declare rank-local (``rank_local_buffers``)."""
    return {f"{prefix}.{name}" if prefix else name for prefix, submodule in module.named_modules()
            for name in getattr(submodule, "rank_local_buffers", ())}


@torch.no_grad()
def state_fingerprint(module: torch.nn.Module) -> dict:
    """``{name: (sum, sum of squares)}`` in float64 of every state-dict tensor, rank-local buffers left out."""
    skipped = rank_local_names(module)
    fingerprint = {}
    for name, tensor in module.state_dict().items():
        if name not in skipped:
            values = tensor.detach().to(torch.float64)
            fingerprint[name] = (values.sum().item(), values.square().sum().item())
    return fingerprint


def mismatched_tensors(fingerprints: list) -> list:
    """Names whose fingerprint differs between ranks (or that some rank lacks)."""
    reference = fingerprints[0]
    names = set().union(*fingerprints)
    return sorted(name for name in names
                  if any(fp.get(name) != reference.get(name) for fp in fingerprints[1:]))


@HOOKS.register_module()
class RankConsistencyHook(Hook):
    """Every ``interval`` iterations and at the end of training, compare the model state across ranks.

    Exact comparison (sums in float64): the all-reduce results and DDP's averaged
    gradients are bit-identical on every rank. A no-op at world size 1.
    """

    def __init__(self, interval: int = 1000):
        if int(interval) != interval or interval < 1:
            raise ValueError(f"RankConsistencyHook interval = {interval}; expected a positive integer")
        self.interval = int(interval)

    def after_train_iter(self, runner):
        if self.every_n_iters(runner, self.interval):
            self.check(runner)

    def after_run(self, runner):
        self.check(runner)

    def check(self, runner) -> None:
        world_size = get_world_size()
        if world_size == 1:
            return
        fingerprints = all_gather_objects(state_fingerprint(unwrap_model(runner.model)))
        differing = mismatched_tensors(fingerprints)
        if differing:
            raise RuntimeError(f"iteration {runner.iter}: the model state differs between the {world_size} "
                               f"ranks in {len(differing)} tensor(s), e.g. {differing[:8]}")
        runner.logger.info(f"rank consistency at iteration {runner.iter}: {len(fingerprints[0])} state "
                           f"tensors equal on {world_size} ranks")
