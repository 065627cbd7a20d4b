"""A Parquet folder written with a relative image root finds its images from any working folder, and after the
folder and the images move together; absolute roots stay as they are."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from maslow.io.images import image_path
from maslow.io.parquet import read_parquet, write_parquet
from maslow.sample import write_shapes


def test_relative_root_is_kept_relative_to_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    write_shapes(project / "shapes", 3, seed=1)
    monkeypatch.chdir(project)
    ds = write_shapes(Path("shapes"), 3, seed=1)
    assert ds.root == Path("shapes")
    write_parquet(ds, Path("out/pq"))
    header = json.loads(Path("out/pq/dataset.json").read_text(encoding="utf-8"))
    assert header["root"] == "../../shapes" and header["root_base"] == "folder"
    assert read_parquet("out/pq").root == Path("shapes")  # as written, from the same folder
    monkeypatch.chdir(project / "out")  # another working folder: the same images
    back = read_parquet("pq")
    assert image_path(back, 0).resolve() == (project / "shapes" / ds.images.path[0]).resolve()
    assert image_path(back, 0).is_file()
    moved = tmp_path / "moved"
    shutil.move(str(project), str(moved))  # the folder and its images moved together
    monkeypatch.chdir(tmp_path)
    assert image_path(read_parquet(moved / "out" / "pq"), 0).is_file()
    assert read_parquet(moved / "out" / "pq", images_root=Path("elsewhere")).root == Path("elsewhere")


def test_absolute_root_and_as_is_stay_as_written(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "shapes", 2, seed=1)
    write_parquet(ds, tmp_path / "pq")
    assert read_parquet(tmp_path / "pq").root == ds.root and ds.root is not None and ds.root.is_absolute()
    write_parquet(ds.replace(root=Path("rel")), tmp_path / "pq2", root_base="as-is")
    header = json.loads((tmp_path / "pq2" / "dataset.json").read_text(encoding="utf-8"))
    assert header["root"] == "rel" and "root_base" not in header
    with pytest.raises(ValueError, match="root_base"):
        write_parquet(ds, tmp_path / "pq3", root_base="cwd")
