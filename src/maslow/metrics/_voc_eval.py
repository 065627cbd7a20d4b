"""The Pascal VOC protocol's steps, vectorised: candidate pairs and their IoU, each detection's decision, the
precision/recall curves and the AP of each class (``voc.voc_map`` assembles them; its docstring has the rules).

The classic algorithm walks the detections of a class by score and keeps a "taken" flag per truth object. Here the
walk is not needed: a detection's best truth object (the largest IoU in its image and class, the first in row
order on ties) does not depend on what earlier detections took, so every detection's partner is found at once,
and of the detections whose partner is the same non-ignored object, the first in evaluation order is the true
positive and the others are duplicates. The only loops are over classes (the AP of each class, as the reference
implementations compute it, so the float64 values are theirs).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError
from maslow.metrics import _prepare as P
from maslow.metrics._iou import box_iou_pairs, boxes, pairs_with_box_ious

EPS = float(np.finfo(np.float64).eps)  # the floor of tp + fp in precision (py-faster-rcnn's voc_eval)
#: VOC2007's 11 recall points as the Python ports build them (``np.arange(0., 1.1, 0.1)``): 0.3, 0.6 and 0.7 are
#: the doubles just above (0.30000000000000004, ...), so a recall of exactly 3/10 does not reach the point 0.3.
ELEVEN_POINTS = np.arange(0.0, 1.1, 0.1)
ELEVEN_POINTS.flags.writeable = False

_TEXT = {"": False, "false": False, "true": True, "no": False, "yes": True}


def _flag(v: object) -> bool | None:
    """A difficult flag as py-faster-rcnn and DOTA_devkit read one (``int(text)``, then ``astype(bool)``: any
    level but 0 is difficult), or the words CVAT and VOC custom attributes hold; None: not a flag."""
    if v is None:
        return False
    if isinstance(v, str):
        t = v.strip().lower()
        if t in _TEXT:
            return _TEXT[t]
        return int(t) != 0 if t.lstrip("+-").isdigit() else None
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return bool(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return bool(v)
    return None


def difficult_flags(truth: Dataset, name: str | None) -> BoolArray:
    """(n_truth,) the ``attributes[name]`` flag of each truth row: a bool, an integer level (0: not difficult, any
    other: difficult, as DOTA_devkit reads them), or the text of one, or ``"true"``/``"false"``/``"yes"``/``"no"``
    (any case; CVAT's and VOC's custom attributes come back as text); None (no value) and an absent attribute are
    not difficult."""
    n = truth.n_annotations
    col = None if name is None else truth.annotations.attributes.get(name)
    if col is None:
        return np.zeros(n, bool)
    if col.dtype == bool:
        return np.asarray(col, bool)
    out = np.zeros(n, bool)
    bad: list[int] = []
    for i, v in enumerate(col.tolist()):
        f = _flag(v)
        if f is None:
            bad.append(i)
        else:
            out[i] = f
    if bad:
        raise InvalidDatasetError(
            f"truth.annotations.attributes[{name!r}] row {bad[0]}: a difficult flag must be a bool, an integer or "
            f"'true'/'false', got {col[bad[0]]!r} ({len(bad)} rows)")
    return out


def inclusive_box_pairs(truth: Dataset, pred: Dataset, groups: P.Groups, min_iou: float
                        ) -> tuple[IntArray, IntArray, FloatArray]:
    """``(p_idx, t_idx, iou)`` of the (prediction, truth) pairs of a group (those with ``iou >= min_iou`` where the
    compiled kernel computes them, every pair in the numpy path), by the box IoU with
    a side of ``x2 - x1 + 1`` (inclusive pixel coordinates): the same IoU code on boxes one pixel wider and taller
    (``min(x1 + w + 1, ...) - max(x1, ...)`` is ``min(x2, ...) - max(x1, ...) + 1``). ``groups.crowd`` is all
    False here (plain IoU for every object)."""
    def wider(xywh: FloatArray) -> FloatArray:
        out: FloatArray = np.concatenate([xywh[:, :2], xywh[:, 2:] + 1.0], axis=1)
        return out

    t = wider(boxes(truth, groups.truth.row, "truth"))
    p = wider(boxes(pred, groups.pred.row, "pred"))
    fused = pairs_with_box_ious(groups, p, t, min_iou)
    if fused is not None:
        return fused
    p_idx, t_idx = P.pairs(groups)
    return p_idx, t_idx, box_iou_pairs(p[p_idx], t[t_idx], groups.crowd[t_idx])


def best_truth(p_idx: IntArray, t_idx: IntArray, iou: FloatArray, n_pred: int, n_truth: int, threshold: float,
               strict: bool) -> tuple[IntArray, FloatArray]:
    """(n_pred,) each detection's partner (truth index; -1: none) and its IoU (nan: none). The partner is the truth
    object of the detection's group with the largest IoU, the first in group (row) order on ties, when that IoU
    passes the threshold (``>``, or ``>=`` unless ``strict``) and is above 0 (no overlap never matches)."""
    keep = (iou > threshold) if strict else (iou >= threshold)
    keep &= iou > 0.0  # also drops NaN
    partner = np.full(n_pred, -1, np.int64)
    partner_iou = np.full(n_pred, np.nan)
    if not keep.any():
        return partner, partner_iou
    p, t, v = p_idx[keep], t_idx[keep], iou[keep]
    if len(p) > 1 and bool((p[1:] < p[:-1]).any()):  # pairs are prediction-major; made so if not
        o = np.argsort(p, kind="stable")
        p, t, v = p[o], t[o], v[o]
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    best = np.maximum.reduceat(v, starts)
    seg_len = np.diff(np.r_[starts, len(p)])
    first = np.minimum.reduceat(np.where(v == np.repeat(best, seg_len), t, n_truth), starts)
    partner[p[starts]] = first
    partner_iou[p[starts]] = best
    return partner, partner_iou


class Decisions(NamedTuple):
    """Every evaluated detection's decision (indices into the sorted prediction side of ``groups``)."""

    order: IntArray  # (n,) the evaluation order: by class, score (descending), image, then row
    tp: BoolArray  # (n,)
    fp: BoolArray  # (n,) no partner, or a duplicate of a taken object
    ignored: BoolArray  # (n,) the partner is ignored (difficult or crowd): neither TP nor FP


