"""Exact kNN mean distances for ``embedding_outliers``, in memory-bounded blocks, and a cheap lower bound on them.

``knn_mean`` ranks the neighbours by the expanded ``|y|^2 - 2 x.y`` (``|x|^2`` is the same along a row) in float64,
in blocks of rows sized so that the block and its ``argpartition`` indices stay within ``budget`` bytes, then
computes the distances to the chosen neighbours exactly (so duplicates are at 0).

``centroid_bound`` is a lower bound on the kNN mean distance of each row of ``x`` to a class, from the triangle
inequality around the class's centroid ``mu``: ``|x - y| >= | |x - mu| - |y - mu| |``, so the mean of the ``k``
smallest ``| |x - mu| - r_j |`` over the class's radii ``r_j`` bounds the mean of the ``k`` smallest true distances
from below. ``embedding_outliers`` skips a class for a row when this bound already rules the class out; the result
is the same as computing every class.
"""

from __future__ import annotations

import numpy as np

from maslow.core.types import FloatArray, IntArray

#: bytes of one distance block plus its argpartition indices (~64 MB)
BUDGET = 64 << 20
#: candidates picked in float32 beyond the k neighbours (a margin for the float32 ranking)
EXTRA = 4
#: float32 unit roundoff; ``knn_mean``'s error bound on the float32 ``|y|^2 - 2 x.y`` is ``(4 d + 32)`` of these
_F32_ERROR = 2.0**-24
#: slack on ``centroid_bound`` for rounding (the expanded ``|x - mu|`` is good to ~1e-8 near 0)
BOUND_SLACK = 1e-6


def knn_mean(x: FloatArray, y: FloatArray, k: int, *, same: bool, budget: int = BUDGET) -> FloatArray:
    """Mean distance of each row of ``x`` to its ``k`` nearest rows of ``y`` (``same``: y is x, self excluded).

    Rows of ``x`` and ``y`` have norm at most 1. The ``k + EXTRA`` nearest candidates are picked in float32, their
    squared distances computed exactly in float64, and the ``k`` smallest kept. That is the exact answer when the
    ``k``-th exact value lies below the float32 value of every row left out, minus the float32 error bound
    (``_F32_ERROR``); rows where it does not, or with ties at the candidates' edge (many near-equal distances:
    duplicates), are redone in float64.
    """
    out = np.empty(len(x))
    avail = len(y) - (1 if same else 0)
    if not len(x) or avail < 1:
        return out
    kk = min(k, avail)
    m = min(kk + EXTRA, avail)
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    yy = np.einsum("ij,ij->i", y32, y32)
    y32 *= -2  # exact: the block is then |y|^2 - 2 x.y with one addition
    xx = np.einsum("ij,ij->i", x, x)
    slack = (4 * x.shape[1] + 32) * _F32_ERROR
    block = max(1, budget // (9 * len(y)))  # float32 distances, a partitioned copy, a mask
    redo = []
    for s in range(0, len(x), block):
        g = x32[s: s + block] @ y32.T
        g += yy
        nb = len(g)
        if same:
            g[np.arange(nb), np.arange(s, s + nb)] = np.inf
        edge = np.partition(g, m - 1, axis=1)[:, m - 1]  # the m-th smallest (np.partition is fast, argpartition not)
        mask = g <= edge[:, None]
        del g
        cnt = mask.sum(axis=1)
        col = np.flatnonzero(mask) % len(y)  # row-major: each row's columns in turn (2-d nonzero is slower)
        del mask
        good = np.flatnonzero(cnt == m)  # more than m: ties at the edge, redone below
        idx = col[(np.cumsum(cnt) - cnt)[good][:, None] + np.arange(m)]
        sq = np.partition(_sq_dist(x[s + good], y, idx), kk - 1, axis=1)
        out[s + good] = _mean_sqrt(sq[:, :kk])
        ok = np.zeros(nb, bool)
        ok[good] = (m == avail) | (sq[:, kk - 1] < xx[s + good] + edge[good].astype(np.float64) - slack)
        redo.append(s + np.flatnonzero(~ok))
    bad = np.concatenate(redo) if redo else np.zeros(0, np.int64)
    if len(bad):
        out[bad] = _knn_mean64(x[bad], y, kk, bad if same else None, budget)
    return out


def _knn_mean64(x: FloatArray, y: FloatArray, kk: int, self_idx: IntArray | None, budget: int) -> FloatArray:
    """``knn_mean`` ranked in float64 (``self_idx``: the row of ``y`` each row of ``x`` is, excluded)."""
    out = np.empty(len(x))
    yy = np.einsum("ij,ij->i", y, y)
    block = max(1, budget // (16 * len(y)))  # float64 distances + int64 indices per row
    for s in range(0, len(x), block):
        d2 = x[s: s + block] @ y.T  # ranks the neighbours, in place: |y|^2 - 2 x.y
        d2 *= -2
        d2 += yy
        if self_idx is not None:
            d2[np.arange(len(d2)), self_idx[s: s + len(d2)]] = np.inf
        idx = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        del d2
        out[s: s + len(idx)] = _mean_sqrt(_sq_dist(x[s: s + len(idx)], y, idx))
    return out


def _sq_dist(x: FloatArray, y: FloatArray, idx: IntArray) -> FloatArray:
    """Squared distances of each row of ``x`` to the rows ``idx[i]`` of ``y``, from direct differences."""
    out = np.empty(idx.shape)
    step = max(1, 4_000_000 // max(idx.shape[1] * x.shape[1], 1))  # a few MB at a time
    for t in range(0, len(x), step):
        diff = y[idx[t: t + step]]
        np.subtract(x[t: t + step, None, :], diff, out=diff)
        out[t: t + len(diff)] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


def _mean_sqrt(sq: FloatArray) -> FloatArray:
    """Mean of the square roots along each row, summed in sorted order (equal sets give equal means)."""
    out: FloatArray = np.sqrt(np.sort(sq, axis=1)).mean(axis=1)
    return out


def centroid_bound(a: FloatArray, radii: FloatArray, k: int) -> FloatArray:
    """Lower bound on the kNN mean distance to a class, for points at distances ``a`` from its centroid.

    ``radii`` are the sorted distances of the class's rows to that centroid (more than ``k`` of them).
    """
    p = np.searchsorted(radii, a)
    idx = p[:, None] + np.arange(-k, k)[None, :]  # the k closest radii lie within k places of a's position
    ok = (idx >= 0) & (idx < len(radii))
    gap = np.where(ok, np.abs(a[:, None] - radii[np.clip(idx, 0, len(radii) - 1)]), np.inf)
    out: FloatArray = np.partition(gap, k - 1, axis=1)[:, :k].mean(axis=1)
    return out
