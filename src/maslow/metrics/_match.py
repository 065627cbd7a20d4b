"""Greedy matching of predictions to truth objects, exactly as ``COCOeval.evaluateImg``.

For each IoU threshold and area range, pycocotools walks the predictions of a group by score and gives each
the best still-free truth object: among truth objects that are not ignored, the one with the highest IoU
``>= min(t, 1 - 1e-10)`` (the last such in file order on ties, because it updates on ``>=``); only if there is
none, the best ignored one (crowd regions stay free for every later prediction). It is sequential inside a
group, but independent across groups, so here the predictions of rank ``r`` of *every* group are matched at
once, for all thresholds and area ranges together (at most ``max(max_dets)`` vectorised steps). Pairs whose
IoU is below the smallest threshold can never match and are dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maslow.core.types import BoolArray, FloatArray, IntArray


@dataclass(frozen=True)
class Matches:
    """Every match made, one entry per (threshold, area range, prediction) that found a truth object.

    Attributes:
        t, a: (E,) threshold and area-range index of each match.
        pred: (E,) prediction index (into the sorted prediction side).
        pair: (E,) pair index (into the pair arrays: gives the truth object and the IoU).
        truth_partner: (T, n_truth) last prediction matched to each truth object at area range ``a_match``
            (-1: none; a crowd region can take several, pycocotools keeps the last).
    """

    t: IntArray
    a: IntArray
    pred: IntArray
    pair: IntArray
    truth_partner: IntArray


def match(iou: FloatArray, p_idx: IntArray, t_idx: IntArray, rank: IntArray, thresholds: FloatArray,
          truth_ignored: BoolArray, crowd: BoolArray, n_truth: int, a_match: int) -> Matches:
    """Match every prediction at every threshold (T,) and area range (``truth_ignored`` is (A, n_truth))."""
    thr = np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10)
    n_t, n_a = len(thr), truth_ignored.shape[0]
    keep = np.flatnonzero(iou >= thr.min()) if len(thr) and len(iou) else np.zeros(0, np.int64)
    order = keep[np.argsort(rank[p_idx[keep]], kind="stable")]  # (rank, prediction, truth in group order)
    kp, kt, ki = p_idx[order], t_idx[order], iou[order]
    truth_partner = np.full((n_t, n_truth), -1, np.int64)
    out_t, out_a, out_p, out_pair = [], [], [], []
    matched = np.zeros((n_t, n_a, n_truth), bool)
    r_of_pair = rank[kp]
    r_bounds = np.flatnonzero(np.r_[True, r_of_pair[1:] != r_of_pair[:-1], True]) if len(kp) else np.zeros(1, int)
    thr3 = thr[:, None, None]
    for lo, hi in zip(r_bounds[:-1].tolist(), r_bounds[1:].tolist(), strict=True):
        gi, io, pi = kt[lo:hi], ki[lo:hi], kp[lo:hi]
        seg = np.flatnonzero(np.r_[True, pi[1:] != pi[:-1]])
        seg_len = np.diff(np.r_[seg, len(pi)])
        single = seg_len == 1
        # predictions with one candidate: matched wherever that truth object is free and the IoU passes
        s1 = seg[single]
        g1 = gi[s1]
        ok = (~matched[:, :, g1] | crowd[g1]) & (io[s1] >= thr3)
        tt, aa, ss = np.nonzero(ok)
        ch = s1[ss]
        if not single.all():
            tm, am, chm = _several(gi, io, seg[~single], seg_len[~single], matched, crowd, truth_ignored, thr3)
            tt, aa, ch = np.r_[tt, tm], np.r_[aa, am], np.r_[ch, chm]
        g = gi[ch]
        matched[tt, aa, g] = True
        out_t.append(tt)
        out_a.append(aa)
        out_p.append(pi[ch])
        out_pair.append(order[lo + ch])
        at = aa == a_match
        truth_partner[tt[at], g[at]] = pi[ch[at]]
    def cat(parts: list[IntArray]) -> IntArray:
        return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)
    return Matches(cat(out_t), cat(out_a), cat(out_p), cat(out_pair), truth_partner)


def _several(gi: IntArray, io: FloatArray, seg: IntArray, seg_len: IntArray, matched: BoolArray, crowd: BoolArray,
             truth_ignored: BoolArray, thr3: FloatArray) -> tuple[IntArray, IntArray, IntArray]:
    """Matches of predictions with several candidate truth objects: (t, a, chosen pair position in the step)."""
    idx = np.repeat(seg, seg_len) + (np.arange(int(seg_len.sum())) - np.repeat(np.cumsum(seg_len) - seg_len, seg_len))
    gs, ios = gi[idx], io[idx]
    starts = np.cumsum(seg_len) - seg_len
    seg_id = np.repeat(np.arange(len(seg)), seg_len)
    elig = (~matched[:, :, gs] | crowd[gs]) & (ios >= thr3)
    ig = truth_ignored[:, gs][None]
    m1 = np.maximum.reduceat(np.where(elig & ~ig, ios, -np.inf), starts, axis=2)
    m2 = np.maximum.reduceat(np.where(elig & ig, ios, -np.inf), starts, axis=2)
    has1 = m1 > -np.inf
    best = np.where(has1, m1, m2)
    sel = elig & (ig != has1[:, :, seg_id]) & (ios == best[:, :, seg_id])
    choice = np.maximum.reduceat(np.where(sel, idx, -1), starts, axis=2)  # last best pair; -1 when none
    tt, aa, ss = np.nonzero(choice >= 0)
    return tt, aa, choice[tt, aa, ss]