def decide(partner: IntArray, order: IntArray, truth_ignored: BoolArray) -> Decisions:
    """TP/FP/ignored of each detection, ``order`` being the evaluation order (a permutation): of the detections
    with the same non-ignored partner, the first in that order is the TP, the others FP (duplicates); a detection
    whose partner is ignored is ignored."""
    n = len(partner)
    order = np.asarray(order, np.int64)
    matched = partner >= 0
    on_ignored = np.zeros(n, bool)
    on_ignored[matched] = truth_ignored[partner[matched]]
    claim = np.flatnonzero(matched & ~on_ignored)
    tp = np.zeros(n, bool)
    if len(claim):
        pos = np.empty(n, np.int64)
        pos[order] = np.arange(n, dtype=np.int64)
        key = partner[claim] * n + pos[claim]  # (partner, position) packed: unique keys, one plain sort
        key.sort()
        t = key // n
        tp[order[key[np.r_[True, t[1:] != t[:-1]]] % n]] = True
    return Decisions(order, tp, ~tp & ~on_ignored, on_ignored)


class Curves(NamedTuple):
    """The precision/recall points of every class, one per evaluated detection, in evaluation order."""

    bounds: IntArray  # (K + 1,) the points of class position k are [bounds[k], bounds[k + 1])
    precision: FloatArray  # (n,) tp / max(tp + fp, eps), cumulative within the class
    recall: FloatArray  # (n,) tp / n_pos (nan for a class without non-ignored objects)
    scores: FloatArray  # (n,)


def curves(dec: Decisions, k: IntArray, score: FloatArray, n_pos: IntArray) -> Curves:
    """``k``: each detection's class position, ``n_pos`` (K,) by class position. Cumulative TP and FP counts per
    class in evaluation order, as ``np.cumsum`` of the 0/1 flags gives them,
    then recall ``tp / n_pos`` and precision ``tp / max(tp + fp, eps)`` (an ignored detection repeats the point
    before it, or is precision 0 before any decision, as in py-faster-rcnn's voc_eval)."""
    n_k = len(n_pos)
    lab = k[dec.order]
    bounds = np.searchsorted(lab, np.arange(n_k + 1))
    counts = np.diff(bounds)
    ctp = np.cumsum(dec.tp[dec.order], dtype=np.int64)
    cfp = np.cumsum(dec.fp[dec.order], dtype=np.int64)
    tp = (ctp - np.repeat(np.r_[0, ctp][bounds[:-1]], counts)).astype(np.float64)
    fp = (cfp - np.repeat(np.r_[0, cfp][bounds[:-1]], counts)).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp / n_pos[lab].astype(np.float64)
    recall[n_pos[lab] == 0] = np.nan
    precision = tp / np.maximum(tp + fp, EPS)
    return Curves(bounds, precision, recall, score[dec.order])


def average_precision(recall: FloatArray, precision: FloatArray, metric: str) -> float:
    """AP of one class from its curve (recall non-decreasing). ``voc2010``: the area under the precision envelope
    (the running maximum from the right) with the points (0, 0) and (1, 0) added, summed where the recall moves;
    ``voc2007``: the mean over ``ELEVEN_POINTS`` t of the highest precision at a recall >= t (0 where none),
    accumulated as ``ap += p / 11``. The float64 operations are py-faster-rcnn's ``voc_ap``'s, in its order."""
    if metric == "voc2007":
        n = len(recall)
        ap = 0.0
        if not n:
            return ap
        env = np.maximum.accumulate(precision[::-1])[::-1]
        at = np.searchsorted(recall, ELEVEN_POINTS, side="left")  # the first point with recall >= t
        for i in at.tolist():
            ap = ap + (float(env[i]) if i < n else 0.0) / 11.0
        return ap
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))
