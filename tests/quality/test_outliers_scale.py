"""embedding_outliers' faster kNN (float32 candidates checked exactly, memory-sized blocks, classes skipped by a
centroid bound) gives what the brute-force all-pairs computation gives: kNN distances, nearest other class and
the reported rows, on small and medium inputs."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.quality import _outliers_knn, embedding_outliers
from maslow.quality.geometry import robust_z


def _brute_knn(x: np.ndarray, y: np.ndarray, k: int, *, same: bool) -> np.ndarray:
    """Frozen reference: every distance from direct differences, sorted."""
    d = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    if same:
        np.fill_diagonal(d, np.inf)
    out: np.ndarray = np.sort(d, axis=1)[:, :min(k, d.shape[1] - int(same))].mean(1)
    return out


def _brute(ds: Dataset, f: np.ndarray, k: int, z: float, closer: float) -> dict[int, tuple[float, float, int]]:
    """row -> (kNN distance, distance to the nearest other class, that class) for every reported row: every class
    against every other class, as the implementation before the bound did."""
    a = ds.annotations
    u = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    rows_of = {c: np.flatnonzero(a.label == c) for c in range(len(ds.schema.names))}
    rows_of = {c: r for c, r in rows_of.items() if len(r) > k}
    out = {}
    for c, rows in rows_of.items():
        dist = _brute_knn(u[rows], u[rows], k, same=True)
        other = np.array([_brute_knn(u[rows], u[r2], k, same=False) if c2 != c else np.full(len(rows), np.inf)
                          for c2, r2 in rows_of.items()])
        keys = list(rows_of)
        near = np.argmin(other, axis=0)
        near_d = other[near, np.arange(len(rows))]
        zz = robust_z(np.log(np.maximum(dist, 1e-12)))
        for j in np.flatnonzero((zz > z) | (near_d < closer * dist)):
            out[int(rows[j])] = (dist[j], near_d[j], keys[near[j]])
    return out


def _dataset(labels: np.ndarray) -> Dataset:
    n, k = len(labels), int(labels.max()) + 1
    return Dataset(schema=LabelSchema.from_names([f"c{i}" for i in range(k)]),
                   images=Images(path=str_array(["a.jpg"]), width=np.array([9]), height=np.array([9])),
                   annotations=Annotations(image=np.zeros(n, np.int64), label=labels,
                                           box=np.tile([0, 0, 5, 5.0], (n, 1))))


def _check(ds: Dataset, f: np.ndarray, *, k: int, z: float, closer: float = 0.8) -> None:
    got = embedding_outliers(ds, f, k=k, z=z, closer=closer)
    ref = _brute(ds, f, k, z, closer)
    assert sorted(got.annotation.tolist()) == sorted(ref)
    names = ds.schema.names
    for r, reason, row in zip(got.annotation.tolist(), got.reason, got.rows(names=names), strict=True):
        dist, near_d, near = ref[r]
        assert f"kNN distance {dist:.3f}" in str(reason)
        assert f"{near_d:.3f} to the {names[near]} objects" in str(reason)  # the nearest class, every class tried
        assert row["suggestion"]["class"] == (names[near] if near_d < dist else None)


@pytest.mark.parametrize(("kind", "seed"), [("random", 0), ("clusters", 1), ("clusters", 2), ("overlap", 3)])
def test_medium_inputs_match_all_pairs(kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_cls, d = 900, 6, 24
    labels = np.sort(rng.integers(0, n_cls, n))
    if kind == "random":
        f = rng.normal(size=(n, d))
    else:
        spread = 0.15 if kind == "clusters" else 1.0
        f = rng.normal(size=(n_cls, d))[labels] + rng.normal(0, spread, (n, d))
        strays = rng.choice(n, 12, replace=False)
        f[strays] = rng.normal(size=(n_cls, d))[rng.integers(0, n_cls, 12)]  # among another class, or nowhere
    ds = _dataset(labels)
    for k, z, closer in ((10, 3.0, 0.8), (5, 2.0, 1.0), (3, -np.inf, 0.8), (10, np.inf, 1.2)):
        _check(ds, f, k=k, z=z, closer=closer)


def test_duplicates_and_near_ties_fall_back_to_float64() -> None:
    """Groups of identical and nearly identical rows (closer than float32 resolves, ~1e-3): the float32 candidates
    can't tell them apart, so those rows are redone in float64 and still match. (Below ~1e-7 the float64 ranking
    has rounding noise too, as the module says, so the noise here is 1e-5.)"""
    rng = np.random.default_rng(4)
    labels = np.sort(rng.integers(0, 3, 400))
    base = rng.normal(size=(5, 8))
    f = base[rng.integers(0, 5, 400)] + rng.normal(0, 1e-5, (400, 8)) * (rng.random((400, 1)) < 0.5)
    ds = _dataset(labels)
    for k, z in ((3, 3.0), (10, -np.inf)):
        _check(ds, f, k=k, z=z)


@pytest.mark.parametrize("budget", [1, 4096, 1 << 20])
def test_knn_mean_is_exact_for_any_block_size(budget: int) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(150, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[:20] = x[20:40]  # duplicates: distance 0
    y = rng.normal(size=(230, 16))
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    for k in (1, 7, 229):
        np.testing.assert_allclose(_outliers_knn.knn_mean(x, x, k, same=True, budget=budget),
                                   _brute_knn(x, x, k, same=True), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(_outliers_knn.knn_mean(x, y, k, same=False, budget=budget),
                                   _brute_knn(x, y, k, same=False), rtol=1e-12, atol=1e-12)
    assert (_outliers_knn.knn_mean(x, x, 1, same=True, budget=budget)[:40] == 0).all()


def test_centroid_bound_is_a_lower_bound() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=(300, 10)) * rng.uniform(0.1, 2, (300, 1))
    mu = y.mean(0)
    away = rng.normal(size=(100, 10))
    x = mu + np.r_[rng.normal(size=(100, 10)) * 3, 20 * away / np.linalg.norm(away, axis=1, keepdims=True)]
    radii = np.sort(np.linalg.norm(y - mu, axis=1))
    for k in (1, 5, 40):
        lb = _outliers_knn.centroid_bound(np.linalg.norm(x - mu, axis=1), radii, k)
        exact = _brute_knn(x, y, k, same=False)
        assert (lb <= exact + 1e-12).all()
        assert (lb[100:] > 0.5 * exact[100:]).all()  # and not a trivial one, for rows away from the class


def test_progress_counts_the_scored_rows() -> None:
    rng = np.random.default_rng(7)
    labels = np.r_[np.zeros(40, np.int64), np.ones(30, np.int64), np.full(3, 2)]  # class 2: too few, no score
    calls: list[tuple[int, int]] = []
    embedding_outliers(_dataset(labels), rng.normal(size=(73, 5)), k=5,
                       progress=lambda done, total: calls.append((done, total)))
    assert calls == [(40, 70), (70, 70)]
