"""GradientResamplingHook, RFS/CrS dataset wrappers, the labeled statistics L_c / N_L of the built
labeled dataset and a short toy GrS training run (spec E.2-E.5, H.10-H.13, H.26, H.29, H.36; I.4 items 31, 33)."""
import copy
import glob
import json
import logging
import math
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import REPO_ROOT, run_tool
from mmcv.runner import HOOKS, LogBuffer
from mmcv.runner.iter_based_runner import IterLoader
from mmdet.datasets import DATASETS, ConcatDataset, build_dataset

import ssod.datasets.crs_wrappers  # noqa: F401  (registers ClassBalancedDatasetRFS / CrS)
import ssod.datasets.semi_dataset  # noqa: F401  (registers SemiDataset)
from ssod.datasets.builder import build_dataloader
from ssod.datasets.crs import crs_repeat_factors, rfs_repeat_factors
from ssod.datasets.crs_wrappers import ClassBalancedDatasetCrS, ClassBalancedDatasetRFS, labeled_dataset_statistics
from ssod.datasets.pseudo_store import PseudoLabelStore
from ssod.hooks.resampling import GradientResamplingHook

CLASSES = ("a", "b", "c")
NUM_UNLABELED = 12
UNLABELED_PREFIX = "unlab"
LABELED_COUNTS = [20, 2, 0]  # L_c of the labeled test dataset below; N_L = 20
ALPHA, MAX_ITERS = 1.0, 40
GRS_CONFIG = REPO_ROOT / "configs/soft_teacher/ubsoft_teacher_grs_faster_rcnn_r18_fpn_toy.py"


class HookTestDataset:
    """Just what the wrappers, SemiDataset, the sampler and the hook read."""

    def __init__(self, num_images, img_prefix, label_sets=None, ann_file=None):
        self.CLASSES = CLASSES
        self.img_prefix = img_prefix
        self.ann_file = ann_file
        self.data_infos = [dict(filename=f"img{i}.jpg", width=80, height=64) for i in range(num_images)]
        self.flag = np.ones(num_images, dtype=np.uint8)
        self.label_sets = label_sets or [[] for _ in range(num_images)]

    def __len__(self):
        return len(self.data_infos)

    def __getitem__(self, idx):
        return dict(idx=idx)

    def get_cat_ids(self, idx):
        return list(self.label_sets[idx])

    def get_ann_info(self, idx):
        return dict(labels=np.array(self.label_sets[idx], dtype=np.int64))


DATASETS.register_module(name="GrSHookTestDataset", module=HookTestDataset, force=True)


def write_labeled_file(path):
    """The annotation file the labeled test dataset names (its statistics are cached by this file)."""
    path.write_text(json.dumps(dict(images=[], annotations=[], categories=[])))
    return str(path)


def semi_cfg(ann_file, sup_type="ClassBalancedDatasetRFS"):
    """Labeled: 20 images, class a in all, class b in two (a second box of a in one), class c in none."""
    labeled_sets = [[0, 1, 0] if i == 0 else [0, 1] if i == 1 else [0] for i in range(20)]
    sup = dict(type="GrSHookTestDataset", num_images=20, img_prefix="lab", label_sets=labeled_sets, ann_file=ann_file)
    if sup_type is not None:
        sup = dict(type=sup_type, oversample_thr=0.3, dataset=sup)
    unsup = dict(type="ClassBalancedDatasetCrS",
                 dataset=dict(type="GrSHookTestDataset", num_images=NUM_UNLABELED, img_prefix=UNLABELED_PREFIX))
    return dict(type="SemiDataset", sup=sup, unsup=unsup)


def train_loader(ann_file, distributed=False):
    dataset = build_dataset(semi_cfg(ann_file))
    loader = build_dataloader(dataset, samples_per_gpu=3, workers_per_gpu=0, dist=distributed, seed=0,
                              sampler_cfg=dict(type="SemiBalanceSampler", epoch_length=10))
    return IterLoader(loader)


