"""``io.write(..., progress=...)`` for the table writers: Parquet reports the row groups it writes (images,
annotations, polygon rings and vertices), IDX the images it writes, throttled to about 100 calls, monotone and
ending at ``(total, total)``, and the files are the bytes written before progress was reported (pyarrow's
``pq.write_table``; the whole images array gzipped at once)."""

from __future__ import annotations

import gzip
import io as _io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from rich.console import Console

import maslow.sample
from maslow import io
from maslow.cli import render
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array, str_array
from maslow.errors import FormatError
from maslow.io.images import image_path, load_path
from maslow.io.parquet import _write_table
from maslow.io.registry import Ticks
from tests.helpers import run_cli_streams


def _files(dst: Path) -> dict[str, bytes]:
    return {p.relative_to(dst).as_posix(): p.read_bytes() for p in sorted(dst.rglob("*")) if p.is_file()}


def _check_calls(calls: list[tuple[int, int]], total: int) -> None:
    assert calls, "the writer never called progress"
    assert {t for _, t in calls} == {total}
    done = [d for d, _ in calls]
    assert done == sorted(done) and done[0] == 0 and done[-1] == total
    assert calls[-1] == (total, total) and calls.count((total, total)) == 1
    assert len(calls) <= 102  # about 100 a run, plus the first and the last


def _row_groups(dst: Path) -> int:
    return sum(pq.ParquetFile(p).num_row_groups for p in dst.glob("*.parquet"))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """Boxes, masks, polygons, attributes and splits."""
    return maslow.sample.write_shapes(tmp_path_factory.mktemp("shapes"), 30, seed=3)


