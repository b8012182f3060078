"""A non-finite loss or model state stops training before it reaches a step, the teacher or a checkpoint."""
import logging
from types import SimpleNamespace

import pytest
import torch

from conftest import REPO_ROOT, run_tool
from ssod.apis.divergence import DivergenceCheckHook, DivergenceError, non_finite_tensors
from ssod.apis.fp16_hook import LoggedFp16OptimizerHook

BASELINE = REPO_ROOT / "configs/baseline/faster_rcnn_r18_fpn_toy_sup.py"


class _GbRLike(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)
        self.register_buffer("G_bar", torch.zeros(3, 3))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


def _runner(model, log_vars, iteration=6):
    return SimpleNamespace(model=model, outputs={"log_vars": log_vars}, iter=iteration,
                           meta={"hook_msgs": {"last_ckpt": "work/iter_6.pth"}})


def test_finite_iteration_passes():
    DivergenceCheckHook().after_train_iter(_runner(_GbRLike(), {"loss": 1.0, "loss_cls": 0.5}))


def test_non_finite_loss_names_iteration_and_keys():
    with pytest.raises(DivergenceError, match=r"iteration 7: non-finite losses loss=nan, loss_cls=inf.*iter_6.pth"):
        DivergenceCheckHook().after_train_iter(_runner(_GbRLike(), {"loss": float("nan"), "loss_cls": float("inf"),
                                                                    "loss_bbox": 0.1}))


def test_non_finite_gbr_state_is_divergence_with_finite_losses():
    model = _GbRLike()
    model.G_bar[1, 2] = float("nan")
    assert non_finite_tensors(model) == ["G_bar"]
    with pytest.raises(DivergenceError, match=r"non-finite model tensors 1 \(G_bar\)"):
        DivergenceCheckHook().after_train_iter(_runner(model, {"loss": 1.0}))


@pytest.mark.parametrize("loss_scale", ["dynamic", 2.0**16])
def test_fp16_skipped_step_is_a_warning_not_an_error(caplog, loss_scale):
    """The loss scaler skips a step with overflowing gradients; the loss itself is finite (fp32).

    A dynamic scale backs off on the skipped step; a static one stays, and the gradients tell.
    """
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    hook = LoggedFp16OptimizerHook(loss_scale=loss_scale, distributed=False)
    hook.loss_scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)  # mmcv builds the CUDA one
    before = model.weight.detach().clone()
    loss = model.weight.sum() * 1e34  # finite; its gradient times the scale 2^16 overflows float32
    runner = SimpleNamespace(model=model, optimizer=optimizer, outputs={"loss": loss, "log_vars": {"loss": 1.0}},
                             iter=4, meta={}, logger=logging.getLogger("fp16_test"))
    with caplog.at_level(logging.WARNING):
        hook.after_train_iter(runner)
    assert torch.equal(model.weight, before)  # step skipped
    assert "FP16 SKIPPED STEP at iteration 5" in caplog.text and hook.skipped_steps == 1
    DivergenceCheckHook().after_train_iter(runner)  # finite loss and weights: not divergence
    runner.outputs["loss"] = model.weight.sum()  # a normal step: taken, no warning
    hook.after_train_iter(runner)
    assert not torch.equal(model.weight, before) and hook.skipped_steps == 1


def test_diverging_run_stops_and_keeps_its_last_finite_checkpoint(toy_workspace, tmp_path):
    """lr x 1e32 from iteration 3 on; one checkpoint kept per iteration (max_keep_ckpts=1)."""
    work_dir = tmp_path / "diverge"
    proc = run_tool([REPO_ROOT / "tools/train.py", BASELINE, "--work-dir", work_dir, "--seed", "0", "--no-validate",
                     "--cfg-options", "runner.max_iters=8", "checkpoint_config.interval=1",
                     "checkpoint_config.max_keep_ckpts=1", "data.samples_per_gpu=1", "data.workers_per_gpu=0",
                     "log_config.interval=1", "lr_config.warmup=None", "lr_config.step=[2]", "lr_config.gamma=1e32"],
                    cwd=toy_workspace, check=False)
    assert proc.returncode != 0
    assert "DivergenceError" in proc.stderr and "training diverged at iteration" in proc.stderr
    checkpoints = sorted(work_dir.glob("iter_*.pth"))
    assert checkpoints, "the last finite checkpoint was rotated away"
    for path in checkpoints:
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), path.name
    assert (work_dir / "latest.pth").resolve() in [p.resolve() for p in checkpoints]
