"""Ultralytics OBB (oriented bounding box) label lines: ``cls x1 y1 x2 y2 x3 y3 x4 y4``, the four corners of a
rotated rectangle, normalised.

Private to ``maslow.io.yolo``. maslow holds an oriented box as a 4-point polygon (the corners as written) with
its axis-aligned extent as ``box``, the ``xyxyxyxy`` and ``xyxy`` of Ultralytics' ``OBB`` results. Writing, each
annotation becomes four corners:

- a polygon of 4 points: those points;
- another polygon, or a mask (traced): its minimum-area enclosing rectangle (Ultralytics' ``cv2.minAreaRect`` of
  a segment), counted in ``lost["polygon"]``/``lost["mask"]``;
- a box turned by ``extra["ls_rotation"]`` (Label Studio: clockwise degrees about its top-left corner) or
  ``extra["cvat_rotation"]`` (CVAT: about its centre): its turned corners;
- a box: its corners.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.obb import box_rotation, turned_box
from maslow.io._export import Tally


def min_area_rect(xy: np.ndarray) -> np.ndarray:
    """(4, 2) the corners of the smallest rectangle holding the points ``xy`` (n, 2): one side lies on an edge of
    their convex hull (rotating calipers)."""
    pts = np.unique(np.asarray(xy, np.float64).reshape(-1, 2), axis=0)
    if len(pts) < 3:
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    hull = _hull(pts)
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), math.pi / 2))
    best: tuple[float, np.ndarray] | None = None
    for a in angles.tolist():
        c, s = math.cos(a), math.sin(a)
        rot = hull @ np.array([[c, -s], [s, c]])  # the hull in a frame turned by -a
        lo, hi = rot.min(axis=0), rot.max(axis=0)
        area = float(np.prod(hi - lo))
        if best is None or area < best[0] - 1e-12:
            corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
            best = (area, corners @ np.array([[c, s], [-s, c]]))
    assert best is not None
    return best[1]


def _hull(pts: np.ndarray) -> np.ndarray:
    """The convex hull of sorted unique points, counter-clockwise (Andrew's monotone chain)."""
    def half(points: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for p in points:
            while len(out) >= 2 and _cross(out[-1] - out[-2], p - out[-2]) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def obb_lines(ds: Dataset, w_all: np.ndarray, h_all: np.ndarray, lost: Tally, why: Tally, start: int, stop: int,
              fmt: Any) -> list[str | None]:
    """The OBB line of annotations ``start`` to ``stop - 1`` (None: not written); ``fmt(label, values)`` prints a
    line. What the line can't hold is counted in ``lost``, what is not written in ``why``, each at ``(image, 0,
    row, rank)``."""
    a = ds.annotations
    assert a.box is not None
    out: list[str | None] = []
    for r in range(start, stop):
        i = int(a.image[r])
        w, h = float(w_all[i]), float(h_all[i])
        where = (i, 0, r, 0)
        if w <= 0 or h <= 0:
            why.add("on images of unknown size", 1, where)
            out.append(None)
            continue
        corners = written_corners(a, r, lost, where)
        if corners is None:
            why.add("without a box", 1, where)
            out.append(None)
            continue
        unit = corners / np.array([w, h])
        clipped = np.clip(unit, 0.0, 1.0)
        if np.abs(clipped - unit).max() > 1e-9:
            lost.add("clipped", 1, (i, 0, r, 3))
        out.append(fmt(int(a.label[r]), clipped.ravel().tolist()))
    return out


def written_corners(a: Any, r: int, lost: Tally, where: tuple[int, ...]) -> np.ndarray | None:
    """The 4 corners an oriented-box writer writes for row ``r`` (module docstring; YOLO OBB and DOTA), None without
    a box; what they can't hold is counted in ``lost`` at ``where``."""
    parts = [np.asarray(p, np.float64) for p in (a.polygon[r] or ()) if len(p) >= 6] if a.polygon is not None \
        else []
    if parts:
        best = parts[0] if len(parts) == 1 else max(parts, key=M.polygon_area)
        lost.add("polygon_parts", len(parts) - 1, where)
        xy = best.reshape(-1, 2)
        if len(xy) == 4:
            return xy
        lost.add("polygon", 1, where)  # its enclosing rectangle is written
        return min_area_rect(xy)
    if a.mask is not None and a.mask[r] is not None:
        ring, _, _ = M.outer_ring(a.mask[r])
        lost.add("mask", 1, where)
        if ring is not None:
            return min_area_rect(ring.reshape(-1, 2))
    if not a.has_box[r]:
        return None
    turn = box_rotation(a.extra, r)
    if turn is not None:
        return turned_box(a.box[r], turn[0], about_center=turn[1])
    return turned_box(a.box[r], 0.0, about_center=True)
