"""Outliers in a feature space: annotations far from the other annotations of their class.

Glossary: ``features`` is an (n, d) array aligned with the annotation rows (for example crop embeddings); rows
are L2-normalised, so distances are chordal (monotone in cosine distance). An annotation's *kNN distance* is its
mean distance to its ``k`` nearest neighbours of the same class; its *score* is the rank of that distance within
its class, in [0, 1] (tied distances share their mean rank). Rows with NaN features, and classes with at most
``k`` rows, get no score. The kNN distances are float64 (ranked to ~1e-8 among near-duplicates): the neighbours
are ranked by brute force in blocks of ~64 MB (O(n_c^2 d) per class), and the distances to the chosen neighbours
are then computed directly, so duplicates are at distance 0 (the expanded ``|x|^2 + |y|^2 - 2 x.y`` leaves ~1e-8 of rounding noise). The distance
to another class (the same kNN mean, to that class's rows) is computed only where a lower bound from the class
centroids (``_outliers_knn.centroid_bound``) does not already show it can't matter: where that class could be
nearer than ``closer`` times the row's own distance, or for every class on a row reported by its robust z. Well
separated classes cost little; classes that overlap (or random features) cost O(n_c n_other d), as every pair.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.quality._outliers_knn import BOUND_SLACK, centroid_bound, knn_mean
from maslow.quality.geometry import robust_z
from maslow.quality.issues import QualityIssues


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
                       closer: float = 0.8,
                       progress: Callable[[int, int], None] | None = None) -> QualityIssues:
    """Annotations whose features are far from their class (``embedding_outlier``), ranked.

    Args:
        ds: the dataset (crowd regions are skipped).
        features: (n, d) float, one row per annotation (NaN rows: no features).
        k: neighbours per annotation (an integer >= 1).
        z: robust z of the log kNN distance, within the class, above which a row is reported.
        closer: a row is also reported when its kNN distance to another class is below ``closer`` times the
            distance to its own class (it sits among another class's objects: a likely wrong class).
        progress: called as ``progress(done_rows, total_rows)`` after each class (rows with a score).

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
    # class centroids and the sorted distances of each class's rows to theirs, for centroid_bound
    mu = np.array([f[rows_of[c]].mean(axis=0) for c in classes]).reshape(len(classes), f.shape[1])
    radii = [np.sort(np.linalg.norm(f[rows_of[c]] - mu[j], axis=1)) for j, c in enumerate(classes)]
    mm = np.einsum("ij,ij->i", mu, mu)
    total, done = sum(len(r) for r in rows_of.values()), 0
    for c in classes:
        rows = rows_of[c]
        x = f[rows]
        d = knn_mean(x, x, k, same=True)
        dist[rows] = d
        rank[rows] = _rank01(d)
        # another class matters to a row when it could be nearer than ``closer`` times its own kNN distance, or
        # for every class when the row is reported anyway (its text names the nearest class and its distance)
        hit_z = robust_z(np.log(np.maximum(d, 1e-12))) > z
        need_below = np.where(hit_z, np.inf, closer * d)
        xx = np.einsum("ij,ij->i", x, x)
        to_mu = np.sqrt(np.maximum(xx[:, None] + mm[None, :] - 2 * x @ mu.T, 0))
        for j2, c2 in enumerate(classes):
            if c2 == c:
                continue
            need = np.flatnonzero(centroid_bound(to_mu[:, j2], radii[j2], k) - BOUND_SLACK < need_below)
            if not len(need):
                continue
            d2 = knn_mean(x[need], f[rows_of[c2]], k, same=False)
            r = rows[need]
            better = np.isnan(near_other[r]) | (d2 < near_other[r])
            near_other[r[better]] = d2[better]
            near_cls[r[better]] = c2
        done += len(rows)
        if progress is not None:
            progress(done, total)
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
    checks report those). ``progress`` is called as ``progress(done, total)`` over the images while embedding,
    then over the scored annotations while ranking them (``embedding_outliers``).
    """
    from maslow.embed.crops import embed_crops

    return embedding_outliers(ds, embed_crops(ds, progress=progress), k=k, z=z, closer=closer, progress=progress)
