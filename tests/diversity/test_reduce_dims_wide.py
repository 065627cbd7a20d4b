"""PCA of fewer images than dimensions (network embeddings of a small set): the same projection as scikit-learn's
PCA, from the small m x m Gram matrix instead of the d x d covariance."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from maslow.diversity._neighbors import reduce_dims


def _pairwise(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    return np.sqrt(np.maximum(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1), 0))


@pytest.mark.parametrize(("m", "d"), [(100, 400), (65, 1280), (300, 200)])
def test_projection_equals_sklearn_pca(m: int, d: int) -> None:
    decomposition = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(m + d)
    x = (rng.normal(size=(m, 8)) @ rng.normal(size=(8, d)) + 0.1 * rng.normal(size=(m, d))).astype(np.float32)
    got = reduce_dims(x)
    ref = decomposition.PCA(n_components=64, svd_solver="full").fit_transform(x.astype(np.float64))
    assert got.shape == (m, 64) and got.dtype == np.float32
    np.testing.assert_allclose(np.abs(got), np.abs(ref), atol=1e-3 * np.abs(ref).max())  # columns up to sign
    np.testing.assert_allclose(_pairwise(got), _pairwise(ref), atol=1e-3 * _pairwise(ref).max())


def test_few_wide_embeddings_need_no_d_by_d_matrix() -> None:
    """100 embeddings of 3,000 dimensions: the d x d covariance alone was 72 MB (and its eigh seconds)."""
    x = np.random.default_rng(0).normal(size=(100, 3000)).astype(np.float32)
    tracemalloc.start()
    try:
        z = reduce_dims(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert z.shape == (100, 64)
    assert peak < 20_000_000, peak
