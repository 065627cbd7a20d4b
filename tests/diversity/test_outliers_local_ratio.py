"""Outliers with the local-density test of select's quality gate: a sparse but genuine group is not listed whole,
isolated glitches still are, and an unreadable image is listed (not fatal)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from maslow.diversity.outliers import dataset_outliers, outliers
from maslow.diversity.select import folder_dataset, select
from maslow.errors import MaslowError
from tests.helpers import run_cli


def _slides_and_photos(folder: Path, *, seed: int = 0, n_slides: int = 30, n_photos: int = 16,
                       n_glitches: int = 2) -> None:
    """``n_slides`` near-identical microscope slides (pink, purple cells), ``n_photos`` varied outdoor photos (sky,
    ground, objects: a second, sparser but genuine group) and ``n_glitches`` slides with a band of dead pixels."""
    g = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:96, :128]
    slide = np.zeros((96, 128, 3), np.float32)
    slide[:] = (235, 190, 215)
    for c in g.uniform((10, 10), (86, 118), (12, 2)):
        slide[(yy - c[0]) ** 2 + (xx - c[1]) ** 2 < 60] = (120, 60, 150)
    for i in range(n_slides):
        arr = np.clip(slide + g.normal(0, 4, slide.shape), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"slide_{i:02d}.png")
    for i in range(n_photos):
        arr = np.zeros((96, 128, 3), np.float32)
        h = int(g.integers(30, 60))
        arr[:h] = g.uniform((60, 110, 170), (140, 180, 250))
        arr[h:] = g.uniform((50, 80, 20), (120, 150, 80))
        im = Image.fromarray(np.clip(arr + g.normal(0, 8, arr.shape), 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for _ in range(int(g.integers(2, 6))):
            x0, y0 = int(g.integers(0, 110)), int(g.integers(20, 80))
            draw.rectangle([x0, y0, x0 + int(g.integers(6, 30)), y0 + int(g.integers(6, 25))],
                           fill=tuple(int(v) for v in g.integers(0, 256, 3)))
        im.save(folder / f"photo_{i:02d}.png")
    for j in range(n_glitches):
        arr = slide + g.normal(0, 4, slide.shape)
        arr[:, 40 + 30 * j : 80 + 30 * j] = 0
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"zglitch_{j}.png")


@pytest.mark.parametrize("seed", [0, 1])
def test_a_sparse_genuine_group_is_not_listed_whole_but_glitches_are(tmp_path: Path, seed: int) -> None:
    """The audit's case: 30 near-identical slides and 16 ordinary photos; the global threshold listed all 16."""
    _slides_and_photos(tmp_path / "f", seed=seed)
    base = ["outliers", str(tmp_path / "f"), "--embedder", "light", "--cache-dir", str(tmp_path / "c"), "--json",
            "--top", "100"]
    code, out = run_cli(base)
    assert code == 0, out
    d = json.loads(out)
    assert sorted(o["path"] for o in d["outliers"]) == ["zglitch_0.png", "zglitch_1.png"]
    assert d["n_kept_by_ratio"] == 16 and d["min_ratio"] == 3.0
    for o in d["outliers"]:  # the numbers that say why, in JSON
        assert o["ratio"] >= 3 and o["score"] > d["threshold"]
        assert f"{o['ratio']:.3g} x its neighbours'" in o["reason"]
    # --min-ratio 0: the threshold alone, the old behaviour, lists every photo too
    code, out = run_cli([*base, "--min-ratio", "0"])
    assert code == 0, out
    listed = {o["path"] for o in json.loads(out)["outliers"]}
    assert {f"photo_{i:02d}.png" for i in range(16)} | {"zglitch_0.png", "zglitch_1.png"} == listed


def test_isolated_glitches_are_still_found_among_one_group(tmp_path: Path) -> None:
    _slides_and_photos(tmp_path / "f", n_photos=0, n_glitches=2)
    res = dataset_outliers(folder_dataset(tmp_path / "f"), embedder="light", cache_dir=tmp_path / "c")
    assert res.paths is not None
    assert sorted(str(res.paths[i]) for i in res.top()) == ["zglitch_0.png", "zglitch_1.png"]
    assert res.n_kept_by_ratio == 0


