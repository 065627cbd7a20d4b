"""YOLO segment lines made for all polygons at once: the same bytes, losses (counts and where each was first
met) and traced masks as the row-by-row writer they replace (kept below as the reference), on random datasets:
several rings (ties and near ties of area), rings too short, points outside the image, masks, images of unknown
size, -0.0, NaN and inf coordinates, 3 to 10 decimals."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import numpy as np
import pytest

from maslow import Annotations, ClassDef, Dataset, Images, LabelSchema
from maslow.core import masks as M
from maslow.core.polygons import Polygons
from maslow.core.types import obj_array
from maslow.errors import InvalidDatasetError
from maslow.io import _yolo_write as Y
from maslow.io._export import Tally

# -- the row-by-row writer (maslow.io._yolo_write before the polygons were vectorised), the reference ---------
_RANK = {"mask": 0, "polygon_parts": 1, "box": 2, "clipped": 3}


def _ref_zero(line: str, decimals: int = 6) -> str:
    neg = "-0." + "0" * decimals
    return " ".join(neg[1:] if t == neg else t for t in line.split(" ")) if neg in line else line


def _ref_fmt_line(label: int, values: Any, decimals: int = 6) -> str:
    return _ref_zero(" ".join([str(label), *map(f"{{:.{decimals}f}}".format, values)]), decimals)


def _ref_count(t: Tally, key: str, flags: np.ndarray, image: np.ndarray, rows: np.ndarray, rank: int = 0) -> None:
    hit = np.flatnonzero(flags)
    if hit.size:
        k = int(hit[0])
        t.add(key, int(hit.size), (int(image[k]), 0, int(rows[k]), rank))


def _ref_clip(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.clip(xy, 0.0, 1.0)
    moved = np.abs(out - xy).reshape(len(xy), -1).max(axis=1, initial=0.0) > 1e-9
    return out, moved


def _ref_shape_line(a: Annotations, r: int, w: float, h: float, lost: Counter[str], why: Counter[str],
                    traced: Y.Traced, decimals: int = 6) -> str | None:
    assert a.box is not None
    label = int(a.label[r])
    poly = a.polygon[r] if a.polygon is not None else None
    parts = [np.asarray(p, np.float64) for p in poly or () if len(p) >= 6]
    if not parts and a.mask is not None and a.mask[r] is not None:
        ring, wrong, px = M.outer_ring(a.mask[r])
        if ring is not None:
            parts = [ring]
            traced.add(wrong, px)
            lost["mask"] += 1
    if parts:
        best = parts[0] if len(parts) == 1 else max(parts, key=M.polygon_area)
        if len(parts) > 1:
            lost["polygon_parts"] += len(parts) - 1
        xy = best.reshape(-1, 2)
        if a.has_box[r] and np.abs(np.concatenate([xy.min(axis=0), xy.max(axis=0)]) - a.box[r]).max() \
                > 1e-6 * max(w, h):
            lost["box"] += 1
        pts, moved = _ref_clip((xy / np.array([w, h]))[None])
        if moved[0]:
            lost["clipped"] += 1
        return _ref_fmt_line(label, pts.ravel().tolist(), decimals)
    if not a.has_box[r]:
        why["without a box"] += 1
        return None
    scale = np.array([w, h, w, h])
    unit, moved = _ref_clip((a.box[r] / scale)[None])
    x1, y1, x2, y2 = (unit[0] * scale).tolist()
    if a.mask is not None and a.mask[r] is not None:
        lost["mask"] += 1
    why["rectangle"] += 1
    if moved[0]:
        lost["clipped"] += 1
    return _ref_fmt_line(label, [x1 / w, y1 / h, x2 / w, y1 / h, x2 / w, y2 / h, x1 / w, y2 / h], decimals)


def _ref_label_lines(ds: Dataset, w_all: np.ndarray, h_all: np.ndarray, lost: Tally, why: Tally, traced: Y.Traced,
                     start: int, stop: int, *, decimals: int = 6) -> list[str | None]:
    """The old ``label_lines`` for task 'segment'."""
    a = ds.annotations
    assert a.box is not None
    out: list[str | None] = [None] * (stop - start)
    img = a.image[start:stop]
    W, H = np.asarray(w_all, np.float64)[img], np.asarray(h_all, np.float64)[img]
    sized = (W > 0) & (H > 0)
    shaped = Y.usable_polygons(a, start, stop)
    if a.mask is not None:
        shaped |= np.array([m is not None for m in a.mask[start:stop].tolist()], bool)
    shaped &= sized
    here = np.arange(start, stop)
    _ref_count(why, "on images of unknown size", ~sized, img, here)
    for k in np.flatnonzero(shaped).tolist():
        rl: Counter[str] = Counter()
        rw: Counter[str] = Counter()
        r, i = start + k, int(img[k])
        out[k] = _ref_shape_line(a, r, float(W[k]), float(H[k]), rl, rw, traced, decimals)
        for key, v in rl.items():
            lost.add(key, v, (i, 0, r, _RANK[key]))
        for key, v in rw.items():
            why.add(key, v, (i, 0, r, 0))
    rest = sized & ~shaped
    _ref_count(why, "without a box", rest & ~a.has_box[start:stop], img, here)
    local = np.flatnonzero(rest & a.has_box[start:stop])
    if not len(local):
        return out
    rows = local + start
    w, h = W[local, None], H[local, None]
    scale = np.column_stack([w, h, w, h])
    unit, moved = _ref_clip(a.box[rows] / scale)
    x1, y1, x2, y2 = (unit * scale).T[:, :, None]
    vals = np.column_stack([x1 / w, y1 / h, x2 / w, y1 / h, x2 / w, y2 / h, x1 / w, y2 / h])
    _ref_count(why, "rectangle", np.ones(len(rows), bool), img[local], rows)
    _ref_count(lost, "clipped", moved, img[local], rows, _RANK["clipped"])
    fmt = "%d" + f" %.{decimals}f" * vals.shape[1]
    text = [fmt % t for t in zip(a.label[rows].tolist(), *vals.T.tolist(), strict=True)]
    for k, line in zip(local.tolist(), text, strict=True):
        out[k] = _ref_zero(line, decimals)
    return out


# -- random datasets --------------------------------------------------------------------------------------
def _ring(rng: np.random.Generator, w: int, h: int, others: list[np.ndarray]) -> np.ndarray:
    """A ring of one of several kinds: random (inside or across the border), a copy, a moved copy (the same area
    up to rounding), a mirrored one, collinear (no area), too short, with -0.0, NaN or inf."""
    kind = rng.integers(13)
    n = int(rng.integers(3, 9))
    if kind == 0 and others:
        return np.array(others[int(rng.integers(len(others)))])  # the same area exactly: a tie
    if kind == 1 and others:
        return others[int(rng.integers(len(others)))] + float(rng.choice([0.1, 1 / 3, 7.0, -2.5]))  # a near tie
    if kind == 2 and others:
        o = others[int(rng.integers(len(others)))].reshape(-1, 2)[::-1].ravel()  # the other way round
        return np.ascontiguousarray(o)
    if kind == 3:
        t = rng.uniform(0, 1, n)
        return np.column_stack([t * w, t * h]).ravel()  # collinear: area 0
    if kind == 4:
        return rng.uniform(0, max(w, 4), int(rng.choice([0, 2, 4])))  # fewer than 3 points: not a ring
    if kind == 5:
        r = np.array([0.0, 0.0, 5.0, 0.0, 5.0, 3.0, 0.0, 3.0])
        r[rng.integers(8)] = -0.0
        return r
    if kind == 6:
        r = rng.uniform(0, max(w, 4), 2 * n)
        r[rng.integers(2 * n)] = rng.choice([np.nan, np.inf, -np.inf])
        return r
    if kind == 7:  # tiny and huge coordinates (1.5e154: the shoelace sums overflow)
        return np.asarray(rng.uniform(0, 1, 2 * n) * rng.choice([1e-300, 1e-9, 1e6, 1e150, 1.5e154]), np.float64)
    if kind == 8:  # a point just outside the image: by 1e-12 (not counted as clipped) to 1e-6
        r = np.column_stack([rng.uniform(0, 1, n) * w, rng.uniform(0, 1, n) * h]).ravel()
        k = int(rng.integers(2 * n))
        r[k] = (w, h)[k % 2] * (1 + rng.choice([1e-12, 1e-10, 1e-8, 1e-6])) if rng.random() < 0.5 else \
            -(w, h)[k % 2] * rng.choice([1e-12, 1e-10, 1e-8, 1e-6])
        return r
    lo, hi = (-0.3, 1.3) if kind < 11 else (0.0, 1.0)
    return np.column_stack([rng.uniform(lo, hi, n) * max(w, 1), rng.uniform(lo, hi, n) * max(h, 1)]).ravel()


def _dataset(seed: int) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """A random dataset, and its images' sizes (0: unknown)."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 6))
    w_all = rng.integers(1, 60, m) * (rng.random(m) > 0.15)
    h_all = rng.integers(1, 60, m) * (rng.random(m) > 0.15)
    n = int(rng.integers(0, 40))
    image = np.sort(rng.integers(0, m, n))
    polygon: list[Any] = []
    mask: list[Any] = []
    box = np.full((n, 4), np.nan)
    for r in range(n):
        w, h = int(w_all[image[r]]) or 30, int(h_all[image[r]]) or 20
        kind = rng.integers(8)
        rings: list[np.ndarray] = []
        for _ in range(int(rng.choice([0, 1, 1, 1, 2, 3, 5])) if kind else 0):
            rings.append(_ring(rng, w, h, [x for x in rings if len(x) >= 6]))
        polygon.append(None if kind == 0 or (kind == 1 and not rings) else rings)
        usable = [x for x in rings if len(x) >= 6]
        if usable and rng.random() < 0.7:  # a box around the largest ring, off by nothing, a little or a lot
            with np.errstate(all="ignore"):
                xy = max(usable, key=M.polygon_area).reshape(-1, 2)
            if np.isfinite(xy).all():  # (a box is finite or NaN)
                box[r] = np.concatenate([xy.min(axis=0), xy.max(axis=0)])
                box[r] += rng.choice([0.0, 0.0, 1e-9, 1e-6 * max(w, h), 1e-3, 2.0]) * rng.choice([-1, 1])
        elif rng.random() < 0.8:
            x, y = rng.uniform(-5, w, 2)
            box[r] = [x, y, x + rng.uniform(0, w), y + rng.uniform(0, h)]
        if rng.random() < 0.3:
            grid = rng.random((int(rng.integers(1, 9)), int(rng.integers(1, 9)))) < rng.choice([0.0, 0.5, 0.9])
            mask.append(M.encode(grid))
        else:
            mask.append(None)
    images = Images(path=np.array([f"im{i}.png" for i in range(m)], object), width=w_all, height=h_all)
    ann = Annotations(image=image, label=rng.integers(0, 3, n), box=box, polygon=Polygons.from_rows(polygon),
                      mask=obj_array(mask) if rng.random() < 0.7 else None)
    schema = LabelSchema(classes=tuple(ClassDef(c) for c in "abc"))
    return Dataset(schema=schema, images=images, annotations=ann), w_all, h_all


