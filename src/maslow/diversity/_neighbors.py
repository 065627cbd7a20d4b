"""Numpy building blocks for embedding-space analyses: PCA, chunked k-nearest-neighbour distances, k-means.

Everything works on (m, d) float32 features and in blocks of bounded memory, so 10^4-10^5 images fit in memory
without scikit-learn.
"""

from __future__ import annotations

import numpy as np

from maslow.core.types import FloatArray, IntArray


def as_features(features: np.ndarray, *, where: str) -> np.ndarray:
    """(m, d) float32 copy of ``features``; refuses NaN/inf and a wrong rank."""
    from maslow.errors import InvalidDatasetError

    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidDatasetError(f"{where}: features must be a 2-d (m, d) array, got shape {x.shape}")
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise InvalidDatasetError(f"{where}: features row {bad[0]} must be finite, got NaN or inf ({bad.size} rows)")
    return x


def reduce_dims(x: np.ndarray, *, n_components: int = 64) -> np.ndarray:
    """Centre and project onto the top principal components (identity-like when d is already small)."""
    x = x - x.mean(axis=0, keepdims=True)
    if x.shape[1] <= n_components or x.shape[0] <= n_components:
        return np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[0] < x.shape[1]:
        # fewer images than dimensions (800 EfficientNet embeddings of 1,280): the m x m Gram matrix has the same
        # non-zero eigenvalues as the d x d covariance, and x = U S V^T gives the projections x V = U S directly
        # (the same distances; the d x d eigh took 2 s for d = 1,280 and grows as d^3)
        x64 = x.astype(np.float64)
        vals, u = np.linalg.eigh(x64 @ x64.T)
        top = slice(None, -n_components - 1, -1)
        return np.ascontiguousarray(u[:, top] * np.sqrt(np.maximum(vals[top], 0.0)), dtype=np.float32)
    # eigen-decomposition of the d x d covariance: cheap for d up to a few thousand
    cov = (x.T.astype(np.float64) @ x.astype(np.float64)) / max(len(x) - 1, 1)
    _, vecs = np.linalg.eigh(cov)
    return np.ascontiguousarray(x @ vecs[:, ::-1][:, :n_components].astype(np.float32))


