"""Semantic balance leaves ignored pixels out by default, as ``metrics.semantic_scores`` does and as median-frequency
weighting is used in practice (SegNet, ENet: the void class gets weight 0): the ignore value (255, or
``ignore_index=``) that ``read_semantic`` keeps as a class of crowd regions, and the pixels of a declared
``# background N``. Checked against numpy over label maps written as PNGs, and over CamVid's (11 = Unlabelled)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.diversity import balance
from tests.conftest import shared_path


def _write(folder: Path, maps: list[np.ndarray], classes: str) -> Path:
    (folder / "annotations").mkdir(parents=True)
    (folder / "images").mkdir()
    for i, lm in enumerate(maps):
        Image.fromarray(lm.astype(np.uint8)).save(folder / "annotations" / f"f_{i:05d}.png")
        Image.new("RGB", lm.shape[::-1]).save(folder / "images" / f"f_{i:05d}.png")
    (folder / "annotations" / "classes.txt").write_text(classes)
    return folder / "annotations"


def _reference(maps: list[np.ndarray], values: list[int], left_out: set[int]) -> dict[str, np.ndarray]:
    """Pixels, shares and median-frequency weights of ``values`` by numpy, pixels of ``left_out`` values ignored
    (neither counted for a class nor in an image's pixels)."""
    counted = [np.isin(lm, list(left_out), invert=True) for lm in maps]
    px = np.array([sum(np.count_nonzero(lm == v) for lm in maps) for v in values], float)
    freq = np.zeros(len(values))
    for j, v in enumerate(values):
        holding = [i for i, lm in enumerate(maps) if (lm == v).any()]
        if holding:
            freq[j] = px[j] / sum(np.count_nonzero(counted[i]) for i in holding)
    med = np.median(freq[freq > 0])
    return {"pixels": px, "share": px / px.sum(), "freq": freq,
            "weight": np.where(freq > 0, med / np.where(freq > 0, freq, 1), 0.0)}


def _maps(seed: int, values: list[int], p: list[float], n: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.choice(values, (int(rng.integers(5, 12)), int(rng.integers(5, 12))), p=p) for _ in range(n)]


def test_ignore_value_255_is_left_out_by_default(tmp_path: Path) -> None:
    maps = _maps(0, [0, 1, 2, 255], [0.6, 0.25, 0.05, 0.1])
    ds = io.read_semantic(_write(tmp_path / "lm", maps, "road\ncar\npole\n"))
    assert ds.schema.names == ("road", "car", "pole", "ignore")
    r = balance(ds)
    ref = _reference(maps, [0, 1, 2], {255})
    assert r.ignored.tolist() == [False, False, False, True] and r.include_ignored is False
    assert r.pixels[:3].tolist() == ref["pixels"].tolist() and r.pixels[3] == 0
    assert r.share[:3].tolist() == pytest.approx(ref["share"].tolist()) and math.isnan(r.share[3])
    assert r.pixel_frequency[:3].tolist() == pytest.approx(ref["freq"].tolist())
    assert r.weights_median_frequency.tolist() == pytest.approx([*ref["weight"].tolist(), 0.0])
    assert r.rare_shares == {"pixels": 0.5 / 3} and not r.rare[3] and r.needed[3] == 0
    assert r.imbalance_ratio == pytest.approx(ref["pixels"].max() / ref["pixels"].min())
    assert r.weights_inverse[3] == 0 and r.weights_inverse[:3].mean() == pytest.approx(1.0)
    assert r.to_dict()["ignored_classes"] == ["ignore"] and r.to_dict()["classes"][3]["ignored"] is True
    # include_ignored: the ignore class is a class like any other, every pixel of the maps counted
    r = balance(ds, include_ignored=True)
    ref = _reference(maps, [0, 1, 2, 255], set())
    assert not r.ignored.any() and r.pixels.tolist() == ref["pixels"].tolist()
    assert r.share.tolist() == pytest.approx(ref["share"].tolist())
    assert r.weights_median_frequency.tolist() == pytest.approx(ref["weight"].tolist())
    assert r.rare_shares == {"pixels": 0.5 / 4}


def test_declared_background_is_left_out_of_image_pixels(tmp_path: Path) -> None:
    maps = _maps(1, [0, 1, 2, 3], [0.4, 0.3, 0.25, 0.05])
    ds = io.read_semantic(_write(tmp_path / "lm", maps, "# background 0\n1 sky\n2 road\n3 sign\n"))
    assert ds.schema.names == ("sky", "road", "sign")  # the background is no class: its pixels are unannotated
    sky, classes = 0, [0, 1, 2]
    r = balance(ds)
    ref = _reference(maps, [1, 2, 3], {0})
    assert r.pixels[classes].tolist() == ref["pixels"].tolist()
    assert r.pixel_frequency[classes].tolist() == pytest.approx(ref["freq"].tolist())
    assert r.weights_median_frequency[classes].tolist() == pytest.approx(ref["weight"].tolist())
    # include_ignored: an image's pixels are all its pixels, background included
    r = balance(ds, include_ignored=True)
    holding = [lm for lm in maps if (lm == 1).any()]
    assert r.pixel_frequency[sky] == pytest.approx(sum(np.count_nonzero(lm == 1) for lm in holding)
                                                   / sum(lm.size for lm in holding))


def test_crowd_regions_of_a_counted_class_are_left_out(tmp_path: Path) -> None:
    """A crowd region of a class that also has plain regions: its pixels are ignored, the class is still counted."""
    from maslow.core import masks

    maps = _maps(2, [0, 1, 2], [0.5, 0.3, 0.2], n=3)
    ds = io.read_semantic(_write(tmp_path / "lm", maps, "a\nb\nc\n"))
    a = ds.annotations
    crowd = np.asarray(a.iscrowd).copy()
    first_b = int(np.flatnonzero(a.label == 1)[0])
    crowd[first_b] = True
    ds = ds.replace(annotations=a.with_columns(iscrowd=crowd))
    i = int(a.image[first_b])
    em = [np.where((k == i) & (lm == 1), -1, lm) for k, lm in enumerate(maps)]
    r = balance(ds)
    ref = _reference(em, [0, 1, 2], {-1})
    assert not r.ignored.any()
    assert r.pixels.tolist() == ref["pixels"].tolist()
    assert r.weights_median_frequency.tolist() == pytest.approx(ref["weight"].tolist())
    assert masks.area([a.mask[first_b]])[0] == np.count_nonzero(maps[i] == 1)


@pytest.mark.shared
def test_camvid_unlabelled_is_left_out() -> None:
    folder = shared_path("camvid_val", "annotations")
    maps = [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]
    ds = io.read(folder, "masks", ignore_index=11)  # 11: Unlabelled (void), as SegNet's class weighting
    assert ds.schema.classes[-1].id == 11 and ds.schema.names[-1] == "ignore"
    r = balance(ds)
    ref = _reference(maps, list(range(11)), {11})
    assert r.ignored.tolist() == [False] * 11 + [True]
    assert r.pixels[:11].tolist() == ref["pixels"].tolist() and r.pixels[11] == 0
    assert r.share[:11].tolist() == pytest.approx(ref["share"].tolist())
    assert r.weights_median_frequency.tolist() == pytest.approx([*ref["weight"].tolist(), 0.0])
    assert r.weights_median_frequency[:11].tolist().count(1.0) == 1  # 11 classes: the median class gets 1
    assert r.rare.tolist() == [*(ref["share"] < 0.5 / 11).tolist(), False]
    assert r.imbalance_ratio == pytest.approx(ref["pixels"].max() / ref["pixels"].min())
    everything = balance(ds, include_ignored=True)
    full = _reference(maps, list(range(12)), set())
    assert everything.weights_median_frequency.tolist() == pytest.approx(full["weight"].tolist())


def test_balance_command_marks_ignored_classes_and_counts_them_on_request(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from maslow.cli.main import app

    maps = _maps(1, [0, 1, 255], [0.6, 0.3, 0.1])
    src = str(_write(tmp_path / "lm", maps, "road\ncar\n"))
    runner = CliRunner()
    out = runner.invoke(app, ["diversity", "balance", src, "--from", "masks"], env={"COLUMNS": "100"})
    assert out.exit_code == 0, out.output
    assert "ignore (ignored)" in out.output and "--include-ignored counts them): ignore" in " ".join(out.output.split())
    default = json.loads(runner.invoke(app, ["diversity", "balance", src, "--from", "masks", "--json"]).output)
    both = json.loads(runner.invoke(app, ["diversity", "balance", src, "--from", "masks", "--json",
                                          "--include-ignored"]).output)
    assert default["ignored_classes"] == ["ignore"] and both["ignored_classes"] == []
    ignored_px = sum(int(np.count_nonzero(lm == 255)) for lm in maps)
    assert [c["in_split_pixels"] for c in both["classes"]][2] == ignored_px
    assert [c["in_split_pixels"] for c in default["classes"]][2] == 0