def _both(ds: Dataset, w_all: np.ndarray, h_all: np.ndarray, start: int, stop: int, decimals: int) -> list[str]:
    """Compare the new writer with the reference on rows ``start`` to ``stop - 1``; the kinds of loss met."""
    new = Tally(), Tally(), Y.Traced()
    old = Tally(), Tally(), Y.Traced()
    with warnings.catch_warnings(record=True) as warned_new:  # inf - inf in M.polygon_area, as before
        warnings.simplefilter("always")
        got = Y.label_lines(ds, "segment", w_all, h_all, *new, start, stop, decimals=decimals)
    with warnings.catch_warnings(record=True) as warned_old:
        warnings.simplefilter("always")
        want = _ref_label_lines(ds, w_all, h_all, *old, start, stop, decimals=decimals)
    assert {str(w.message) for w in warned_new} == {str(w.message) for w in warned_old}
    assert got == want
    for t_new, t_old in zip(new[:2], old[:2], strict=True):
        assert t_new.counts == t_old.counts
        assert t_new.first == t_old.first
    assert vars(new[2]) == vars(old[2])
    return list(new[0].counts) + list(new[1].counts)


@pytest.mark.parametrize("decimals", [3, 6, 10])
def test_segment_lines_match_the_row_by_row_writer(decimals: int) -> None:
    kinds: Counter[str] = Counter()
    for seed in range(1000 * decimals, 1000 * decimals + 100):
        ds, w_all, h_all = _dataset(seed)
        n = ds.n_annotations
        cut = n // 3
        _both(ds, w_all, h_all, cut, n, decimals)  # a later slice, as the writer makes them
        kinds.update(_both(ds, w_all, h_all, 0, n, decimals))
    # the datasets meet every case
    assert {"mask", "polygon_parts", "box", "clipped", "rectangle", "without a box",
            "on images of unknown size"} <= kinds.keys()


