"""GbT thresholds, class-score tracker and pseudo-label gate (spec D, I.3 items 19-24)."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssod.models.gbt import ClassScoreTracker, class_thresholds, pseudo_label_mask

S_SKEWED = torch.tensor([0.8, 0.6, 0.4, 0.2])  # mean 0.5 -> base [1.44, 1.08, 0.72, 0.36]


# ---------------------------------------------------------------- class_thresholds (I.3 19-22)
def test_thresholds_hand_values():
    thr = class_thresholds(S_SKEWED)
    assert torch.allclose(thr, torch.tensor([0.9, 0.9, 0.72, 0.5]))
    thr = class_thresholds(S_SKEWED, torch.tensor([1.2, 0.5, 1.5, 3.0]))
    # min(base, 0.9 / w) -> [0.75, 1.08, 0.6, 0.3], clamped to [0.5, 0.9]
    assert torch.allclose(thr, torch.tensor([0.75, 0.9, 0.6, 0.5]))


def test_thresholds_range_and_no_nan():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        scores = torch.rand(7, generator=gen) * torch.randint(0, 2, (7,), generator=gen)
        weights = torch.rand(7, generator=gen) * 4
        for w in (None, weights):
            thr = class_thresholds(scores, w)
            assert not torch.isnan(thr).any()
            assert ((thr >= 0.5) & (thr <= 0.9)).all()


def test_thresholds_all_zero_statistics_give_tau():
    zeros = torch.zeros(4)
    assert torch.equal(class_thresholds(zeros), torch.full((4,), 0.9))
    thr = class_thresholds(zeros, torch.tensor([0.5, 1.0, 2.0, 1.5]))
    assert torch.allclose(thr, torch.tensor([0.9, 0.9, 0.5, 0.6]))
    assert torch.equal(class_thresholds(zeros, torch.zeros(4)), torch.full((4,), 0.9))


def test_thresholds_monotone_in_class_weight():
    off = class_thresholds(S_SKEWED)
    previous = None
    for w0 in torch.linspace(0.0, 3.0, 61):
        weights = torch.tensor([w0.item(), 1.0, 1.0, 1.0])
        thr0 = class_thresholds(S_SKEWED, weights)[0].item()
        if previous is not None:
            assert thr0 <= previous + 1e-7
        previous = thr0
        if w0 <= 1:
            assert thr0 == pytest.approx(off[0].item())
        elif w0 >= 1.8:
            assert thr0 == pytest.approx(0.5)
        else:
            assert thr0 == pytest.approx(max(0.5, min(1.44, 0.9 / w0.item())), abs=1e-6)
    # class 2 (base 0.72): the score term wins until 0.9 / w drops below it
    assert class_thresholds(S_SKEWED, torch.tensor([1.0, 1.0, 1.1, 1.0]))[2].item() == pytest.approx(0.72)
    assert class_thresholds(S_SKEWED, torch.tensor([1.0, 1.0, 1.5, 1.0]))[2].item() == pytest.approx(0.6)


def test_thresholds_monotone_in_confidence():
    previous = None
    for x in torch.linspace(0.0, 1.0, 41):
        s = torch.tensor([x.item(), 0.5, 0.5, 0.5])
        thr0 = class_thresholds(s)[0].item()
        if previous is not None:
            assert thr0 >= previous - 1e-7
        previous = thr0
        raw = 0.9 * x.item() / s.mean().item()
        if 0.5 <= raw <= 0.9:
            assert thr0 == pytest.approx(raw, abs=1e-6)
    # s_0 = 0.3: mean 0.45, 0.9 * 0.3 / 0.45 = 0.6
    assert class_thresholds(torch.tensor([0.3, 0.5, 0.5, 0.5]))[0].item() == pytest.approx(0.6)


def test_thresholds_uniform_statistics():
    s = torch.full((5,), 0.37)
    assert torch.allclose(class_thresholds(s), torch.full((5,), 0.9))
    assert torch.allclose(class_thresholds(s, torch.ones(5)), torch.full((5,), 0.9))


def test_thresholds_reject_mismatched_weights():
    with pytest.raises(ValueError, match="class_weights shape"):
        class_thresholds(S_SKEWED, torch.ones(5))


# ---------------------------------------------------------------- tracker (I.3 item 23)
@pytest.mark.parametrize("rule", ["mean", "upstream"])
@pytest.mark.parametrize("chunks", [1, 8, 1000])
def test_tracker_window_gives_mean(rule, chunks):
    tracker = ClassScoreTracker(3, rule=rule)
    labels = torch.full((1000,), 2)
    scores = torch.full((1000,), 0.7, dtype=torch.float64)
    for lab, sc in zip(labels.chunk(chunks), scores.chunk(chunks)):
        tracker.update(lab, sc)
    assert tracker.score_mean[2].item() == pytest.approx(0.7, abs=1e-12)
    assert tracker.count.tolist() == [0, 0, 1000]
    assert tracker.score_mean[:2].tolist() == [0.0, 0.0]
    # the EMA rule applies after the window
    tracker.update(torch.tensor([2]), torch.tensor([0.2], dtype=torch.float64))
    assert tracker.score_mean[2].item() == pytest.approx(0.6995, abs=1e-12)
    tracker.update(torch.tensor([2, 2, 2]), torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    expected = 0.999 ** 3 * 0.6995 + (1 - 0.999 ** 3) * 0.2
    assert tracker.score_mean[2].item() == pytest.approx(expected, abs=1e-12)


def test_tracker_rules_differ_before_window():
    labels, scores = torch.zeros(10, dtype=torch.long), torch.full((10,), 0.7, dtype=torch.float64)
    mean, upstream = ClassScoreTracker(2, rule="mean"), ClassScoreTracker(2, rule="upstream")
    mean.update(labels, scores)
    upstream.update(labels, scores)
    assert mean.score_mean[0].item() == pytest.approx(0.7, abs=1e-12)
    assert upstream.score_mean[0].item() == pytest.approx(0.007, abs=1e-12)


def test_tracker_call_crossing_the_window():
    tracker = ClassScoreTracker(1)
    tracker.update(torch.zeros(998, dtype=torch.long), torch.full((998,), 0.5, dtype=torch.float64))
    tracker.update(torch.zeros(4, dtype=torch.long),
                   torch.tensor([1.0, 1.0, 0.8, 0.8], dtype=torch.float64))
    # 2 of the 4 (mean 0.9) complete the window: (0.5*998 + 1.8) / 1000 = 0.5008,
    # the other 2 are EMA steps: 0.999^2 * 0.5008 + (1 - 0.999^2) * 0.9
    assert tracker.score_mean.item() == pytest.approx(0.5015980008, abs=1e-12)
    assert tracker.count.item() == 1002


def test_tracker_two_chunks_equal_union():
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 4, (3000,), generator=gen)
    scores = torch.rand(3000, generator=gen, dtype=torch.float64)
    whole, split = ClassScoreTracker(4), ClassScoreTracker(4)
    whole.update(labels[:500], scores[:500])
    split.update(labels[:500], scores[:500])
    whole.update(labels[500:], scores[500:])
    sums = torch.zeros(4, dtype=torch.float64)
    counts = torch.zeros(4, dtype=torch.float64)
    for part in (slice(500, 1700), slice(1700, None)):
        sums.index_add_(0, labels[part], scores[part])
        counts.index_add_(0, labels[part], torch.ones(len(labels[part]), dtype=torch.float64))
    split.apply_call_statistics(sums, counts)
    assert torch.allclose(whole.score_mean, split.score_mean, rtol=0, atol=1e-14)
    assert torch.equal(whole.count, split.count)
    # order within a call does not matter
    perm = torch.randperm(2500, generator=gen) + 500
    shuffled = ClassScoreTracker(4)
    shuffled.update(labels[:500], scores[:500])
    shuffled.update(labels[perm], scores[perm])
    assert torch.allclose(whole.score_mean, shuffled.score_mean, rtol=0, atol=1e-14)


def test_tracker_without_process_group_and_empty_call():
    assert not dist.is_initialized()
    tracker = ClassScoreTracker(2)
    tracker.update(torch.zeros(0, dtype=torch.long), torch.zeros(0))
    assert tracker.score_mean.tolist() == [0.0, 0.0]
    assert tracker.count.tolist() == [0, 0]
    assert torch.equal(tracker.thresholds(), torch.full((2,), 0.9))


def test_tracker_rejects_bad_input():
    with pytest.raises(ValueError, match="rule"):
        ClassScoreTracker(2, rule="median")
    tracker = ClassScoreTracker(2)
    with pytest.raises(ValueError, match="equal length"):
        tracker.update(torch.zeros(3, dtype=torch.long), torch.zeros(2))
    with pytest.raises(RuntimeError, match="out of bounds"):
        tracker.update(torch.tensor([2]), torch.tensor([0.5]))


def test_tracker_thresholds_match_function():
    tracker = ClassScoreTracker(4)
    tracker.update(torch.tensor([0, 1, 2, 3]), S_SKEWED)
    weights = torch.tensor([1.2, 0.5, 1.5, 3.0])
    assert torch.allclose(tracker.thresholds(weights), class_thresholds(S_SKEWED, weights))
    assert tracker.thresholds().dtype == torch.float32


def test_tracker_state_dict_round_trip(tmp_path):
    tracker = ClassScoreTracker(3, rule="upstream")
    tracker.update(torch.tensor([0, 2, 2]), torch.tensor([0.3, 0.6, 0.9]))
    path = tmp_path / "tracker.pth"
    torch.save(tracker.state_dict(), path)
    state = torch.load(path, weights_only=True)
    assert set(state) == {"score_mean", "count"}
    restored = ClassScoreTracker(3, rule="upstream")
    restored.load_state_dict(state)
    assert torch.equal(restored.score_mean, tracker.score_mean)
    assert torch.equal(restored.count, tracker.count)


def _two_rank_worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    gen = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 3, (1500,), generator=gen)
    scores = torch.rand(1500, generator=gen, dtype=torch.float64)
    tracker = ClassScoreTracker(3)
    part = slice(0, 900) if rank == 0 else slice(900, None)
    tracker.update(labels[part], scores[part])
    tracker.update(labels[:0], scores[:0])
    torch.save(tracker.state_dict(), os.path.join(out_dir, f"rank{rank}.pth"))
    dist.destroy_process_group()


def test_tracker_two_ranks_equal_single_process(tmp_path):
    mp.spawn(_two_rank_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    gen = torch.Generator().manual_seed(2)
    labels = torch.randint(0, 3, (1500,), generator=gen)
    scores = torch.rand(1500, generator=gen, dtype=torch.float64)
    single = ClassScoreTracker(3)
    single.update(labels, scores)
    states = [torch.load(tmp_path / f"rank{r}.pth", weights_only=True) for r in (0, 1)]
    assert torch.equal(states[0]["score_mean"], states[1]["score_mean"])
    assert torch.equal(states[0]["count"], single.count)
    assert torch.allclose(states[0]["score_mean"], single.score_mean, rtol=0, atol=1e-14)


# ---------------------------------------------------------------- gate (I.3 item 24)
def test_pseudo_label_mask_warm_up_gating():
    labels = torch.tensor([0, 1, 2, 0, 1])
    scores = torch.tensor([0.95, 0.85, 0.6, 0.91, 0.79])
    thr = torch.tensor([0.9, 0.8, 0.6])
    before = pseudo_label_mask(labels, scores, thr, iter_num=11999, warm_up_iter=12000)
    assert before.tolist() == [True, False, False, True, False]
    for t in (12000, 12001):
        after = pseudo_label_mask(labels, scores, thr, iter_num=t, warm_up_iter=12000)
        assert after.tolist() == [True, True, False, True, False]
