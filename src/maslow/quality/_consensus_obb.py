"""Consensus scoring of oriented boxes (``iou_type="obb"``): the IoU of the oriented boxes in place of their
extents', the same formulas.

An annotation's oriented box is ``maslow.core.obb.oriented_corners`` (its polygon when that is one ring of 4
corners, else its box turned by CVAT's or Label Studio's rotation, else its box), and the IoU of two is
``maslow.metrics._obb.iou_pairs``, what ``coco_map(..., iou_type="obb")`` matches by (crowd regions compared as any
box here, as the ``bbox`` scoring does). A truth quadrilateral that is not convex (corners out of order, or a corner
pushed in) has no IoU: it is not scored (``maslow check`` reports it: ``obb_corner_order``, ``obb_not_rectangle``),
and a prediction's explains nothing there. Predictions must all be convex (``InvalidDatasetError`` names the row,
as evaluation does). The suggestion of a ``low_iou`` or ``missing`` finding is the model's oriented box: its 4
corners (``ObjectScores.pred_corners``, the ``polygon`` column of the issues), their extent as the box.
"""

from __future__ import annotations

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.obb import convex, oriented_corners, quad_areas
from maslow.core.types import FloatArray, IntArray
from maslow.metrics import _obb
from maslow.quality._consensus_det import Overlaps, PairSimilarity, _candidates, _sorted_overlaps
from maslow.quality.oriented import oriented_rows


def is_oriented_pred(pred: Dataset) -> bool:
    """Every prediction is an oriented box (one ring of 4 points), and there is one at least."""
    return pred.n_annotations > 0 and bool(oriented_rows(pred).all())


def obb_objects(truth: Dataset, pred: Dataset) -> tuple[FloatArray, Overlaps, FloatArray]:
    """The predictions' extents (n_pred, 4), the overlaps with the truth by oriented-box IoU, and the predictions'
    oriented boxes (n_pred, 4, 2), their corners in the order given (the suggestions).

    Raises:
        InvalidDatasetError: a truth polygon that is not one ring of 4 points, a prediction without an oriented box
            or one that is not convex (names the row).
    """
    ta, pa = truth.annotations, pred.annotations
    n_t = len(ta)
    p_quads = _obb.corners(pred, np.arange(len(pa), dtype=np.int64), "pred")
    pbox = np.concatenate([p_quads.min(axis=1), p_quads.max(axis=1)], axis=1)
    has = np.zeros(n_t, bool)
    if ta.polygon is not None:
        has |= ta.polygon.present
    if ta.box is not None:
        has |= ta.has_box
    rows = np.flatnonzero(has)
    raw = oriented_corners(ta, rows, "truth.annotations")  # a polygon of other than 4 points: refused, row named
    good = np.asarray(np.isfinite(raw).all(axis=(1, 2)), bool)
    good[good] = convex(raw[good])
    rows = rows[good]
    t_quads = np.zeros((n_t, 4, 2))
    t_quads[rows] = _obb.corners(truth, rows, "truth")
    ok = np.zeros(n_t, bool)
    ok[rows] = True
    t_area = quad_areas(t_quads)
    p_area = quad_areas(p_quads)
    # only pairs whose extents overlap can have an oriented IoU > 0: paired by a sweep, in bounded chunks
    tbox = np.full((n_t, 4), np.nan)
    tbox[rows] = np.concatenate([t_quads[rows].min(axis=1), t_quads[rows].max(axis=1)], axis=1)
    flat = np.zeros(n_t, bool)
    parts = []
    for p_idx, t_idx in _candidates(pa.image, pbox, ta.image, tbox):
        iou = _obb.iou_pairs(p_quads, t_quads, p_area, t_area, p_idx, t_idx, flat)
        pos = iou > 0
        parts.append((p_idx[pos], t_idx[pos], iou[pos]))
    assert ta.iscrowd is not None
    given = oriented_corners(pa, np.arange(len(pa), dtype=np.int64), "pred.annotations")
    return pbox, _sorted_overlaps(parts, ok & ~ta.iscrowd), given


def pred_similarity(pred: Dataset) -> PairSimilarity:
    """The oriented-box IoU of prediction pairs ``(a, b)`` (the suppression of overlapping ``missing``
    candidates)."""
    p_quads = _obb.corners(pred, np.arange(pred.n_annotations, dtype=np.int64), "pred")
    area = quad_areas(p_quads)
    flat = np.zeros(len(p_quads), bool)

    def sim(a: IntArray, b: IntArray) -> FloatArray:
        return _obb.iou_pairs(p_quads, p_quads, area, area, a, b, flat)

    return sim


def corners_text(c: FloatArray) -> str:
    """``[(x1, y1), ...]`` of one oriented box's corners, to 1 decimal."""
    return "[" + ", ".join(f"({x:.1f}, {y:.1f})" for x, y in c.tolist()) + "]"