def _square(x: float, y: float, s: float) -> list[float]:
    return [x, y, x + s, y, x + s, y + s, x, y + s]


def _one_image(rows: list[Any]) -> Dataset:
    """One 20 x 20 image with an annotation (no box) per polygon of ``rows``."""
    n = len(rows)
    ann = Annotations(image=np.zeros(n, np.int64), label=np.zeros(n, np.int64), box=np.full((n, 4), np.nan),
                      polygon=Polygons.from_rows(rows))
    images = Images(path=np.array(["a.png"], object), width=np.array([20]), height=np.array([20]))
    return Dataset(schema=LabelSchema(classes=(ClassDef("a"),)), images=images, annotations=ann)


def test_ties_go_to_the_first_largest_ring() -> None:
    """Equal areas (copies, a copy the other way round, moved copies whose area rounds differently): the
    first of the largest by ``M.polygon_area``; one ring much larger: that one, wherever it is."""
    third = [1 / 3 + v for v in _square(0, 0, 7 / 3)]
    rows = [[_square(1, 1, 2), _square(5, 5, 2)], [_square(1, 1, 2), _square(5, 5, 3), _square(0, 0, 3)],
            [third, [v + 0.1 for v in third], [v + 7 for v in third]],
            [[v + 7 for v in third], third, [v + 1 / 7 for v in third], [v + 3.3 for v in third]],
            [_square(0, 0, 1), _square(2, 2, 1)[::-1], _square(0, 0, 9)],
            [[0.0, 0.0, 1.0, 1.0, 2.0, 2.0], [0.0, 0.0, 3.0, 3.0, 6.0, 6.0]]]  # both area 0: the first
    areas = [[M.polygon_area(np.array(r)) for r in row] for row in rows]
    assert len(set(areas[2])) == 3 and areas[3][1] == areas[3][2] == max(areas[3])  # rounding decides
    ds = _one_image(rows)
    lines = Y.label_lines(ds, "segment", np.array([20]), np.array([20]), Tally(), Tally(), Y.Traced(), 0,
                          len(rows))
    for line, row, area in zip(lines, rows, areas, strict=True):
        best = row[area.index(max(area))]
        assert line == Y.fmt_line(0, [v / 20 for v in best])
    _both(ds, np.array([20]), np.array([20]), 0, len(rows), 6)


def test_a_ring_of_an_odd_length_is_named() -> None:
    """A ring of 7 values (built through the API; readers refuse them) raised numpy's bare reshape error."""
    ds = _one_image([[_square(0, 0, 2)], [_square(0, 0, 1), [1.0, 2, 3, 4, 5, 6, 7]]])
    size = np.array([20])
    with pytest.raises(InvalidDatasetError, match=r"annotations.polygon row 1: a ring must hold x, y pairs .* got 7"):
        Y.label_lines(ds, "segment", size, size, Tally(), Tally(), Y.Traced(), 0, 2)
    with pytest.raises(ValueError, match="reshape"):
        _ref_label_lines(ds, size, size, Tally(), Tally(), Y.Traced(), 0, 2)
