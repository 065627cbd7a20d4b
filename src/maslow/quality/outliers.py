"""Outliers in a feature space: annotations far from the other annotations of their class.

Glossary: ``features`` is an (n, d) array aligned with the annotation rows (for example crop embeddings); rows
are L2-normalised, so distances are chordal (monotone in cosine distance). An annotation's *kNN distance* is its
mean distance to its ``k`` nearest neighbours of the same class; its *score* is the rank of that distance within
its class, in [0, 1] (tied distances share their mean rank). Rows with NaN features, and classes with at most
``k`` rows, get no score. The distances are computed brute force in blocks (O(n_c^2 d) per class), fine up to
~100,000 annotations per class; the distances to the chosen neighbours are then computed exactly, so duplicates
are at distance 0 (the expanded ``|x|^2 + |y|^2 - 2 x.y`` leaves ~1e-8 of rounding noise).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.quality.geometry import robust_z
from maslow.quality.issues import QualityIssues


def _knn_mean(x: FloatArray, y: FloatArray, k: int, *, same: bool, block: int = 2048) -> FloatArray:
    """Mean distance of each row of ``x`` to its ``k`` nearest rows of ``y`` (``same``: y is x, self excluded)."""
    out = np.empty(len(x))
    yy = (y**2).sum(axis=1)
    for s in range(0, len(x), block):
        xb = x[s: s + block]
        d2 = (xb**2).sum(axis=1)[:, None] + yy[None, :] - 2 * xb @ y.T  # ranks the neighbours
        if same:
            d2[np.arange(len(xb)), np.arange(s, s + len(xb))] = np.inf
        kk = min(k, d2.shape[1] - (1 if same else 0))
        idx = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        step = max(1, 4_000_000 // max(kk * x.shape[1], 1))  # exact distances, a few MB at a time
        for t in range(0, len(xb), step):
            diff = xb[t: t + step, None, :] - y[idx[t: t + step]]
            out[s + t: s + t + len(diff)] = np.sqrt((diff**2).sum(axis=2)).mean(axis=1)
    return out


def _rank01(d: FloatArray) -> FloatArray:
    """Rank of each value among ``d``, scaled to [0, 1]; equal values share their mean rank."""
    n = len(d)
    order = np.argsort(d, kind="stable")
    sd = d[order]
    new = np.r_[True, sd[1:] != sd[:-1]]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], n]
    out = np.empty(n)
    out[order] = ((starts + ends - 1) / 2)[np.cumsum(new) - 1]
    return out / max(n - 1, 1)


def embedding_outliers(ds: Dataset, features: FloatArray, *, k: int = 10, z: float = 3.0,
                       closer: float = 0.8) -> QualityIssues:
    """Annotations whose features are far from their class (``embedding_outlier``), ranked.

    Args:
        ds: the dataset (crowd regions are skipped).
        features: (n, d) float, one row per annotation (NaN rows: no features).
        k: neighbours per annotation (an integer >= 1).
        z: robust z of the log kNN distance, within the class, above which a row is reported.
        closer: a row is also reported when its kNN distance to another class is below ``closer`` times the
            distance to its own class (it sits among another class's objects: a likely wrong class).

    Raises:
        ValueError: ``features`` is not (n, d) or holds an infinite value; ``k`` is not an integer >= 1.

    Returns:
        One row per outlier; ``score`` is the rank of its kNN distance within its class, and the suggestion names
        the nearest class when another class is closer than its own (its text, and its class: the ``label``
        column, -1 otherwise).

    Example:
        >>> import numpy as np
        >>> from maslow.sample import shapes
        >>> ds = shapes(40, seed=0)
        >>> feats = np.eye(3)[ds.annotations.label] + np.random.default_rng(0).normal(0, .05, (ds.n_annotations, 3))
        >>> len(embedding_outliers(ds, feats)) >= 0
        True
    """
    a = ds.annotations
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) != len(a):
        raise ValueError(f"embedding_outliers: features must be ({len(a)}, d), got shape {f.shape}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"embedding_outliers: k must be an integer >= 1, got {k!r}")
    inf = np.isinf(f).any(axis=1)
    if inf.any():
        raise ValueError(f"embedding_outliers: features must be finite (NaN for a row without features), "
                         f"row {int(np.flatnonzero(inf)[0])} holds an infinite value ({int(inf.sum())} rows)")
    assert a.iscrowd is not None
    ok = ~np.isnan(f).any(axis=1) & ~a.iscrowd
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    names = ds.schema.names
    dist = np.full(len(a), np.nan)
    rank = np.full(len(a), np.nan)
    near_other = np.full(len(a), np.nan)
    near_cls = np.full(len(a), -1, np.int64)
    classes = [c for c in range(len(names)) if int((ok & (a.label == c)).sum()) > k]
    rows_of: dict[int, IntArray] = {c: np.flatnonzero(ok & (a.label == c)) for c in classes}
    for c in classes:
        rows = rows_of[c]
        d = _knn_mean(f[rows], f[rows], k, same=True)
        dist[rows] = d
        rank[rows] = _rank01(d)
        for c2 in classes:
            if c2 == c:
                continue
            d2 = _knn_mean(f[rows], f[rows_of[c2]], k, same=False)
            better = np.isnan(near_other[rows]) | (d2 < near_other[rows])
            near_other[rows[better]] = d2[better]
            near_cls[rows[better]] = c2
    parts = []
    for c in classes:
        rows = rows_of[c]
        zz = robust_z(np.log(np.maximum(dist[rows], 1e-12)))
        among_other = (near_cls[rows] >= 0) & (near_other[rows] < closer * dist[rows])
        hit = (zz > z) | among_other
        if not hit.any():
            continue
        r = rows[hit]
        is_closer = (near_cls[r] >= 0) & (near_other[r] < dist[r])
        parts.append(QualityIssues.block(
            "embedding_outlier", "warning", image=a.image[r], annotation=r, score=rank[r],
            reason=[f"far from the other {names[c]} objects (kNN distance {d:.3f}, robust z {v:+.1f}"
                    + (f"; {o:.3f} to the {names[n]} objects)" if n >= 0 else ")")
                    for d, v, o, n in zip(dist[r], zz[hit], near_other[r], near_cls[r], strict=True)],
            # the closer class is the suggested one (``suggestion.class``), as the text names it
            suggestion=[f"check the class: it looks more like the {names[n]!r} objects" if cl else
                        "check the class, or whether it is an object" for n, cl in zip(near_cls[r], is_closer,
                                                                                    strict=True)],
            label=np.where(is_closer, near_cls[r], -1)))
    return QualityIssues.build(parts)


def crop_outliers(ds: Dataset, *, k: int = 10, z: float = 3.0, closer: float = 0.8,
                  progress: Callable[[int, int], None] | None = None) -> QualityIssues:
    """``embedding_outliers`` on the light embeddings of every annotation's box crop (``maslow.embed.crops``).

    Needs the image files (``ds.root``); annotations whose image can't be read are skipped (the technical import
    checks report those).
    """
    from maslow.embed.crops import embed_crops

    return embedding_outliers(ds, embed_crops(ds, progress=progress), k=k, z=z, closer=closer)
