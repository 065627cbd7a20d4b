"""Level-1 audit findings on ``duplicates`` and ``coverage``: plain image folders (no labels, no --from), unreadable
images named in coverage's table output, and options checked before any image is read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity import find_duplicates
from maslow.diversity.coverage import coverage
from maslow.diversity.select import folder_dataset
from maslow.errors import MaslowError
from tests.helpers import run_cli


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Six distinct photos-like images, an exact copy and a mirror of the first, and one broken file."""
    rng = np.random.default_rng(1)
    out = tmp_path / "imgs"
    out.mkdir()
    for i in range(6):
        arr = rng.uniform(0, 255, (12, 16, 3)).astype(np.uint8)  # blocky random scenes, distinct hashes
        Image.fromarray(arr).resize((160, 120), Image.Resampling.NEAREST).save(out / f"a{i}.png")
    shutil.copy(out / "a0.png", out / "copy.png")
    ImageOps.mirror(Image.open(out / "a0.png")).save(out / "mirror.png")
    (out / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return out


def test_duplicates_and_coverage_read_a_plain_image_folder(folder: Path) -> None:
    code, out = run_cli(["diversity", "duplicates", str(folder), "--json"])
    assert code == 0, out
    d = json.loads(out)
    ds = folder_dataset(folder)
    ref = find_duplicates(ds)  # the library on the same folder
    assert d["n_pairs"] == len(ref.pairs) == 3  # a0-copy exact, a0-mirror and copy-mirror near
    assert {(p["a"], p["b"], p["kind"]) for p in d["pairs"]} >= {("a0.png", "copy.png", "exact")}
    assert [u["image"] for u in d["unreadable"]] == ["broken.jpg"]

    code, out = run_cli(["diversity", "coverage", str(folder), "--json"])
    assert code == 0, out
    d = json.loads(out)
    assert sum(d["image"]["brightness"]["counts"].values()) == 8  # every readable image measured
    assert [u["row"] for u in d["unreadable"]] == [ds.images.path.tolist().index("broken.jpg")]


def test_coverage_table_says_which_images_were_not_measured(folder: Path) -> None:
    r = coverage(folder_dataset(folder))
    assert len(r.unreadable) == 1
    code, out = run_cli(["diversity", "coverage", str(folder)])
    assert code == 0, out
    flat = " ".join(out.split())
    assert "1 images could not be read" in flat and "broken.jpg" in flat


def test_bad_threshold_or_features_are_refused_before_any_image_is_read(folder: Path) -> None:
    ds = folder_dataset(folder)
    seen: list[int] = []
    with pytest.raises(MaslowError, match=r"find_duplicates: threshold must be in 0\.\.32"):
        find_duplicates(ds, threshold=40, progress=lambda done, total: seen.append(done))
    with pytest.raises(MaslowError, match="features must have one row per image"):
        find_duplicates(ds, features=np.ones((3, 4)), progress=lambda done, total: seen.append(done))
    assert seen == []  # nothing hashed: the options were checked first
    # exact-only needs no threshold: any value is accepted there, as before
    empty = Dataset(LabelSchema.from_names([]), Images(path=[], width=[], height=[]), Annotations.empty())
    assert len(find_duplicates(empty, near=False, threshold=40).pairs) == 0
