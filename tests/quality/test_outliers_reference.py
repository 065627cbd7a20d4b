"""embedding_outliers against a brute-force reading of its docstring: kNN distances (numpy differences and
scikit-learn's NearestNeighbors), ranks with ties (scipy's rankdata), the robust z and the other-class test."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.neighbors import NearestNeighbors

from maslow.core.dataset import Dataset
from maslow.quality import embedding_outliers
from maslow.sample import shapes


def _knn(x: np.ndarray, y: np.ndarray, k: int, *, same: bool) -> np.ndarray:
    d = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))  # direct differences: exact for duplicates
    if same:
        np.fill_diagonal(d, np.inf)
    kk = min(k, d.shape[1] - int(same))
    return np.sort(d, axis=1)[:, :kk].mean(1)


def _robust_z(v: np.ndarray) -> np.ndarray:
    med = np.median(v)
    mad = 1.4826 * np.median(np.abs(v - med))
    if mad == 0:  # most values equal: the mean absolute deviation (Iglewicz and Hoaglin)
        mad = 1.2533 * np.mean(np.abs(v - med))
    return np.zeros(len(v)) if mad == 0 else (v - med) / mad


def _reference(ds: Dataset, features: np.ndarray, k: int, z: float, closer: float) -> dict[int, tuple]:
    """row -> (score, kNN distance, nearest other class or -1), for the rows the docstring reports."""
    a = ds.annotations
    assert a.iscrowd is not None
    ok = ~np.isnan(features).any(1) & ~a.iscrowd
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    rows_of = {c: np.flatnonzero(ok & (a.label == c)) for c in range(len(ds.schema.names))}
    rows_of = {c: r for c, r in rows_of.items() if len(r) > k}
    out = {}
    for c, rows in rows_of.items():
        dist = _knn(f[rows], f[rows], k, same=True)
        score = (rankdata(dist, method="average") - 1) / max(len(rows) - 1, 1)
        others = {c2: _knn(f[rows], f[r2], k, same=False) for c2, r2 in rows_of.items() if c2 != c}
        zz = _robust_z(np.log(np.maximum(dist, 1e-12)))
        for j, r in enumerate(rows):
            near = min(others, key=lambda c2: (others[c2][j], c2)) if others else -1
            near_d = others[near][j] if others else np.inf
            if zz[j] > z or near_d < closer * dist[j]:
                out[int(r)] = (score[j], dist[j], near if near_d < dist[j] else -1)
    return out


def _dataset(labels: np.ndarray | None = None) -> Dataset:
    ds = shapes(60, seed=2)
    if labels is None:
        return ds
    return ds.replace(annotations=ds.annotations.with_columns(label=labels))


def _compare(ds: Dataset, f: np.ndarray, *, k: int, z: float, closer: float = 0.8) -> None:
    got = embedding_outliers(ds, f, k=k, z=z, closer=closer)
    ref = _reference(ds, f, k, z, closer)
    assert sorted(got.annotation.tolist()) == sorted(ref)
    assert (np.diff(got.score) <= 0).all()  # ranked
    names = ds.schema.names
    rows = got.rows(names=names)
    for r, score, reason, sugg, row in zip(got.annotation.tolist(), got.score, got.reason, got.suggestion, rows,
                                           strict=True):
        want_score, want_dist, near = ref[r]
        assert score == pytest.approx(want_score, abs=1e-12), r
        m = re.search(r"kNN distance ([0-9.]+)", str(reason))
        assert m is not None and float(m.group(1)) == pytest.approx(want_dist, abs=6e-4)
        assert (f"looks more like the {names[near]!r} objects" in str(sugg)) if near >= 0 else \
            ("looks more like" not in str(sugg))
        # the class the text names is the suggestion's class (scripts and review read it), null when none is named
        assert row["suggestion"]["class"] == (names[near] if near >= 0 else None)


@pytest.mark.parametrize("seed", range(3))
def test_clusters_match_the_reference(seed: int) -> None:
    ds = _dataset()
    a = ds.annotations
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 6))
    f = centres[a.label] + rng.normal(0, 0.3, (len(a), 6))
    f[rng.choice(len(a), 4, replace=False)] = rng.normal(0, 3, (4, 6))  # a few strays
    f[rng.choice(len(a), 3, replace=False)] = np.nan  # no features
    for k, z in ((3, 2.0), (5, -np.inf), (10, 3.0)):  # z = -inf: every scored row is reported with its score
        _compare(ds, f, k=k, z=z)


def test_knn_distances_agree_with_scikit_learn() -> None:
    ds = _dataset(np.zeros(shapes(60, seed=2).n_annotations, np.int64))
    rng = np.random.default_rng(7)
    f = rng.normal(size=(ds.n_annotations, 5))
    got = embedding_outliers(ds, f, k=4, z=-np.inf)
    keep = ~ds.annotations.iscrowd  # type: ignore[operator]
    u = f / np.linalg.norm(f, axis=1, keepdims=True)
    nn = NearestNeighbors(n_neighbors=5).fit(u[keep])
    d, _ = nn.kneighbors(u[keep])  # the first neighbour is the row itself
    sk = np.full(len(f), np.nan)
    sk[keep] = d[:, 1:].mean(1)
    dist = np.array([float(re.search(r"kNN distance ([0-9.]+)", str(s)).group(1)) for s in got.reason])  # type: ignore[union-attr]
    np.testing.assert_allclose(dist, sk[got.annotation], atol=6e-4)
    np.testing.assert_allclose(got.score, (rankdata(sk[got.annotation]) - 1) / (keep.sum() - 1), atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_duplicates_are_at_distance_zero_and_tie(seed: int) -> None:
    """Groups of identical features: the expanded distance formula left ~1e-8 of noise, which broke the ties
    at random and, through the log distance, decided which rows the robust z reported."""
    ds = _dataset()
    a = ds.annotations
    rng = np.random.default_rng(seed)
    f = np.eye(3)[a.label] + rng.normal(0, 0.05, (len(a), 3))
    rows0 = np.flatnonzero((a.label == 0) & ~a.iscrowd)  # type: ignore[operator]
    protos = rng.normal(size=(3, 3))
    f[rows0] = protos[np.arange(len(rows0)) % 3]
    f[rows0[-1]] = -protos[0]  # one row apart from the duplicates
    for k, z in ((3, 3.0), (3, -np.inf), (2, 1.0)):
        _compare(ds, f, k=k, z=z)
    got = embedding_outliers(ds, f, k=3, z=-np.inf)
    dup = np.isin(got.annotation, rows0[:-1])
    assert len(set(got.score[dup].tolist())) == 1  # every duplicate has the same (zero) distance: one score


def test_small_classes_crowd_and_nan_rows_get_no_score() -> None:
    ds = _dataset()
    a = ds.annotations
    rng = np.random.default_rng(3)
    f = rng.normal(size=(len(a), 4))
    f[np.flatnonzero(a.label == 1)[:3]] = np.nan
    k = int((a.label == 2).sum())  # class 2 has exactly k rows: no score
    got = embedding_outliers(ds, f, k=k, z=-np.inf)
    assert not np.isin(got.annotation, np.flatnonzero(a.label == 2)).any()
    assert not np.isin(got.annotation, np.flatnonzero(a.iscrowd | np.isnan(f).any(1))).any()  # type: ignore[operator]
    _compare(ds, f, k=k, z=-np.inf)


def test_bad_k_and_infinite_features_are_refused() -> None:
    ds = _dataset()
    f = np.random.default_rng(0).normal(size=(ds.n_annotations, 3))
    for k in (0, -1, 2.5, True):  # k=0 averaged an empty slice; k=-1 returned rows
        with pytest.raises(ValueError, match="k must be an integer >= 1, got"):
            embedding_outliers(ds, f, k=k)  # type: ignore[arg-type]
    f[5, 1] = np.inf  # became a NaN row after normalising, and silently got no score
    with pytest.raises(ValueError, match="row 5 holds an infinite value"):
        embedding_outliers(ds, f)
    with pytest.raises(ValueError, match=r"features must be \("):
        embedding_outliers(ds, f[:, 0])
    assert len(embedding_outliers(ds, f[:, :1] * 0 + 1.0, k=np.int64(3))) == 0  # identical features: no outlier


def test_a_row_far_from_a_crowd_of_duplicates_is_reported() -> None:
    # most of class 0 shares one feature vector (kNN distance 0, so MAD 0): the robust z was 0 for every row and
    # the one row elsewhere went unreported; other classes sit as far from it as its own class
    ds = _dataset()
    a = ds.annotations
    f = np.tile(np.eye(4)[3], (len(a), 1))  # other classes: all at e3
    rows0 = np.flatnonzero((a.label == 0) & ~a.iscrowd)  # type: ignore[operator]
    f[rows0] = np.eye(4)[0]
    f[rows0[5]] = np.eye(4)[1]
    got = embedding_outliers(ds, f, k=3, z=3.0)
    assert int(rows0[5]) in got.annotation.tolist()
    _compare(ds, f, k=3, z=3.0)
