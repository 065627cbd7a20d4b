"""Selection and outliers against brute-force references (float64, all pairs), on small inputs, with duplicates."""

from __future__ import annotations

import numpy as np
import pytest

from maslow.diversity._neighbors import as_features, knn, reduce_dims
from maslow.diversity.outliers import outliers
from maslow.diversity.select import STRATEGIES, _facility_location, select


def _knn_ref(x: np.ndarray, k: int) -> np.ndarray:
    """(m, min(k, m - 1)) sorted distances to the other rows, float64."""
    x = np.asarray(x, np.float64)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, : min(k, len(x) - 1)]


def _cases(rng: np.random.Generator, m: int, d: int) -> list[np.ndarray]:
    x = rng.normal(size=(m, d))
    return [x, x / np.linalg.norm(x, axis=1, keepdims=True), rng.integers(0, 3, (m, d)).astype(float),
            np.full((m, d), 3.0), 100.0 + 0.01 * x, np.repeat(rng.normal(size=(3, d)), 10, axis=0)[:m] + 5.0]


def test_outliers_equal_brute_force_knn_mean_and_mad_rule() -> None:
    rng = np.random.default_rng(0)
    for _ in range(120):
        m, d, k = int(rng.integers(0, 30)), int(rng.integers(1, 6)), int(rng.integers(1, 12))
        n_mads = float(rng.choice([0.0, 1.0, 3.0]))
        for x in _cases(rng, m, d):
            res = outliers(x, k=k, n_mads=n_mads, min_ratio=0.0)  # the threshold alone (the local test: test_outliers_local_ratio)
            kd = _knn_ref(x, k) if m else np.zeros((0, 0))
            score = kd.mean(axis=1) if kd.shape[1] else np.zeros(m)
            scale = max(float(np.abs(x - x.mean(0)).max()) if m else 1.0, 1e-12)
            assert np.allclose(res.score, score, rtol=1e-5, atol=1e-5 * scale), (x, k)
            assert res.k == min(k, max(m - 1, 0))
            assert np.array_equal(res.ranking, np.argsort(-res.score, kind="stable"))
            if m:
                med = np.median(score)
                thr = med + n_mads * 1.4826 * np.median(np.abs(score - med))
                assert res.threshold == pytest.approx(thr, rel=1e-4, abs=1e-5 * scale)
                clear = np.abs(score - thr) > 1e-4 * max(abs(thr), scale)  # away from the threshold's rounding
                assert np.array_equal(res.is_outlier[clear], (score > thr)[clear])


def test_exact_copies_are_at_distance_zero_not_outliers() -> None:
    """3 groups of 30 copies far from the origin: every kNN distance is 0 (float32 expansion made them ~1e-2)."""
    x = np.repeat(np.random.default_rng(1).normal(size=(3, 16)), 30, axis=0) + 5.0
    dist, _ = knn(as_features(x, where="t"), k=5)
    assert (dist == 0).all()
    res = outliers(x, k=5)
    assert res.n_outliers == 0 and res.threshold == 0.0


def _kcenter_ref(z: np.ndarray, b: int) -> list[int]:
    z = z.astype(np.float64)
    picks = [int(np.argmin(((z - z.mean(0)) ** 2).sum(1)))]
    while len(picks) < min(b, len(z)):
        d = ((z[:, None] - z[picks][None]) ** 2).sum(-1).min(1)
        d[picks] = -1
        picks.append(int(np.argmax(d)))
    return picks


def test_kcenter_equals_brute_force_farthest_point_sampling() -> None:
    rng = np.random.default_rng(2)
    for _ in range(100):
        m, d, b = int(rng.integers(3, 30)), int(rng.integers(1, 5)), int(rng.integers(1, 35))
        x = rng.normal(size=(m, d))
        sel = select(x, budget=b, strategy="kcenter", quality_gate=False)
        assert sel.order.tolist() == _kcenter_ref(reduce_dims(as_features(x, where="t")), b)
        assert np.isnan(sel.score[0]) and np.all(np.diff(sel.score[1:]) <= 1e-6)  # distances only shrink


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_image_picked_twice_and_budget_filled_with_duplicates(strategy: str) -> None:
    rng = np.random.default_rng(3)
    for x in (np.ones((6, 2)), np.repeat(np.eye(3), 3, axis=0), np.round(rng.normal(size=(25, 2))),
              np.concatenate([np.repeat(rng.normal(size=(3, 4)), 8, axis=0), rng.normal(size=(5, 4))])):
        for b in (1, 3, len(x), len(x) + 4):
            for gate in (True, False):
                sel = select(x, budget=b, strategy=strategy, rng=0, quality_gate=gate,  # type: ignore[arg-type]
                             strata=np.arange(len(x)) % 2)
                o = sel.order.tolist()
                assert len(o) == min(b, len(x)) and len(set(o)) == len(o), (strategy, x.tolist(), b, o)
                again = select(x, budget=b, strategy=strategy, rng=0, quality_gate=gate,  # type: ignore[arg-type]
                               strata=np.arange(len(x)) % 2)
                assert again.order.tolist() == o  # same seed, same order


