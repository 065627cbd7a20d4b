"""Precision, recall and score arrays exactly as ``COCOeval.accumulate``, without its per-cell Python loops.

For one (threshold t, class k, area a, maxDets m) cell pycocotools sorts the evaluated predictions of class k
(score descending; ties by image order, then by rank inside the image), takes cumulative TP and FP counts,
``rc = tp / npig`` and ``pr = tp / (fp + tp + eps)``, makes ``pr`` non-increasing from the right, and reads it
at ``searchsorted(rc, recThrs, "left")`` (0 where a recall is unreachable; scores likewise).

The same numbers come from the true positives alone: ``pr`` only rises at a true positive, so the running
maximum from the right at any position is the largest ``pr`` among the true positives at or after it, and the
``searchsorted`` position of a recall threshold ``r > 0`` is a true positive (the first whose ``tp / npig >= r``).
For ``r <= 0`` the position is 0 (the first prediction, whatever it is). So each cell needs, for its n-th true
positive, ``fp`` before it (position - n - ignored before) to form ``pr_n = n / (fp + n + eps)`` with the same
float operations, then a suffix maximum at the <= R query points. Every step is vectorised over all cells:

- the matches (true positives, and predictions matched to an ignored truth object) of every area range and
  threshold are sorted once, by packed int64 keys; "ignored before" and "TPs outside the range before" are
  running counts (``cumsum`` of uint8 flags) read at each true positive;
- the query points need no search: ``rc = n / npig`` depends only on n and the class, so the number of true
  positives below a recall threshold is ``min(n_tp, below[k, r])`` with ``below`` the count of n with
  ``n / npig < r`` (an estimate from ``r * npig`` corrected with the same float comparisons), per class;
- the suffix maxima are a ``maximum.reduceat`` over the blocks between query points, then a running maximum
  from the right over the R blocks of each cell.

When the compiled kernel ``maslow._native.cocoeval`` is available, ``accumulate`` runs it instead: pycocotools'
own walk over each (class, maxDets) in accumulation order, keeping only the true positives, with the same
results bit for bit; the numpy code below is the reference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maslow._native import empty, load
from maslow.core.types import BoolArray, FloatArray, IntArray
from maslow.metrics._match import AnyIntArray

_EPS = np.spacing(1)


def accumulate(
    *,
    k: IntArray,
    rank: IntArray,
    acc_order: IntArray,
    score: FloatArray,
    pred_out: BoolArray,
    match_t: AnyIntArray,
    match_a: AnyIntArray,
    match_pred: AnyIntArray,
    match_tp: BoolArray,
    match_ignored: BoolArray,
    n_pos: IntArray,
    n_thresholds: int,
    n_classes: int,
    recall_thresholds: FloatArray,
    max_dets: tuple[int, ...],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(precision (T,R,K,A,M), recall (T,K,A,M), scores (T,R,K,A,M)), -1 where a class has no truth.

    Args:
        k, rank, score: (n,) class position, rank in its group and score of each evaluated prediction.
        acc_order: (n,) the predictions sorted by (class, -score, image position, rank).
        pred_out: (A, n) prediction area outside each area range.
        match_t, match_a, match_pred: (E,) threshold, area range and prediction of every match.
        match_tp: (E,) the match is a true positive (truth object not ignored and its COCO id not 0).
        match_ignored: (E,) the truth object matched is ignored (the prediction is ignored).
        n_pos: (K, A) number of truth objects not ignored (pycocotools' ``npig``).

    A prediction is ignored when matched to an ignored truth object, or unmatched (or matched to a truth
    object of id 0) and outside the area range; it is a false positive when neither TP nor ignored. Counting
    ignored predictions before a TP: ``out - (TP and out) + (matched to ignored and not out)``.
    """
    n_t, n_k, n_r = n_thresholds, n_classes, len(recall_thresholds)
    n_a, n_m = pred_out.shape[0], len(max_dets)
    native = load("cocoeval")
    fits = 0 < n_t <= 64 and 0 < n_k < 2**15 and n_r and 0 < n_a <= 8 and 0 < n_m <= 8 and len(k) < 2**31 - 1
    if native is not None and fits:
        return _native_accumulate(native, k, rank, acc_order, score, pred_out, match_t, match_a, match_pred,
                                  match_tp, match_ignored, n_pos, n_t, n_k, recall_thresholds, max_dets)
    precision = np.full((n_a, n_m, n_k, n_t, n_r), -1.0)  # transposed to pycocotools' (T, R, K, A, M) at the end
    recall = np.full((n_a, n_m, n_k, n_t), -1.0)
    scores = np.full((n_a, n_m, n_k, n_t, n_r), -1.0)
    n = len(k)
    big = n + 1
    order = acc_order
    pos_of = np.empty(n, np.int64)
    pos_of[order] = np.arange(n, dtype=np.int64)
    k_full = k[order]
    rank_full = rank[order]
    score_full = score[order]
    all_ranks = int(rank_full.max(initial=-1)) + 1
    ks = np.arange(n_k)
    seg_start = np.searchsorted(k_full, ks, side="left")
    seg_end = np.searchsorted(k_full, ks, side="right")
    r_order = np.argsort(recall_thresholds, kind="stable")
    r_sorted = recall_thresholds[r_order]
    inv = np.empty(n_r, np.int64)
    inv[r_order] = np.arange(n_r)
    low = r_sorted <= 0
    r_identity = bool(np.array_equal(r_order, np.arange(n_r)))
    n_cells = n_t * n_k
    cells = np.arange(n_cells)
    cell_k = cells % n_k
    # per area range: the TP and ignored-match entries of every threshold, merged and sorted by (t, position)
    x_all = match_ignored & ~pred_out[match_a, match_pred]  # disjoint from match_tp; never outside the range
    used = np.flatnonzero(match_tp | x_all)
    e_at = match_a[used] * n_t + match_t[used]
    e_pos_all = pos_of[match_pred[used]]
    if n_a * n_t * big * 2 < 2**62:  # one sort of packed keys (unique: one match per area, threshold, prediction)
        key = (e_at * big + e_pos_all) * 2 + x_all[used]
        key.sort()
        e_x_all = (key & 1).astype(bool)
        e_at, e_pos_all = np.divmod(key >> 1, big)
    else:  # pragma: no cover - more predictions than int64 keys can pack
        o = np.lexsort((e_pos_all, e_at))
        e_at, e_pos_all, e_x_all = e_at[o], e_pos_all[o], x_all[used][o]
    a_bounds = np.searchsorted(e_at, np.arange(n_a + 1) * n_t)
    idx_t = np.int32 if big < 2**31 else np.int64  # half the memory traffic of int64 indices
    e_at, e_pos_all = e_at.astype(idx_t), e_pos_all.astype(idx_t)
    k_full = k_full.astype(idx_t)
    incl_cum: np.ndarray
    per_a = []
    for a in range(n_a):
        lo, hi = int(a_bounds[a]), int(a_bounds[a + 1])
        out_full = pred_out[a][order]
        # recall thresholds reached: n / npig < r for n = 1 .. below[k, r] (the same for every threshold and maxDets)
        below = _below(n_pos[:, a].astype(np.float64), r_sorted)
        per_a.append((e_at[lo:hi] - a * n_t, e_pos_all[lo:hi], e_x_all[lo:hi], out_full, _count(out_full), below))
    for mi, max_det in enumerate(max_dets):
        every = max_det >= all_ranks
        incl = rank_full < max_det
        incl_cum = np.arange(n + 1, dtype=idx_t) if every else _count(incl)
        nd = incl_cum[seg_end] - incl_cum[seg_start]
        has = nd > 0
        first = np.searchsorted(incl_cum, incl_cum[seg_start] + 1, side="left") - 1
        top = np.where(has, score_full[np.minimum(first, max(n - 1, 0))] if n else 0.0, 0.0)
        for a in range(n_a):
            e_t, e_pos, e_x, out_full, out_cum, below = per_a[a]
            if not every:  # the matches and predictions past maxDets drop out
                keep = rank_full[e_pos] < max_det
                e_t, e_pos, e_x = e_t[keep], e_pos[keep], e_x[keep]
                out_cum = _count(out_full & incl)
            e_cell = e_t * n_k + k_full[e_pos]  # sorted: entries by (t, position), classes contiguous
            e_first = np.searchsorted(e_cell, cells)[e_cell]  # first entry of each entry's cell
            x_cum = _count(e_x)
            tp_sel = np.flatnonzero(~e_x)
            cell, pos, first_of = e_cell[tp_sel], e_pos[tp_sel], e_first[tp_sel]
            x_before = x_cum[tp_sel] - x_cum[first_of]  # ignored matches of the cell before each TP
            n_tp = tp_sel - first_of + 1 - x_before
            kk = k_full[pos]
            start = seg_start[kk]
            tp_out = _count(out_full[pos])
            # TPs out of the range are counted in out_cum but are not ignored
            tp_out_before = tp_out[1:] - tp_out[np.arange(len(pos)) - n_tp + 1]
            ig_before = out_cum[pos + 1] - out_cum[start] - tp_out_before + x_before
            fp = (incl_cum[pos + 1] - incl_cum[start]) - n_tp - ig_before
            tp_f = n_tp.astype(np.float64)
            pr = tp_f / (fp.astype(np.float64) + tp_f + _EPS)
            ntp_cell = np.bincount(cell, minlength=n_cells)
            cell_end = np.cumsum(ntp_cell)
            cell_start = cell_end - ntp_cell
            npig = n_pos[:, a].astype(np.float64)
            # position of the first TP with recall >= r in each cell (searchsorted "left" on rc = n / npig)
            cnt = np.minimum(below[cell_k], ntp_cell[:, None])
            idx = cell_start[:, None] + cnt
            c_end = cell_end[:, None]
            reach = cnt < ntp_cell[:, None]
            bounds = np.concatenate([idx, c_end], axis=1).ravel()
            pr_ext = np.append(pr, 0.0)
            blocks = np.maximum.reduceat(pr_ext, bounds).reshape(n_cells, n_r + 1)[:, :n_r]
            blocks[~reach] = 0.0
            q = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1]
            ss = np.where(reach, score_full[pos[np.minimum(idx, len(pos) - 1)]] if len(pos) else 0.0, 0.0)
            # r <= 0 reads position 0: the top prediction of the class, whether or not it is a true positive
            at_top = low[None, :] & has[cell_k][:, None]
            in_range = reach | at_top
            ss = np.where(at_top, top[cell_k][:, None], ss)
            # back to the given threshold order; pycocotools stops filling at the first unreachable one
            if not r_identity:
                q, ss, in_range = q[:, inv], ss[:, inv], in_range[:, inv]
            filled = np.logical_and.accumulate(in_range, axis=1)
            q = np.where(filled, q, 0.0).reshape(n_t, n_k, n_r)
            ss = np.where(filled, ss, 0.0).reshape(n_t, n_k, n_r)
            ntp = ntp_cell.reshape(n_t, n_k).astype(np.float64)
            valid = n_pos[:, a] > 0
            with np.errstate(divide="ignore", invalid="ignore"):
                rec = ntp / npig[None, :]
            precision[a, mi, valid] = q.transpose(1, 0, 2)[valid]
            scores[a, mi, valid] = ss.transpose(1, 0, 2)[valid]
            recall[a, mi, valid] = rec.T[valid]
    precision = np.ascontiguousarray(precision.transpose(3, 4, 2, 0, 1))
    scores = np.ascontiguousarray(scores.transpose(3, 4, 2, 0, 1))
    recall = np.ascontiguousarray(recall.transpose(3, 2, 0, 1))
    return precision, recall, scores


