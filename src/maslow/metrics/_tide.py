"""The computations behind ``tide_errors``: tidecv 1.0.1's matching, error classification, oracles and AP, over
maslow's IoU helpers and greedy matcher (``_iou``, ``_match``), vectorised.

Terms (tidecv's, see ``tidecv/quantify.py``):

- *evaluated predictions*: per image, sorted by score (ties in row order) and cut at ``max_dets`` over all its
  classes (tidecv's ``Data.max_dets``, 100 for COCO); the rest are *skipped*.
- *matching*: per image, each evaluated prediction in score order takes the free truth object of its class with
  the highest IoU ``>= pos_thr`` (the first in file order on ties). Crowd truth objects are tidecv's *ignore
  regions*: never matched, not counted; an unmatched prediction whose IoU with a crowd region of its class
  (intersection over the prediction's area) is ``> pos_thr`` is *ignored* (out of the AP, still classified).
- *errors* of an unmatched (or ignored) prediction, first that applies: Bkg (no non-crowd truth in the image),
  Loc (same-class max IoU in ``[bg_thr, pos_thr]``), Cls (other-class max IoU ``>= pos_thr``), Dupe (a matched
  same-class truth at IoU ``>= pos_thr``), Bkg (max IoU with any truth ``<= bg_thr``), else Both.
- *fixes*: a Loc or Cls error whose target truth (its argmax) is unmatched becomes a TP of the target's class when
  it is the highest-ranked such error on that target, and is dropped otherwise (tidecv's ``BestGTMatch``); Both,
  Dupe and Bkg fixes drop the prediction; the Miss fix drops from the class's truth count every unmatched truth
  object no Loc/Cls error targets (those are the *Miss* errors; the targeted ones are *covered*).
- *AP of a run*: per class, the points sorted by score descending (stable): precision ``tp / n``, smoothed from
  the right, read at recall ``r / 100`` (``searchsorted`` left), summed in order and divided by 101; 0 for a
  class without truth; the mean over classes with a point or a truth object. The unfixed run lists points in
  image order; a fixed run lists the errors (in image order) before the true positives, which breaks score ties.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.obb import quad_areas
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.errors import InvalidDatasetError
from maslow.metrics import _obb
from maslow.metrics import _prepare as P
from maslow.metrics._accumulate import _below
from maslow.metrics._iou import (
    box_iou_pairs,
    boxes,
    pairs_with_box_ious,
    pred_box_rows,
    segm_iou_pairs,
    segm_masks,
    segm_pred_blocks,
)
from maslow.metrics._match import match
from maslow.metrics._segm import Runs

# error codes (TideResult's): 0 TP, 1 Cls, 2 Loc, 3 Both, 4 Dupe, 5 Bkg, 6 Miss, 7 covered, 8 ignored, 9 skipped
TP, CLS, LOC, BOTH, DUPE, BKG, MISS, COVERED, IGNORED, SKIPPED = range(10)
_CODE = {"Cls": CLS, "Loc": LOC, "Both": BOTH, "Dupe": DUPE, "Bkg": BKG}
_RECALLS = np.arange(101) / 100  # tidecv's [x / 100 for x in range(101)], the same float64 values


class Sides(NamedTuple):
    """Both sides in evaluation order: truth by (image, row descending), predictions by (image, rank)."""

    t_rows: IntArray  # (n_t,) truth rows
    t_img: IntArray
    t_k: IntArray  # class position (see ``class_axis``)
    crowd: BoolArray
    p_rows: IntArray  # (n_p,) evaluated prediction rows
    p_img: IntArray
    p_k: IntArray
    score: FloatArray
    srank: IntArray  # dense rank of the score, highest first
    rank: IntArray  # position in its image (score order)


class Outcome(NamedTuple):
    """Per evaluated prediction and per truth object (in ``Sides`` order), what tidecv decides."""

    matched: BoolArray  # (n_p,)
    ignored: BoolArray  # (n_p,) unmatched, inside a crowd region of its class
    err: np.ndarray  # (n_p,) int8: TP or an error code
    target: IntArray  # (n_p,) truth position the prediction refers to (-1: none)
    target_iou: FloatArray  # (n_p,) IoU with it (nan: none)
    fixable: BoolArray  # (n_p,) a Loc/Cls error that its fix turns into a TP
    fix_k: IntArray  # (n_p,) class of that TP (the target's)
    truth_pred: IntArray  # (n_t,) prediction position matched to each truth object (-1: none)
    truth_err: np.ndarray  # (n_t,) int8: TP, MISS, COVERED or IGNORED (crowd)


def class_axis(truth: Dataset, pred: Dataset) -> tuple[tuple[str, ...], IntArray]:
    """Class names (truth's schema, then predicted classes the truth's schema lacks, as tidecv evaluates every
    class id it sees) and the position of each ``pred.schema`` label on that axis."""
    names = list(truth.schema.names)
    if tuple(pred.schema.names) == tuple(names):
        return tuple(names), np.arange(len(names), dtype=np.int64)
    at = {n: i for i, n in enumerate(names)}
    for n in pred.schema.names:
        if n not in at:
            at[n] = len(names)
            names.append(n)
    return tuple(names), np.asarray([at[n] for n in pred.schema.names], dtype=np.int64)


def sides(truth: Dataset, pred: Dataset, pred_k_of_label: IntArray, max_dets: int) -> Sides:
    ta, pa = truth.annotations, pred.annotations
    if pa.score is None:
        raise InvalidDatasetError("pred.annotations.score: predictions must carry scores, got no score column")
    nan = np.flatnonzero(np.isnan(pa.score))
    if nan.size:
        raise InvalidDatasetError(f"pred.annotations.score row {int(nan[0])}: must be a number, got nan "
                                  f"({nan.size} rows)")
    t_all = np.arange(len(ta), dtype=np.int64)
    t_order = np.lexsort((-t_all, ta.image))  # row descending in an image: the matcher's ties go to the first row
    t_rows = t_all[t_order]
    crowd = np.zeros(len(ta), bool) if ta.iscrowd is None else np.asarray(ta.iscrowd, bool)
    srank = _dense_ranks(pa.score)
    p_order = _order(pa.image, srank)  # tidecv sorts each image's list by score, stably
    img = pa.image[p_order]
    first = np.flatnonzero(np.r_[True, img[1:] != img[:-1]]) if len(img) else np.zeros(0, np.int64)
    rank = np.arange(len(img), dtype=np.int64) - np.repeat(first, np.diff(np.r_[first, len(img)]))
    keep = rank < max_dets
    p_rows = p_order[keep]
    return Sides(t_rows, ta.image[t_rows].astype(np.int64), ta.label[t_rows].astype(np.int64), crowd[t_rows],
                 p_rows, pa.image[p_rows].astype(np.int64), pred_k_of_label[pa.label[p_rows]], pa.score[p_rows],
                 srank[p_rows], rank[keep])


def _dense_ranks(score: FloatArray) -> IntArray:
    """(n,) 0 for the highest score, 1 for the next distinct one, ..."""
    o = np.argsort(-score)
    s = score[o]
    out = np.empty(len(score), np.int64)
    out[o] = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1 if len(s) else np.zeros(0, np.int64)
    return out


def _order(*columns: IntArray) -> IntArray:
    """Row order by non-negative int columns, most significant first, ties by row."""
    order = P.packed_order(*columns)
    if order is None:  # pragma: no cover - keys too wide to pack
        order = np.lexsort((np.arange(len(columns[0])), *reversed(columns)))
    return order


def overlaps(truth: Dataset, pred: Dataset, s: Sides, iou_type: str, min_iou: float
             ) -> tuple[IntArray, IntArray, FloatArray]:
    """``(p_idx, t_idx, iou)`` of every (prediction, truth object) pair of an image with ``iou >= min_iou``,
    prediction-major, truth in ``Sides`` order; crowd pairs hold the intersection over the prediction's area."""
    side = P.Side
    zeros = np.zeros(0, np.int64)
    groups = P.Groups(truth=side(s.t_rows, s.t_img, s.t_k, np.zeros(0)), pred=side(s.p_rows, s.p_img, s.p_k,
                      np.zeros(0)), rank=s.rank, acc_order=zeros, score=s.score, crowd=s.crowd, ignore=s.crowd,
                      id_zero=np.zeros(len(s.t_rows), bool), class_labels=zeros)
    if iou_type == "bbox":
        t_xywh = boxes(truth, s.t_rows, "truth")
        src = pred_box_rows(pred, s.p_rows, "pred")
        p_src: Any = src[1] if src is not None else boxes(pred, s.p_rows, "pred")
        fused = pairs_with_box_ious(groups, p_src, t_xywh, min_iou)
        if fused is not None:
            return fused
        p_idx, t_idx = P.pairs(groups)
        iou = box_iou_pairs(p_src[p_idx], t_xywh[t_idx], s.crowd[t_idx])
    elif iou_type == "obb":
        t_quads, p_quads = _obb.corners(truth, s.t_rows, "truth"), _obb.corners(pred, s.p_rows, "pred")
        p_idx, t_idx = P.pairs(groups)
        iou = _obb.iou_pairs(p_quads, t_quads, quad_areas(p_quads), quad_areas(t_quads), p_idx, t_idx, s.crowd)
    else:
        t_masks = segm_masks(truth, s.t_rows, "truth")
        p_idx, t_idx = P.pairs(groups)
        if isinstance(t_masks, Runs):  # the compiled kernel: the predictions' masks a block at a time
            iou = segm_pred_blocks(pred, s.p_rows, t_masks, s.crowd, p_idx, t_idx, areas=False)[1]
        else:
            p_masks = segm_masks(pred, s.p_rows, "pred")
            assert not isinstance(p_masks, Runs)
            iou = segm_iou_pairs(p_masks, t_masks, s.p_img, s.t_img, s.crowd, p_idx, t_idx)
    keep = np.flatnonzero(iou >= min_iou)
    return p_idx[keep], t_idx[keep], iou[keep]


