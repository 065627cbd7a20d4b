"""Oriented (rotated) boxes.

maslow holds an oriented box as a 4-point polygon, its corners in order, with their axis-aligned extent as
``box`` (what Ultralytics calls ``xyxyxyxy`` and ``xyxy``). The formats spell them otherwise, converted here:

- ``xywhr`` = (cx, cy, w, h, r): centre, size and angle in radians, Ultralytics' ``OBB.xywhr`` and hotcoco's
  COCO ``obb`` field. The corners are ``c +- (w / 2) u +- (h / 2) v`` with ``u = (cos r, sin r)`` and
  ``v = (-sin r, cos r)``: in image coordinates (y down) a positive ``r`` turns the box clockwise on screen.
  Corner order: (-w/2, -h/2), (+w/2, -h/2), (+w/2, +h/2), (-w/2, +h/2) before turning (top-left, top-right,
  bottom-right, bottom-left of the unturned box).
- a box turned by degrees: CVAT's ``rotation`` (clockwise, about the centre) and Label Studio's (clockwise, about
  the top-left corner), kept by their readers in ``annotations.extra["cvat_rotation"]`` and ``["ls_rotation"]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError

#: ``annotations.extra`` columns of boxes turned by degrees, and whether the turn is about the box's centre
ROTATION_COLUMNS = (("cvat_rotation", True), ("ls_rotation", False))


def corners_from_xywhr(xywhr: Any) -> FloatArray:
    """(n, 4, 2) corners of (n, 5) ``xywhr`` boxes (module docstring)."""
    b = np.asarray(xywhr, np.float64).reshape(-1, 5)
    cx, cy, w, h, r = b.T
    c, s = np.cos(r), np.sin(r)
    ux, uy = (w / 2) * c, (w / 2) * s  # half the width along u
    vx, vy = -(h / 2) * s, (h / 2) * c  # half the height along v
    xs = np.stack([cx - ux - vx, cx + ux - vx, cx + ux + vx, cx - ux + vx], axis=1)
    ys = np.stack([cy - uy - vy, cy + uy - vy, cy + uy + vy, cy - uy + vy], axis=1)
    return np.stack([xs, ys], axis=2)


def xywhr_from_corners(corners: Any) -> FloatArray:
    """(n, 5) ``xywhr`` of (n, 4, 2) rectangle corners in the order ``corners_from_xywhr`` gives: the centre is
    their mean, ``w`` the first side, ``h`` the last, ``r`` the first side's direction in ``(-pi, pi]`` (of a box
    of no width: the last side's direction less a quarter turn, so its direction is kept)."""
    c = np.asarray(corners, np.float64).reshape(-1, 4, 2)
    centre = c.mean(axis=1)
    side_w = c[:, 1] - c[:, 0]
    side_h = c[:, 3] - c[:, 0]
    w = np.hypot(side_w[:, 0], side_w[:, 1])
    h = np.hypot(side_h[:, 0], side_h[:, 1])
    r = np.arctan2(side_w[:, 1], side_w[:, 0])
    flat = (w == 0) & (h > 0)
    if flat.any():
        r[flat] = np.arctan2(side_h[flat, 1], side_h[flat, 0]) - np.pi / 2
    return np.column_stack([centre, w, h, r])


def turned_box(box: Any, degrees: float, *, about_center: bool) -> FloatArray:
    """(4, 2) the corners (top-left, top-right, bottom-right, bottom-left before turning) of the box ``[x1, y1,
    x2, y2]`` turned clockwise on screen by ``degrees`` about its centre or its top-left corner."""
    x1, y1, x2, y2 = (float(v) for v in box)
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    if not degrees:
        return corners
    pivot = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) if about_center else np.array([x1, y1])
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    out: FloatArray = (corners - pivot) @ np.array([[c, s], [-s, c]]) + pivot
    return out


def box_rotation(extra: Any, r: int) -> tuple[float, bool] | None:
    """(degrees, about_center) of row ``r``'s turned box from the rotation columns of ``extra``; None when it
    is not turned."""
    for name, center in ROTATION_COLUMNS:
        col = extra.get(name)
        deg = col[r] if col is not None else None
        if deg is not None and isinstance(deg, int | float | np.number) and math.isfinite(float(deg)) and deg:
            return float(deg), center
    return None


def oriented_corners(annotations: Any, rows: IntArray, side: str = "annotations") -> FloatArray:
    """(n, 4, 2) the oriented box of each row: its polygon when that is one ring of 4 points, else its box turned
    by a rotation column, else its box.

    Raises:
        InvalidDatasetError: a row whose polygon is not one ring of 4 points, or with neither polygon nor box
            (names the first such row, ``side`` and the field).
    """
    a = annotations
    rows = np.asarray(rows, np.int64)
    out = np.empty((len(rows), 4, 2))
    has_poly = np.zeros(len(rows), bool)
    poly = a.polygon
    if poly is not None and len(rows):
        has_poly = ~poly.null[rows]
        first = poly.row_offsets[rows]
        n_rings = poly.row_offsets[rows + 1] - first
        ring_len = np.where(n_rings > 0, poly.ring_offsets[np.minimum(first + 1, len(poly.ring_offsets) - 1)]
                            - poly.ring_offsets[np.minimum(first, len(poly.ring_offsets) - 1)], 0)
        bad = has_poly & ((n_rings != 1) | (ring_len != 8))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            got = f"{n_rings[i]} parts" if n_rings[i] != 1 else f"{ring_len[i] / 2:g} points"
            raise InvalidDatasetError(
                f"{side}.polygon row {int(rows[i])}: an oriented box must be one polygon of 4 corners, got {got} "
                f"({int(bad.sum())} rows)")
        at = np.flatnonzero(has_poly)
        start = poly.ring_offsets[first[at]]
        out[at] = poly.xy[start[:, None] + np.arange(8)].reshape(-1, 4, 2)
    rest = np.flatnonzero(~has_poly)
    if len(rest):
        box_rows = rows[rest]
        if a.box is None or not a.has_box[box_rows].all():
            bad = box_rows if a.box is None else box_rows[~a.has_box[box_rows]]
            raise InvalidDatasetError(
                f"{side}.box row {int(bad[0])}: an oriented box needs a 4-point polygon or a box, got neither "
                f"({len(bad)} rows)")
        box = a.box[box_rows]
        x1, y1, x2, y2 = box.T
        out[rest] = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                              np.stack([x1, y2], 1)], axis=1)
        if any(name in a.extra for name, _ in ROTATION_COLUMNS):
            for i, r in zip(rest.tolist(), box_rows.tolist(), strict=True):
                turn = box_rotation(a.extra, r)
                if turn is not None:
                    out[i] = turned_box(a.box[r], turn[0], about_center=turn[1])
    return out


