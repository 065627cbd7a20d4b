"""duplicates.png draws the copy to keep of every cluster (first, framed in green) and says when a row is cut."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from maslow.diversity.duplicates import DuplicateCluster, DuplicateReport, find_duplicates, plot_duplicates, plot_rows
from maslow.diversity.select import folder_dataset


def _report(clusters: list[DuplicateCluster], m: int) -> DuplicateReport:
    e = np.zeros((0, 2), np.int64)
    return DuplicateReport(paths=tuple(f"{i}.png" for i in range(m)), pairs=e, kind=(), distance=np.zeros(0),
                           cross_split=np.zeros(0, bool), clusters=tuple(clusters), threshold=8, min_side=32,
                           small=np.zeros(0, np.int64), unreadable=())


def _cluster(images: tuple[int, ...], keep: int) -> DuplicateCluster:
    return DuplicateCluster(images=images, keep=keep, kind="near", splits=("",))


def test_the_kept_copy_comes_first_even_when_it_is_the_last_row() -> None:
    # 7 copies, the kept one (most pixels) last in row order: the old plot drew rows 0..5 only, without it
    rep = _report([_cluster(tuple(range(7)), keep=6), _cluster((7, 8), keep=8), _cluster((9, 10, 11), keep=9)], 12)
    assert plot_rows(rep) == [((6, 0, 1, 2, 3, 4), 1), ((8, 7), 0), ((9, 10, 11), 0)]
    assert plot_rows(rep, max_per_cluster=2) == [((6, 0), 5), ((8, 7), 0), ((9, 10), 1)]
    assert plot_rows(rep, max_clusters=1, max_per_cluster=7) == [((6, 0, 1, 2, 3, 4, 5), 0)]
    for shown, more in plot_rows(rep, max_per_cluster=3):  # every row shows its kept copy, first
        assert shown[0] in {6, 8, 9} and len(shown) + more in {7, 2, 3}


def _scene(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (320, 240), (200, 190, 180))
    d = ImageDraw.Draw(im)
    for _ in range(8):
        x0, y0 = int(rng.integers(0, 260)), int(rng.integers(0, 180))
        d.ellipse([x0, y0, x0 + int(rng.integers(30, 120)), y0 + int(rng.integers(30, 120))],
                  fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def test_the_audit_case_plots_the_big_copy_with_a_more_marker(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    folder = tmp_path / "imgs"
    folder.mkdir()
    im = _scene(0)
    for q in range(6):  # a0..a5: JPEG re-encodes, first in row order
        im.save(folder / f"a{q}.jpg", quality=40 + q * 10)
    im.resize((640, 480)).save(folder / "z_big.jpg", quality=90)  # the copy to keep: most pixels, last row
    ds = folder_dataset(folder)
    rep = find_duplicates(ds)
    assert [(c.keep, len(c.images)) for c in rep.clusters] == [(6, 7)]
    assert plot_rows(rep) == [((6, 0, 1, 2, 3, 4), 1)]
    out = plot_duplicates(rep, ds, tmp_path / "plots")
    assert out == [tmp_path / "plots" / "duplicates.png"]
    with Image.open(out[0]) as png:
        # 6 thumbnails and the "+1 more" column (2.2 inches each at 100 dpi); one row
        assert png.size == (round(2.2 * 7 * 100), 200)
        pixels = np.asarray(png.convert("RGB")).astype(int)
    # the green frame of the kept copy (matplotlib's tab:green, #2ca02c) is drawn
    green = (abs(pixels[..., 0] - 0x2C) < 8) & (abs(pixels[..., 1] - 0xA0) < 8) & (abs(pixels[..., 2] - 0x2C) < 8)
    assert green.sum() > 200
    assert not list((tmp_path / "plots").glob("*.tmp"))


def test_no_cluster_writes_nothing(tmp_path: Path) -> None:
    assert plot_rows(_report([], 3)) == []
    assert plot_duplicates(_report([], 3), folder_dataset(tmp_path), tmp_path / "plots") == []