class FakeGrSModel:
    """The attributes of SoftTeacherGrS the hook uses."""

    def __init__(self, alpha=ALPHA):
        self.num_classes = len(CLASSES)
        self.train_cfg = dict(alpha=alpha, max_iter=None)
        self.pseudo_label_pool = PseudoLabelStore(self.num_classes)

    def current_class_thresholds(self):
        return torch.tensor([0.9, 0.6, 0.5])

    def gbr_class_weights(self):
        return torch.tensor([1.0, 2.0, 3.0, 0.5])


class FakeRunner:
    def __init__(self, work_dir, data_loader, iter_num=0, meta=None, model=None):
        self.work_dir = str(work_dir)
        self.model = model or FakeGrSModel()
        self.data_loader = data_loader
        self.iter = iter_num
        self.max_iters = MAX_ITERS
        self.meta = {} if meta is None else meta
        self.logger = logging.getLogger("test_resampling_hook")
        self.log_buffer = LogBuffer()


def unlabeled_key(i):
    return f"{UNLABELED_PREFIX}/img{i}.jpg"


def add_sighting(pool, t):
    """What the model's forward of iteration t records: image t % 12 with hand-picked pseudo boxes.

    Image 0 holds the only class-c box (margin 0.45); images i % 3 == 1 hold classes b and a;
    the other images with i % 3 == 0 hold class a; images i % 3 == 2 have no box.
    """
    i = t % NUM_UNLABELED
    if i == 0:
        labels, margins = [2], [0.45]
    elif i % 3 == 1:
        labels, margins = [1, 0], [0.3, 0.1]
    elif i % 3 == 0:
        labels, margins = [0], [0.2]
    else:
        labels, margins = [], []
    boxes = np.tile([[1.0, 2.0, 30.0, 40.0]], (len(labels), 1))
    pool.add(unlabeled_key(i), 80, 64, np.array(labels, dtype=np.int64), boxes, np.array(margins))


class FactorRecorder:
    """Records the unlabeled repeat factors handed to the sampler, with the iteration."""

    def __init__(self, runner):
        self.calls = []
        sampler = runner.data_loader._dataloader.sampler
        original = sampler.set_repeat_factors

        def record(source, factors):
            self.calls.append((runner.iter, source, np.asarray(factors).copy()))
            original(source, factors)

        sampler.set_repeat_factors = record


def run_iterations(hook, runner, iterations, sightings=True):
    for t in iterations:
        runner.iter = t
        hook.before_train_iter(runner)
        if sightings:
            add_sighting(runner.model.pseudo_label_pool, t)


def expected_factors(store_path, lambd):
    labels, margins = PseudoLabelStore.load(store_path).labels_and_margins(
        [unlabeled_key(i) for i in range(NUM_UNLABELED)])
    return crs_repeat_factors(labels, margins, LABELED_COUNTS, 20, lambd)


@pytest.fixture
def labeled_file(tmp_path):
    return write_labeled_file(tmp_path / "labeled.json")


def start(tmp_path, labeled_file, name="work", **hook_args):
    runner = FakeRunner(tmp_path / name, train_loader(labeled_file))
    hook = GradientResamplingHook(**dict(dict(save_interval=4, update_iter=8), **hook_args))
    hook.before_run(runner)
    return hook, runner


# ----------------------------------------------------------------------------- registration, wrappers
def test_upstream_type_names_resolve():
    assert DATASETS.get("ClassBalancedDatasetCrS") is ClassBalancedDatasetCrS
    assert DATASETS.get("ClassBalancedDatasetRFS") is ClassBalancedDatasetRFS
    assert HOOKS.get("GradientResamplingHook") is GradientResamplingHook


def test_labeled_rfs_factors_reach_the_sampler(labeled_file):
    loader = train_loader(labeled_file)._dataloader
    dataset = loader.dataset
    assert len(dataset) == 20 + NUM_UNLABELED  # indices are not repeated in the dataset
    # f_b = 2 / 20 = 0.1 < 0.3: images with class b repeat ceil(sqrt(0.3 / 0.1)) = 2 times
    expected = [2, 2] + [1] * 18
    np.testing.assert_array_equal(dataset.sup_repeat_factors(), expected)
    np.testing.assert_array_equal(rfs_repeat_factors(dataset.sup.dataset.label_sets, 0.3), expected)
    np.testing.assert_array_equal(loader.sampler.repeat_factors(0), expected)
    np.testing.assert_array_equal(loader.sampler.repeat_factors(1), np.ones(NUM_UNLABELED))
    assert dataset.unsup.image_keys() == [unlabeled_key(i) for i in range(NUM_UNLABELED)]
    uniform = build_dataset(semi_cfg(labeled_file, sup_type=None))
    assert uniform.sup_repeat_factors() is None


