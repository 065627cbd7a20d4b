"""Mask geometry of the ``segm`` evaluation by the compiled kernel ``maslow._native.rle``: one side's objects as
pycocotools' run lengths (``Runs``), their areas and the IoU of (prediction, truth) pairs, bit for bit what
``pycocotools.mask`` gives on the RLEs ``_iou.rles`` makes (rle.c and rle_poly.h mirror its C).

- polygons: rasterised and unioned as ``frPyObjects`` + ``merge`` (``COCO.annToRLE``);
- stored masks: counts strings parsed as pycocotools parses them, counts lists taken as they are; other forms
  (str counts, numpy values) are first normalised as ``_iou.rles`` does, then read by the kernel;
- objects the kernel leaves to pycocotools (inputs on which pycocotools' C is undefined or overflows, rle.c)
  keep their pycocotools RLE in ``Runs.fallback``: their areas and pair IoUs come from ``pycocotools.mask``.

Without the kernel (not built, ``MASLOW_NATIVE=0``) ``side_runs`` returns None and ``_iou`` uses pycocotools.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow._native import load
from maslow.core.dataset import Dataset
from maslow.core.masks import coco_mask
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError

#: ``_iou.rles``: the pycocotools RLEs of rows (the form the fallback objects keep)
ToRle = Callable[[Dataset, IntArray, str], list[dict[str, Any]]]


@dataclass(frozen=True, eq=False)
class Runs:
    """Run lengths of one side's evaluated objects; position ``i`` is dataset row ``rows[i]``.

    ``runs[start[i]:end[i]]`` are object i's pycocotools counts (background and foreground pixel counts in
    turn, column-major) of an ``h[i]`` x ``w[i]`` mask. ``fallback`` maps the positions left to pycocotools to
    their RLE (their bounds are empty); ``rle(i)`` is the pycocotools RLE of any position (``_iou.rles``), for
    the partner of such an object in a pair."""

    runs: np.ndarray
    start: IntArray
    end: IntArray
    h: IntArray
    w: IntArray
    fallback: dict[int, dict[str, Any]]
    rle: Callable[[int], dict[str, Any]]
    rows: IntArray
    side: str


def _dict_runs(native: Any, masks: list[Any]) -> tuple[np.ndarray, IntArray, IntArray, IntArray, np.ndarray]:
    """``rle.dict_runs`` as arrays: runs, offsets, h, w, status."""
    runs, off, h, w, status = native.dict_runs(masks)
    return (np.frombuffer(runs, np.uint32), np.frombuffer(off, np.int64), np.frombuffer(h, np.int64),
            np.frombuffer(w, np.int64), np.frombuffer(status, np.uint8))


def side_runs(ds: Dataset, rows: IntArray, side: str, to_rle: ToRle) -> Runs | None:
    """``Runs`` of ``rows`` (polygon where present, else the stored mask), or None without the kernel.

    ``to_rle`` gives the pycocotools RLEs of the rows the kernel doesn't read, and raises for rows that are
    errors there (in row order, as for the whole evaluation: a first ring of 2 points, no geometry).
    """
    native = load("rle")
    if native is None:
        return None
    a = ds.annotations
    rows = np.ascontiguousarray(rows, np.int64)
    n = len(rows)
    polys = a.polygon
    is_poly = np.zeros(n, bool) if polys is None else ~polys.null[rows]
    h, w = np.zeros(n, np.int64), np.zeros(n, np.int64)
    status = np.zeros(n, np.uint8)
    parts: list[tuple[IntArray, np.ndarray, IntArray]] = []  # (positions, their runs, their offsets)
    at = np.flatnonzero(is_poly)
    if at.size:
        assert polys is not None
        img = a.image[rows[at]]
        h[at], w[at] = ds.images.height[img], ds.images.width[img]
        r, off, st = native.poly_runs(
            np.ascontiguousarray(polys.xy, np.float64), np.ascontiguousarray(polys.ring_offsets, np.int64),
            np.ascontiguousarray(polys.row_offsets, np.int64), rows[at], h[at], w[at])
        parts.append((at, np.frombuffer(r, np.uint32), np.frombuffer(off, np.int64)))
        status[at] = np.frombuffer(st, np.uint8)
    at = np.flatnonzero(~is_poly)
    if at.size:
        masks = [None] * at.size if a.mask is None else a.mask[rows[at]].tolist()
        r, off, h[at], w[at], status[at] = _dict_runs(native, masks)
        parts.append((at, r, off))
    fallback: dict[int, dict[str, Any]] = {}
    left = np.flatnonzero(status)
    if left.size:
        # status 1: left to pycocotools; 2 (a box) and 3 (no geometry, or another form): to_rle raises or
        # normalises, and normalised masks go through the kernel again
        rles = to_rle(ds, rows[left], side)
        redo = np.flatnonzero(status[left] == 3)
        if redo.size:
            at = left[redo]
            r, off, h[at], w[at], st = _dict_runs(native, [rles[i] for i in redo.tolist()])
            parts.append((at, r, off))
            status[at] = st
        fallback = {p: rles[i] for i, p in enumerate(left.tolist()) if status[p]}
    start, end = np.zeros(n, np.int64), np.zeros(n, np.int64)
    base = 0
    # the parts' runs one after the other, each object's bounds shifted to its part (a normalised mask's bounds,
    # empty in the first pass over the masks, are overwritten by those of the pass that read it)
    for at, r, off in parts:
        start[at], end[at] = off[:-1] + base, off[1:] + base
        base += len(r)
    if len(parts) == 1:
        runs = parts[0][1]  # no copy
    else:
        runs = np.concatenate([r for _, r, _ in parts]) if parts else np.zeros(0, np.uint32)
    return Runs(runs, start, end, h, w, fallback, lambda p: to_rle(ds, rows[p:p + 1], side)[0], rows, side)


def areas(m: Runs) -> FloatArray:
    """Pixel counts (pycocotools' ``area``: uint32 sums) of every object."""
    native = load("rle")
    assert native is not None, "Runs are made only where the kernel is built"
    out = np.empty(len(m.start))
    native.areas(m.runs, m.start, m.end, out)
    for p, rle in m.fallback.items():
        out[p] = coco_mask().area([rle])[0]
    return out


def iou_pairs(d: Runs, g: Runs, crowd: BoolArray, p_idx: IntArray, t_idx: IntArray) -> FloatArray:
    """IoU of the pairs (prediction ``p_idx[i]`` of ``d``, truth ``t_idx[i]`` of ``g``; ``crowd`` per truth
    object), bit-equal to ``pycocotools.mask.iou`` on their RLEs.

    Raises:
        InvalidDatasetError: a pair whose masks' runs sum to different totals where pycocotools walks them (its
            ``mask.iou`` never returns).
    """
    native = load("rle")
    assert native is not None, "Runs are made only where the kernel is built"
    p_idx, t_idx = np.ascontiguousarray(p_idx, np.int64), np.ascontiguousarray(t_idx, np.int64)
    crowd_u8 = np.ascontiguousarray(crowd, bool).view(np.uint8)
    out = np.empty(len(p_idx))
    stuck = native.iou(d.runs, d.start, d.end, d.h, d.w, g.runs, g.start, g.end, g.h, g.w, crowd_u8, p_idx, t_idx,
                       out)
    if stuck >= 0:
        p, t = int(p_idx[stuck]), int(t_idx[stuck])
        raise InvalidDatasetError(
            f"{d.side}.annotations row {d.rows[p]} and {g.side}.annotations row {g.rows[t]}: their masks' run "
            f"lengths must cover the same number of pixels, got {int(d.runs[d.start[p]:d.end[p]].sum())} and "
            f"{int(g.runs[g.start[t]:g.end[t]].sum())} (pycocotools' mask.iou never returns on them)"
        )
    if d.fallback or g.fallback:
        d_left, g_left = np.zeros(len(d.start), bool), np.zeros(len(g.start), bool)
        d_left[list(d.fallback)] = True
        g_left[list(g.fallback)] = True
        api = coco_mask()
        for k in np.flatnonzero(d_left[p_idx] | g_left[t_idx]).tolist():
            p, t = int(p_idx[k]), int(t_idx[k])
            dr = d.fallback[p] if p in d.fallback else d.rle(p)
            gr = g.fallback[t] if t in g.fallback else g.rle(t)
            out[k] = api.iou([dr], [gr], [int(crowd_u8[t])])[0, 0]
    return out

