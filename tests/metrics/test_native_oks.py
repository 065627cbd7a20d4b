"""The compiled OKS (``cocoeval.oks_terms`` / ``oks_sums`` around numpy's exp) against its numpy twin and against
``COCOeval.computeOks``' own per-pair formula, bit for bit: labelled and unlabelled truth objects, fewer than 8,
8 to 128 and more than 128 keypoints (numpy's three summation regimes), NaN truth coordinates, terms whose exp
is subnormal or 0."""

from __future__ import annotations

import numpy as np
import pytest

from maslow import _native
from maslow.metrics._iou import keypoint_extent_areas, oks_pairs

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
        kept, fast = oks_pairs(*case)
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        with np.errstate(invalid="ignore"):
            _, twin = oks_pairs(*case)
        monkeypatch.delenv("MASLOW_NATIVE")
        with np.errstate(invalid="ignore"):
            ref = _compute_oks(*case)
        np.testing.assert_array_equal(kept, np.arange(len(case[5])))  # no min_oks: every pair
        assert np.isnan(fast).sum() == len(case[0])  # the NaN truth coordinate: every pair with that truth object
        np.testing.assert_array_equal(fast, ref)
        np.testing.assert_array_equal(fast, twin)


@pytest.mark.parametrize("k", [3, 8, 17, 150])
def test_oks_kernel_is_exact_where_numpy_exp_underflows(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """Terms e whose exp(-e) is normal, subnormal (708 < e < 745.13), rounds to 0 in numpy (up to the kernel's
    760) or is left out by the kernel as surely 0 (above 760, inf), and NaN: each at several keypoint positions."""
    targets = np.array([0.5, 5.0, 700.0, 720.0, 744.9, 745.1, 745.2, 750.0, 760.0, 760.5, 1e4, np.inf])
    rng = np.random.default_rng(k)
    n_d = 40
    sigmas = rng.uniform(0.02, 0.12, k)
    var = (sigmas * 2) ** 2
    area = 1234.5
    g_kp = np.zeros((1, k, 3))
    g_kp[0, :, :2] = rng.uniform(50, 150, (k, 2))
    g_kp[0, :, 2] = 2
    g_kp[0, rng.random(k) < 0.3, 2] = 0  # some unlabelled: the labelled terms are packed
    # e = dx**2 / var / (area + eps) / 2  ->  dx = sqrt(2 e var (area + eps)); several far terms per row
    e = rng.choice(targets, (n_d, k))
    e[: n_d // 2] = np.where(rng.random((n_d // 2, k)) < 0.7, e[: n_d // 2], 745.2)
    e[-1, np.flatnonzero(g_kp[0, :, 2] > 0)[0]] = np.nan  # a NaN term: that pair's OKS is NaN
    with np.errstate(invalid="ignore"):
        dx = np.sqrt(2 * e * var * (area + np.spacing(1)))
    d_kp = np.repeat(g_kp, n_d, axis=0)
    d_kp[:, :, 0] += np.nan_to_num(dx, nan=np.nan, posinf=np.inf)
    g_xywh = np.array([[40.0, 40.0, 120.0, 120.0]])
    case = (d_kp, g_kp, g_xywh, np.array([area]), sigmas, np.arange(n_d), np.zeros(n_d, np.int64))
    monkeypatch.delenv("MASLOW_NATIVE", raising=False)
    _, fast = oks_pairs(*case)
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    with np.errstate(invalid="ignore", under="ignore"):
        _, twin = oks_pairs(*case)
    monkeypatch.delenv("MASLOW_NATIVE")
    with np.errstate(invalid="ignore", under="ignore"):
        ref = _compute_oks(*case)
    labelled = g_kp[0, :, 2] > 0
    used_e = e[:, labelled]
    assert ((used_e > 708) & (used_e < 745.13)).any() and ((used_e > 745.14) & (used_e <= 760)).any()
    assert (used_e > 760).any() and np.isnan(fast).any() and (fast > 0).any()
    np.testing.assert_array_equal(fast, ref)
    np.testing.assert_array_equal(fast, twin)


@pytest.mark.parametrize("min_oks", [0.02, 0.05, 0.3, 0.5, 0.95, 1.0])
def test_oks_kernel_leaves_out_only_pairs_surely_below_min_oks(min_oks: float) -> None:
    """Every pair whose OKS reaches min_oks is kept, with the OKS computed without min_oks; most far ones go."""
    for seed, k in [(0, 17), (1, 5), (2, 150)]:
        d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx = _case(seed, k)
        near = np.random.default_rng(seed).normal(0, 2.0, (8, k, 2))  # predictions close to truth 5: high OKS
        d_kp[:8, :, :2] = g_kp[5, :, :2] + near
        g_area[:] = np.maximum(g_area, 2000)
        g_area[7] = -g_area[7]  # a negative truth area: terms <= 0, exp above 1 (kept, exact)
        g_area[8] = 0.0
        case = (d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx)
        with np.errstate(over="ignore"):
            kept_all, every = oks_pairs(*case)
            kept, oks = oks_pairs(*case, min_oks=min_oks)
        np.testing.assert_array_equal(oks, every[kept])
        reach = np.flatnonzero(every >= min_oks)
        assert np.isin(reach, kept).all()
        assert (every[t_idx == 7] > 1).any()  # the negative area's OKS beyond 1 (far keypoints: exp overflows)
        if min_oks >= 0.3:
            assert len(kept) < len(kept_all) // 2  # the random predictions are far: left out
            assert len(reach) >= 1 or min_oks > 0.9


def test_numpy_exp_is_zero_beyond_the_kernels_cut() -> None:
    """The kernel leaves out terms above 760 as exp(-e) == 0.0: numpy's exp must agree (it does from 745.14)."""
    e = np.concatenate([np.linspace(745.14, 800.0, 100_001), [760.0, 1e300, np.inf]])
    assert not np.exp(-e).any()


def test_oks_kernel_rejects_bad_input() -> None:
    native = _native.load("cocoeval")
    assert native is not None
    d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx = _case(0, 17)
    var = (sigmas * 2) ** 2
    n = len(p_idx)
    d_rows, g_rows = np.arange(len(d_kp)), np.arange(len(g_kp))
    e, n_used, zero = np.empty(n * 17), np.empty(n, np.int64), np.empty((n, 17), np.uint8)

    def terms(**change: np.ndarray) -> int:
        a = {"d_kp": d_kp, "d_rows": d_rows, "g_kp": g_kp, "g_rows": g_rows, "g_xywh": g_xywh, "g_area": g_area,
             "var": var, "p_idx": p_idx, "t_idx": t_idx, "min_oks": -np.inf, "e": e, "n_used": n_used, "zero": zero}
        return native.oks_terms(*{**a, **change}.values())  # type: ignore[no-any-return]

    bad_p, bad_rows = p_idx.copy(), d_rows.copy()
    bad_p[3], bad_rows[2] = len(d_kp), len(d_kp)
    for change in ({"p_idx": bad_p}, {"d_rows": bad_rows}, {"g_rows": g_rows - 1}):
        with pytest.raises(ValueError, match="out of range"):
            terms(**change)
    for change in ({"var": var[:-1]}, {"e": e[:-1]}, {"zero": zero[:-1]}, {"g_area": g_area[:-1]}):
        with pytest.raises(ValueError, match="sizes"):
            terms(**change)
    with pytest.raises(TypeError, match="int64"):
        terms(p_idx=p_idx.astype(np.int32))
    m = terms()
    assert 0 < m < n_used.sum() <= n * 17  # some terms are far (exp 0): not stored
    assert m == n_used.sum() - sum(int(zero[i, :u].sum()) for i, u in enumerate(n_used.tolist()))
    out = np.empty(n)
    native.oks_sums(np.exp(-e[:m]), n_used, zero, out)
    for short in (e[: m - 1], np.append(e[:m], 0.0)):  # ex must hold exactly the stored terms
        with pytest.raises(ValueError, match="as long as"):
            native.oks_sums(short, n_used, zero, out)
    n_used[0] = -1
    with pytest.raises(ValueError, match="n_used"):
        native.oks_sums(e[:m], n_used, zero, out)
    n_used[0] = 18
    with pytest.raises(ValueError, match="n_used"):
        native.oks_sums(e[:m], n_used, zero, out)


def test_oks_reads_keypoints_through_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole keypoint columns read through d_rows/g_rows give what the gathered rows give, both paths."""
    d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx = _case(4, 17)
    rng = np.random.default_rng(4)
    d_full, g_full = rng.uniform(0, 300, (80, 17, 3)), rng.uniform(0, 300, (50, 17, 3))
    d_rows, g_rows = rng.choice(80, len(d_kp), replace=False), rng.choice(50, len(g_kp), replace=False)
    d_full[d_rows], g_full[g_rows] = d_kp, g_kp
    for native in ("1", "0"):
        monkeypatch.setenv("MASLOW_NATIVE", native)
        with np.errstate(invalid="ignore"):
            gathered = oks_pairs(d_kp, g_kp, g_xywh, g_area, sigmas, p_idx, t_idx, 0.3)
            through = oks_pairs(d_full, g_full, g_xywh, g_area, sigmas, p_idx, t_idx, 0.3, d_rows, g_rows)
        np.testing.assert_array_equal(gathered[0], through[0])
        np.testing.assert_array_equal(gathered[1], through[1])


def test_keypoint_extents_equal_numpys_max_and_min(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    for k in (1, 17, 40):
        kp = rng.uniform(-100, 700, (300, k, 3))
        kp[5, 0, 0], kp[6, k - 1, 1], kp[7, 0, 2] = np.nan, np.nan, np.nan  # v NaN: not part of the extent
        kp[8, :, :2] = 3.0  # a single point: area 0
        kp[9, 0, 0] = np.inf
        fast = keypoint_extent_areas(kp)
        monkeypatch.setenv("MASLOW_NATIVE", "0")
        with np.errstate(invalid="ignore"):
            twin = keypoint_extent_areas(kp)
        monkeypatch.delenv("MASLOW_NATIVE")
        np.testing.assert_array_equal(fast, twin)
        assert np.isnan(fast[[5, 6]]).all() and not np.isnan(fast[7]) and fast[8] == 0
        assert fast[9] == np.inf if k > 1 else np.isnan(fast[9])  # one keypoint at inf: inf - inf
    native = _native.load("cocoeval")
    with pytest.raises(ValueError, match="kp must be"):
        native.keypoint_extents(np.zeros((4, 2, 2)), np.empty(4))