def _ref(x: np.ndarray, k: int, n_mads: float, min_ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute force in float64: (score, ratio, is_outlier)."""
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, : len(x) - 1]
    score = np.take_along_axis(d, order, axis=1)[:, :k].mean(axis=1)
    nb = order[:, : min(10, len(x) - 1)]
    ratio = score / np.maximum(np.median(score[nb], axis=1), 1e-12)
    med = np.median(score)
    thr = med + n_mads * 1.4826 * np.median(np.abs(score - med))
    return score, ratio, (score > thr) & (ratio >= min_ratio)


def test_outliers_equal_a_brute_force_threshold_and_local_ratio() -> None:
    rng = np.random.default_rng(0)
    for _ in range(80):
        m, dim, k = int(rng.integers(3, 40)), int(rng.integers(1, 6)), int(rng.integers(1, 12))
        n_mads, min_ratio = float(rng.choice([0.0, 1.0, 3.0])), float(rng.choice([0.0, 1.5, 3.0]))
        x = rng.normal(size=(m, dim)) * rng.uniform(0.1, 3.0, (m, 1))  # some sparse rows; no distance ties
        res = outliers(x, k=k, n_mads=n_mads, min_ratio=min_ratio)
        score, ratio, is_out = _ref(x, min(k, m - 1), n_mads, min_ratio)
        assert np.allclose(res.score, score, rtol=1e-4, atol=1e-5)
        assert np.allclose(res.ratio, ratio, rtol=1e-3, atol=1e-5)
        clear = (np.abs(res.score - res.threshold) > 1e-4) & (np.abs(ratio - min_ratio) > 1e-3)  # off the edges
        assert np.array_equal(res.is_outlier[clear], is_out[clear]), (m, k, n_mads, min_ratio)
        assert res.n_kept_by_ratio == int((res.above_threshold & ~res.is_outlier).sum())


def test_select_gate_is_the_outliers_test() -> None:
    """One function: select's gated rows are ``outliers(x, k=3, n_mads=gate_mads, min_ratio=gate_ratio)``'s."""
    from tests.diversity.test_select_gate import two_cameras_and_glitches

    x = two_cameras_and_glitches()
    for gate_mads, gate_ratio in ((4.0, 3.0), (4.0, 0.0), (2.0, 1.5)):
        sel = select(x, budget=5, rng=0, gate_mads=gate_mads, gate_ratio=gate_ratio)
        res = outliers(x, k=3, n_mads=gate_mads, min_ratio=gate_ratio)
        assert sorted(sel.gated.tolist()) == sorted(res.top().tolist())
        assert all(why == f"outlier: {res.reason(int(i))}" for i, why in zip(sel.gated, sel.gate_reason, strict=True))
    with pytest.raises(MaslowError, match="select: gate_ratio must be a number >= 0, got -1"):
        select(x, budget=3, gate_ratio=-1.0)


def test_min_ratio_is_checked(tmp_path: Path) -> None:
    with pytest.raises(MaslowError, match="min_ratio must be a number >= 0"):
        outliers(np.random.default_rng(0).normal(size=(20, 3)), min_ratio=float("nan"))
    _slides_and_photos(tmp_path / "f", n_slides=3, n_photos=0, n_glitches=0)
    code, out = run_cli(["outliers", str(tmp_path / "f"), "--embedder", "light", "--cache-dir", str(tmp_path / "c"),
                         "--min-ratio", "-1"])
    assert code == 2 and "--min-ratio must be a number >= 0" in out


def test_unreadable_images_are_listed_as_outliers_not_fatal(tmp_path: Path) -> None:
    _slides_and_photos(tmp_path / "f", n_photos=0, n_glitches=1)
    cache = tmp_path / "c"
    clean = dataset_outliers(folder_dataset(tmp_path / "f"), embedder="light", cache_dir=cache)
    (tmp_path / "f" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    (tmp_path / "f" / "slide_99.jpg").write_bytes(b"garbage")
    ds = folder_dataset(tmp_path / "f")
    bad = sorted(i for i, p in enumerate(ds.images.path.tolist()) if p in ("broken.png", "slide_99.jpg"))
    res = dataset_outliers(ds, embedder="light", cache_dir=cache)
    assert res.top()[:2].tolist() == bad  # listed first
    assert res.unreadable.tolist() == bad
    assert all(res.reason(i).startswith("unreadable: ") and str(ds.images.path[i]) in res.reason(i) for i in bad)
    assert np.isnan(res.score[bad]).all() and np.isnan(res.ratio[bad]).all()
    # the readable images are scored as if the broken files were not there
    ok = np.array([i not in bad for i in range(ds.n_images)])
    assert np.allclose(res.score[ok], clean.score) and res.threshold == pytest.approx(clean.threshold)
    assert res.paths is not None and clean.paths is not None
    assert [str(res.paths[i]) for i in res.top()[2:]] == [str(clean.paths[i]) for i in clean.top()]

    code, out = run_cli(["outliers", str(tmp_path / "f"), "--embedder", "light", "--cache-dir", str(cache), "--json"])
    assert code == 0, out
    d = json.loads(out)  # valid JSON: no NaN
    assert d["n_unreadable"] == 2
    first = d["outliers"][:2]
    assert [o["path"] for o in first] == ["broken.png", "slide_99.jpg"]
    assert all(o["score"] is None and o["reason"].startswith("unreadable: ") for o in first)
