"""``knn`` (the outlier scores, the selection's quality gate, typicality, facility location): exact and bounded.

Exact: the k smallest Euclidean distances computed in float64 from the float32 rows, ties to the lower row index,
whatever the block size. Bounded: blocks of rows sized by bytes, never m x m; the scale audit of 2026 measured
the old fixed 2,048-row blocks (float32 distances plus an int64 argpartition of each) at about 50 KB per image:
2 GB for 40,000 images.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from maslow.diversity._neighbors import knn


def _reference(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full float64 distance matrix; each row's k smallest, ties to the lower index."""
    x64 = x.astype(np.float64)
    d2 = ((x64[:, None, :] - x64[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(d2, np.inf)
    m = len(x)
    idx = np.array([np.lexsort((np.arange(m), d2[i]))[:k] for i in range(m)], dtype=np.int64).reshape(m, k)
    return np.sqrt(np.take_along_axis(d2, idx, axis=1)), idx


def _data(rng: np.random.Generator, m: int, d: int) -> np.ndarray:
    x = rng.normal(size=(m, d)) * float(rng.choice([1e-3, 1.0, 100.0])) + float(rng.choice([0.0, 10.0, 1000.0]))
    x = x.astype(np.float32)
    if m > 3:
        x[rng.integers(0, m, m // 4)] = x[rng.integers(0, m, m // 4)]  # exact copies (ties at 0)
    if rng.random() < 0.3:
        x = np.round(x)  # many ties
    return x


@pytest.mark.parametrize("block_bytes", [1, 5_000, 1 << 27])
def test_knn_equals_float64_brute_force(block_bytes: int) -> None:
    rng = np.random.default_rng(block_bytes)
    for _ in range(25):
        m, d, k = int(rng.integers(1, 300)), int(rng.integers(1, 70)), int(rng.integers(1, 15))
        x = _data(rng, m, d)
        dist, idx = knn(x, k=k, block_bytes=block_bytes)
        kk = max(min(k, m - 1), 0)
        ref_d, ref_i = _reference(x, kk)
        assert dist.shape == idx.shape == (m, kk)
        assert np.array_equal(idx, ref_i), (m, d, k)
        np.testing.assert_allclose(dist, ref_d, rtol=1e-12, atol=0)


def test_uncentred_near_neighbours_are_exact() -> None:
    """Points 1e-2 apart around 1,000: the float32 expansion's error (~1e-1 in squared distance) is larger than the
    gaps, so choosing neighbours from it alone (as before) picks wrong ones; the re-measured candidates do not."""
    rng = np.random.default_rng(4)
    x = (1000.0 + 1e-2 * rng.normal(size=(400, 16))).astype(np.float32)
    dist, idx = knn(x, k=5)
    ref_d, ref_i = _reference(x, 5)
    assert np.array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-12)


def test_huge_and_tiny_features() -> None:
    """Rows of norm 1e25 (their float32 squares would overflow) and 1e-25 (would underflow): still exact."""
    rng = np.random.default_rng(5)
    for scale in (1e25, 1e-25):
        x = (rng.normal(size=(120, 6)) * scale).astype(np.float32)
        dist, idx = knn(x, k=4)
        ref_d, ref_i = _reference(x, 4)
        assert np.array_equal(idx, ref_i)
        np.testing.assert_allclose(dist, ref_d, rtol=1e-12)


def test_copies_are_at_distance_zero_and_ties_go_to_the_lower_row() -> None:
    x = np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32)
    x[[10, 20, 30]] = x[40]
    dist, idx = knn(x, k=3)
    assert idx[40].tolist() == [10, 20, 30] and idx[10].tolist() == [20, 30, 40]
    assert (dist[[10, 20, 30, 40]] == 0).all()


def test_memory_is_bounded_by_the_block_not_the_square() -> None:
    """6,000 rows: the old 2,048-row blocks held about 245 MB (2,048 x 6,000 float32 estimates, temporaries and
    an int64 argpartition); a 4 MB block keeps the peak near 4 MB plus the outputs."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6000, 24)).astype(np.float32)
    tracemalloc.start()
    try:
        dist, idx = knn(x, k=10, block_bytes=1 << 22)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    outputs = dist.nbytes + idx.nbytes + 2 * x.nbytes
    assert peak < (1 << 22) + outputs + (2 << 20), peak
    sample = rng.choice(6000, 40, replace=False)  # spot check against brute force on a few rows
    x64 = x.astype(np.float64)
    for i in sample:
        d2 = ((x64 - x64[i]) ** 2).sum(axis=1)
        d2[i] = np.inf
        assert idx[i].tolist() == np.lexsort((np.arange(6000), d2))[:10].tolist()


def test_non_finite_rows_are_refused_by_name() -> None:
    from maslow.diversity._neighbors import knn

    x = np.zeros((5, 3))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="row 3 holds NaN or infinity"):
        knn(x, k=2)