def test_semi_dataset_refuses_index_repeating_wrappers(labeled_file):
    with pytest.raises(TypeError, match="ClassBalancedDatasetRFS"):
        build_dataset(semi_cfg(labeled_file, sup_type="ClassBalancedDataset"))


# ----------------------------------------------------------------------------- schedule (I.4 item 33)
def test_schedule_files_and_factors_equal_crs_of_the_store(tmp_path, labeled_file):
    hook, runner = start(tmp_path, labeled_file)
    recorder = FactorRecorder(runner)
    pseudo_dir = tmp_path / "work/pseudo_labels"
    saves, refreshes = [], []
    for t in range(41):
        before = set(os.listdir(pseudo_dir))
        run_iterations(hook, runner, [t])
        if f"pseudo_iter{t}.json" in set(os.listdir(pseudo_dir)) - before:
            saves.append(t)
        if any(call[0] == t for call in recorder.calls):
            refreshes.append(t)
        if t == 17:  # save then refresh in the same iteration: the refresh sees the newest labels
            lambd = ALPHA * 17 / MAX_ITERS
            with open(pseudo_dir / "pseudo.json") as f:
                assert json.load(f)["meta"] == dict(lambd=lambd, iter=17, alpha=ALPHA, num_classes=3)
            factors = recorder.calls[-1][2]
            np.testing.assert_array_equal(factors, expected_factors(pseudo_dir / "pseudo_iter17.json", lambd))
            # hand value: image 0 holds the only class-c box; N_U = 8 images with boxes, N_L = 20
            r_c = math.sqrt(lambd / ((0 + 1) / (8 + 0.01 + 20)))
            assert factors[0] == math.ceil(r_c * 0.45) == 2 and (factors[1:] == 1).all()
            np.testing.assert_array_equal(runner.data_loader._dataloader.sampler.repeat_factors(1), factors)
            output = runner.log_buffer.output
            assert output["crs_lambd"] == lambd and output["crs_pseudo_images"] == 8
            sizes = (output["crs_repeat_max"], output["crs_repeated_length"], output["crs_dataset_length"])
            assert sizes == (2, 13, 12)
            assert output["crs_repeat_hist"] == [11, 1] and output["crs_repeat_mean"] == pytest.approx(13 / 12)
            np.testing.assert_allclose(output["gbt_thresholds"], [0.9, 0.6, 0.5])
            assert output["gbr_weights"] == [1.0, 2.0, 3.0, 0.5]
            assert runner.meta["hook_msgs"] == dict(crs_save_iter=17, crs_refresh_store_iter=17)
    assert saves == list(range(1, 41, 4))
    assert refreshes == [17, 25, 33]  # t = 9 is not > 10
    assert all(call[1] == 1 for call in recorder.calls)
    # sightings of t = 37..40 (after the save at 37) are still pending
    assert runner.model.pseudo_label_pool.pending().keys() == {unlabeled_key(i) for i in (1, 2, 3, 4)}
    # only these files, all written atomically (no temporary files left) under work_dir
    names = set(os.listdir(pseudo_dir))
    stats = {n for n in names if n.startswith("labeled_stats_")}
    assert len(stats) == 1
    assert names - stats == {"pseudo.json"} | {f"pseudo_iter{t}.json" for t in saves}


def test_upstream_order_refreshes_before_the_save(tmp_path, labeled_file):
    hook, runner = start(tmp_path, labeled_file, upstream_order=True)
    recorder = FactorRecorder(runner)
    run_iterations(hook, runner, range(18))
    assert [call[0] for call in recorder.calls] == [17]
    assert runner.meta["hook_msgs"] == dict(crs_save_iter=17, crs_refresh_store_iter=13)
    lambd_13 = ALPHA * 13 / MAX_ITERS
    np.testing.assert_array_equal(
        recorder.calls[0][2], expected_factors(tmp_path / "work/pseudo_labels/pseudo_iter13.json", lambd_13))


