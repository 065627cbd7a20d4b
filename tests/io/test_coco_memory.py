"""Memory of reading and writing COCO at scale: bounded per annotation, with the same Datasets and bytes.

The writer turns ``chunk_rows`` annotations at a time into JSON records and writes them as it goes (it used to
hold every record's values as Python objects); the C reader's ``attributes`` objects are parsed a chunk at a time
(a million attribute dicts were the read's peak), and equal attribute strings share one object on both paths.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow._native import load
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.io import coco
from maslow.io._coco_columns import MAX_SHARED_STRINGS
from maslow.sample import shapes
from tests.helpers import traced_peak
from tests.io.test_coco_native import both

needs_kernel = pytest.mark.skipif(load("records") is None, reason="maslow._native.records is not built")


def _detections(n: int, *, tags: float = 0.0, seed: int = 0) -> Dataset:
    """``n`` boxes on n / 10 images, with attributes and extras; a ``tags`` fraction without any geometry."""
    rng = np.random.default_rng(seed)
    m = max(n // 10, 1)
    xy = rng.uniform(0, 500, (n, 2)).round(2)
    wh = rng.uniform(1, 100, (n, 2)).round(2)
    box = np.concatenate([xy, xy + wh], 1)
    box[rng.random(n) < tags] = np.nan
    colors = np.array(["red", "green", "blue"], object)[rng.integers(0, 3, n)]
    weight = rng.uniform(0, 1, n).round(3)
    weight[::7] = np.nan  # not JSON: left out and counted
    ann = Annotations(
        image=np.sort(rng.integers(0, m, n)), label=rng.integers(0, 3, n), box=box, iscrowd=np.zeros(n, bool),
        attributes={"color": obj_array(colors.tolist()), "occluded": obj_array((rng.random(n) < 0.5).tolist()),
                    "weight": obj_array(weight.tolist())},
        extra={"coco_id": np.arange(1, n + 1) * 3, "area": (wh[:, 0] * wh[:, 1]).round(2),
               "track": rng.integers(0, 50, n)})
    images = Images(path=obj_array([f"img/{i:06d}.jpg" for i in range(m)]), width=np.full(m, 640),
                    height=np.full(m, 480), extra={"seq": obj_array([f"s{i % 9}" for i in range(m)])})
    schema = LabelSchema(classes=tuple(ClassDef(c) for c in ("a", "b", "c")), tasks=(Task.DETECTION,))
    return Dataset(schema=schema, images=images, annotations=ann)


# -- writing -----------------------------------------------------------------------------------------------
def test_write_memory_per_annotation_is_bounded(tmp_path: Path) -> None:
    small, large = _detections(2_000), _detections(8_000, seed=1)
    coco.write(_detections(30), tmp_path / "warm.json")  # imports and caches out of the measurement
    grow = (traced_peak(lambda: coco.write(large, tmp_path / "large.json", chunk_rows=500))
            - traced_peak(lambda: coco.write(small, tmp_path / "small.json", chunk_rows=500))) / 6_000
    # columns stay numpy arrays (tens of bytes an annotation); every record's values as Python objects cost ~900
    assert grow < 250, f"the write's peak grows by {grow:.0f} bytes per annotation"


@pytest.mark.parametrize(("kind", "indent"), [("detections", None), ("shapes", None), ("shapes", 2)],
                         ids=["detections-compact", "shapes-compact", "shapes-indent"])
def test_written_bytes_do_not_depend_on_chunk_rows(kind: str, indent: int | None, tmp_path: Path) -> None:
    # shapes: polygons, masks, keypoints, crowds; detections: more than a line of annotations, some without geometry
    ds = _detections(21_000, tags=0.01) if kind == "detections" else shapes(24, seed=0)
    paths = []
    for rows in (4096, 7, 100_000):
        paths.append(tmp_path / f"rows{rows}.json")
        coco.write(ds, paths[-1], indent=indent, chunk_rows=rows)
    data = paths[0].read_bytes()
    assert all(p.read_bytes() == data for p in paths[1:])
    doc = json.loads(data)
    n_tags = int(np.isnan(ds.annotations.box[:, 0]).sum()) if ds.annotations.box is not None else 0
    assert len(doc["annotations"]) == ds.n_annotations - n_tags and len(doc["images"]) == ds.n_images
    if kind == "detections":  # the compact layout: a line of 20,000 annotations, the images on one line
        lines = data.split(b"\n")
        assert lines[1].startswith(b'"images": [{') and lines[1].endswith(b"}],")
        assert lines[2] == b'"annotations": ['
        assert [line.count(b'"image_id"') for line in lines[3:5]] == [20_000, len(doc["annotations"]) - 20_000]
        assert lines[5] == b"],"


def test_write_empty_tables(tmp_path: Path) -> None:
    ds = _detections(30)
    coco.write(ds.select_images(np.zeros(ds.n_images, bool)), tmp_path / "empty.json", chunk_rows=1)
    assert b'"images": [],\n"annotations": [\n],\n' in (tmp_path / "empty.json").read_bytes()
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1, got 0"):
        coco.write(ds, tmp_path / "bad.json", chunk_rows=0)


# -- reading -----------------------------------------------------------------------------------------------
def _file(path: Path, n: int, attributes: Callable[[int], dict[str, Any]]) -> Path:
    anns = [{"id": i + 1, "image_id": i // 10 + 1, "category_id": 1, "bbox": [1.5, 2.5, 10.25, 20.75],
             "area": 200.5, "iscrowd": 0, "attributes": attributes(i)} for i in range(n)]
    images = [{"id": j + 1, "file_name": f"{j}.jpg", "width": 64, "height": 64} for j in range(n // 10 + 1)]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}]}))
    return path


def _varied(i: int) -> dict[str, Any]:
    """Keys that some records lack, and that first appear in the reader's second chunk (8192 objects)."""
    d: dict[str, Any] = {"color": ("red", "green", "blue")[i % 3]}
    if i % 2 == 0:
        d["flag"] = i % 4 == 0
    if i >= 9000 and i % 5 == 0:
        d["z"] = [i, None]
    if i >= 10_000:
        d["note"] = f"free text {i}"  # more distinct strings than are shared
    return d


