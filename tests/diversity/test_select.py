"""Diverse selection and ordering, and outliers, through the public API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maslow.cli.main import app
from maslow.core.dataset import Dataset
from maslow.diversity.outliers import outliers
from maslow.diversity.select import STRATEGIES, folder_dataset, select
from maslow.errors import InvalidDatasetError, MaslowError


def _blobs(rng: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five Gaussian clusters of unequal size plus three far outliers (label -1)."""
    g = np.random.default_rng(rng)
    sizes = [120, 60, 40, 20, 10]
    centres = g.normal(0, 10, (5, 6))
    x = np.concatenate([g.normal(c, 1.0, (n, 6)) for c, n in zip(centres, sizes, strict=True)])
    y = np.repeat(np.arange(5), sizes)
    x = np.concatenate([x, g.normal(0, 1, (3, 6)) + 80])
    return x, np.concatenate([y, [-1, -1, -1]])


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s != "stratified"])
def test_every_strategy_returns_budget_distinct_rows(strategy: str) -> None:
    x, _ = _blobs()
    sel = select(x, budget=12, strategy=strategy, rng=1)  # type: ignore[arg-type]
    assert len(sel) == 12 and len(set(sel.order.tolist())) == 12
    assert sel.order.min() >= 0 and sel.order.max() < len(x)
    assert len(sel.score) == len(sel.reason) == 12
    d = sel.to_dict()
    assert d["n_selected"] == 12 and d["picks"][0]["rank"] == 1


def test_auto_covers_every_cluster_first_and_skips_outliers() -> None:
    x, y = _blobs()
    sel = select(x, budget=5, rng=0)
    assert sorted(y[sel.order].tolist()) == [0, 1, 2, 3, 4]
    assert {len(x) - 3, len(x) - 2, len(x) - 1} <= set(sel.gated.tolist())
    assert len(sel.gated) <= 6
    # plain k-center starts with the outliers: the failure mode the default avoids
    kc = select(x, budget=5, strategy="kcenter", quality_gate=False)
    assert (y[kc.order[:2]] == -1).any()


def test_gated_rows_come_last() -> None:
    x, y = _blobs()
    sel = select(x, budget=len(x), rng=0)
    assert sorted(sel.order.tolist()) == list(range(len(x)))
    n_gated = len(sel.gated)
    assert set(np.flatnonzero(y == -1).tolist()) <= set(sel.order[-n_gated:].tolist())
    assert all("quality gate" in str(r) for r in sel.reason[-n_gated:])


def test_same_seed_same_order_and_input_untouched() -> None:
    x, _ = _blobs()
    before = x.copy()
    a = select(x, budget=20, strategy="typicality", rng=3)
    b = select(x, budget=20, strategy="typicality", rng=3)
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(x, before)


def test_auto_beats_random_on_digits() -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.linear_model import LogisticRegression

    x, y = datasets.load_digits(return_X_y=True)
    x = x / 16.0
    order = select(x, budget=36, rng=0).order

    def acc(idx: np.ndarray) -> float:
        return float(LogisticRegression(max_iter=500).fit(x[idx], y[idx]).score(x, y))

    rand = np.mean([acc(np.random.default_rng(s).permutation(len(x))[:18]) for s in range(3)])
    assert acc(order[:18]) > rand + 0.1
    assert len(set(y[order[:18]].tolist())) >= 9


def test_sequences_are_spanned_first() -> None:
    g = np.random.default_rng(0)
    # 4 videos of 30 near-identical frames each; video 0 has much more variety (would hog the picks)
    feats = np.concatenate([g.normal(v * 5, 0.1 if v else 3.0, (30, 4)) for v in range(4)])
    seq = np.repeat([f"v{v}" for v in range(4)], 30)
    sel = select(feats, budget=8, sequence=seq, rng=0, quality_gate=False)
    assert set(seq[sel.order[:4]].tolist()) == {"v0", "v1", "v2", "v3"}
    with pytest.raises(InvalidDatasetError, match="one entry per image"):
        select(feats, budget=3, sequence=seq[:5])


def test_stratified_keeps_proportions_at_every_prefix() -> None:
    x, _ = _blobs()
    strata = np.array(["a"] * 150 + ["b"] * 50 + ["c"] * (len(x) - 200))
    sel = select(x, budget=40, strategy="stratified", strata=strata, quality_gate=False, rng=0)
    first = strata[sel.order[:20]]
    assert 12 <= (first == "a").sum() <= 16 and 3 <= (first == "b").sum() <= 7
    with pytest.raises(MaslowError, match="needs strata"):
        select(x, budget=4, strategy="stratified")


