"""Oriented-box (OBB) evaluation: ``iou_type="obb"``, the geometry and IoU of rotated boxes.

An annotation's oriented box is ``core.obb.oriented_corners``: its polygon when that is one ring of 4 corners (how
maslow holds an Ultralytics OBB, a hotcoco ``obb`` or a DOTA quadrilateral), else its box turned by CVAT's or
Label Studio's rotation, else its box. The IoU of two is the area of their intersection (the prediction clipped by
each edge of the truth box, Sutherland-Hodgman, then the shoelace formula) over the union of their areas; with a
crowd region, over the prediction's area alone (pycocotools' crowd rule). The quadrilaterals must be convex, as
every rectangle is; a self-crossing one (corners out of order) is refused with its row named.

Areas: a truth object's area for the area ranges is the COCO ``area`` field when the reader kept one, else the
quadrilateral's; a prediction's is its quadrilateral's (``pred_area="box"``: its box's ``w * h``).

hotcoco 1.3's ``COCOeval(gt, dt, "obb")`` is the same evaluation; ``tests/metrics/test_obb.py`` checks its stats.
The compiled kernel (``cocoeval.obb_iou_pairs``) and ``_numpy_iou_pairs`` give the same numbers bit for bit.
"""

from __future__ import annotations

import numpy as np

from maslow._native import load
from maslow.core.dataset import Dataset
from maslow.core.obb import convex, oriented_corners, signed_areas
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError
from maslow.metrics._prepare import AREA_COLUMN, _float_column

_WIDTH = 16  # vertices a clipped quadrilateral may hold in the numpy twin (8 in exact arithmetic)


def corners(ds: Dataset, rows: IntArray, side: str) -> FloatArray:
    """(len(rows), 4, 2) the oriented boxes of ``rows``, counter-clockwise in the y-up sense (non-negative signed
    area, the order the clipping needs).

    Raises:
        InvalidDatasetError: a row with no oriented box, or a quadrilateral that is not convex (names the row).
    """
    c = oriented_corners(ds.annotations, rows, f"{side}.annotations")
    if not np.isfinite(c).all():
        bad = np.flatnonzero(~np.isfinite(c).all(axis=(1, 2)))
        raise InvalidDatasetError(
            f"{side}.annotations row {int(rows[bad[0]])}: an oriented box's corners must be numbers, got "
            f"{c[bad[0]].ravel().tolist()} ({len(bad)} rows)")
    concave = ~convex(c)
    if concave.any():
        bad = np.flatnonzero(concave)
        raise InvalidDatasetError(
            f"{side}.annotations.polygon row {int(rows[bad[0]])}: an oriented box must be a convex quadrilateral "
            f"(corners in order around it), got {c[bad[0]].ravel().tolist()} ({len(bad)} rows)")
    clockwise = signed_areas(c) < 0
    c[clockwise] = c[clockwise, ::-1]
    return c


def truth_areas(truth: Dataset, rows: IntArray, own: FloatArray) -> FloatArray:
    """The COCO ``area`` field where the reader kept one, else ``own`` (the quadrilateral's area)."""
    given = _float_column(truth.annotations, AREA_COLUMN)
    if given is None:
        return own
    g = given[rows]
    out: FloatArray = np.where(np.isnan(g), own, g)
    return out


def iou_pairs(p_quads: FloatArray, t_quads: FloatArray, p_area: FloatArray, t_area: FloatArray, p_idx: IntArray,
              t_idx: IntArray, crowd: BoolArray) -> FloatArray:
    """(len(p_idx),) IoU of the pairs (prediction ``p_idx[i]``, truth ``t_idx[i]``); ``crowd`` is per truth row;
    ``p_area``/``t_area`` the quadrilaterals' own areas (the IoU's union)."""
    native = load("cocoeval")
    if native is None:
        return _numpy_iou_pairs(p_quads, t_quads, p_area, t_area, p_idx, t_idx, crowd)
    out = np.empty(len(p_idx))
    native.obb_iou_pairs(np.ascontiguousarray(p_quads, np.float64), np.ascontiguousarray(t_quads, np.float64),
                         np.ascontiguousarray(p_area, np.float64), np.ascontiguousarray(t_area, np.float64),
                         np.ascontiguousarray(p_idx, np.int64), np.ascontiguousarray(t_idx, np.int64),
                         np.ascontiguousarray(crowd, bool).view(np.uint8), out)
    return out