def _native_accumulate(native: Any, k: IntArray, rank: IntArray, acc_order: IntArray, score: FloatArray,
                       pred_out: BoolArray, match_t: AnyIntArray, match_a: AnyIntArray, match_pred: AnyIntArray,
                       match_tp: BoolArray, match_ignored: BoolArray, n_pos: IntArray, n_t: int, n_k: int,
                       recall_thresholds: FloatArray, max_dets: tuple[int, ...]) -> tuple[FloatArray, FloatArray,
                                                                                         FloatArray]:
    """``accumulate`` by the compiled kernel (same arguments, same arrays)."""
    n_r, n_a, n_m = len(recall_thresholds), pred_out.shape[0], len(max_dets)
    precision = empty((n_t, n_r, n_k, n_a, n_m), np.float64)  # every cell written by the kernel
    recall = empty((n_t, n_k, n_a, n_m), np.float64)
    scores = empty((n_t, n_r, n_k, n_a, n_m), np.float64)

    def i64(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, np.int64)

    def i32(a: np.ndarray) -> np.ndarray:  # positions < n < 2**31 (the kernel checks n): exact
        return np.ascontiguousarray(a, np.int32)

    def u8(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, bool).view(np.uint8)

    native.accumulate(
        i32(k), i32(rank), i32(acc_order), np.ascontiguousarray(score, np.float64), u8(pred_out),
        np.ascontiguousarray(match_t, np.int16), np.ascontiguousarray(match_a, np.int16),
        np.ascontiguousarray(match_pred, np.int32), u8(match_tp), u8(match_ignored), i64(n_pos),
        np.ascontiguousarray(recall_thresholds, np.float64), np.asarray(max_dets, np.int64), precision, recall,
        scores, n_t, n_k,
    )
    return precision, recall, scores


