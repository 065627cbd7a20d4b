"""Greedy matching of predictions to truth objects, exactly as ``COCOeval.evaluateImg``.

For each IoU threshold and area range, pycocotools walks the predictions of a group by score and gives each
the best still-free truth object: among truth objects that are not ignored, the one with the highest IoU
``>= min(t, 1 - 1e-10)`` (the last such in file order on ties, because it updates on ``>=``); only if there is
none, the best ignored one (crowd regions stay free for every later prediction). It is sequential inside a
group, but independent across groups, so here the predictions of rank ``r`` of *every* group are matched at
once, for all thresholds and area ranges together (at most ``max(max_dets)`` vectorised steps). Pairs whose
IoU is below the smallest threshold can never match and are dropped first. The "already matched" state is a
(truth object, threshold x area range) table, so a step reads whole contiguous rows of it.

When the compiled kernel ``maslow._native.cocoeval`` is available, ``match`` runs it instead: a plain loop over
the predictions in order (evaluateImg's own loop), with the same result; the numpy code is the reference.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeAlias

import numpy as np

from maslow._native import empty, load
from maslow.core.types import BoolArray, FloatArray, IntArray

AnyIntArray: TypeAlias = np.ndarray[Any, np.dtype[np.signedinteger[Any]]]


class Matches(NamedTuple):
    """Every match made, one entry per (threshold, area range, prediction) that found a truth object.

    Attributes:
        t, a: (E,) threshold and area-range index of each match.
        pred: (E,) prediction index (into the sorted prediction side).
        pair: (E,) pair index (into the pair arrays: gives the truth object and the IoU).
        (int64 from the numpy code; the compiled kernel writes t and a as int16, pred and pair as int32.)
        truth_partner: (T, n_truth) last prediction matched to each truth object at area range ``a_match``
            (-1: none; a crowd region can take several, pycocotools keeps the last). int32 from the kernel.
    """

    t: AnyIntArray
    a: AnyIntArray
    pred: AnyIntArray
    pair: AnyIntArray
    truth_partner: AnyIntArray
    truth_pair: AnyIntArray  # (T, n_truth) pair index of that match (-1: none)


def match(iou: FloatArray, p_idx: IntArray, t_idx: IntArray, rank: IntArray, thresholds: FloatArray,
          truth_ignored: BoolArray, crowd: BoolArray, n_truth: int, a_match: int) -> Matches:
    """Match every prediction at every threshold (T,) and area range (``truth_ignored`` is (A, n_truth)).

    ``p_idx`` is non-decreasing (pairs are prediction-major) and the predictions of a group are in rank order.
    """
    thr = np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10)
    native = load("cocoeval")
    if native is not None and 0 < len(thr) < 2**15 and truth_ignored.shape[0] < 2**15 and len(iou) < 2**31 - 1:
        return _native_match(native, iou, p_idx, t_idx, thr, truth_ignored, crowd, n_truth, a_match)
    n_t, n_a = len(thr), truth_ignored.shape[0]
    keep = np.flatnonzero(iou >= thr.min()) if len(thr) and len(iou) else np.zeros(0, np.int64)
    r_keep = rank[p_idx[keep]]
    if len(r_keep) and r_keep.max() < 2**15:
        r_keep = r_keep.astype(np.int16)  # numpy's stable sort of int16 is a radix sort
    order = keep[np.argsort(r_keep, kind="stable")]  # (rank, prediction, truth in group order)
    kp, kt, ki = p_idx[order], t_idx[order], iou[order]
    truth_partner = np.full((n_t, n_truth), -1, np.int64)
    truth_pair = np.full((n_t, n_truth), -1, np.int64)
    out_c, out_p, out_pair = [], [], []
    # one column per (threshold, area range): c = t * n_a + a; rows are truth objects (contiguous gathers)
    thr_c = np.repeat(thr, n_a)
    ig_c = np.ascontiguousarray(truth_ignored.T[:, np.tile(np.arange(n_a), n_t)])
    # taken[g, c]: truth object g is matched at column c and so no longer free (crowd regions never are)
    taken = np.zeros((n_truth, n_t * n_a), bool)
    t_of_c, a_of_c = np.repeat(np.arange(n_t), n_a), np.tile(np.arange(n_a), n_t)
    r_of_pair = rank[kp]
    r_bounds = np.flatnonzero(np.r_[True, r_of_pair[1:] != r_of_pair[:-1], True]) if len(kp) else np.zeros(1, int)
    for lo, hi in zip(r_bounds[:-1].tolist(), r_bounds[1:].tolist(), strict=True):
        gi, io, pi = kt[lo:hi], ki[lo:hi], kp[lo:hi]
        seg = np.flatnonzero(np.r_[True, pi[1:] != pi[:-1]])
        seg_len = np.diff(np.r_[seg, len(pi)])
        single = seg_len == 1
        # predictions with one candidate: matched wherever that truth object is free and the IoU passes
        s1 = seg[single] if not single.all() else seg
        g1 = gi[s1]
        ok = io[s1, None] >= thr_c
        ok &= ~taken[g1]
        ss, cc = np.nonzero(ok)
        ch = s1[ss]
        if not single.all():
            cm, chm = _several(gi, io, seg[~single], seg_len[~single], taken, ig_c, thr_c)
            cc, ch = np.concatenate([cc, cm]), np.concatenate([ch, chm])
        g = gi[ch]
        taken[g, cc] = ~crowd[g]
        out_c.append(cc)
        out_p.append(pi[ch])
        pair = order[lo + ch]
        out_pair.append(pair)
        at = a_of_c[cc] == a_match
        truth_partner[t_of_c[cc[at]], g[at]] = pi[ch[at]]
        truth_pair[t_of_c[cc[at]], g[at]] = pair[at]

    def cat(parts: list[IntArray]) -> IntArray:
        return np.concatenate(parts).astype(np.int64, copy=False) if parts else np.zeros(0, np.int64)

    m_c = cat(out_c)
    return Matches(t_of_c[m_c], a_of_c[m_c], cat(out_p), cat(out_pair), truth_partner, truth_pair)


def _native_match(native: Any, iou: FloatArray, p_idx: IntArray, t_idx: IntArray, thr: FloatArray,
                  truth_ignored: BoolArray, crowd: BoolArray, n_truth: int, a_match: int) -> Matches:
    """``match`` by the compiled kernel; its entries come in prediction order (the numpy twin's: rank order)."""
    args = (np.ascontiguousarray(iou, np.float64), np.ascontiguousarray(p_idx, np.int64),
            np.ascontiguousarray(t_idx, np.int64), np.ascontiguousarray(thr, np.float64),
            np.ascontiguousarray(truth_ignored, bool).view(np.uint8), np.ascontiguousarray(crowd, bool).view(np.uint8),
            int(a_match))
    n_c = len(thr) * truth_ignored.shape[0]
    cap = n_c * (n_truth + 16)  # each truth object is matched once per column, save crowd regions: rarely short
    while True:
        partner = np.full((len(thr), n_truth), -1, np.int32)
        partner_pair = np.full((len(thr), n_truth), -1, np.int32)
        block = empty(12 * cap, np.uint8)  # one allocation, in huge pages
        out: list[np.ndarray] = [block[:2 * cap].view(np.int16), block[2 * cap:4 * cap].view(np.int16),
                                 block[4 * cap:8 * cap].view(np.int32), block[8 * cap:].view(np.int32)]
        n = native.match(*args, partner, partner_pair, *out)
        if n <= cap:
            break
        cap = n
    m_t, m_a, m_p, m_pair = (o[:n] for o in out)
    return Matches(m_t, m_a, m_p, m_pair, partner, partner_pair)


def _several(gi: IntArray, io: FloatArray, seg: IntArray, seg_len: IntArray, taken: BoolArray, ig_c: BoolArray,
             thr_c: FloatArray) -> tuple[IntArray, IntArray]:
    """Matches of predictions with several candidate truth objects: (column t * A + a, chosen pair position)."""
    idx = np.repeat(seg, seg_len) + (np.arange(int(seg_len.sum())) - np.repeat(np.cumsum(seg_len) - seg_len, seg_len))
    gs, ios = gi[idx], io[idx, None]
    starts = np.cumsum(seg_len) - seg_len
    seg_id = np.repeat(np.arange(len(seg)), seg_len)
    elig = ios >= thr_c  # (pairs, columns)
    elig &= ~taken[gs]
    ig = ig_c[gs]
    m1 = np.maximum.reduceat(np.where(elig & ~ig, ios, -np.inf), starts, axis=0)
    m2 = np.maximum.reduceat(np.where(elig & ig, ios, -np.inf), starts, axis=0)
    has1 = m1 > -np.inf
    best = np.where(has1, m1, m2)
    sel = elig & (ig != has1[seg_id]) & (ios == best[seg_id])
    choice = np.maximum.reduceat(np.where(sel, idx[:, None], -1), starts, axis=0)  # last best pair; -1: none
    ss, cc = np.nonzero(choice >= 0)
    return cc, choice[ss, cc]