def test_bad_arguments() -> None:
    x, _ = _blobs()
    with pytest.raises(MaslowError, match="strategy must be one of"):
        select(x, budget=3, strategy="best")  # type: ignore[arg-type]
    with pytest.raises(MaslowError, match="budget must be >= 1"):
        select(x, budget=0)
    with pytest.raises(InvalidDatasetError, match="row 2 must be finite"):
        select(np.array([[0.0], [1.0], [np.nan]]), budget=1)
    assert len(select(x[:0], budget=3)) == 0
    assert len(select(x[:4], budget=10, rng=0)) == 4


def test_outliers_ranked_with_robust_threshold() -> None:
    x, y = _blobs()
    res = outliers(x, k=5)
    assert set(res.ranking[:3].tolist()) == set(np.flatnonzero(y == -1).tolist())
    assert res.is_outlier[y == -1].all() and res.n_outliers < 15
    assert outliers(x, k=5, n_mads=30).n_outliers == 3
    assert res.score[res.ranking[0]] >= res.score[res.ranking[-1]]
    d = res.to_dict(limit=2)
    assert len(d["outliers"]) == 2 and d["n_outliers"] == res.n_outliers
    assert outliers(np.ones((6, 3)), k=3).n_outliers == 0


@pytest.mark.parametrize(("k", "n_mads", "match"), [
    pytest.param(0, 3.0, "k must be >= 1, got 0", id="zero-k"),  # used to call every image an inlier
    pytest.param(-2, 3.0, "k must be >= 1, got -2", id="negative-k"),
    pytest.param(5, float("nan"), "n_mads must be a number >= 0, got nan", id="nan-mads"),
])
def test_outliers_refuse_bad_knobs(k: int, n_mads: float, match: str) -> None:
    with pytest.raises(MaslowError, match=match):
        outliers(_blobs()[0], k=k, n_mads=n_mads)


def _video(folder: Path) -> list[int]:
    """3 scenes x 8 frames in folder/clip, a blank frame at 5 and a noise frame at 17; returns scene per frame."""
    g = np.random.default_rng(0)
    (folder / "clip").mkdir(parents=True)
    scenes = []
    for s in range(3):
        base = np.zeros((48, 64, 3), np.uint8)
        base[:] = g.integers(0, 256, 3)
        base[5:30, 10 + 10 * s : 40 + 10 * s] = g.integers(0, 256, 3)
        for _ in range(8):
            scenes.append((s, np.clip(base + g.normal(0, 3, base.shape), 0, 255).astype(np.uint8)))
    frames = [f for _, f in scenes]
    sid = [s for s, _ in scenes]
    frames.insert(5, np.zeros((48, 64, 3), np.uint8))
    sid.insert(5, -1)
    frames.insert(17, g.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    sid.insert(17, -1)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / "clip" / f"f{i:03d}.png")
    return sid


def test_folder_selection_spans_scenes_and_skips_glitches(tmp_path: Path) -> None:
    sid = np.array(_video(tmp_path / "v"))
    ds = folder_dataset(tmp_path / "v")
    assert ds.n_images == len(sid) and ds.n_annotations == 0
    sel = select(ds, budget=len(sid), embedder="light", cache_dir=tmp_path / "cache", rng=0)
    assert set(sid[sel.order[:3]].tolist()) == {0, 1, 2}
    assert (sid[sel.order[:10]] >= 0).all()
    assert 5 in sel.gated.tolist()
    assert sel.paths is not None and str(sel.paths[sel.order[0]]).startswith("clip/")


