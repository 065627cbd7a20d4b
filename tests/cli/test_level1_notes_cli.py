"""Level-1 commands on edge cases: no duplicate cluster to plot, an empty dataset or folder, and the outliers table
in an 80-column terminal."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.diversity import dataset_stats
from tests.helpers import run_cli_streams as _run


def _distinct(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.clip(rng.uniform(0, 255, 3) + rng.normal(0, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"img_{i:02d}.png")
    return folder


def _strict_json(text: str) -> object:
    """JSON as a strict parser reads it: NaN and Infinity refused."""
    def refuse(c: str) -> object:
        raise ValueError(f"not JSON: {c}")
    return json.loads(text, parse_constant=refuse)


def test_duplicates_plot_without_clusters_says_no_plot_was_written(tmp_path: Path) -> None:
    folder = _distinct(tmp_path / "f", 4)
    code, out, err = _run(["diversity", "duplicates", str(folder), "--plot", str(tmp_path / "plots")])
    assert code == 0, err
    assert "no duplicate clusters: no plots written" in " ".join(out.split())
    assert not (tmp_path / "plots" / "duplicates.png").exists()
    # with a cluster the plot is written and the note is not printed
    (folder / "copy.png").write_bytes((folder / "img_00.png").read_bytes())
    code, out, err = _run(["diversity", "duplicates", str(folder), "--plot", str(tmp_path / "plots")])
    assert code == 0, err
    assert (tmp_path / "plots" / "duplicates.png").exists() and "no duplicate clusters" not in out


def test_stats_of_an_empty_dataset_says_no_images_and_stays_valid_json(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text(json.dumps({"images": [], "annotations": [],
                                                     "categories": [{"id": 1, "name": "cat"}]}))
    code, out, err = _run(["stats", str(tmp_path / "empty.json"), "--from", "coco"])
    assert code == 0, err
    assert f"no images in {tmp_path / 'empty.json'}" in " ".join(err.split())  # the note every command gives
    assert "0 annotations; 1 class in the schema: cat" in out  # and what the dataset still has
    assert "nan" not in out.lower() and not re.search(r"splits: *$", out, re.M)
    code, out, err = _run(["stats", str(tmp_path / "empty.json"), "--from", "coco", "--json"])
    assert code == 0, err
    per = _strict_json(out)["annotations_per_image"]  # type: ignore[index]
    assert per["mean"] is None and per["median"] is None and per["max"] is None
    # the library's to_dict() is JSON-safe too (json.dumps wrote NaN, which JSON does not have)
    s = dataset_stats(Dataset(LabelSchema.from_names(["a"]), Images.empty(), Annotations.empty()))
    assert math.isnan(s.per_image_mean)  # the field keeps NaN for undefined
    json.dumps(s.to_dict(), allow_nan=False)


def test_stats_of_a_dataset_still_shows_its_numbers(tmp_path: Path) -> None:
    from maslow.sample import write_shapes

    ds = write_shapes(tmp_path / "s", 8, seed=0)
    from maslow import io

    io.write(ds, tmp_path / "s" / "annotations.json", "coco")
    s = dataset_stats(ds)
    code, out, err = _run(["stats", str(tmp_path / "s" / "annotations.json"), "--from", "coco"])
    assert code == 0, err
    assert (f"Annotations per image: mean {s.per_image_mean:.2f}, median {s.per_image_median:g}, "
            f"max {s.per_image_max}") in out


def test_select_on_an_empty_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    code, out, err = _run(["select", str(tmp_path / "empty"), "--embedder", "light", "-o", str(tmp_path / "l.txt")])
    assert code == 0
    assert f"no images found in {tmp_path / 'empty'}" in " ".join(err.split())
    assert (tmp_path / "l.txt").read_text() == ""
    code, out, err = _run(["select", str(tmp_path / "empty"), "--embedder", "light", "--json"])
    assert code == 0 and "no images found" in err
    d = _strict_json(out)
    assert d["n_images"] == 0 and d["picks"] == []  # type: ignore[index]
    code, out, err = _run(["outliers", str(tmp_path / "empty"), "--embedder", "light"])
    assert code == 0 and "no images found" in err and "nan" not in out


def test_outliers_summary_fits_on_one_line_at_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary was the table's title and wrapped into the width of its three narrow columns."""
    monkeypatch.setenv("COLUMNS", "80")
    folder = _distinct(tmp_path / "f", 0)
    g = np.random.default_rng(1)
    for i in range(20):
        grey = np.full((32, 32, 3), 120, np.uint8) + g.integers(0, 8, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(grey).save(folder / f"grey_{i:02d}.png")
    odd = np.zeros((32, 32, 3), np.uint8)
    odd[:, :16] = 255
    Image.fromarray(odd).save(folder / "odd_one.png")
    code, out, err = _run(["outliers", str(folder), "--embedder", "light", "--cache-dir", str(tmp_path / "c")])
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80
    assert re.search(r"^1 outliers? of 21 images \(threshold [\d.e-]+, k=10, ratio >= 3\):$", out, re.M), out
    header = next(line for line in out.splitlines() if "rank" in line)
    assert [h.strip() for h in header.strip("┃").split("┃")] == ["rank", "image", "score", "x neighb."]
    row = next(line for line in out.splitlines() if "odd_one.png" in line)
    assert float(row.split("│")[4]) >= 3  # the ratio to its neighbours', shown
