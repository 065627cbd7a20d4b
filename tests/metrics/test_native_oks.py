"""The compiled OKS (``cocoeval.oks_terms`` / ``oks_sums`` around numpy's exp) against its numpy twin and against
``COCOeval.computeOks``' own per-pair formula, bit for bit: labelled and unlabelled truth objects, fewer than 8,
8 to 128 and more than 128 keypoints (numpy's three summation regimes), NaN truth coordinates."""

from __future__ import annotations

import numpy as np
import pytest

from maslow import _native
from maslow.metrics._iou import oks_pairs

pytestmark = pytest.mark.skipif(_native.load("cocoeval") is None, reason="cocoeval kernel not built")


def _case(seed: int, k: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n_d, n_g = 30, 12
    d_kp = rng.uniform(-50, 300, (n_d, k, 3))
    g_kp = rng.uniform(0, 250, (n_g, k, 3))
    g_kp[:, :, 2] = rng.choice([0, 1, 2], (n_g, k), p=[0.4, 0.3, 0.3])
    g_kp[: n_g // 3, :, 2] = 0  # no labelled keypoint: distances to the box twice the truth box
    g_kp[-1, 0, 0] = np.nan
    g_kp[-1, 0, 2] = 2
    g_xywh = np.column_stack([rng.uniform(0, 200, n_g), rng.uniform(0, 200, n_g),
                              rng.uniform(1, 80, n_g), rng.uniform(1, 80, n_g)])
    g_area = rng.uniform(10, 5000, n_g)
    sigmas = rng.uniform(0.02, 0.12, k)
    p_idx = np.repeat(np.arange(n_d), n_g)
    t_idx = np.tile(np.arange(n_g), n_d)
    return d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx


def _compute_oks(d_kp: np.ndarray, g_kp: np.ndarray, g_xywh: np.ndarray, g_area: np.ndarray, sigmas: np.ndarray,
                 p_idx: np.ndarray, t_idx: np.ndarray) -> np.ndarray:
    """``COCOeval.computeOks``' loop body, pair by pair."""
    var = (sigmas * 2) ** 2
    out = np.empty(len(p_idx))
    for n, (i, j) in enumerate(zip(p_idx.tolist(), t_idx.tolist(), strict=True)):
        g, d, bb = g_kp[j].ravel(), d_kp[i].ravel(), g_xywh[j]
        xg, yg, vg = g[0::3], g[1::3], g[2::3]
        xd, yd = d[0::3], d[1::3]
        k1 = np.count_nonzero(vg > 0)
        x0, x1, y0, y1 = bb[0] - bb[2], bb[0] + bb[2] * 2, bb[1] - bb[3], bb[1] + bb[3] * 2
        if k1 > 0:
            dx, dy = xd - xg, yd - yg
        else:
            z = np.zeros(len(sigmas))
            dx = np.max((z, x0 - xd), axis=0) + np.max((z, xd - x1), axis=0)
            dy = np.max((z, y0 - yd), axis=0) + np.max((z, yd - y1), axis=0)
        e = (dx**2 + dy**2) / var / (g_area[j] + np.spacing(1)) / 2
        if k1 > 0:
            e = e[vg > 0]
        out[n] = np.sum(np.exp(-e)) / e.shape[0]
    return out


@pytest.mark.parametrize("k", [1, 5, 8, 17, 20, 150])
def test_oks_kernel_equals_computeoks_and_numpy(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    for seed in range(3):
        case = _case(seed, k)
        monkeypatch.delenv("MASLOW_NATIVE", raising=False)
        fast = oks_pairs(*case)
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        with np.errstate(invalid="ignore"):
            twin = oks_pairs(*case)
        monkeypatch.delenv("MASLOW_NATIVE")
        with np.errstate(invalid="ignore"):
            ref = _compute_oks(*case)
        assert np.isnan(fast).sum() == len(case[0])  # the NaN truth coordinate: every pair with that truth object
        np.testing.assert_array_equal(fast, ref)
        np.testing.assert_array_equal(fast, twin)


def test_oks_kernel_rejects_bad_input() -> None:
    native = _native.load("cocoeval")
    assert native is not None
    d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx = _case(0, 17)
    var = (sigmas * 2) ** 2
    e, n_used = np.empty((len(p_idx), 17)), np.empty(len(p_idx), np.int64)
    bad_p = p_idx.copy()
    bad_p[3] = len(d_kp)
    with pytest.raises(ValueError, match="out of range"):
        native.oks_terms(d_kp, g_kp, g_xywh, g_area, var, bad_p, t_idx, e, n_used)
    with pytest.raises(ValueError, match="sizes"):
        native.oks_terms(d_kp, g_kp, g_xywh, g_area, var[:-1], p_idx, t_idx, e, n_used)
    with pytest.raises(ValueError, match="sizes"):
        native.oks_terms(d_kp, g_kp, g_xywh, g_area, var, p_idx, t_idx, e[:-1], n_used)
    with pytest.raises(TypeError, match="int64"):
        native.oks_terms(d_kp, g_kp, g_xywh, g_area, var, p_idx.astype(np.int32), t_idx, e, n_used)
    native.oks_terms(d_kp, g_kp, g_xywh, g_area, var, p_idx, t_idx, e, n_used)
    out = np.empty(len(p_idx))
    n_used[0] = 0
    with pytest.raises(ValueError, match="n_used"):
        native.oks_sums(e, n_used, out)
    n_used[0] = 18
    with pytest.raises(ValueError, match="n_used"):
        native.oks_sums(e, n_used, out)
