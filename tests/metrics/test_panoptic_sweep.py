"""The compiled sweep over both sides' run lengths (``maslow._native.png``'s ``pairs``, used by
``metrics._panoptic_pairs.overlaps``): the same overlaps as the label maps, cell by cell, on chunks of several
images of different sizes, empty and VOID-only images, empty masks and segments that run over column ends."""

from __future__ import annotations

import numpy as np
import pytest

from maslow._native import load
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.metrics._panoptic_pairs import Overlaps, overlaps
from maslow.metrics.panoptic import panoptic_quality

pytestmark = pytest.mark.skipif(load("png") is None or load("rle") is None, reason="kernels not built")
SCHEMA = LabelSchema((ClassDef("car"), ClassDef("road", kind="semantic")))


def side(maps: list[np.ndarray], rng: np.random.Generator, *, empty: bool) -> Dataset:
    rows: dict[str, list[object]] = {"image": [], "label": [], "mask": []}
    for i, m in enumerate(maps):
        for sid in np.unique(m)[1:].tolist():
            rows["image"].append(i)
            rows["label"].append(int(rng.integers(0, 2)))
            rows["mask"].append(M.encode(m == sid))
        if empty and i % 3 == 0:  # a segment listed without a pixel
            rows["image"].append(i)
            rows["label"].append(0)
            rows["mask"].append(M.encode(np.zeros(m.shape, bool)))
    n = len(maps)
    images = Images(path=obj_array([f"{i}.png" for i in range(n)]), width=np.array([m.shape[1] for m in maps]),
                    height=np.array([m.shape[0] for m in maps]))
    ann = Annotations(image=np.asarray(rows["image"], np.int64), label=np.asarray(rows["label"], np.int64),
                      mask=obj_array(rows["mask"]), iscrowd=np.zeros(len(rows["image"]), bool))
    return Dataset(schema=SCHEMA, images=images, annotations=ann)


def id_map(rng: np.random.Generator, h: int, w: int, kind: int) -> np.ndarray:
    if kind == 0:
        return np.zeros((h, w), np.int64)  # VOID only
    m = rng.integers(0, 4, (h, w)) if kind == 1 else np.repeat(rng.integers(0, 5, (h, 1)), w, axis=1)
    if kind == 3:  # blocks
        m = np.kron(rng.integers(0, 6, (h // 8 + 1, w // 8 + 1)), np.ones((8, 8), np.int64))[:h, :w]
    return m


def cells(o: Overlaps) -> list[tuple[int, int, int]]:
    return sorted(zip(o.truth_row.tolist(), o.pred_row.tolist(), o.pixels.tolist(), strict=True))


@pytest.mark.parametrize("seed", range(4))
def test_the_sweep_gives_the_label_maps_overlaps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [(int(rng.integers(1, 700)), int(rng.integers(1, 900))) for _ in range(9)]
    truth = side([id_map(rng, h, w, k % 4) for k, (h, w) in enumerate(sizes)], rng, empty=False)
    pred = side([id_map(rng, h, w, (k + seed) % 4) for k, (h, w) in enumerate(sizes)], rng, empty=True)
    pred = pred.replace(images=truth.images)
    fast, slow = overlaps(truth, pred, native=True), overlaps(truth, pred, native=False)
    assert cells(fast) == cells(slow)
    assert fast.truth_pixels.tolist() == slow.truth_pixels.tolist()
    assert fast.pred_pixels.tolist() == slow.pred_pixels.tolist()


def test_panoptic_quality_is_the_same_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    maps = [id_map(rng, 120, 160, 3) for _ in range(6)]
    truth = side(maps, rng, empty=False)
    pred = side([np.roll(m, 3, axis=1) for m in maps], rng, empty=True).replace(images=truth.images)
    a = panoptic_quality(truth, pred)
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    b = panoptic_quality(truth, pred)
    assert a.to_dict() == b.to_dict()
    for name in ("match_truth", "match_pred", "match_iou", "truth_status", "pred_status", "truth_iou", "pred_iou"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name