def _count(flags: BoolArray) -> np.ndarray:
    """(n + 1,) running count of True, from 0 (``np.cumsum`` of a bool array without its slow cast to int64)."""
    out: np.ndarray = np.zeros(len(flags) + 1, np.int64 if len(flags) >= 2**31 else np.int32)
    np.cumsum(flags.view(np.uint8), dtype=out.dtype, out=out[1:])
    return out


def _below(npig: FloatArray, r: FloatArray) -> IntArray:
    """(K, R) number of n >= 1 with ``n / npig[k] < r`` in float64 (recall is non-decreasing in n, so a cell with
    n_tp true positives reaches ``min(n_tp, below)`` of them below r: the ``searchsorted`` position of r among its
    recalls). An estimate from ``r * npig``, corrected with the exact float comparisons (a step or two)."""
    den = npig[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        est = np.floor(r[None, :] * den)
        cnt: IntArray = np.maximum(np.nan_to_num(est, nan=0.0, posinf=0.0, neginf=0.0), 0).astype(np.int64)
        cnt[np.broadcast_to(den <= 0, cnt.shape)] = 0  # a class without truth objects has no true positive
        live = den > 0
        while True:
            down = live & (cnt > 0) & (cnt / den >= r)
            if not down.any():
                break
            cnt -= down
        while True:
            up = live & ((cnt + 1) / den < r)
            if not up.any():
                break
            cnt += up
    return cnt