# ----------------------------------------------------------------------------- labeled statistics (E.4, H.29)
def write_coco_file(path, categories, images):
    """``images``: id -> (width, [(category id, iscrowd)]); every box 10 x 10."""
    image_dicts = [dict(id=i, file_name=f"{i}.jpg", width=width, height=48) for i, (width, _) in images.items()]
    annotations = [dict(id=n + 1, image_id=i, category_id=cat, bbox=[1, 1, 10, 10], area=100, iscrowd=crowd)
                   for n, (i, cat, crowd) in enumerate((i, *box) for i, (_, boxes) in images.items() for box in boxes)]
    path.write_text(json.dumps(dict(images=image_dicts, annotations=annotations,
                                    categories=[dict(id=cat, name=name) for cat, name in categories])))
    return str(path)


def coco_cfg(ann_file):
    return dict(type="CocoDataset", ann_file=ann_file, img_prefix="", classes=CLASSES, pipeline=[])


# a (id 1), b (id 4), c (id 7) in id order; "other" (id 9) is not a class
ID_ORDER = [(1, "a"), (4, "b"), (7, "c"), (9, "other")]
PART_ONE = {
    1: (64, [(1, 0), (1, 0), (4, 0)]),  # a twice, b: counts once for a, once for b
    2: (64, [(7, 0), (1, 1)]),  # c, and a crowd box of a (not a training target)
    3: (64, [(4, 1)]),  # only a crowd box: kept by mmdet's filter, no class
    4: (64, [(9, 0)]),  # only a category outside the classes: filtered
    5: (64, []),  # no annotation: filtered
    6: (20, [(1, 0)]),  # shorter side < 32: filtered
}
PART_TWO = {10: (64, [(1, 0), (1, 0), (1, 0)]), 11: (64, [(4, 0), (7, 0)])}


def test_labeled_statistics_are_hand_counts_of_the_training_targets(tmp_path):
    dataset = build_dataset(coco_cfg(write_coco_file(tmp_path / "one.json", ID_ORDER, PART_ONE)))
    counts, num_labeled, cached = labeled_dataset_statistics(dataset, 3)
    # a: image 1 only (the crowd a of image 2 is no target); b: image 1; c: image 2. N_L: images 1, 2, 3
    np.testing.assert_array_equal(counts, [1, 1, 1])
    assert counts.dtype == np.int64 and num_labeled == 3 and cached is False
    # mmdet's CocoDataset.get_cat_ids gives raw category ids with crowd boxes: not usable as labels
    assert sorted(dataset.get_cat_ids(1)) == [1, 7]


def test_labeled_statistics_skip_boxes_flagged_ignore(tmp_path):
    path = tmp_path / "ignore.json"
    write_coco_file(path, ID_ORDER[:3], {1: (64, [(1, 0), (4, 0)]), 2: (64, [(7, 0), (4, 0)])})
    data = json.loads(path.read_text())
    data["annotations"][3]["ignore"] = True  # the b box of image 2
    path.write_text(json.dumps(data))
    counts, num_labeled, _ = labeled_dataset_statistics(build_dataset(coco_cfg(str(path))), 3)
    np.testing.assert_array_equal(counts, [1, 1, 1])  # b only in image 1 ([1, 2, 1] if the flag were read as a box)
    assert num_labeled == 2


def test_labeled_statistics_follow_the_labels_the_dataset_trains_with(tmp_path):
    """A file listing its categories out of CLASSES order: mmdet labels them in file order; L_c follows that."""
    file_order = [(7, "c"), (1, "a"), (4, "b")]
    images = {10: (64, [(1, 0), (1, 0), (1, 0)]), 11: (64, [(1, 0), (7, 0)]), 12: (64, [(1, 0)])}
    dataset = build_dataset(coco_cfg(write_coco_file(tmp_path / "shuffled.json", file_order, images)))
    assert dataset.cat2label == {7: 0, 1: 1, 4: 2}
    counts, num_labeled, _ = labeled_dataset_statistics(dataset, 3)
    # a (label 1) in three images, c (label 0) in one, b (label 2) in none; by CLASSES names it would be [3, 0, 1]
    np.testing.assert_array_equal(counts, [1, 3, 0])
    assert num_labeled == 3