def _grey(folder: Path, n: int, *, splits: tuple[str, ...] = ("train", "test", "", "val")) -> Dataset:
    """``n`` 6x5 greyscale PNGs, one label each, the splits taken in turn."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (5, 6), dtype=np.uint8)).save(folder / f"{i}.png")
    return Dataset(schema=LabelSchema.from_names([str(k) for k in range(10)]),
                   images=Images(path=obj_array([f"{i}.png" for i in range(n)]), width=np.full(n, 6),
                                 height=np.full(n, 5), split=str_array([splits[i % len(splits)] for i in range(n)])),
                   annotations=Annotations(image=np.arange(n), label=np.arange(n) % 10), root=folder)


# -- Parquet: row groups -----------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [
    pytest.param({}, id="default"),
    pytest.param({"row_group_size": 7}, id="groups-of-7"),
    pytest.param({"row_group_size": 1, "compression": "none"}, id="groups-of-1"),
])
def test_parquet_progress_counts_row_groups_and_leaves_the_files_unchanged(
        shapes: Dataset, tmp_path: Path, options: dict[str, Any]) -> None:
    assert shapes.annotations.polygon is not None  # four tables: images, annotations, rings, vertices
    plain = io.write(shapes, tmp_path / "plain", "parquet", **options)
    calls: list[tuple[int, int]] = []
    rep = io.write(shapes, tmp_path / "shown", "parquet", progress=lambda d, t: calls.append((d, t)), **options)
    assert _files(tmp_path / "shown") == _files(tmp_path / "plain")
    assert rep.to_dict() | {"path": ""} == plain.to_dict() | {"path": ""}
    total = _row_groups(tmp_path / "shown")
    _check_calls(calls, total)
    if options.get("row_group_size") == 7:  # 30 images, then the annotations, 7 rows a group; rings, vertices
        assert total == -(-shapes.n_images // 7) + -(-shapes.n_annotations // 7) + 2


def test_parquet_many_row_groups_give_about_100_evenly_spaced_calls(tmp_path: Path) -> None:
    ds = maslow.sample.shapes(150, seed=4)
    calls: list[tuple[int, int]] = []
    io.write(ds, tmp_path / "p", "parquet", row_group_size=2, progress=lambda d, t: calls.append((d, t)))
    total = -(-ds.n_images // 2) + -(-ds.n_annotations // 2) + 2
    assert total > 100 and _row_groups(tmp_path / "p") == total
    _check_calls(calls, total)
    assert len(calls) >= 20 and np.diff([d for d, _ in calls]).max() <= total // 20


def test_parquet_empty_dataset_writes_and_counts_one_empty_group_per_table(tmp_path: Path) -> None:
    ds = Dataset(schema=LabelSchema.from_names(["a"]), images=Images(path=obj_array([]), width=np.zeros(0, int),
                                                                      height=np.zeros(0, int)),
                 annotations=Annotations(image=np.zeros(0, int), label=np.zeros(0, int), box=np.zeros((0, 4))))
    calls: list[tuple[int, int]] = []
    io.write(ds, tmp_path / "p", "parquet", progress=lambda d, t: calls.append((d, t)))
    assert _row_groups(tmp_path / "p") == 2  # as pq.write_table writes an empty table
    assert calls == [(0, 2), (1, 2), (2, 2)]
    assert io.read_parquet(tmp_path / "p").n_images == 0


@pytest.mark.parametrize("n", [0, 1, 7, 25])
@pytest.mark.parametrize("group", [1, 3, 7, 100])
def test_parquet_tables_are_the_bytes_pyarrow_writes_at_once(tmp_path: Path, n: int, group: int) -> None:
    """The writer cuts the row groups itself (to report them); pyarrow's ``pq.write_table``, which it called
    before, gives the same bytes: strings, nulls, lists, binary and floats with NaN alike."""
    rng = np.random.default_rng(n)
    table = pa.table({
        "path": pa.array([f"img{i % 4}.png" for i in range(n)]),
        "box": pa.FixedSizeListArray.from_arrays(pa.array(rng.random(4 * n)), 4),
        "score": pa.array(np.where(rng.random(n) < 0.3, np.nan, rng.random(n))),
        "note": pa.array([None if i % 3 else f"n{i}" for i in range(n)], pa.string()),
        "counts": pa.array([bytes([i % 256]) * (i % 5) for i in range(n)], pa.binary()),
        "rings": pa.array([list(range(i % 3)) for i in range(n)], pa.list_(pa.int32())),
    })
    options = {"compression": "zstd", "write_statistics": False, "write_page_checksum": True}
    pq.write_table(table, tmp_path / "reference.parquet", row_group_size=group, **options)
    ticks: list[tuple[int, int]] = []
    groups = max(1, -(-n // group))
    tick = Ticks(lambda d, t: ticks.append((d, t)), groups)
    written = _write_table(table, tmp_path / "cut.parquet", group, "zstd", tick, 0)
    assert written == groups and ticks[-1] == (groups, groups)
    assert (tmp_path / "cut.parquet").read_bytes() == (tmp_path / "reference.parquet").read_bytes()


def test_parquet_row_group_size_must_be_positive(shapes: Dataset, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="row_group_size must be an integer >= 1, got 0"):
        io.write(shapes, tmp_path / "p", "parquet", row_group_size=0)
    assert not (tmp_path / "p").exists()


# -- IDX: images ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_idx_progress_counts_images_and_leaves_the_files_unchanged(tmp_path: Path, compress: bool) -> None:
    ds = _grey(tmp_path / "src", 23)
    plain = io.write(ds, tmp_path / "plain", "mnist", compress=compress)
    calls: list[tuple[int, int]] = []
    rep = io.write(ds, tmp_path / "shown", "mnist", compress=compress, progress=lambda d, t: calls.append((d, t)))
    assert _files(tmp_path / "shown") == _files(tmp_path / "plain")
    assert len(_files(tmp_path / "shown")) == 8  # images and labels for train, t10k, no prefix and val
    assert rep.to_dict() | {"path": ""} == plain.to_dict() | {"path": ""}
    _check_calls(calls, ds.n_images)
    assert len(calls) == ds.n_images + 1  # fewer than 100 images: every one


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_idx_images_file_is_the_whole_array_written_at_once(tmp_path: Path, compress: bool) -> None:
    """Written an image at a time (to report each), the file is what writing the stacked array in one go gave:
    the IDX header, the pixels in C order, gzipped with mtime 0."""
    ds = _grey(tmp_path / "src", 12, splits=("train",))
    io.write(ds, tmp_path / "out", "mnist", compress=compress, progress=lambda d, t: None)
    stack = np.stack([load_path(image_path(ds, i)) for i in range(ds.n_images)])
    whole = bytes([0, 0, 0x08, 3]) + np.asarray(stack.shape, ">u4").tobytes() + stack.tobytes()
    name = f"train-images-idx3-ubyte{'.gz' if compress else ''}"
    (tmp_path / "ref").mkdir()
    with open(tmp_path / "ref" / name, "wb") as raw:  # gzip's header names the file
        if compress:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
                f.write(whole)
        else:
            raw.write(whole)
    assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()
    back = io.read_idx(tmp_path / "out")
    np.testing.assert_array_equal(back.annotations.label, ds.annotations.label)


def test_idx_many_images_give_about_100_evenly_spaced_calls(tmp_path: Path) -> None:
    ds = _grey(tmp_path / "src", 1)
    n = 1500
    ds = ds.replace(images=Images(path=obj_array(["0.png"] * n), width=np.full(n, 6), height=np.full(n, 5)),
                    annotations=Annotations(image=np.arange(n), label=np.arange(n) % 10))
    calls: list[tuple[int, int]] = []
    io.write(ds, tmp_path / "out", "mnist", compress=False, progress=lambda d, t: calls.append((d, t)))
    _check_calls(calls, n)
    assert len(calls) >= 20 and np.diff([d for d, _ in calls]).max() <= n // 20
    assert os.path.getsize(tmp_path / "out" / "images-idx3-ubyte") == 16 + n * 30


def test_idx_a_bad_image_leaves_the_old_output(tmp_path: Path) -> None:
    ds = _grey(tmp_path / "src", 9)
    io.write(ds, tmp_path / "out", "mnist")
    before = _files(tmp_path / "out")
    Image.new("L", (7, 5)).save(tmp_path / "src" / "6.png")  # another size than image 0's
    calls: list[tuple[int, int]] = []
    with pytest.raises(FormatError, match=r"same size and type.*\(5, 7\)"):
        io.write(ds, tmp_path / "out", "mnist", progress=lambda d, t: calls.append((d, t)))
    assert _files(tmp_path / "out") == before  # written atomically: the old folder stays whole
    assert calls and calls[-1][0] < ds.n_images


@pytest.mark.parametrize(("fmt", "name"), [("parquet", "p"), ("mnist", "m")])
def test_an_error_in_the_callback_leaves_the_old_output(tmp_path: Path, fmt: str, name: str) -> None:
    ds = _grey(tmp_path / "src", 40)
    dst = tmp_path / name
    io.write(ds, dst, fmt)
    before = _files(dst)

    def stop(done: int, total: int) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.write(ds, dst, fmt, progress=stop, **({"row_group_size": 4} if fmt == "parquet" else {}))
    assert _files(dst) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["src", name])  # no temporary folder left


def test_the_table_formats_report_progress() -> None:
    assert io.get_format("parquet").reports_progress and io.get_format("mnist").reports_progress


@pytest.mark.parametrize(("fmt", "name"), [("parquet", "out_pq"), ("mnist", "out_mnist")])
def test_convert_draws_a_bar_not_a_spinner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str,
                                           name: str) -> None:
    """``maslow convert --to parquet|mnist`` on a terminal: a bar with a count (the spinner drew none)."""
    buf = _io.StringIO()
    monkeypatch.setattr(render, "err_console", Console(file=buf, force_terminal=True, width=200))
    monkeypatch.chdir(tmp_path)
    ds = _grey(tmp_path / "src", 9)
    io.write(ds, tmp_path / "src.parquet", "parquet")
    code, _, err = run_cli_streams(["convert", "src.parquet", name, "--from", "parquet", "--to", fmt])
    assert code == 0, err
    total = _row_groups(tmp_path / name) if fmt == "parquet" else ds.n_images
    text = re.sub(r"\x1b\[[0-9;?]*[ABKl]", "\n", buf.getvalue())  # cursor moves, line erases: a new frame
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "\n").splitlines()  # colours out
    assert any(f"{total}/{total}" in f for f in frames if f"writing {fmt} to {name}" in f), frames
