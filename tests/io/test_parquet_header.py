"""A maslow Parquet folder's header (``dataset.json``) checked against itself and against the Parquet files: an
entry removed no longer drops its column, a changed ``dtype`` no longer converts the values, a repeated entry and
a non-string ``root`` are refused, each naming the file and the column or field (audit of the store layer)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.core.tables import Images
from maslow.errors import FormatError
from maslow.io.parquet import read_parquet, write_parquet
from maslow.sample import shapes


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    ds = shapes(8, seed=0)
    im = ds.images
    when = np.arange(ds.n_images).astype("datetime64[s]")
    ds = ds.replace(images=Images(path=im.path, width=im.width, height=im.height, split=im.split,
                                  extra={**im.extra, "when": when}))
    write_parquet(ds, tmp_path / "d")
    return tmp_path / "d"


def _edit(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "dataset.json"
    header = json.loads(path.read_text())
    change(header)
    path.write_text(json.dumps(header))


def _entry(header: dict[str, Any], table: str, column: str) -> dict[str, Any]:
    return next(e for e in header[table] if e["column"] == column)


def test_the_fixture_reads(folder: Path) -> None:
    ds = read_parquet(folder)
    assert ds.images.extra["when"].dtype == np.dtype("datetime64[s]")  # stored as ms by Parquet: still accepted


@pytest.mark.parametrize("column", ["source", "attr:colour", "box", "mask"])
def test_a_removed_column_entry_is_refused(folder: Path, column: str) -> None:
    _edit(folder, lambda h: h["annotations"].remove(_entry(h, "annotations", column)))
    field = "mask.size" if column == "mask" else column
    with pytest.raises(FormatError, match=rf"annotations.parquet, field '{field}': column is in the file but not in "
                                          r"dataset.json's list"):
        read_parquet(folder)  # used to read, the column dropped


def test_a_removed_image_column_entry_is_refused(folder: Path) -> None:
    _edit(folder, lambda h: h["images"].remove(_entry(h, "images", "extra:when")))
    with pytest.raises(FormatError, match=r"images.parquet, field 'extra:when': column is in the file but not"):
        read_parquet(folder)


@pytest.mark.parametrize(("column", "dtype", "stored"), [
    ("box", "<i8", "double"),
    ("box", "<f4", "double"),
    ("label", "<i4", "int64"),
    ("label", "<U1", "int64"),
    ("iscrowd", "<f8", "bool"),
])
def test_a_changed_dtype_is_refused(folder: Path, column: str, dtype: str, stored: str) -> None:
    _edit(folder, lambda h: _entry(h, "annotations", column).update(dtype=dtype))
    with pytest.raises(FormatError, match=rf"annotations.parquet, field '{column}': column is stored as .*{stored}.*"
                                          r"but dataset.json says"):
        read_parquet(folder)  # box as <i8: the boxes were cut to integers


def test_a_changed_width_is_refused(folder: Path) -> None:
    _edit(folder, lambda h: _entry(h, "annotations", "box").update(shape=[5]))
    with pytest.raises(FormatError, match=r"field 'box': column is stored as .*\[4\], but dataset.json says .*\[5\]"):
        read_parquet(folder)


def test_a_changed_time_unit_is_refused_only_across_kinds(folder: Path) -> None:
    _edit(folder, lambda h: _entry(h, "images", "extra:when").update(dtype="<m8[s]"))
    with pytest.raises(FormatError, match=r"field 'extra:when': column is stored as timestamp"):
        read_parquet(folder)


@pytest.mark.parametrize("key", ["column", "field"])
def test_a_repeated_entry_is_refused(folder: Path, key: str) -> None:
    def repeat(h: dict[str, Any]) -> None:
        entry = dict(_entry(h, "annotations", "source"))
        if key == "field":
            entry["column"] = "source2"
        h["annotations"].append(entry)

    _edit(folder, repeat)
    with pytest.raises(FormatError, match=rf"dataset.json, annotations\[\d+\]: {key} 'source' is listed twice"):
        read_parquet(folder)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("root", 5, "must be a path"),
    ("root", ["a"], "must be a path"),
    ("root_base", "elsewhere", "must be 'folder'"),
    ("n_images", "8", "must be a row count"),
    ("n_annotations", 1.5, "must be a row count"),
    ("annotations", {"a": 1}, "must be a list of column entries"),
])
def test_header_values_of_the_wrong_type_are_named(folder: Path, field: str, value: Any, message: str) -> None:
    _edit(folder, lambda h: h.update({field: value}))
    with pytest.raises(FormatError, match=rf"dataset.json, field '{field}': {message}"):
        read_parquet(folder)  # root 5 was a TypeError (a traceback) in every reader