def test_labeled_statistics_of_a_concatenation_count_every_image_once_per_class(tmp_path):
    parts = [coco_cfg(write_coco_file(tmp_path / "one.json", ID_ORDER, PART_ONE)),
             coco_cfg(write_coco_file(tmp_path / "two.json", ID_ORDER[:3], PART_TWO))]
    wrapped = build_dataset(dict(type="ClassBalancedDatasetRFS", oversample_thr=0.1, dataset=parts))
    assert isinstance(wrapped.dataset, ConcatDataset) and len(wrapped) == 5
    assert len(wrapped.repeat_factors()) == 5
    counts, num_labeled, _ = labeled_dataset_statistics(wrapped, 3)
    # a: image 1 (part one) and image 10 (part two, three boxes); b: images 1 and 11; c: images 2 and 11
    np.testing.assert_array_equal(counts, [2, 2, 2])
    assert num_labeled == 5


def test_labeled_statistics_cache_is_reused_until_an_annotation_file_changes(tmp_path, monkeypatch):
    one = write_coco_file(tmp_path / "one.json", ID_ORDER, PART_ONE)
    parts = [coco_cfg(one), coco_cfg(write_coco_file(tmp_path / "two.json", ID_ORDER[:3], PART_TWO))]
    cache_dir = tmp_path / "work/pseudo_labels"
    first = labeled_dataset_statistics(build_dataset(parts), 3, cache_dir=str(cache_dir))
    assert first[2] is False and len(glob.glob(str(cache_dir / "labeled_stats_*.json"))) == 1

    resumed = build_dataset(parts)
    for part in resumed.datasets:  # a cache hit reads no annotation
        monkeypatch.setattr(part, "get_ann_info", lambda idx: pytest.fail("recounted"))
    counts, num_labeled, cached = labeled_dataset_statistics(resumed, 3, cache_dir=str(cache_dir))
    assert cached is True and num_labeled == 5
    np.testing.assert_array_equal(counts, first[0])

    write_coco_file(tmp_path / "one.json", ID_ORDER, {**PART_ONE, 7: (64, [(4, 0)])})  # one more image with b
    counts, num_labeled, cached = labeled_dataset_statistics(build_dataset(parts), 3, cache_dir=str(cache_dir))
    assert cached is False and num_labeled == 6
    np.testing.assert_array_equal(counts, [2, 3, 2])
    assert len(glob.glob(str(cache_dir / "labeled_stats_*.json"))) == 1  # same files: the entry is replaced

    (cache_file,) = glob.glob(str(cache_dir / "labeled_stats_*.json"))
    with open(cache_file, "w") as f:
        f.write("{")
    with pytest.raises(ValueError, match="corrupt labeled-statistics cache"):
        labeled_dataset_statistics(build_dataset(parts), 3, cache_dir=str(cache_dir))


def test_labeled_statistics_errors(tmp_path):
    one = coco_cfg(write_coco_file(tmp_path / "one.json", ID_ORDER, PART_ONE))
    with pytest.raises(ValueError, match="3 classes, the model 4"):
        labeled_dataset_statistics(build_dataset(one), 4)
    other_classes = dict(coco_cfg(str(tmp_path / "one.json")), classes=("b", "a", "c"))
    with pytest.raises(ValueError, match="other CLASSES"):
        labeled_dataset_statistics(build_dataset([one, other_classes]), 3)
    no_file = HookTestDataset(2, "lab", label_sets=[[0], [2]])
    with pytest.raises(ValueError, match="ann_file None"):
        labeled_dataset_statistics(no_file, 3, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="labeled image 1 has label 3 outside"):
        labeled_dataset_statistics(HookTestDataset(2, "lab", label_sets=[[0], [3]]), 3)


