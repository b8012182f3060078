"""Pseudo-label store: add, merge, atomic save, load (spec E.1, E.2, I.4 items 31-32)."""
import json
import os

import numpy as np
import pytest
import torch

from ssod.datasets import pseudo_store
from ssod.datasets.crs import crs_repeat_factors
from ssod.datasets.pseudo_store import PseudoLabelStore, linear_lambd, snapshot_path

KEY_A = "data/coco/train2017/000000000009.jpg"
KEY_B = "data/coco/train2017/000000000025.jpg"
KEY_C = "data/coco/train2017/000000000030.jpg"


def add_a(store):
    store.add(KEY_A, 640, 480, torch.tensor([2, 0]),
              torch.tensor([[1.0, 2.0, 30.5, 40.0], [5.0, 5.0, 9.0, 9.0]]), torch.tensor([0.25, 0.0]))


def test_linear_lambd():
    assert linear_lambd(0.5, 1, 180000) == pytest.approx(2.7778e-06, rel=1e-4)  # spec E.2 example
    assert linear_lambd(0.5, 28001, 180000) == pytest.approx(0.5 * 28001 / 180000, rel=1e-15)
    assert linear_lambd(0.5, 200000, 180000) == 0.5
    assert snapshot_path("work/pseudo", 4001) == os.path.join("work/pseudo", "pseudo_iter4001.json")


def test_add_and_pending():
    store = PseudoLabelStore(3)
    add_a(store)
    store.add(KEY_B, 100, 50, np.array([]), np.zeros((0, 4)), np.array([]))
    entry = store.pending()[KEY_A]
    assert entry == {"file_name": KEY_A, "width": 640, "height": 480, "annotations": [
        {"category_id": 2, "bbox": [1.0, 2.0, 30.5, 40.0], "score": 0.25},
        {"category_id": 0, "bbox": [5.0, 5.0, 9.0, 9.0], "score": 0.0}]}
    assert store.pending()[KEY_B]["annotations"] == []
    # a later sighting overwrites the earlier one
    store.add(KEY_A, 640, 480, [1], [[0, 0, 4, 4]], [0.125])
    assert store.pending()[KEY_A]["annotations"] == [
        {"category_id": 1, "bbox": [0.0, 0.0, 4.0, 4.0], "score": 0.125}]
    assert len(store) == 0  # nothing merged yet
    assert store.gather_pending() == [store.pending()]
    store.clear_pending()
    assert store.pending() == {}


def test_add_rejects_bad_entries():
    store = PseudoLabelStore(3)
    with pytest.raises(ValueError, match="category_id 3"):
        store.add(KEY_A, 10, 10, [3], [[0, 0, 1, 1]], [0.1])
    with pytest.raises(ValueError, match="margin"):
        store.add(KEY_A, 10, 10, [1], [[0, 0, 1, 1]], [-0.01])
    with pytest.raises(ValueError, match=KEY_A):
        store.add(KEY_A, 10, 10, [1, 2], [[0, 0, 1, 1]], [0.1, 0.2])
    assert store.pending() == {}


def test_json_round_trip(tmp_path):
    store = PseudoLabelStore(3, alpha=0.5)
    add_a(store)
    store.add(KEY_B, 100, 50, [], np.zeros((0, 4)), [])
    lambd = linear_lambd(0.5, 28001, 180000)
    store.merge([store.pending()], lambd=lambd, iter_num=28001)
    store.clear_pending()
    path = tmp_path / "pseudo.json"
    written = store.save(str(path), snapshot=True)
    assert written == [str(path), str(tmp_path / "pseudo_iter28001.json")]
    assert sorted(os.listdir(tmp_path)) == ["pseudo.json", "pseudo_iter28001.json"]

    raw = json.loads(path.read_text())
    assert set(raw) == {"meta", "images"}
    assert raw["meta"] == {"lambd": 0.5 * 28001 / 180000, "iter": 28001, "alpha": 0.5, "num_classes": 3}

    loaded = PseudoLabelStore.load(str(path), num_classes=3)
    assert set(loaded.images) == {KEY_A, KEY_B}
    assert loaded.images == store.images
    assert loaded.lambd == 0.5 * 28001 / 180000
    labels, margins = loaded.labels_and_margins([KEY_A])
    assert labels[0].tolist() == [2, 0] and margins[0].tolist() == [0.25, 0.0]
    for entry in loaded.images.values():
        for ann in entry["annotations"]:
            assert 0 <= ann["category_id"] < 3 and ann["score"] >= 0
    snapshot = PseudoLabelStore.load(written[1])
    assert snapshot.images == store.images and snapshot.meta == store.meta


