"""``duplicates --features`` refuses NaN/inf rows by file and row (a NaN row never matched, without a word, while
outliers and select refuse such rows), and says which rows are all zeros (legal features: the nearest-neighbour
analyses take them, but a zero vector has no direction for the cosine)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.diversity import find_duplicates, semantic_pairs
from maslow.diversity.select import folder_dataset
from maslow.errors import InvalidDatasetError, MaslowError, MaslowWarning
from tests.helpers import run_cli_streams


def _folder(tmp_path: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(2)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"i{i}.png")
    return folder


def _features(tmp_path: Path, rows: np.ndarray) -> Path:
    np.save(tmp_path / "f.npy", rows)
    return tmp_path / "f.npy"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_cli_refuses_a_non_finite_row_naming_the_file_and_row(tmp_path: Path, bad: float) -> None:
    folder = _folder(tmp_path)
    f = np.random.default_rng(0).random((6, 8))
    f[4, 3] = bad
    f[5] = bad
    path = _features(tmp_path, f)
    code, out, err = run_cli_streams(["diversity", "duplicates", str(folder), "--features", str(path), "--json"])
    assert code == 2 and out == ""
    assert f"{path}, row 4: features must be finite, got NaN or inf (2 rows)" in " ".join(err.split())


def test_cli_refuses_features_that_are_not_numbers(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 2)
    path = _features(tmp_path, np.array([["a", "b"], ["c", "d"]]))
    code, _, err = run_cli_streams(["diversity", "duplicates", str(folder), "--features", str(path)])
    assert code == 2 and "features must be a numeric (m, d) array, got <U1" in " ".join(err.split())


def test_zero_rows_are_said_and_never_match(tmp_path: Path) -> None:
    ds = folder_dataset(_folder(tmp_path))
    f = np.random.default_rng(0).random((6, 8))
    f[2] = f[3] = 0.0  # identical rows of zeros: no direction, no semantic pair
    f[5] = f[0] * 2  # a semantic pair
    with pytest.warns(MaslowWarning, match=r"features rows 2, 3 \(2 of 6\) are all zeros"):
        r = find_duplicates(ds, features=f, near=False)
    assert r.pairs.tolist() == [[0, 5]] and list(r.kind) == ["semantic"]
    path = _features(tmp_path, f)
    with pytest.warns(MaslowWarning, match="all zeros"):
        code, out, err = run_cli_streams(["diversity", "duplicates", str(ds.root), "--features", str(path),
                                          "--json"])
    assert code == 0, err
    assert json.loads(out)["n_pairs"] == 1


def test_finite_features_without_zero_rows_warn_nothing(tmp_path: Path) -> None:
    ds = folder_dataset(_folder(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        find_duplicates(ds, features=np.eye(6), near=False)


def test_the_library_refuses_non_finite_rows_before_reading_any_image(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import maslow.diversity.duplicates as D

    ds = folder_dataset(_folder(tmp_path))
    f = np.ones((6, 3))
    f[1, 0] = np.nan
    monkeypatch.setattr(D, "file_digest", lambda p: pytest.fail("an image was read"))
    with pytest.raises(InvalidDatasetError, match=r"find_duplicates: features row 1 must be finite, got NaN or inf"):
        find_duplicates(ds, features=f)
    with pytest.raises(InvalidDatasetError, match=r"semantic_pairs: features row 1 must be finite"):
        semantic_pairs(f)
    with pytest.raises(MaslowError, match=r"features must be \(m, d\)"):
        find_duplicates(ds, features=np.ones(6))