# ----------------------------------------------------------------------------- restarts (H.11, H.36)
def test_resume_restores_store_and_factors_and_new_run_resets(tmp_path, labeled_file):
    hook, runner = start(tmp_path, labeled_file)
    recorder = FactorRecorder(runner)
    run_iterations(hook, runner, range(19))
    checkpoint_meta = copy.deepcopy(runner.meta)  # a checkpoint written after iteration 18
    factors_17 = recorder.calls[-1][2]
    assert factors_17.max() > 1
    run_iterations(hook, runner, range(19, 23))  # the first run goes on to save at t = 21, then stops
    pseudo_dir = tmp_path / "work/pseudo_labels"
    with open(pseudo_dir / "pseudo_iter17.json") as f:
        store_17 = json.load(f)

    resumed = FakeRunner(tmp_path / "work", train_loader(labeled_file), iter_num=19, meta=checkpoint_meta)
    resumed_hook = GradientResamplingHook(save_interval=4, update_iter=8)
    resumed_hook.before_run(resumed)
    with open(pseudo_dir / "pseudo.json") as f:  # back to the checkpoint's store, not the later t = 21 save
        assert json.load(f) == store_17
    sampler = resumed.data_loader._dataloader.sampler
    np.testing.assert_array_equal(sampler.repeat_factors(1), np.ones(NUM_UNLABELED))
    run_iterations(resumed_hook, resumed, [19, 20])
    np.testing.assert_array_equal(sampler.repeat_factors(1), factors_17)
    pending = copy.deepcopy(resumed.model.pseudo_label_pool.pending())
    assert set(pending) == {unlabeled_key(7), unlabeled_key(8)}
    run_iterations(resumed_hook, resumed, [21], sightings=False)
    with open(pseudo_dir / "pseudo.json") as f:
        merged = json.load(f)
    assert merged["meta"]["iter"] == 21 and merged["images"] == {**store_17["images"], **pending}

    fresh = FakeRunner(tmp_path / "work", train_loader(labeled_file))
    GradientResamplingHook(save_interval=4, update_iter=8).before_run(fresh)
    with open(pseudo_dir / "pseudo.json") as f:
        assert json.load(f) == dict(meta=dict(lambd=0.0, iter=0, alpha=ALPHA, num_classes=3), images={})
    assert glob.glob(str(pseudo_dir / "pseudo_iter*.json")) == []


def test_resume_without_snapshot_is_a_clear_error(tmp_path, labeled_file):
    runner = FakeRunner(tmp_path / "work", train_loader(labeled_file), iter_num=30,
                        meta=dict(hook_msgs=dict(crs_save_iter=29)))
    with pytest.raises(FileNotFoundError, match="pseudo_iter29.json"):
        GradientResamplingHook(save_interval=4, update_iter=8).before_run(runner)


def test_configuration_errors(tmp_path, labeled_file):
    with pytest.raises(ValueError, match="save_interval"):
        GradientResamplingHook(save_interval=1)
    runner = FakeRunner(tmp_path / "work", train_loader(labeled_file))
    with pytest.raises(ValueError, match="alpha"):
        GradientResamplingHook(alpha=0.05).before_run(runner)
    runner.model = object()
    with pytest.raises(TypeError, match="pseudo_label_pool"):
        GradientResamplingHook().before_run(runner)
    cfg = semi_cfg(labeled_file)
    cfg["unsup"] = cfg["unsup"]["dataset"]
    dataset = build_dataset(cfg)
    loader = build_dataloader(dataset, 3, 0, dist=False, seed=0, sampler_cfg=dict(type="SemiBalanceSampler"))
    runner = FakeRunner(tmp_path / "work", IterLoader(loader))
    hook = GradientResamplingHook()
    hook.before_run(runner)
    with pytest.raises(TypeError, match="ClassBalancedDatasetCrS"):
        hook.before_train_iter(runner)