def sq_dists(a: np.ndarray, b: np.ndarray, b_norms: np.ndarray | None = None) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, clipped at 0."""
    bn = (b * b).sum(axis=1) if b_norms is None else b_norms
    d = (a * a).sum(axis=1)[:, None] + bn[None, :] - 2.0 * (a @ b.T)
    np.maximum(d, 0.0, out=d)
    return np.asarray(d)


_BLOCK_BYTES = 1 << 27  # knn's working memory: a block of rows x m float32 distances and its mask
_PIECE_BYTES = 1 << 26  # candidates re-measured at once: their d-wide float64 differences


def knn(x: np.ndarray, *, k: int, block_bytes: int = _BLOCK_BYTES) -> tuple[FloatArray, IntArray]:
    """Distances (m, k) and indices (m, k) of each row's k nearest other rows, nearest first.

    Exact: the k smallest Euclidean distances, computed in float64 from the (float32) rows, ties to the lower row
    index. Brute force in blocks of rows (``block_bytes``, about 128 MB, of ``rows x m`` float32 estimates; never
    m x m): one float32 product gives a block's squared distances as ``|a|^2 + |b|^2 - 2ab``; every row within
    twice that expansion's rounding bound of the row's k-th smallest estimate is a candidate, and the candidates
    are re-measured from their differences in float64. (The expansion cancels badly for near neighbours: copies
    come out ~1e-3 apart in float32; re-measured, a copy is at distance 0 exactly.) The k-th estimate is bounded
    first by the k-th of every 8th column, which spares partitioning the whole block. Time grows as m^2 d (the
    product): 40,000 rows of 256 take about 18 CPU-seconds.

    Raises:
        ValueError: a row holds NaN or infinity (its distances mean nothing; ``as_features`` refuses such rows).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(f"features must be finite: row {bad} holds NaN or infinity")
    m = len(x)
    k = min(k, m - 1)
    if k <= 0:
        return np.zeros((m, 0)), np.zeros((m, 0), dtype=np.int64)
    d = x.shape[1]
    root = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    # the estimates of rows longer than 2^40 would overflow float32: they use the rows scaled by a power of two
    # (the re-measured distances use the rows as given)
    scale = 2.0 ** -np.ceil(np.log2(root.max())) if root.max() > 2.0**40 else 1.0
    xs = x * np.float32(scale) if scale != 1.0 else x
    norms = np.einsum("ij,ij->i", xs, xs)  # float32, as the product
    # |error| of the float32 expansion <= gamma_(d+3) (|a| + |b|)^2 (dot products and norms of d terms, three
    # sums); a true neighbour's estimate is at most the k-th estimate plus twice that
    slack = (d + 4) * 2.0**-23 * (scale * (root + root.max())) ** 2
    stride = max(1, min(8, (m - 1) // (k + 1)))  # the sampled columns hold k + 1 or more (one may be the row's own)
    dist = np.empty((m, k))
    idx = np.empty((m, k), dtype=np.int64)
    rows = max(1, min(m, block_bytes // (6 * m)))
    for s in range(0, m, rows):
        e = min(s + rows, m)
        local = np.arange(e - s)
        est = xs[s:e] @ xs.T
        est *= -2.0
        est += norms[None, :]
        est += norms[s:e, None]
        est[local, s + local] = np.inf  # not its own neighbour
        # an upper bound of each row's k-th estimate, then the rows within it plus the slack
        bound = np.partition(est[:, ::stride], k - 1, axis=1)[:, k - 1].astype(np.float64)
        flat = np.flatnonzero(est <= (bound + slack[s:e]).astype(np.float32)[:, None])  # 2-d nonzero: 10x slower
        r, v = flat // m, est.ravel()[flat]
        del est
        first = np.searchsorted(r, local)  # flat is sorted by row, at least k entries a row
        kth = v[np.lexsort((v, r))[first + k - 1]].astype(np.float64)  # the row's k-th estimate
        keep = v <= (kth + slack[s:e]).astype(np.float32)[r]
        r, j = r[keep], flat[keep] % m
        exact = np.empty(len(r))
        step = max(1, _PIECE_BYTES // (8 * d))
        for p in range(0, len(r), step):  # pieces: many ties (copies) make many candidates
            diff = x[j[p:p + step]].astype(np.float64) - x[s + r[p:p + step]]
            exact[p:p + step] = np.einsum("ij,ij->i", diff, diff)
        order = np.lexsort((j, exact, r))  # by row, then distance, then index
        r, j, exact = r[order], j[order], exact[order]
        take = (np.searchsorted(r, local)[:, None] + np.arange(k)[None, :]).ravel()  # each row keeps k or more
        idx[s:e] = j[take].reshape(-1, k)
        dist[s:e] = np.sqrt(exact[take]).reshape(-1, k)
    return dist, idx


def nearest(x: np.ndarray, centres: np.ndarray, *, chunk: int = 4096) -> tuple[IntArray, FloatArray]:
    """Index of the nearest centre of each row and the squared distance to it."""
    cn = (centres * centres).sum(axis=1)
    lab = np.empty(len(x), dtype=np.int64)
    dd = np.empty(len(x))
    for s in range(0, len(x), chunk):
        d = sq_dists(x[s : s + chunk], centres, cn)
        lab[s : s + chunk] = d.argmin(axis=1)
        dd[s : s + chunk] = d[np.arange(len(d)), lab[s : s + chunk]]
    return lab, dd


def kmeans(x: np.ndarray, k: int, *, rng: np.random.Generator, n_iter: int = 20,
           weights: np.ndarray | None = None, fixed: np.ndarray | None = None) -> tuple[IntArray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding; returns (labels (m,), centres (k, d)).

    ``fixed`` (f, d) centres are kept as the first f centres and never move (k-means around earlier picks).
    """
    m = len(x)
    n_fixed = 0 if fixed is None else len(fixed)
    k = max(1, min(k, m), n_fixed)
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    centres = np.empty((k, x.shape[1]), dtype=x.dtype)
    if fixed is not None and n_fixed:
        centres[:n_fixed] = fixed
        closest = nearest(x, centres[:n_fixed])[1]
        start = n_fixed
    else:
        first = int(rng.choice(m, p=w / w.sum()))
        centres[0] = x[first]
        closest = sq_dists(x, x[first : first + 1])[:, 0]
        start = 1
    for j in range(start, k):
        p = closest * w
        tot = p.sum()
        pick = int(rng.choice(m, p=p / tot)) if tot > 0 else int(rng.integers(m))
        centres[j] = x[pick]
        np.minimum(closest, sq_dists(x, x[pick : pick + 1])[:, 0], out=closest)
    labels = np.full(m, -1, dtype=np.int64)
    for _ in range(n_iter):
        new, _ = nearest(x, centres)
        if np.array_equal(new, labels):
            break
        labels = new
        sums = np.zeros_like(centres, dtype=np.float64)
        np.add.at(sums, labels, x * w[:, None])
        cnt = np.bincount(labels, weights=w, minlength=k)
        ok = cnt > 0
        ok[:n_fixed] = False
        centres[ok] = (sums[ok] / cnt[ok, None]).astype(x.dtype)
    return labels, centres