def _seg_argmax(p: IntArray, iou: FloatArray, t: IntArray, t_row: IntArray, n_p: int) -> tuple[FloatArray, IntArray]:
    """Per prediction (``p`` non-decreasing): the largest IoU among its pairs (0 without one) and the truth
    position of that pair, the one of the smallest row on ties (-1 without one): numpy's ``argmax`` over a row
    of tidecv's IoU matrix, whose columns are in file order."""
    best, arg = np.zeros(n_p), np.full(n_p, -1, np.int64)
    if not len(p):
        return best, arg
    starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    top = np.maximum.reduceat(iou, starts)
    seg = np.cumsum(np.r_[True, p[1:] != p[:-1]]) - 1
    row = np.minimum.reduceat(np.where(iou == top[seg], t_row[t], np.iinfo(np.int64).max), starts)
    owner = p[starts]
    best[owner] = top
    pos_of_row = np.full(int(t_row.max()) + 1, -1, np.int64)
    pos_of_row[t_row] = np.arange(len(t_row), dtype=np.int64)
    arg[owner] = pos_of_row[row]
    return best, arg


def decide(s: Sides, p_idx: IntArray, t_idx: IntArray, iou: FloatArray, n_img: int, pos_thr: float,
           bg_thr: float) -> Outcome:
    """Match, ignore, classify and pick the fixes (the module docstring's rules)."""
    n_p, n_t = len(s.p_rows), len(s.t_rows)
    same = s.p_k[p_idx] == s.t_k[t_idx]
    regular = ~s.crowd[t_idx]
    cand = np.flatnonzero(same & regular & (iou >= pos_thr))
    m = match(iou[cand], p_idx[cand], t_idx[cand], s.rank, np.asarray([pos_thr]), np.zeros((1, n_t), bool),
              np.zeros(n_t, bool), n_t, 0)
    m_pred = np.asarray(m.pred, np.int64)
    m_truth = t_idx[cand][np.asarray(m.pair, np.int64)]
    matched = np.zeros(n_p, bool)
    matched[m_pred] = True
    truth_pred = np.full(n_t, -1, np.int64)
    truth_pred[m_truth] = m_pred
    used = truth_pred >= 0
    target = np.full(n_p, -1, np.int64)
    target[m_pred] = m_truth
    target_iou = np.full(n_p, np.nan)
    target_iou[m_pred] = iou[cand][np.asarray(m.pair, np.int64)]

    in_crowd = np.zeros(n_p, bool)
    in_crowd[p_idx[same & ~regular & (iou > pos_thr)]] = True
    ignored = in_crowd & ~matched

    # the evidence of every unmatched prediction, from its pairs with non-crowd truth objects
    sel = regular & ~matched[p_idx]
    pi, ti, io, sm = p_idx[sel], t_idx[sel], iou[sel], same[sel]
    max_same, arg_same = _seg_argmax(pi[sm], io[sm], ti[sm], s.t_rows, n_p)
    max_cross, arg_cross = _seg_argmax(pi[~sm], io[~sm], ti[~sm], s.t_rows, n_p)
    su = sm & used[ti]
    max_used, arg_used = _seg_argmax(pi[su], io[su], ti[su], s.t_rows, n_p)
    n_truth_img = np.bincount(s.t_img[~s.crowd], minlength=n_img)[s.p_img] if n_p else np.zeros(0, np.int64)
    no_truth = n_truth_img == 0
    loc = (bg_thr <= max_same) & (max_same <= pos_thr)
    cls = max_cross >= pos_thr
    dupe = max_used >= pos_thr
    bkg = np.maximum(max_same, max_cross) <= bg_thr
    unm = ~matched
    err = np.full(n_p, TP, np.int8)
    err[unm] = np.select([no_truth[unm], loc[unm], cls[unm], dupe[unm], bkg[unm]], [BKG, LOC, CLS, DUPE, BKG],
                         BOTH).astype(np.int8)
    # what each error refers to: Loc/Cls their argmax (the fix's target), Dupe the matched truth object, Both the
    # truth object it overlaps most (any class); Bkg none
    closest = np.where(max_same >= max_cross, arg_same, arg_cross)
    tie = (max_same == max_cross) & (arg_same >= 0) & (arg_cross >= 0)
    closest[tie] = np.where(s.t_rows[arg_same[tie]] < s.t_rows[arg_cross[tie]], arg_same[tie], arg_cross[tie])
    for code, arg, val in ((LOC, arg_same, max_same), (CLS, arg_cross, max_cross), (DUPE, arg_used, max_used),
                           (BOTH, closest, np.maximum(max_same, max_cross))):
        on = err == code
        target[on], target_iou[on] = arg[on], val[on]

    # tidecv's BestGTMatch: of the Loc/Cls errors on a free truth object, the first in score order is fixed
    aims = np.flatnonzero(((err == LOC) | (err == CLS)) & (target >= 0))
    aims = aims[~used[target[aims]]]
    usable = np.zeros(n_t, bool)
    usable[target[aims]] = True
    fixable = np.zeros(n_p, bool)
    by_rank = aims[np.lexsort((s.rank[aims], target[aims]))]
    if len(by_rank):
        t_sorted = target[by_rank]
        fixable[by_rank[np.r_[True, t_sorted[1:] != t_sorted[:-1]]]] = True
    fix_k = np.where(fixable, s.t_k[np.maximum(target, 0)], -1) if n_t else np.full(n_p, -1, np.int64)
    truth_err = np.where(s.crowd, IGNORED, np.where(used, TP, np.where(usable, COVERED, MISS))).astype(np.int8)
    return Outcome(matched, ignored, err, target, target_iou, fixable, fix_k, truth_pred, truth_err)


