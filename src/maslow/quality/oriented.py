"""Oriented boxes (OBB) in the quality checks: which rows are oriented boxes, whether a dataset holds them, and the
rule checks of their corners.

Glossary: an *oriented box* is an annotation whose polygon is one ring of 4 corners, its extent as ``box``
(``maslow.core.obb``: how maslow reads YOLO OBB, DOTA and COCO ``obb``/``rbox``/``poly``). A dataset is *oriented*
when its primary task is detection and every annotation that has a polygon is an oriented box (at least one does):
what those readers and ``maslow.sample.oriented`` make. An instance-segmentation dataset whose polygons happen to
have 4 points (its primary task is instance segmentation) is not, so its quadrilaterals are not held to be
rectangles. The *minimum-area rectangle* of a quadrilateral is the smallest rectangle holding its corners (one side
along a side or diagonal of it): what Ultralytics trains on (``cv2.minAreaRect``) and what maslow's COCO ``obb``
writer writes for a quadrilateral that is not a rectangle.

Rules (``check_oriented``, run by ``maslow check`` in the geometry family on an oriented dataset, or as
``CheckConfig.oriented`` says), at most one per annotation, in this order:

- ``obb_degenerate`` (error): the minimum-area rectangle has a side under ``CheckConfig.min_side`` pixels (0: the
  corners enclose no area; a line or a point, not an object);
- ``obb_corner_order`` (error): two opposite sides cross (a bow tie: corners out of order); evaluation refuses it.
  Suggested: the minimum-area rectangle of the corners, in order (the rectangle itself when the corners are one's);
- ``obb_not_rectangle``: a corner lies more than ``CheckConfig.obb_tolerance`` pixels from the nearest corner of the
  minimum-area rectangle, which the writers and trainers would put in its place (a warning; an error when the
  quadrilateral is not convex, which evaluation refuses). Suggested: that rectangle, its corners in the order
  closest to the annotation's.

The generic polygon rules still run on oriented boxes; on the rows these rules report, ``polygon_self_intersection``
and ``polygon_zero_area`` (and ``zero_area_box``/``degenerate_box`` of the extent, for ``obb_degenerate``) are left
out, as they say the same. Corners past the image are ``polygon_out_of_bounds`` (``geometry.check_polygons``), and
on an oriented box it replaces the extent's ``box_out_of_bounds`` (whose clipped box would not fix the corners).
"""

from __future__ import annotations

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.obb import bow_tie, convex, min_area_rects
from maslow.core.schema import Task
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.quality.config import CheckConfig
from maslow.quality.issues import QualityIssues

#: the finding types ``check_oriented`` reports, and the generic ones each replaces on its rows
REPLACES = {"obb_degenerate": ("polygon_zero_area", "zero_area_box", "degenerate_box"),
            "obb_corner_order": ("polygon_self_intersection", "polygon_zero_area"),
            "obb_not_rectangle": ("polygon_self_intersection",),
            "polygon_out_of_bounds": ("box_out_of_bounds",)}

# the 8 orders of a rectangle's corners (4 starts, 2 directions), to line one up with a quadrilateral's
def oriented_rows(ds: Dataset) -> BoolArray:
    """(n,) the annotations whose polygon is one ring of 4 points (oriented boxes)."""
    poly = ds.annotations.polygon
    if poly is None:
        return np.zeros(ds.n_annotations, bool)
    first = poly.row_offsets[:-1]
    ring_len = np.zeros(len(poly), np.int64)
    one = np.flatnonzero(poly.n_rings == 1)
    ring_len[one] = poly.ring_offsets[first[one] + 1] - poly.ring_offsets[first[one]]
    out: BoolArray = ~poly.null & (poly.n_rings == 1) & (ring_len == 8)
    return out


def is_oriented(ds: Dataset) -> bool:
    """Whether ``ds`` holds oriented boxes: primary task detection, and every annotation with a polygon is one ring
    of 4 points (at least one). See the module docstring."""
    poly = ds.annotations.polygon
    if ds.schema.task != Task.DETECTION or poly is None:
        return False
    has = poly.present
    return bool(has.any()) and bool(np.array_equal(oriented_rows(ds), has))