def test_merge_semantics():
    store = PseudoLabelStore(3, alpha=0.5)
    add_a(store)
    store.add(KEY_B, 100, 50, [1], [[0, 0, 5, 5]], [0.1])
    store.merge([store.pending()], lambd=0.1, iter_num=4001)
    store.clear_pending()

    rank0, rank1 = PseudoLabelStore(3), PseudoLabelStore(3)
    rank0.add(KEY_B, 100, 50, [2], [[1, 1, 6, 6]], [0.3])
    rank0.add(KEY_C, 20, 20, [0], [[1, 1, 2, 2]], [0.05])
    rank1.add(KEY_C, 20, 20, [1], [[2, 2, 3, 3]], [0.07])
    store.merge([rank0.pending(), rank1.pending()], lambd=0.2, iter_num=8001)
    assert set(store.images) == {KEY_A, KEY_B, KEY_C}
    assert store.images[KEY_A]["annotations"][0]["category_id"] == 2  # old entry kept
    assert store.images[KEY_B]["annotations"] == [
        {"category_id": 2, "bbox": [1.0, 1.0, 6.0, 6.0], "score": 0.3}]  # re-seen image overwritten
    assert store.images[KEY_C]["annotations"][0]["category_id"] == 1  # later rank wins
    assert store.meta == {"lambd": 0.2, "iter": 8001, "alpha": 0.5, "num_classes": 3}
    store.merge([], lambd=0.3, iter_num=12001)
    assert len(store) == 3 and store.lambd == 0.3 and store.meta["alpha"] == 0.5
    with pytest.raises(ValueError, match="lambd"):
        store.merge([], lambd=float("nan"), iter_num=12001)


def test_atomic_save_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "pseudo.json"
    store = PseudoLabelStore(3)
    add_a(store)
    store.merge([store.pending()], lambd=0.1, iter_num=4001)
    store.save(str(path))
    before = path.read_text()

    store.add(KEY_B, 100, 50, [1], [[0, 0, 5, 5]], [0.1])
    store.merge([store.pending()], lambd=0.2, iter_num=8001)

    def broken_dump(obj, fp, **kwargs):
        fp.write('{"meta": {"lam')
        raise OSError("disk full")

    monkeypatch.setattr(pseudo_store.json, "dump", broken_dump)
    with pytest.raises(OSError, match="disk full"):
        store.save(str(path))
    monkeypatch.undo()
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["pseudo.json"]
    assert set(PseudoLabelStore.load(str(path)).images) == {KEY_A}


def test_load_errors(tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"meta": {"lambd": 0.1,')
    with pytest.raises(ValueError, match="corrupt.json"):
        PseudoLabelStore.load(str(corrupt))

    def write(name, images, **meta):
        path = tmp_path / name
        full_meta = {"lambd": 0.1, "iter": 1, "alpha": 0.5, "num_classes": 3, **meta}
        path.write_text(json.dumps({"meta": full_meta, "images": images}))
        return str(path)

    def image(category, margin):
        return {KEY_A: {"file_name": KEY_A, "width": 4, "height": 4, "annotations": [
            {"category_id": category, "bbox": [0, 0, 1, 1], "score": margin}]}}

    with pytest.raises(ValueError, match="category_id 3"):
        PseudoLabelStore.load(write("cat.json", image(3, 0.1)))
    with pytest.raises(ValueError, match="margin"):
        PseudoLabelStore.load(write("neg.json", image(1, -0.2)))
    with pytest.raises(ValueError, match="holds 3 classes, expected 80"):
        PseudoLabelStore.load(write("ok.json", image(1, 0.2)), num_classes=80)
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"lambd": 0.1}))  # upstream's flat layout
    with pytest.raises(ValueError, match="'meta' and 'images'"):
        PseudoLabelStore.load(str(flat))


def test_labels_and_margins_feed_repeat_factors():
    store = PseudoLabelStore(3)
    add_a(store)
    store.add(KEY_C, 20, 20, [1, 1], [[0, 0, 1, 1], [0, 0, 2, 2]], [0.4, 0.2])
    store.merge([store.pending()], lambd=2.0, iter_num=1)
    labels, margins = store.labels_and_margins([KEY_C, KEY_B, KEY_A])
    assert [lab.tolist() for lab in labels] == [[1, 1], [], [2, 0]]
    assert [m.tolist() for m in margins] == [[0.4, 0.2], [], [0.25, 0.0]]
    assert labels[1].dtype == np.int64 and margins[1].dtype == np.float64
    # L = [5, 1, 1], N_L = 10, U = [1, 1, 1], N_U = 2: f = [6, 2, 2] / 12.01
    # r = sqrt(2 * 12.01 / [6, 2, 2]) = [2.0008, 3.4655, 3.4655]
    # KEY_C: 3.4655 * 0.4 = 1.386 -> 2; KEY_B: 1; KEY_A: max(3.4655 * 0.25, 0) = 0.866 -> 1
    repeats = crs_repeat_factors(labels, margins, np.array([5, 1, 1]), 10, store.lambd)
    assert repeats.tolist() == [2, 1, 1]