def ap_per_class(ks: IntArray, tps: BoolArray, n_gt: IntArray) -> tuple[FloatArray, BoolArray]:
    """(K,) tidecv's AP of each class (``APDataObject.get_ap`` / 100) from its points sorted by class, then as
    tidecv lists them after its stable sort by score (class ``ks``, true positive ``tps``), and which classes count
    in the mean (a point or a truth object)."""
    n_k, n = len(n_gt), len(ks)
    counts = np.bincount(ks, minlength=n_k)
    end = np.cumsum(counts)
    start = end - counts
    ctp = np.cumsum(tps, dtype=np.int64)
    local = ctp - np.r_[0, ctp][start][ks]  # true positives so far, in the class
    prec = local / (np.arange(1, n + 1) - start[ks])  # tidecv: num_true / (num_true + num_false)
    # the first point with recall >= r: recall n / n_gt rises with n, so: the first with n true positives, n the
    # least with n / n_gt >= r (float comparisons, as tidecv's searchsorted makes them)
    need = np.where(_RECALLS > 0, _below(n_gt.astype(np.float64), _RECALLS) + 1, 0)
    span = n + int(need.max(initial=0)) + 2
    pos = np.searchsorted(ks * span + local, (np.arange(n_k)[:, None] * span + need).ravel()).reshape(n_k, -1)
    reach = pos < end[:, None]
    bounds = np.concatenate([pos, end[:, None]], axis=1).ravel()
    blocks = np.maximum.reduceat(np.append(prec, 0.0), bounds).reshape(n_k, -1)[:, :len(_RECALLS)] if n_k else \
        np.zeros((0, len(_RECALLS)))
    blocks[~reach] = 0.0  # past the class's last point: tidecv reads 0
    y = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1]  # the precision at each recall, smoothed
    ap = np.cumsum(y, axis=1)[:, -1] / len(_RECALLS) if n_k else np.zeros(0)  # summed in order, as Python's sum
    ap[n_gt == 0] = 0.0
    return ap, (counts > 0) | (n_gt > 0)


