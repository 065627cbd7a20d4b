"""``io.write(..., progress=...)``: the per-image writers report ``progress(done, total)`` (the readers' convention),
throttled to about 100 calls, monotone and ending at ``(total, total)``, without changing a byte they write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.io.registry import FORMATS, Ticks
from maslow.sample import write_shapes

#: format, write options, destination (a file or a folder), what progress counts
CASES = [
    pytest.param("coco", {}, "out.json", "records", id="coco"),
    pytest.param("coco", {"indent": 2, "chunk_rows": 5}, "out.json", "records", id="coco-pretty-chunks"),
    pytest.param("yolo", {}, "yolo", "images", id="yolo"),
    pytest.param("yolo", {"task": "obb", "copy_images": True}, "yolo", "images", id="yolo-obb-copy"),
    pytest.param("yolo", {"task": "classify"}, "yolo", "placed", id="yolo-classify"),
    pytest.param("voc", {}, "voc", "images", id="voc"),
    pytest.param("cvat", {}, "cvat.xml", "images", id="cvat"),
    pytest.param("labelstudio", {}, "ls/tasks.json", "images", id="labelstudio"),
    pytest.param("imagefolder", {}, "folder", "placed", id="imagefolder"),
    pytest.param("imagefolder", {"link": "symlink"}, "folder", "placed", id="imagefolder-symlink"),
    pytest.param("masks", {}, "masks", "images", id="masks"),
]


def _files(dst: Path) -> dict[str, tuple[bool, bytes]]:
    """Every file under ``dst`` (or ``dst`` itself): relative name -> (is a symlink, bytes or link target)."""
    paths = [dst] if dst.is_file() else sorted(p for p in dst.rglob("*") if p.is_file() or p.is_symlink())
    return {p.relative_to(dst.parent).as_posix(): (p.is_symlink(), os.readlink(p).encode() if p.is_symlink()
                                                   else p.read_bytes()) for p in paths}


def _expected_total(unit: str, ds: Dataset, rep: Any) -> int:
    if unit == "records":  # COCO: the images, then the annotations
        return ds.n_images + ds.n_annotations
    if unit == "placed":  # class folders: the images of one class each (the others are not written)
        total = int(rep.n_images + rep.lost.get("image_files", 0))
        assert 0 < total < ds.n_images  # the sample has images of several classes and without any
        return total
    return ds.n_images


def _check_calls(calls: list[tuple[int, int]], total: int) -> None:
    assert calls, "the writer never called progress"
    assert {t for _, t in calls} == {total}
    done = [d for d, _ in calls]
    assert done == sorted(done) and 0 <= done[0] and done[-1] == total
    assert calls[-1] == (total, total) and calls.count((total, total)) == 1
    assert len(calls) <= 102  # about 100 a run, plus the first and the last


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return write_shapes(tmp_path_factory.mktemp("shapes"), 30, seed=3)


@pytest.mark.parametrize(("fmt", "options", "name", "unit"), CASES)
def test_progress_is_monotone_ends_at_total_and_leaves_the_files_unchanged(
        shapes: Dataset, tmp_path: Path, fmt: str, options: dict[str, Any], name: str, unit: str) -> None:
    dst = tmp_path / name
    dst.parent.mkdir(exist_ok=True)
    plain = io.write(shapes, dst, fmt, **options)
    before = _files(dst)
    calls: list[tuple[int, int]] = []
    rep = io.write(shapes, dst, fmt, progress=lambda d, t: calls.append((d, t)), **options)  # replaces dst
    assert _files(dst) == before  # the same names, bytes and links
    assert rep.to_dict() == plain.to_dict()
    _check_calls(calls, _expected_total(unit, shapes, rep))
    assert not [p for p in dst.parent.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def _boxes(n_images: int) -> Dataset:
    """``n_images`` images without files, one box each."""
    box = np.tile([1.0, 2.0, 5.0, 7.0], (n_images, 1))
    return Dataset(schema=LabelSchema.from_names(["a", "b"]),
                   images=Images(path=obj_array([f"im{i:05d}.jpg" for i in range(n_images)]),
                                 width=np.full(n_images, 10), height=np.full(n_images, 10)),
                   annotations=Annotations(image=np.arange(n_images), label=np.arange(n_images) % 2, box=box))


@pytest.mark.parametrize(("fmt", "options", "name"), [
    pytest.param("yolo", {"images": False}, "yolo", id="yolo"),
    pytest.param("voc", {"images": False}, "voc", id="voc"),
    pytest.param("cvat", {}, "cvat.xml", id="cvat"),
    pytest.param("labelstudio", {}, "tasks.json", id="labelstudio"),
    pytest.param("coco", {"chunk_rows": 7}, "out.json", id="coco"),
])
def test_many_images_give_about_100_evenly_spaced_calls(tmp_path: Path, fmt: str, options: dict[str, Any],
                                                        name: str) -> None:
    ds = _boxes(1500)
    calls: list[tuple[int, int]] = []
    io.write(ds, tmp_path / name, fmt, progress=lambda d, t: calls.append((d, t)), **options)
    total = 3000 if fmt == "coco" else 1500
    _check_calls(calls, total)
    assert len(calls) >= 20  # a bar that moves, not one jump at the end
    gaps = np.diff([d for d, _ in calls])
    assert gaps.max() <= total // 20  # no long silence


def test_an_empty_dataset_reports_zero_of_zero(tmp_path: Path) -> None:
    for fmt, name in (("yolo", "yolo"), ("voc", "voc"), ("cvat", "c.xml"), ("labelstudio", "t.json"),
                      ("coco", "c.json"), ("masks", "masks")):
        calls: list[tuple[int, int]] = []
        io.write(_boxes(0), tmp_path / name, fmt, progress=lambda d, t, c=calls: c.append((d, t)))
        assert calls == [(0, 0)], fmt


def test_an_error_in_the_callback_leaves_the_old_output(shapes: Dataset, tmp_path: Path) -> None:
    dst = tmp_path / "voc"
    io.write(shapes, dst, "voc", images=False)
    before = _files(dst)

    def stop(done: int, total: int) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        io.write(shapes, dst, "voc", progress=stop)  # images placed too: another output
    assert _files(dst) == before  # written atomically: the old folder stays whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["voc"]


def test_every_writer_reports_progress() -> None:
    reporting = {name for name, spec in FORMATS.items() if spec.reports_progress}
    assert reporting == {name for name, spec in FORMATS.items() if spec.can_write}
    assert {"coco", "coco-results", "yolo", "voc", "cvat", "labelstudio", "imagefolder", "masks", "parquet", "mnist",
            "dota", "dota-results"} <= reporting


@pytest.mark.parametrize("total", [0, 1, 7, 99, 100, 101, 1000, 123_457])
def test_ticks_called_once_per_image_give_at_most_about_100_calls(total: int) -> None:
    calls: list[tuple[int, int]] = []
    tick = Ticks(lambda d, t: calls.append((d, t)), total)
    for i in range(total):
        tick(i + 1)
    tick.end()
    _check_calls(calls, total)
    assert len(calls) == min(total, 100) + 1  # (0, total), then each hundredth (each image when fewer)


def test_ticks_without_a_callback_call_nothing() -> None:
    tick = Ticks(None, 10)
    for i in range(10):
        tick(i + 1)
    tick.end()  # no error: nothing to call
