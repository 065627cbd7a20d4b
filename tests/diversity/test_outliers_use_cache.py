"""``use_cache=False`` for the analyses that embed (``select``, ``dataset_outliers``), as ``embed_dataset`` has it:
the same result, nothing read from or written to the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maslow.diversity.outliers import dataset_outliers, outliers
from maslow.diversity.select import select
from maslow.embed import embed_dataset
from maslow.sample import write_shapes


def test_outliers_without_the_cache_equal_outliers_with_it(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "s", 16, seed=3)
    cache = tmp_path / "cache"
    plain = dataset_outliers(ds, embedder="light", cache_dir=cache, use_cache=False)
    assert not cache.exists()
    cached = dataset_outliers(ds, embedder="light", cache_dir=cache)
    assert any(cache.rglob("index.json"))
    # the reference: outliers of the features embed_dataset computes (no cache either)
    ref = outliers(embed_dataset(ds, embedder="light", use_cache=False))
    for r in (plain, cached):
        np.testing.assert_array_equal(r.ranking, ref.ranking)
        np.testing.assert_allclose(r.score, ref.score, rtol=1e-6)
        assert r.threshold == ref.threshold


def test_select_without_the_cache_equals_select_with_it(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "s", 16, seed=4)
    cache = tmp_path / "cache"
    plain = select(ds, budget=6, embedder="light", cache_dir=cache, use_cache=False, rng=0)
    assert not cache.exists()
    cached = select(ds, budget=6, embedder="light", cache_dir=cache, rng=0)
    assert any(cache.rglob("index.json"))
    np.testing.assert_array_equal(plain.order, cached.order)
    np.testing.assert_array_equal(plain.gated, cached.gated)
    np.testing.assert_allclose(plain.score, cached.score, rtol=1e-6)
