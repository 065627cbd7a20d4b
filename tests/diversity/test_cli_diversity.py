from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from maslow import io
from maslow.sample import write_shapes
from tests.helpers import run_cli as _run


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """Shapes sample where a train image is copied (bytes) and mirrored into val."""
    ds = write_shapes(tmp_path / "s", 12, seed=4)
    split = ds.images.split.tolist()
    train = [i for i, s in enumerate(split) if s == "train"]
    src = tmp_path / "s" / str(ds.images.path[train[0]])
    shutil.copy(src, tmp_path / "s" / "images" / "copy.png")
    ImageOps.mirror(Image.open(src)).save(tmp_path / "s" / "images" / "mirror.png")
    from maslow.core import Images

    im = ds.images
    images = Images(path=[*im.path.tolist(), "images/copy.png", "images/mirror.png"],
                    width=[*im.width.tolist(), 160, 160], height=[*im.height.tolist(), 120, 120],
                    split=[*split, "val", "val"])
    io.write(ds.replace(images=images), tmp_path / "s" / "annotations.json", "coco")
    return tmp_path / "s" / "annotations.json"


def test_duplicates_json_reports_leak(planted: Path) -> None:
    code, out = _run(["diversity", "duplicates", str(planted), "--from", "coco", "--json"])
    assert code == 0, out
    d = json.loads(out)
    assert d["n_clusters"] == 1
    (c,) = d["leaks"]
    assert sorted(c["splits"]) == ["train", "val"] and len(c["images"]) == 3
    assert {"images/copy.png", "images/mirror.png"} <= set(c["images"])
    plots = planted.parent / "plots"
    code, out = _run(["diversity", "duplicates", str(planted), "--from", "coco", "--plot", str(plots)])
    assert code == 0 and "Leakage across splits" in out and (plots / "duplicates.png").stat().st_size > 1000


def test_balance_and_coverage_commands(planted: Path, tmp_path: Path) -> None:
    code, out = _run(["diversity", "balance", str(planted), "--from", "coco", "--split", "train", "--json"])
    assert code == 0, out
    d = json.loads(out)
    assert d["split"] == "train" and [c["name"] for c in d["classes"]] == ["circle", "square", "triangle"]
    code, out = _run(["diversity", "balance", str(planted), "--from", "coco", "--plot", str(tmp_path / "b")])
    assert code == 0 and "Imbalance ratio" in out and (tmp_path / "b" / "balance.png").stat().st_size > 1000
    code, out = _run(["diversity", "coverage", str(planted), "--from", "coco", "--plot", str(tmp_path / "p"),
                      "--json"])
    assert code == 0, out
    d = json.loads(out)
    assert len(d["plots"]) == 3 and all(Path(p).exists() for p in d["plots"])
    code, out = _run(["diversity", "coverage", str(planted), "--from", "coco", "--no-pixels"])
    assert code == 0 and "Under-covered" in out


def test_errors_exit_2(planted: Path) -> None:
    code, out = _run(["diversity", "balance", str(planted), "--from", "coco", "--split", "nope"])
    assert code == 2 and "split must be one of" in out


def test_workspace_version_without_from(planted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run(["init", "ws"])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    code, out = _run(["import", str(planted), "--from", "coco", "--name", "planted", "--json"])
    assert code == 0, out
    code, out = _run(["diversity", "duplicates", "planted", "--json"])
    assert code == 0, out
    assert json.loads(out)["n_clusters"] == 1


def test_semantic_features_option(planted: Path, tmp_path: Path) -> None:
    import numpy as np

    feats = np.eye(14)
    feats[5] = feats[6]  # two distinct drawings declared semantically identical
    np.save(tmp_path / "f.npy", feats)
    code, out = _run(["diversity", "duplicates", str(planted), "--from", "coco", "--exact-only",
                      "--features", str(tmp_path / "f.npy"), "--json"])
    assert code == 0, out
    d = json.loads(out)
    assert [p["kind"] for p in d["pairs"]].count("semantic") == 1
    (tmp_path / "bad.npy").write_text("nope")
    code, out = _run(["diversity", "duplicates", str(planted), "--from", "coco", "--features",
                      str(tmp_path / "bad.npy")])
    assert code == 2 and "features must be" in out


@pytest.mark.parametrize("cosine", ["5", "-1.5"])
def test_duplicates_refuse_a_cosine_outside_minus_one_one(planted: Path, cosine: str) -> None:
    code, out = _run(["diversity", "duplicates", str(planted), "--from", "coco", "--cosine", cosine])
    assert code == 2 and "--cosine" in out  # used to be taken: no pair can reach a similarity of 5


def test_duplicates_table_caps_paths_and_json_lists_all(tmp_path: Path) -> None:
    """One picture copied 12 times (bytes): one exact cluster of 12; the table shows --paths of them."""
    import numpy as np

    (tmp_path / "f" / "a").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "f" / "a" / "img00.png")
    for k in range(1, 12):
        shutil.copy(tmp_path / "f" / "a" / "img00.png", tmp_path / "f" / "a" / f"img{k:02d}.png")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "f" / "a" / "other.png")
    args = ["diversity", "duplicates", str(tmp_path / "f"), "--from", "imagefolder"]
    code, out = _run([*args, "--json"])
    assert code == 0, out
    d = json.loads(out)
    (c,) = d["clusters"]
    assert c["kind"] == "exact" and len(c["images"]) == 12 and d["n_duplicate_images"] == 11
    assert d["n_pairs"] == 66 and len(d["pairs"]) == 66
    code, out = _run([*args, "--paths", "3"])
    assert code == 0, out
    assert "8 more" in out  # 11 to drop, 3 shown
    assert sum(f"img{k:02d}" in out for k in range(12)) == 4  # the kept one and 3 dropped


def test_duplicates_of_tiny_images_are_exact_only_unless_min_side_is_0(tmp_path: Path) -> None:
    """28 x 28 digit-like images: a blob on black, one pixel apart; plus one byte-identical copy."""
    import numpy as np

    (tmp_path / "f" / "a").mkdir(parents=True)
    yy, xx = np.mgrid[:28, :28]
    blob = ((yy - 14) ** 2 / 64 + (xx - 14) ** 2 / 25 < 1).astype(np.uint8) * 255
    for k in range(4):
        im = blob.copy()
        im[4 + k, 4] = 255  # one stray pixel, a different one per image
        Image.fromarray(im).save(tmp_path / "f" / "a" / f"{k}.png")
    shutil.copy(tmp_path / "f" / "a" / "0.png", tmp_path / "f" / "a" / "0_copy.png")
    args = ["diversity", "duplicates", str(tmp_path / "f"), "--from", "imagefolder", "--json"]
    code, out = _run(args)
    assert code == 0, out
    d = json.loads(out)
    assert d["n_small"] == 5 and d["min_side"] == 32
    assert [p["kind"] for p in d["pairs"]] == ["exact"] and d["n_duplicate_images"] == 1
    code, out = _run([*args, "--min-side", "0"])
    assert code == 0, out
    d = json.loads(out)
    assert d["n_small"] == 0 and "near" in {p["kind"] for p in d["pairs"]}
    code, out = _run(args[:-1])
    assert code == 0 and "smaller than 32 pixels a side" in out
