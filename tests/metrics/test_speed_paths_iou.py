"""``rle.iou``'s path without boxes (``quick_iou`` in rle_iou.h) against pycocotools 2.0.11's ``mask.iou``, bit for
bit: pairs of plain objects (same size, 1 <= h * w < 2^31, runs summing to h * w) skip pycocotools' boxes and walk
only the positions where both have foreground; every other pair still goes through boxes and the full walk.

The cases are those where a shortcut would part from pycocotools: objects in the same columns but apart in rows
(bbIou 0, yet their position ranges overlap), empty foreground runs at either end and in between, objects without
foreground, crowds (the union is the prediction's area), sizes on either side of 2^31 pixels, equal h * w with
h and w swapped (-1 where the boxes overlap), runs that don't sum to h * w (no walk where the boxes don't overlap).
Skipped when the kernel was not built."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as M

rle: Any
try:  # imported directly: MASLOW_NATIVE=0 in the environment doesn't hide it from these tests
    rle = importlib.import_module("maslow._native.rle")
except ImportError:  # pragma: no cover - no C compiler at install
    rle = None
pytestmark = pytest.mark.skipif(rle is None, reason="rle kernel not built")

I64 = np.int64


def _pack(objs: list[tuple[list[int], int, int]]) -> tuple[np.ndarray, ...]:
    """(runs, start, end, h, w) of (runs, h, w) objects, as rle.iou reads one side."""
    lens = np.asarray([len(r) for r, _, _ in objs], I64)
    end = np.cumsum(lens).astype(I64)
    flat = np.asarray([v for r, _, _ in objs for v in r], np.uint32)
    return flat, end - lens, end, np.asarray([h for _, h, _ in objs], I64), np.asarray([w for _, _, w in objs], I64)


def _coco(runs: list[int], h: int, w: int) -> dict[str, Any]:
    """pycocotools' RLE of the runs (its counts string read back gives them: every delta under 2^29)."""
    return M.frPyObjects({"size": [h, w], "counts": runs}, h, w)  # type: ignore[no-any-return]


