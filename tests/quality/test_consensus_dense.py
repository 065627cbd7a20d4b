"""Consensus scoring of crowded images: the overlap sweep (``_consensus_det._candidates``) and the sort-free group
maxima give exactly the issues of the all-pairs code they replaced (``_ref_consensus_det``, a frozen copy): dense
images of 100-400 boxes, touching and duplicated boxes, tied scores, empty images, images with only predictions
or only truth, crowd regions, and instance masks (kernel and pycocotools paths)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.tables import Annotations
from maslow.core.types import obj_array
from maslow.quality import consensus as C
from maslow.quality import find_label_issues
from maslow.quality.consensus import object_scores
from maslow.sample import shapes

_NAMES = ("calibrate", "expected_recall", "object_evidence", "prepare_objects", "true_positives", "typical_iou")


def _ref() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_ref_consensus_det", Path(__file__).with_name("_ref_consensus_det.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def _boxes(rng: np.random.Generator, n: int, w: int, h: int) -> np.ndarray:
    """Integer boxes (shared edges, ties), some duplicated, some touching their neighbour."""
    x0 = rng.integers(0, w - 2, n).astype(np.float64)
    y0 = rng.integers(0, h - 2, n).astype(np.float64)
    bw = rng.integers(1, max(2, w // 4), n)
    bh = rng.integers(1, max(2, h // 4), n)
    box = np.c_[x0, y0, np.minimum(x0 + bw, w), np.minimum(y0 + bh, h)]
    if n > 4:
        k = n // 5
        box[1:k] = box[:k - 1]  # exact duplicates
        box[k:2 * k, 0] = box[k - 1:2 * k - 1, 2]  # touching: x0 == the previous box's x1 (IoU 0)
        box[k:2 * k, 2] = np.maximum(box[k:2 * k, 2], box[k:2 * k, 0] + 1)
    out: np.ndarray = box
    return out


def _data(seed: int, per_truth: list[int], per_pred: list[int], w: int = 200, h: int = 150) -> tuple[Dataset, Dataset]:
    rng = np.random.default_rng(seed)
    base = shapes(len(per_truth), width=w, height=h, seed=seed)
    t_img = np.repeat(np.arange(len(per_truth)), per_truth)
    p_img = np.repeat(np.arange(len(per_pred)), per_pred)
    t_box = _boxes(rng, len(t_img), w, h)
    # predictions: jittered truth boxes of the same image where there is one, else anywhere
    p_box = _boxes(rng, len(p_img), w, h)
    for i in range(len(per_pred)):
        rows, trows = np.flatnonzero(p_img == i), np.flatnonzero(t_img == i)
        if len(trows):
            near = rows[: len(rows) * 2 // 3]
            src = rng.choice(trows, len(near))
            jit = np.round(t_box[src] + rng.normal(0, 2, (len(near), 4)))
            jit[:, 2:] = np.maximum(jit[:, 2:], jit[:, :2] + 1)
            p_box[near] = jit
    crowd = rng.random(len(t_img)) < 0.03
    truth = base.replace(annotations=Annotations.sort_rows(image=t_img, label=rng.integers(0, 3, len(t_img)),
                                                           box=t_box, iscrowd=crowd))
    score = np.round(rng.uniform(0.05, 1.0, len(p_img)), 2)  # ties
    pred = base.replace(annotations=Annotations.sort_rows(image=p_img, label=rng.integers(0, 3, len(p_img)),
                                                          box=p_box, score=score, source="model"))
    return truth, pred


def _with_masks(ds: Dataset, rng: np.random.Generator, no_box: float = 0.0) -> Dataset:
    """Triangles inside (and a little beyond) each box as RLE masks; ``no_box``: share of rows whose box is dropped
    (the mask's bounds are used)."""
    from pycocotools import mask as _mask

    a = ds.annotations
    assert a.box is not None
    h, w = int(ds.images.height[0]), int(ds.images.width[0])
    masks = []
    for x0, y0, x1, y1 in a.box.tolist():
        d = rng.uniform(-2, 2, 6)
        poly = [x0 + d[0], y0 + d[1], x1 + d[2], y0 + d[3], (x0 + x1) / 2 + d[4], y1 + d[5]]
        masks.append(_mask.frPyObjects([poly], h, w)[0])
    box = a.box.copy()
    box[rng.random(len(box)) < no_box] = np.nan
    return ds.replace(annotations=a.with_columns(mask=obj_array(masks), box=box))


def _run(truth: Dataset, pred: Dataset, **kw: object) -> tuple[str, list[np.ndarray]]:
    iss = find_label_issues(truth, pred, min_score=0.0, one_per_annotation=False, **kw)  # type: ignore[arg-type]
    s = object_scores(truth, pred, **kw)  # type: ignore[arg-type]
    arrays = [*s.annotation.values(), s.suggested_label, s.suggested_box, s.missing, s.q, s.match_iou,
              s.suggested_pred, s.confirmed, s.explained, np.asarray([s.recall])]
    return repr(iss.rows(names=truth.schema.names)), arrays


def _same_as_reference(monkeypatch: pytest.MonkeyPatch, truth: Dataset, pred: Dataset, **kw: object) -> int:
    new_rows, new_arrays = _run(truth, pred, **kw)
    ref = _ref()
    with monkeypatch.context() as m:
        for name in _NAMES:
            m.setattr(C, name, getattr(ref, name))
        old_rows, old_arrays = _run(truth, pred, **kw)
    assert new_rows == old_rows
    for new, old in zip(new_arrays, old_arrays, strict=True):
        np.testing.assert_array_equal(new, old)
    return new_rows.count("'type'")


@pytest.mark.parametrize(("seed", "match_iou"), [(0, None), (1, 0.7), (2, 0.3)])
def test_dense_boxes_same_issues_as_all_pairs(monkeypatch: pytest.MonkeyPatch, seed: int,
                                               match_iou: float | None) -> None:
    # image 0 empty, 2 truth only, 3 predictions only; 1, 4, 5 crowded
    truth, pred = _data(seed, [0, 250, 5, 0, 120, 300, 8], [0, 400, 0, 10, 200, 150, 30])
    n = _same_as_reference(monkeypatch, truth, pred, iou_type="bbox", match_iou=match_iou)
    assert n > 100  # issues of every kind were compared, not an empty table


def test_reference_split_same_issues(monkeypatch: pytest.MonkeyPatch) -> None:
    truth, pred = _data(3, [40, 0, 150, 2], [60, 5, 220, 0])
    part = np.arange(2)
    _same_as_reference(monkeypatch, truth.select_images(part), pred.select_images(part), iou_type="bbox",
                       reference=(truth, pred))


@pytest.mark.parametrize("native", ["1", "0"])
def test_dense_masks_same_issues_as_all_pairs(monkeypatch: pytest.MonkeyPatch, native: str) -> None:
    pytest.importorskip("pycocotools")
    monkeypatch.setenv("MASLOW_NATIVE", native)
    truth, pred = _data(4, [30, 0, 60, 3, 0], [45, 4, 90, 0, 0], w=64, h=48)
    rng = np.random.default_rng(5)
    truth, pred = _with_masks(truth, rng), _with_masks(pred, rng, no_box=0.3)
    n = _same_as_reference(monkeypatch, truth, pred, iou_type="segm")
    assert n > 20