def _facility_ref(z: np.ndarray, b: int, picks: np.ndarray) -> float:
    """Largest shortfall (share of the images) of a pick's gain below the best gain at its step (float64)."""
    z64, m = z.astype(np.float64), len(z)
    d2 = ((z64[:, None] - z64[None]) ** 2).sum(-1)
    nn = knn(z, k=20)[1]  # the neighbour sets (ties among copies: any order); distances recomputed below
    kd = np.sqrt(np.take_along_axis(d2, nn, 1))
    spread = kd.mean(1) if kd.shape[1] else np.ones(m)
    sigma = 1.5 * np.median(spread) if kd.shape[1] else 1.0
    if not sigma > 0:
        sigma = 1.5 * np.median(spread[spread > 0]) if (spread > 0).any() else 1.0
    inv = 1 / (2 * sigma**2)
    w = np.maximum(spread / spread.mean(), 1e-3) if spread.mean() > 0 else np.ones(m)
    b, b1 = min(b, m), min(b, m // 32)
    wk = np.exp(-kd[:, :10] ** 2 * inv / 2)
    mu = (z64 + (z64[nn[:, :10]] * wk[:, :, None]).sum(1)) / (1 + wk.sum(1))[:, None]
    phases = ((np.exp(-d2 * inv), w, 0, b1), (np.exp(-((z64[:, None] - mu[None]) ** 2).sum(-1) * inv), np.ones(m), b1, b))
    worst = 0.0
    for s, weight, lo, hi in phases:
        cur = s[:, picks[:lo]].max(1) if lo else np.zeros(m)
        for t in range(lo, hi):
            gains = (np.maximum(s - cur[:, None], 0) * weight[:, None]).sum(0)
            gains[picks[:t]] = -np.inf
            worst = max(worst, (gains.max() - gains[picks[t]]) / weight.sum())
            cur = np.maximum(cur, s[:, picks[t]])
    return worst


def test_facility_location_every_pick_is_the_greedy_best() -> None:
    """Both phases (m >= 64 gives spread picks), against the documented objective in float64."""
    rng = np.random.default_rng(4)
    for trial in range(12):
        m, d = int(rng.integers(2, 110)), int(rng.integers(1, 5))
        x = rng.normal(0, 5, (4, d))[rng.integers(0, 4, m)] + rng.normal(size=(m, d))
        if trial % 4 == 0:
            x = np.round(x)  # many exact copies: the median 20-NN distance is 0
        z = reduce_dims(as_features(x, where="t"))
        b = int(rng.integers(1, m + 3))
        picks = _facility_location(z, b, np.random.default_rng(0))[0]
        assert len(picks) == min(b, m) and len(set(picks.tolist())) == len(picks)
        assert _facility_ref(z, b, picks) < 1e-4


def test_gate_keeps_distinct_images_when_most_are_copies() -> None:
    """60 copies of 3 images + 30 distinct ones: the MAD is 0; the distinct images must not be held back."""
    g = np.random.default_rng(5)
    x = np.concatenate([np.repeat(g.normal(size=(3, 8)), 20, axis=0), g.normal(size=(30, 8))])
    for strategy in ("auto", "kcenter"):
        sel = select(x, budget=12, strategy=strategy, rng=0)
        assert len(sel.gated) == 0
        assert (sel.order >= 60).sum() >= 6  # no run of copies before the distinct images
    y = np.concatenate([g.normal(size=(40, 4)), [[60.0, 60, 60, 60]]])
    sel = select(y, budget=41, rng=0)
    assert 40 in sel.gated and sel.order[-1] == 40  # a genuine outlier is still held back, last


def test_round_robin_over_sequences_and_every_sequence_picked() -> None:
    rng = np.random.default_rng(6)
    for _ in range(40):
        m = int(rng.integers(1, 40))
        seq, x, b = rng.integers(0, 5, m), rng.normal(size=(m, 3)), int(rng.integers(1, m + 1))
        for strategy in ("auto", "kcenter", "kmeans", "typicality", "stratified"):
            sel = select(x, budget=b, strategy=strategy, sequence=seq, rng=0, quality_gate=False)
            seen: dict[int, int] = {}
            ranks = []
            for i in sel.order.tolist():
                ranks.append(seen.get(int(seq[i]), 0))
                seen[int(seq[i])] = ranks[-1] + 1
            assert all(np.diff(ranks) >= 0)  # the i-th pick of a sequence after every sequence's (i-1)-th
            if b >= len(set(seq.tolist())):
                assert set(seq[sel.order].tolist()) == set(seq.tolist())


def test_star_import_defines_every_public_name() -> None:
    import maslow.diversity as div

    assert all(hasattr(div, name) for name in div.__all__)
    assert div.select.__name__ == "maslow.diversity.select"  # still the module, not shadowed by the function
