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

- the query points come from one ``searchsorted`` on complex keys ``cell + 1j * rc`` (numpy orders complex
  numbers by real part, then imaginary part), which is exact;
- the suffix maxima are a ``maximum.reduceat`` over the blocks between query points, then a running maximum
  from the right over the R blocks of each cell.
"""

from __future__ import annotations

import numpy as np

from maslow.core.types import BoolArray, FloatArray, IntArray

_EPS = np.spacing(1)


def accumulate(
    *,
    k: IntArray,
    rank: IntArray,
    acc_order: IntArray,
    score: FloatArray,
    pred_out: BoolArray,
    match_t: IntArray,
    match_a: IntArray,
    match_pred: IntArray,
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
    ks = np.arange(n_k)
    seg_start = np.searchsorted(k_full, ks, side="left")
    seg_end = np.searchsorted(k_full, ks, side="right")
    r_order = np.argsort(recall_thresholds, kind="stable")
    r_sorted = recall_thresholds[r_order]
    inv = np.empty(n_r, np.int64)
    inv[r_order] = np.arange(n_r)
    low = r_sorted <= 0
    n_cells = n_t * n_k
    cells = np.arange(n_cells)
    cell_k = cells % n_k
    queries = (cells.astype(np.float64)[:, None] + 1j * r_sorted[None, :]).ravel()
    per_a = []
    for a in range(n_a):
        sel = match_a == a
        tp_e = sel & match_tp
        x_e = sel & match_ignored & ~pred_out[a, match_pred]
        tp_t, tp_pos = match_t[tp_e], pos_of[match_pred[tp_e]]
        o = np.argsort(tp_t * big + tp_pos)
        x_t, x_pos = match_t[x_e], pos_of[match_pred[x_e]]
        ox = np.argsort(x_t * big + x_pos)
        per_a.append((tp_t[o], tp_pos[o], x_t[ox], x_pos[ox], pred_out[a][order]))
    for mi, max_det in enumerate(max_dets):
        incl = rank_full < max_det
        incl_cum = np.r_[0, np.cumsum(incl)]
        nd = incl_cum[seg_end] - incl_cum[seg_start]
        has = nd > 0
        first = np.searchsorted(incl_cum, incl_cum[seg_start] + 1, side="left") - 1
        top = np.where(has, score_full[np.minimum(first, max(n - 1, 0))] if n else 0.0, 0.0)
        for a in range(n_a):
            tp_t, tp_pos, x_t, x_pos, out_full = per_a[a]
            keep = rank_full[tp_pos] < max_det
            tt, pos = tp_t[keep], tp_pos[keep]
            xk = rank_full[x_pos] < max_det
            x_keys = x_t[xk] * big + x_pos[xk]
            kk = k_full[pos]
            start = seg_start[kk]
            out_cum = np.r_[0, np.cumsum(out_full & incl)]
            cell = tt * n_k + kk  # sorted: entries are sorted by (t, position) and classes are contiguous
            cell_start = np.searchsorted(cell, cells, side="left")
            cell_end = np.searchsorted(cell, cells, side="right")
            first_of = cell_start[cell]
            n_tp = np.arange(len(cell)) - first_of + 1
            tp_out = np.cumsum(out_full[pos])
            tp_out_before = tp_out - np.r_[0, tp_out][first_of]
            ig_before = (
                out_cum[pos + 1] - out_cum[start] - tp_out_before
                + np.searchsorted(x_keys, tt * big + pos, side="right")
                - np.searchsorted(x_keys, tt * big + start, side="left")
            )
            fp = (incl_cum[pos + 1] - incl_cum[start]) - n_tp - ig_before
            tp_f = n_tp.astype(np.float64)
            pr = tp_f / (fp.astype(np.float64) + tp_f + _EPS)
            npig = n_pos[:, a].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                rc = tp_f / npig[kk]
            keys = cell.astype(np.float64) + 1j * rc
            idx = np.searchsorted(keys, queries, side="left").reshape(n_cells, n_r)
            c_end = cell_end[:, None]
            reach = idx < c_end
            bounds = np.concatenate([np.minimum(idx, c_end), c_end], axis=1).ravel()
            pr_ext = np.r_[pr, 0.0]
            blocks = np.maximum.reduceat(pr_ext, bounds).reshape(n_cells, n_r + 1)[:, :n_r]
            blocks[~reach] = 0.0
            q = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1]
            s_tp = np.r_[score_full[pos], 0.0]
            ss = np.where(reach, s_tp[np.minimum(idx, len(pos))], 0.0)
            # r <= 0 reads position 0: the top prediction of the class, whether or not it is a true positive
            at_top = low[None, :] & has[cell_k][:, None]
            in_range = reach | at_top
            ss = np.where(at_top, top[cell_k][:, None], ss)
            # back to the given threshold order; pycocotools stops filling at the first unreachable one
            q, ss, in_range = q[:, inv], ss[:, inv], in_range[:, inv]
            filled = np.logical_and.accumulate(in_range, axis=1)
            q = np.where(filled, q, 0.0).reshape(n_t, n_k, n_r)
            ss = np.where(filled, ss, 0.0).reshape(n_t, n_k, n_r)
            ntp = (cell_end - cell_start).reshape(n_t, n_k).astype(np.float64)
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