def _numpy_iou_pairs(p_quads: FloatArray, t_quads: FloatArray, p_area: FloatArray, t_area: FloatArray,
                     p_idx: IntArray, t_idx: IntArray, crowd: BoolArray) -> FloatArray:
    """The reference for the compiled kernel: the same float64 operations in the same order, over all pairs at
    once (a clipped polygon as up to ``_WIDTH`` vertex slots and a count)."""
    out = np.zeros(len(p_idx))
    p, q = p_quads[p_idx], t_quads[t_idx]
    lo_p, hi_p, lo_q, hi_q = p.min(axis=1), p.max(axis=1), q.min(axis=1), q.max(axis=1)
    near = np.flatnonzero(~((hi_p < lo_q) | (hi_q < lo_p)).any(axis=1))
    if not len(near):
        return out
    p, q = p[near], q[near]
    n = len(near)
    x = np.zeros((n, _WIDTH))
    y = np.zeros((n, _WIDTH))
    x[:, :4], y[:, :4] = p[:, :, 0], p[:, :, 1]
    cnt = np.full(n, 4)
    rows = np.arange(n)
    for j in range(4):
        ax, ay = q[:, j, 0][:, None], q[:, j, 1][:, None]
        ex, ey = q[:, (j + 1) % 4, 0][:, None] - ax, q[:, (j + 1) % 4, 1][:, None] - ay
        cross = ex * (y - ay) - ey * (x - ax)  # (n, W): each vertex's side of the edge (>= 0: inside)
        slot = np.arange(_WIDTH)[None, :]
        valid = slot < cnt[:, None]
        prev = np.where(slot == 0, cnt[:, None] - 1, slot - 1).clip(0)
        px, py, cp = x[rows[:, None], prev], y[rows[:, None], prev], cross[rows[:, None], prev]
        c_in, p_in = cross >= 0, cp >= 0
        with np.errstate(divide="ignore", invalid="ignore"):  # t is read only where the sides differ
            t = cp / (cp - cross)
            ix, iy = px + t * (x - px), py + t * (y - py)
        emit_i = valid & (c_in != p_in)
        emit_c = valid & c_in
        # slots 2k (the crossing) and 2k + 1 (the vertex), kept in order, packed to the left
        sx = np.stack([ix, x], axis=2).reshape(n, -1)
        sy = np.stack([iy, y], axis=2).reshape(n, -1)
        keep = np.stack([emit_i, emit_c], axis=2).reshape(n, -1)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :_WIDTH]
        x, y = np.take_along_axis(sx, order, 1), np.take_along_axis(sy, order, 1)
        cnt = np.asarray(np.minimum(keep.sum(axis=1), _WIDTH), np.int64)
        dead = np.arange(_WIDTH)[None, :] >= cnt[:, None]  # slots past the count: zeros, not stale crossings
        x[dead] = 0.0
        y[dead] = 0.0
    s = np.zeros(n)
    for k in range(_WIDTH):  # the shoelace sum in vertex order, as the kernel adds
        k1 = np.where(k + 1 == cnt, 0, k + 1).clip(0, _WIDTH - 1)
        term = x[:, k] * y[rows, k1] - x[rows, k1] * y[:, k]
        s = np.where(k < cnt, s + term, s)
    inter = np.where(s > 0, s / 2, 0.0)
    pi, ti = p_idx[near], t_idx[near]
    u = np.where(crowd[ti], p_area[pi], (p_area[pi] + t_area[ti]) - inter)
    ok = (u > 0) & (inter > 0)
    out[near[ok]] = inter[ok] / u[ok]
    return out
