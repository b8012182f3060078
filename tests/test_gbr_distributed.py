"""GbR statistics over 2 gloo processes equal one process seeing the union of their RoIs.

Every rank normalises its call by its own RoI count and the matrices are summed (spec C.2,
all-reduce SUM), so with equal halves the accumulated matrix is exactly world_size times the
single-process one; the targets (ratios of its entries) are the same.
"""
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssod.models.losses.gbr import GbRLoss, target_weights

NUM_CLASSES, NUM_ROIS, CALLS = 3, 400, [(0, "sup"), (0, "unsup"), (1, "sup"), (3, "unsup"), (4, "sup")]


def _calls_data():
    gen = torch.Generator().manual_seed(5)
    for _ in CALLS:
        logits = torch.randn(NUM_ROIS, NUM_CLASSES + 1, generator=gen, dtype=torch.float64) * 2
        labels = torch.multinomial(torch.tensor([0.5, 0.2, 0.05, 1.0]), NUM_ROIS, replacement=True, generator=gen)
        weights = torch.rand(NUM_ROIS, generator=gen, dtype=torch.float64)
        yield logits, labels, weights


def _loss(**kwargs):
    """A double-precision GbRLoss whose class weights are not all 1 (so the RoI weights vary)."""
    loss = GbRLoss(NUM_CLASSES, warm_up_iter=2, **kwargs).double()
    with torch.no_grad():
        loss.theta.copy_(torch.tensor([0.6, -0.4, 0.2, 0.0]))
        loss.class_weights.copy_((NUM_CLASSES + 1) * torch.softmax(loss.theta, dim=0))
    return loss


def _run(loss, part):
    for (iter_num, call_type), (logits, labels, weights) in zip(CALLS, _calls_data()):
        loss(logits[part], labels[part], weights[part], iter_num=iter_num, call_type=call_type,
             grad_weight=4.0 if call_type == "unsup" else 1.0)
    return loss


def _worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    half = NUM_ROIS // 2
    part = slice(rank * half, (rank + 1) * half)
    loss = _run(_loss(), part)
    torch.save(loss.state_dict(), os.path.join(out_dir, f"rank{rank}.pth"))
    upstream = _run(_loss(sync_weights_mean=False), part)
    torch.save(upstream.state_dict(), os.path.join(out_dir, f"upstream_rank{rank}.pth"))
    dist.destroy_process_group()


def test_two_ranks_accumulate_world_size_times_the_single_process_matrix(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    single = _run(_loss(), slice(None))
    ranks = [torch.load(tmp_path / f"rank{r}.pth", weights_only=True) for r in (0, 1)]
    assert torch.equal(ranks[0]["G_bar"], ranks[1]["G_bar"])
    assert single.G_bar.abs().sum() > 0
    torch.testing.assert_close(ranks[0]["G_bar"], 2 * single.G_bar, rtol=1e-10, atol=1e-12)
    ones = torch.ones(NUM_CLASSES + 1, dtype=torch.float64)
    torch.testing.assert_close(target_weights(ranks[0]["G_bar"], ones), target_weights(single.G_bar, ones),
                               rtol=1e-6, atol=1e-8)


def test_roi_weight_normaliser_is_the_mean_over_all_ranks(tmp_path):
    """Default: every rank's ``weights_mean`` follows the mean RoI weight of all ranks (= one process
    with the union); ``sync_weights_mean=False`` keeps the reference's per-rank normaliser (spec H.5)."""
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    single = _run(_loss(), slice(None))
    synced = [torch.load(tmp_path / f"rank{r}.pth", weights_only=True)["weights_mean"] for r in (0, 1)]
    upstream = [torch.load(tmp_path / f"upstream_rank{r}.pth", weights_only=True)["weights_mean"] for r in (0, 1)]
    assert single.weights_mean != 1.0
    torch.testing.assert_close(synced[0], single.weights_mean, rtol=1e-12, atol=0)
    assert torch.equal(synced[0], synced[1])
    assert not torch.equal(upstream[0], upstream[1])