# ----------------------------------------------------------------------------- two processes
def _two_rank_worker(rank, init_file, labeled_file, work_dir, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    runner = FakeRunner(work_dir, train_loader(labeled_file, distributed=True))
    hook = GradientResamplingHook(save_interval=4, update_iter=8)
    hook.before_run(runner)
    for t in range(18):
        runner.iter = t
        hook.before_train_iter(runner)
        if t % 2 == rank:  # each rank sees half of the images
            add_sighting(runner.model.pseudo_label_pool, t)
    np.save(os.path.join(out_dir, f"factors{rank}.npy"), runner.data_loader._dataloader.sampler.repeat_factors(1))
    dist.destroy_process_group()


def test_two_ranks_give_the_factors_of_one_process_with_all_labels(tmp_path, labeled_file):
    mp.spawn(_two_rank_worker, args=(str(tmp_path / "init"), labeled_file, str(tmp_path / "dist"), str(tmp_path)),
             nprocs=2)
    hook, runner = start(tmp_path, labeled_file, name="single")
    run_iterations(hook, runner, range(18))
    single = runner.data_loader._dataloader.sampler.repeat_factors(1)
    assert single.max() > 1
    for rank in (0, 1):
        np.testing.assert_array_equal(np.load(tmp_path / f"factors{rank}.npy"), single)
    for name in ("pseudo.json", "pseudo_iter17.json"):
        with open(tmp_path / "dist/pseudo_labels" / name) as f, open(tmp_path / "single/pseudo_labels" / name) as g:
            assert json.load(f) == json.load(g)


# ----------------------------------------------------------------------------- end to end
def test_toy_grs_training_run(toy_workspace):
    """tools/train.py with the toy GrS config, shrunk so that GbR, GbT, saves and a refresh all happen."""
    work_dir = toy_workspace / "work_dirs/grs"
    options = ["log_config.interval=4", "custom_hooks.2.save_interval=5", "custom_hooks.2.update_iter=5",
               "model.train_cfg.warm_up_iter=2", "model.model.roi_head.bbox_head.loss_cls.warm_up_iter=3",
               "data.workers_per_gpu=0", "data.samples_per_gpu=2", "model.train_cfg.jitter_times=2",
               "lr_config.warmup_iters=2"]
    train = [REPO_ROOT / "tools/train.py", GRS_CONFIG, "--work-dir", work_dir, "--seed", "0", "--no-validate"]
    run_tool(train + ["--cfg-options", "runner.max_iters=12"] + options, cwd=toy_workspace)
    with open(work_dir / "pseudo_labels/pseudo.json") as f:
        store = json.load(f)
    assert store["meta"]["lambd"] == pytest.approx(0.5 * 11 / 12) and store["meta"]["iter"] == 11
    assert store["images"], "pseudo labels were dumped after warm_up_iter"
    assert all(key.startswith("dataset/toy/train/") for key in store["images"])
    assert {f"pseudo_iter{t}.json" for t in (1, 6, 11)} <= set(os.listdir(work_dir / "pseudo_labels"))
    (log_file,) = glob.glob(str(work_dir / "*.log.json"))
    with open(log_file) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    train_lines = [line for line in lines if line.get("mode") == "train"]
    refresh = [line for line in train_lines if "crs_repeat_mean" in line]
    assert len(refresh) == 1 and refresh[0]["iter"] == 12
    assert refresh[0]["crs_dataset_length"] == 24 and sum(refresh[0]["crs_repeat_hist"]) == 24
    assert refresh[0]["crs_lambd"] == pytest.approx(0.5 * 11 / 12, abs=1e-5)
    assert all(len(line["gbt_thresholds"]) == 8 and len(line["gbr_weights"]) == 9 for line in train_lines)
    assert all(0.5 <= thr <= 0.9 for line in train_lines for thr in line["gbt_thresholds"])
    assert any(line["sup_loss_grad"] > 0 for line in train_lines)  # GbR past its warm-up
    checkpoint = torch.load(work_dir / "latest.pth", map_location="cpu", weights_only=True)
    assert checkpoint["meta"]["hook_msgs"]["crs_save_iter"] == 11
    assert checkpoint["meta"]["hook_msgs"]["crs_refresh_store_iter"] == 11
    assert "class_score_tracker.score_mean" in checkpoint["state_dict"]

    # resuming for two more iterations (no save or refresh in them) restores the store of iteration 11
    proc = run_tool(train + ["--resume-from", work_dir / "latest.pth", "--cfg-options", "runner.max_iters=14"]
                    + options, cwd=toy_workspace)
    output = proc.stderr + proc.stdout
    assert "CrS: resumed at iter 12 with the store of iter 11" in output
    assert "repeat factors from the store of iter 11" in output
    with open(work_dir / "pseudo_labels/pseudo.json") as f:
        assert json.load(f) == store