def quad_corners(ds: Dataset, rows: IntArray) -> FloatArray:
    """(len(rows), 4, 2) the corners of ``rows``, which must be oriented boxes (``oriented_rows``), as given."""
    poly = ds.annotations.polygon
    assert poly is not None
    start = poly.ring_offsets[poly.row_offsets[rows]]
    out: FloatArray = poly.xy[start[:, None] + np.arange(8)].reshape(-1, 4, 2)
    return out


def _fmt(c: FloatArray) -> str:
    return "[" + ", ".join(f"({x:.1f}, {y:.1f})" for x, y in c.tolist()) + "]"


def check_oriented(ds: Dataset, config: CheckConfig = CheckConfig()) -> list[QualityIssues]:
    """The oriented-box rules (module docstring) on the oriented boxes of ``ds`` (every 4-point single-ring
    polygon; the caller decides whether the dataset is oriented: ``check_geometry`` by ``CheckConfig.oriented``)."""
    a = ds.annotations
    rows = np.flatnonzero(oriented_rows(ds))
    if not len(rows):
        return []
    c = quad_corners(ds, rows)
    ok = np.isfinite(c).all(axis=(1, 2))
    rows, c = rows[ok], c[ok]
    rect, sides = min_area_rects(c)
    out: list[QualityIssues] = []
    flat = (sides[:, 0] < config.min_side) | (sides[:, 0] <= 1e-9 * np.maximum(sides[:, 1], 1.0))
    if flat.any():
        r = rows[flat]
        out.append(QualityIssues.block(
            "obb_degenerate", "error", image=a.image[r], annotation=r, score=1.0,
            reason=[f"oriented box {_fmt(q)} is {s:.1f} px across (its smallest rectangle is {s:.1f} x {w:.1f} px): "
                    f"under {config.min_side:g} px is a line, not an object"
                    for q, s, w in zip(c[flat], sides[flat, 0].tolist(), sides[flat, 1].tolist(), strict=True)],
            suggestion="delete the annotation or redraw the box"))
    crossed = ~flat & bow_tie(c)
    if crossed.any():
        r = rows[crossed]
        out.append(QualityIssues.block(
            "obb_corner_order", "error", image=a.image[r], annotation=r, score=0.95,
            reason=[f"the corners {_fmt(q)} are out of order: two opposite sides cross (a bow tie), which evaluation "
                    "refuses" for q in c[crossed]],
            suggestion=[f"put the corners in order around the box: {_fmt(q)}" for q in rect[crossed]],
            box=np.concatenate([rect[crossed].min(axis=1), rect[crossed].max(axis=1)], axis=1),
            polygon=rect[crossed]))
    off = np.sqrt(((rect - c) ** 2).sum(axis=2)).max(axis=1)
    bent = ~flat & ~crossed & (off > config.obb_tolerance)
    if bent.any():
        r = rows[bent]
        concave = ~convex(c[bent])
        score = np.where(concave, 0.9, 0.5 + 0.4 * np.minimum(1.0, off[bent] / np.maximum(sides[bent, 0], 1e-9)))
        for sel, severity in ((concave, "error"), (~concave, "warning")):
            if not sel.any():
                continue
            q, rr = c[bent][sel], rect[bent][sel]
            out.append(QualityIssues.block(
                "obb_not_rectangle", severity, image=a.image[r[sel]], annotation=r[sel], score=score[sel],
                reason=[f"the oriented box {_fmt(x)} is not a rectangle: a corner is {d:.1f} px off its smallest "
                        "rectangle" + (" (and not convex, which evaluation refuses)" if bad else
                                       ", which training and writing would put in its place")
                        for x, d, bad in zip(q, off[bent][sel].tolist(), concave[sel].tolist(), strict=True)],
                suggestion=[f"use its minimum-area rectangle {_fmt(x)}" for x in rr],
                box=np.concatenate([rr.min(axis=1), rr.max(axis=1)], axis=1), polygon=rr))
    return out


def without_replaced(issues: QualityIssues, ds: Dataset) -> QualityIssues:
    """``issues`` without the generic findings a finding of the same oriented box replaces (``REPLACES``)."""
    drop = np.zeros(len(issues), bool)
    obb = oriented_rows(ds)
    for t, generic in REPLACES.items():
        rows = issues.annotation[issues.type == t]
        rows = rows[(rows >= 0) & obb[np.maximum(rows, 0)]]
        if len(rows):
            drop |= np.isin(issues.type.astype(str), generic) & np.isin(issues.annotation, rows)
    return issues.take(~drop) if drop.any() else issues