def test_attribute_columns_read_in_chunks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    n = 20_000
    ds = both(monkeypatch, _file(tmp_path / "a.json", n, _varied))  # the Python path's Dataset and the kernel's equal
    attrs = ds.annotations.attributes
    assert list(attrs) == ["color", "flag", "z", "note"]  # in order of appearance
    want = [_varied(i) for i in range(n)]
    order = np.argsort(ds.annotations.extra["coco_id"], kind="stable")
    for k, col in attrs.items():
        assert col[order].tolist() == [d.get(k) for d in want], k
    assert n - 10_000 > MAX_SHARED_STRINGS


@pytest.mark.parametrize("native", ["0", "1"], ids=["python", "kernel"])
def test_equal_attribute_strings_share_one_object(native: str, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    ds, _ = coco.parse(_file(tmp_path / "a.json", 3000, _varied), chunk_bytes=1 << 16)
    color = ds.annotations.attributes["color"].tolist()
    assert sorted(set(color)) == ["blue", "green", "red"]
    assert len({id(v) for v in color}) == 3  # not 3000 copies of three words (50 MB a million)


@needs_kernel
def test_kernel_read_memory_per_annotation_is_bounded(tmp_path: Path) -> None:
    def three(i: int) -> dict[str, Any]:
        return {"occluded": i % 2 == 1, "color": ("red", "green", "blue")[i % 3], "n": i % 7}

    small, large = _file(tmp_path / "small.json", 5_000, three), _file(tmp_path / "large.json", 25_000, three)
    coco.parse(small)  # imports and caches out of the measurement
    grow = (traced_peak(lambda: coco.parse(large)) - traced_peak(lambda: coco.parse(small))) / 20_000
    # the Dataset's columns and the kernel's (~200 bytes an annotation); every attribute dict at once cost ~850
    assert grow < 400, f"the read's peak grows by {grow:.0f} bytes per annotation"