def runs(s: Sides, o: Outcome, n_k: int) -> dict[str, tuple[FloatArray, BoolArray]]:
    """Per run ("base": unfixed; each error type fixed; the "FP" and "FN" oracles): AP per class and the classes
    counted in its mean. Each run reads its points in one of three orders sorted once (the unfixed run's, the
    fixed runs' and the FP oracle's), then by class (a stable radix sort of small ints), not a sort per run."""
    tp = o.matched
    fp = ~o.matched & ~o.ignored
    base = _order(s.srank)  # ties by position: (image, rank), tidecv's list order
    # the fixed runs list the errors (in image order) before the true positives: ties in score go to errors
    fixed = _order(s.srank, tp.astype(np.int64))
    n_gt = np.bincount(s.t_k[~s.crowd], minlength=n_k)
    n_miss = np.bincount(s.t_k[o.truth_err == MISS], minlength=n_k)
    n_free = np.bincount(s.t_k[(o.truth_err == MISS) | (o.truth_err == COVERED)], minlength=n_k)

    def run(order: IntArray, points: BoolArray, k: IntArray, is_tp: BoolArray, gt: IntArray
            ) -> tuple[FloatArray, BoolArray]:
        idx = order[points[order]]
        kk = k[idx]
        by_k = np.argsort(P.small_ints(kk), kind="stable")
        return ap_per_class(kk[by_k], is_tp[idx][by_k], gt)

    out = {"base": run(base, ~o.ignored, s.p_k, tp, n_gt)}
    for name, code in _CODE.items():
        fix = o.fixable & (o.err == code)
        out[name] = run(fixed, (fp & (o.err != code)) | fix | tp, np.where(fix, o.fix_k, s.p_k), tp | fix, n_gt)
    out["Miss"] = run(fixed, fp | tp, s.p_k, tp, n_gt - n_miss)
    # every false positive scored 0 and every true positive 1: the true positives first
    out["FP"] = run(np.concatenate([base[tp[base]], base[~tp[base]]]), fp | tp, s.p_k, tp, n_gt)
    out["FN"] = run(fixed, fp | tp, s.p_k, tp, n_gt - n_free)
    return out