def _all_pairs(objs: list[tuple[list[int], int, int]], crowd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's and pycocotools' IoU of every (d, g) pair of the pool, flattened d-major."""
    p, t = (a.ravel().astype(I64) for a in np.meshgrid(np.arange(len(objs)), np.arange(len(objs)), indexing="ij"))
    out = np.full(len(p), np.nan)
    packed = _pack(objs)
    assert rle.iou(*packed, *packed, crowd.astype(np.uint8), p, t, out) == -1
    ref = np.asarray(M.iou([_coco(*o) for o in objs], [_coco(*o) for o in objs], crowd.astype(int).tolist()))
    return out, ref[p, t]


def _column(h: int, w: int, col: int, top: int, rows: int) -> list[int]:
    """Runs of a mask whose only foreground is `rows` pixels from row `top` of column `col`."""
    start = col * h + top
    return [start, rows, h * w - start - rows]


def test_same_columns_apart_in_rows_and_empty_runs() -> None:
    h, w = 12, 9
    objs = [
        (_column(h, w, 3, 0, 4), h, w),  # top of column 3
        (_column(h, w, 3, 7, 5), h, w),  # bottom of column 3: bbIou 0 with the one above, positions interleaved
        ([3 * h, h, 2 * h, h, h * w - 7 * h], h, w),  # columns 3 and 6, full height: over both above
        ([0, 0, 5, 7, 0, 0, 10, 3, h * w - 25, 0], h, w),  # empty foreground runs first, in between and last
        ([h * w], h, w),  # no foreground
        ([h * w, 0], h, w),  # no foreground, an empty run after
        ([0, h * w], h, w),  # all foreground
        ([40, 30, h * w - 70], h, w),  # a run across three columns (its box is the full height)
        ([2, 1, 9, 1, 9, 1, h * w - 23], h, w),  # a diagonal: rows 2..4 of columns 0..2
    ]
    crowd = np.array([0, 1, 0, 0, 1, 0, 1, 0, 0], bool)
    out, ref = _all_pairs(objs, crowd)
    np.testing.assert_array_equal(out, ref)
    assert out[1] == 0 and out[2] > 0  # apart in rows: 0; over the full-height columns: shared pixels
    assert ((out > 0) & (out < 1)).any() and (out == 1).any() and (out == 0).any()


def _filled(runs: list[int], total: int) -> list[int]:
    """runs (ending with a foreground run) completed to `total` pixels with runs under 2^28 (one-pixel
    foreground runs between them), as pycocotools' strings hold them (deltas under 2^29)."""
    out, rest = list(runs), total - sum(runs)
    while rest > 2**28:
        out += [2**28 - 1, 1]
        rest -= 2**28
    return [*out, rest]


def test_sizes_either_side_of_2_31_pixels() -> None:
    """The quick path's bound: h * w < 2^31 (a union below 2^32); at 2^31 the boxes and the full walk decide."""
    big = 2**28 - 3
    out_all = []
    for h, w in ((46_341, 46_340), (65_536, 32_768)):  # 2_147_441_940 < 2^31 <= 2_147_483_648
        hw = h * w
        runs_a = _filled([0, big // 3, big, big // 3, big, big // 3], hw)
        runs_b = _filled([big // 4, big, big, big // 2, big, big], hw)
        objs = [(runs_a, h, w), (runs_b, h, w), (_filled([0, big], hw), h, w)]
        out, ref = _all_pairs(objs, np.array([0, 1, 0], bool))
        np.testing.assert_array_equal(out, ref)
        out_all.append(out)
    assert all(((o > 0) & (o < 1)).any() for o in out_all)


def test_swapped_sizes_and_runs_that_miss_their_total() -> None:
    """h and w swapped (equal h * w): -1 where the boxes overlap, 0 elsewhere, as pycocotools; runs summing to
    less than h * w: boxes first (no walk where they don't overlap)."""
    objs = [
        ([5, 6, 13], 4, 6),
        ([5, 6, 13], 6, 4),
        ([20, 2, 2], 6, 4),  # far from the first two: boxes apart
        ([0, 3, 10], 4, 6),  # sums to 13, not 24: its box is [0, 0, 1, 3]
        ([21, 2], 4, 6),  # sums to 23, box in the last column: apart from the one above
    ]
    out, ref = _all_pairs(objs, np.zeros(len(objs), bool))
    np.testing.assert_array_equal(out, ref)
    assert (out == -1).any()


@pytest.mark.parametrize("seed", range(3))
def test_random_plain_objects(seed: int) -> None:
    """Random masks (blobs, noise, stripes, empty runs) on a few sizes: every pair, crowds included."""
    rng = np.random.default_rng(seed)
    objs = []
    for _ in range(70):
        h, w = [(1, 1), (3, 5), (17, 9), (40, 31)][int(rng.integers(4))]
        m = np.zeros((h, w), np.uint8)
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        m[y0:y0 + int(rng.integers(1, h + 1)), x0:x0 + int(rng.integers(1, w + 1))] = 1
        m &= rng.random((h, w)) < rng.choice([0.2, 0.8, 1.0])
        flat = m.ravel(order="F")
        runs = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]).tolist()
        runs = [0, *runs] if flat[0] else runs
        if rng.random() < 0.3:  # an empty foreground run (and its background) spliced in
            k = 2 * int(rng.integers(0, len(runs) // 2 + 1))
            runs = [*runs[:k], 0, 0, *runs[k:]]
        objs.append((runs, h, w))
    out, ref = _all_pairs(objs, rng.random(len(objs)) < 0.3)
    np.testing.assert_array_equal(out, ref)
    assert (out == -1).any() and (out == 0).any() and ((out > 0) & (out < 1)).any()