def signed_areas(corners: FloatArray) -> FloatArray:
    """(n,) signed areas of (n, 4, 2) quadrilaterals (shoelace): positive when the corners go counter-clockwise in
    the y-up sense (clockwise on screen)."""
    x, y = corners[:, :, 0], corners[:, :, 1]
    s = (x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]) + (x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]) \
        + (x[:, 2] * y[:, 3] - x[:, 3] * y[:, 2]) + (x[:, 3] * y[:, 0] - x[:, 0] * y[:, 3])
    out: FloatArray = s / 2
    return out


def quad_areas(corners: FloatArray) -> FloatArray:
    """(n,) areas of (n, 4, 2) quadrilaterals (shoelace, absolute)."""
    out: FloatArray = np.abs(signed_areas(corners))
    return out


_ORDERS = np.array([[(s + k) % 4 for k in range(4)] for s in range(4)]
                   + [[(s - k) % 4 for k in range(4)] for s in range(4)], np.int64)
_PAIRS = np.array([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2), (1, 3)], np.int64)


def _orient(a: FloatArray, b: FloatArray, c: FloatArray) -> FloatArray:
    out: FloatArray = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return out


def _cross(p1: FloatArray, p2: FloatArray, p3: FloatArray, p4: FloatArray) -> BoolArray:
    """(n,) segments p1-p2 and p3-p4 cross properly (touching and collinear overlaps do not)."""
    out: BoolArray = (_orient(p1, p2, p3) * _orient(p1, p2, p4) < 0) & (_orient(p3, p4, p1) * _orient(p3, p4, p2) < 0)
    return out


def bow_tie(c: FloatArray) -> BoolArray:
    """(n,) quadrilaterals (n, 4, 2) two of whose opposite sides cross."""
    return _cross(c[:, 0], c[:, 1], c[:, 2], c[:, 3]) | _cross(c[:, 1], c[:, 2], c[:, 3], c[:, 0])


def convex(c: FloatArray) -> BoolArray:
    """(n,) quadrilaterals (n, 4, 2) whose corners turn one way only (convex, in order; degenerate ones count)."""
    e = np.roll(c, -1, axis=1) - c
    f = np.roll(e, -1, axis=1)
    turn = e[:, :, 0] * f[:, :, 1] - e[:, :, 1] * f[:, :, 0]
    out: BoolArray = np.logical_not((turn > 0).any(axis=1) & (turn < 0).any(axis=1))
    return out


def min_area_rects(c: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The minimum-area rectangles of quadrilaterals (n, 4, 2), vectorised: (n, 4, 2) corners, lined up with the
    quadrilateral's (the start and direction closest to its corners), and (n, 2) their sides (short, long).

    One side of the rectangle lies along an edge of the corners' convex hull, and every hull edge joins two of the
    4 corners: the rectangles along the 6 directions those pairs give, the smallest kept."""
    n = len(c)
    d = c[:, _PAIRS[:, 1]] - c[:, _PAIRS[:, 0]]  # (n, 6, 2)
    length = np.hypot(d[:, :, 0], d[:, :, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        u = d / length[:, :, None]
    u = np.where(length[:, :, None] > 0, u, np.array([1.0, 0.0]))  # all corners on one point: axis-aligned
    v = np.stack([-u[:, :, 1], u[:, :, 0]], axis=2)
    pu = np.einsum("nkd,njd->nkj", u, c)  # (n, 6, 4): the corners along each direction
    pv = np.einsum("nkd,njd->nkj", v, c)
    lo_u, hi_u, lo_v, hi_v = pu.min(axis=2), pu.max(axis=2), pv.min(axis=2), pv.max(axis=2)
    area = (hi_u - lo_u) * (hi_v - lo_v)
    k = np.argmin(area, axis=1)  # the first of equal areas
    i = np.arange(n)
    uu, vv = u[i, k], v[i, k]
    a_u, b_u, a_v, b_v = lo_u[i, k], hi_u[i, k], lo_v[i, k], hi_v[i, k]
    rect = np.stack([a_u[:, None] * uu + a_v[:, None] * vv, b_u[:, None] * uu + a_v[:, None] * vv,
                     b_u[:, None] * uu + b_v[:, None] * vv, a_u[:, None] * uu + b_v[:, None] * vv], axis=1)
    cand = rect[:, _ORDERS]  # (n, 8, 4, 2)
    best = np.argmin(((cand - c[:, None]) ** 2).sum(axis=(2, 3)), axis=1)
    sides = np.sort(np.stack([b_u - a_u, b_v - a_v], axis=1), axis=1)
    return cand[i, best], sides
