"""``_iou.oks_pairs`` through the compiled kernel a block of pairs at a time (``OKS_BLOCK``), with the first pass
of ``cocoeval.oks_terms`` stopping once a pair surely misses ``min_oks`` and each truth object's labelled
keypoints counted once per block: the same pairs kept and the same OKS, bit for bit, whatever the block size, as
the numpy twin and as ``COCOeval.computeOks`` (pair by pair). Skipped when the kernel was not built."""

from __future__ import annotations

import numpy as np
import pytest

from maslow import _native
from maslow.metrics import _iou
from maslow.metrics._iou import oks_pairs
from tests.metrics.test_native_oks import _compute_oks

pytestmark = pytest.mark.skipif(_native.load("cocoeval") is None, reason="cocoeval kernel not built")


def _case(seed: int, k: int) -> tuple[np.ndarray, ...]:
    """Predictions near some truth objects and far from others; truth objects with 0 to k labelled keypoints
    (so the first pass stops at every count of far terms), prediction-major pairs with several predictions per
    truth object, as coco_map makes them."""
    rng = np.random.default_rng(seed)
    n_d, n_g = 60, 9
    g_kp = rng.uniform(0, 300, (n_g, k, 3))
    g_kp[:, :, 2] = 2
    for j in range(n_g):  # truth j labels about j / (n_g - 1) of its keypoints
        g_kp[j, rng.random(k) >= j / (n_g - 1), 2] = 0
    g_xywh = np.column_stack([rng.uniform(0, 200, n_g), rng.uniform(0, 200, n_g),
                              rng.uniform(5, 80, n_g), rng.uniform(5, 80, n_g)])
    g_area = rng.uniform(500, 8000, n_g)
    near = rng.integers(0, n_g, n_d)
    d_kp = g_kp[near].copy()
    d_kp[:, :, :2] += rng.normal(0, 1, (n_d, k, 2)) * rng.choice([0.5, 3, 10, 40], (n_d, 1, 1))
    far = rng.random((n_d, k)) < 0.3  # a few keypoints thrown far away
    d_kp[:, :, 0] += np.where(far, rng.uniform(100, 500, (n_d, k)), 0)
    sigmas = rng.uniform(0.02, 0.12, k)
    p_idx = np.repeat(np.arange(n_d), n_g)
    t_idx = np.tile(np.arange(n_g), n_d)
    return d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx


@pytest.mark.parametrize("k", [1, 5, 17])
@pytest.mark.parametrize("min_oks", [-np.inf, 0.3, 0.5, 0.75, 0.95])
def test_blocks_and_early_stop_change_nothing(monkeypatch: pytest.MonkeyPatch, k: int, min_oks: float) -> None:
    for seed in range(3):
        case = _case(seed, k)
        monkeypatch.setattr(_iou, "OKS_BLOCK", 10**9)
        kept, oks = oks_pairs(*case, min_oks=min_oks)
        for block in (1, 7, 64):  # a block boundary inside a prediction's pairs, and between predictions
            monkeypatch.setattr(_iou, "OKS_BLOCK", block)
            b_kept, b_oks = oks_pairs(*case, min_oks=min_oks)
            np.testing.assert_array_equal(b_kept, kept)
            np.testing.assert_array_equal(b_oks, oks)
        ref = _compute_oks(*case)
        np.testing.assert_array_equal(oks, ref[kept])  # the kept pairs' OKS: computeOks' own
        assert np.isin(np.flatnonzero(ref >= min_oks), kept).all()  # every pair that can match is kept
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        _, twin = oks_pairs(*case)
        monkeypatch.delenv("MASLOW_NATIVE")
        np.testing.assert_array_equal(oks, twin[kept])
        if min_oks >= 0.5:
            assert 0 < len(kept) < len(case[5])  # pairs left out, pairs kept


def test_pairs_in_any_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pairs not grouped by prediction (the prefetch of the rows ahead, the labelled counts cached per truth
    object): the same OKS as pair by pair."""
    d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx = _case(5, 17)
    order = np.random.default_rng(0).permutation(len(p_idx))
    case = (d_kp, g_kp, g_xywh, g_area, sigmas, p_idx[order], t_idx[order])
    monkeypatch.setattr(_iou, "OKS_BLOCK", 50)
    kept, oks = oks_pairs(*case, min_oks=0.5)
    ref = _compute_oks(*case)
    np.testing.assert_array_equal(oks, ref[kept])
    assert np.isin(np.flatnonzero(ref >= 0.5), kept).all()