def test_shapes_sequences_spanned(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    sel = select(shapes_on_disk, budget=6, embedder="light", cache_dir=tmp_path / "c", rng=0)
    seq = shapes_on_disk.images.extra["sequence"]
    n_seq = len(set(seq.tolist()))
    passing = [i for i in range(shapes_on_disk.n_images) if i not in set(sel.gated.tolist())]
    expected = min(n_seq, len({seq[i] for i in passing}))
    assert len({seq[i] for i in sel.order[:n_seq]}) == expected


def test_cli_select_embed_outliers(tmp_path: Path) -> None:
    sid = np.array(_video(tmp_path / "v"))
    runner = CliRunner()
    cache = str(tmp_path / "cache")
    r = runner.invoke(app, ["select", str(tmp_path / "v"), "--budget", "5", "--embedder", "light",
                            "--cache-dir", cache, "--json", "-o", str(tmp_path / "list.txt")])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["n_selected"] == 5 and d["strategy"] == "facility"
    lines = (tmp_path / "list.txt").read_text().splitlines()
    assert lines == [p["path"] for p in d["picks"]]
    assert {int(sid[p["image"]]) for p in d["picks"][:3]} == {0, 1, 2}

    r = runner.invoke(app, ["embed", str(tmp_path / "v"), "--embedder", "light", "--cache-dir", cache,
                            "-o", str(tmp_path / "f.npy"), "--json"])
    assert r.exit_code == 0, r.output
    assert np.load(tmp_path / "f.npy").shape == (len(sid), 256)

    r = runner.invoke(app, ["outliers", str(tmp_path / "v"), "--embedder", "light", "--cache-dir", cache,
                            "--json", "--k", "3"])
    assert r.exit_code == 0, r.output
    top = json.loads(r.stdout)["outliers"]
    assert top and top[0]["image"] in (5, 17)

    r = runner.invoke(app, ["select", str(tmp_path / "v"), "--budget", "5", "--strategy", "nope",
                            "--embedder", "light", "--cache-dir", cache])
    assert r.exit_code == 2 and "strategy must be one of" in r.output


def test_auto_on_a_sample_then_kcenter() -> None:
    x, _ = _blobs()
    sel = select(x, budget=80, max_points=50, rng=0, quality_gate=False)
    assert len(set(sel.order.tolist())) == 80
    assert sel.strategy == "facility+kcenter"
    assert sum("coverage" in str(r) for r in sel.reason) == 30


def test_auto_spreads_first_then_represents() -> None:
    g = np.random.default_rng(3)
    sizes = [400, 150, 60, 30]
    centres = g.normal(0, 10, (4, 5))
    x = np.concatenate([g.normal(c, 1.0, (n, 5)) for c, n in zip(centres, sizes, strict=True)])
    y = np.repeat(np.arange(4), sizes)
    sel = select(x, budget=40, rng=0, quality_gate=False)
    n_spread = len(x) // 32  # low-budget phase: one pick per 32 images, spread over every mode
    assert sel.strategy == "facility"
    assert all(str(r).startswith("spread:") for r in sel.reason[:n_spread])
    assert all(str(r).startswith("representative:") for r in sel.reason[n_spread:])
    assert set(y[sel.order[:4]].tolist()) == {0, 1, 2, 3}
    assert np.all(np.diff(sel.score[:n_spread]) <= 1e-12)  # greedy gains only shrink
    assert np.all(np.diff(sel.score[n_spread:]) <= 1e-12)


@pytest.mark.parametrize("size", ["0", "-1"])
def test_embed_refuses_a_batch_size_below_one(tmp_path: Path, size: str) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    r = CliRunner().invoke(app, ["embed", str(tmp_path), "--embedder", "light", "--no-cache", "--batch-size", size,
                                 "-o", str(tmp_path / "f.npy")])
    assert r.exit_code == 2 and "--batch-size" in r.output  # 0 used to divide by zero, -1 was taken
    assert not (tmp_path / "f.npy").exists()


@pytest.mark.parametrize("missing", [None, float("nan"), ""])
def test_images_without_a_sequence_are_not_one_video(missing: object) -> None:
    """Stills (no sequence id) were keyed "None" together: the round-robin gave them one slot a round, as if they
    were the frames of one video (2 of 12 picks here). Each is a sequence of its own, as core.split takes them."""
    feats = np.random.default_rng(0).normal(0, 1, (30, 16))
    seq = np.array(["v0"] * 10 + ["v1"] * 10 + [missing] * 10, dtype=object)
    own = np.array(["v0"] * 10 + ["v1"] * 10 + [f"s{i}" for i in range(10)], dtype=object)
    got = select(feats, budget=12, sequence=seq, quality_gate=False, strategy="kcenter", rng=0)
    ref = select(feats, budget=12, sequence=own, quality_gate=False, strategy="kcenter", rng=0)
    assert got.order.tolist() == ref.order.tolist()
    assert int((got.order >= 20).sum()) == 10  # every still among the first 12 picks
