"""maslow Parquet: every column round-trips exactly, bytes are deterministic, bad folders raise FormatError."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maslow import io
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import SOURCES, Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io.parquet import parse, read_parquet, write_parquet
from maslow.sample import shapes

GOLDEN = Path(__file__).parents[1] / "data" / "parquet" / "every_column"


def same(a: Any, b: Any) -> bool:
    """Exact equality: same types, same dtypes, NaN equal to NaN."""
    if isinstance(a, Polygons) or isinstance(b, Polygons):
        return isinstance(a, Polygons) and isinstance(b, Polygons) and a.equals(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and (all(same(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True))
                                            if a.dtype == object else np.array_equal(a, b, equal_nan=a.dtype.kind in "fcmM")))
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def assert_identical(a: Dataset, b: Dataset) -> None:
    assert a.schema == b.schema
    assert a.root == b.root
    for table in ("images", "annotations"):
        ta, tb = getattr(a, table), getattr(b, table)
        for f in fields(ta):
            x, y = getattr(ta, f.name), getattr(tb, f.name)
            if isinstance(x, dict):
                assert list(x) == list(y), f"{table}.{f.name} keys"
                for k in x:
                    assert same(x[k], y[k]), f"{table}.{f.name}[{k!r}] differs"
            else:
                assert (x is None) == (y is None), f"{table}.{f.name}: present in one only"
                assert x is None or same(x, y), f"{table}.{f.name} differs"


def every_column() -> Dataset:
    """A dataset with every column and every column kind, NaN boxes and None everywhere it is allowed."""
    ring = np.array([1.0, 2.0, 9.5, 2.0, 9.5, 8.25])
    images = Images(
        path=["a.jpg", "dir/b.png", "c.jpg"], width=[10, 20, 0], height=[8, 16, 0], split=["train", "", "val"],
        extra={
            "coco_id": np.array([3, 1, 2]), "f32": np.array([0.5, np.nan, -1], np.float32),
            "u8": np.array([1, 2, 255], np.uint8), "flag": np.array([True, False, True]),
            "code": np.array(["ab", "c", ""]), "when": np.array(["2024-01-01", "NaT", "2020-02-29T12:00"],
                                                               "datetime64[s]"),
            "xy": np.arange(6.0).reshape(3, 2), "camera": obj_array(["cam1", None, "cam2"]),
        },
    )
    n = 6
    annotations = Annotations(
        image=[0, 0, 0, 1, 1, 2], label=[0, 1, 2, 0, 1, 2],
        box=[[0, 0, 5, 5], [np.nan] * 4, [1.5, 2.25, 3.125, 4.0], [0, 0, 10, 8], [np.nan] * 4, [2, 2, 2, 2]],
        score=[0.5, np.nan, 1.0, 0.0, 0.25, np.nan],
        mask=obj_array([M.encode(np.eye(8, 10, dtype=bool)), None, None, M.encode(np.ones((16, 20), bool)), None,
                        {"size": [2, 2], "counts": b"04"}]),
        polygon=obj_array([[ring], None, [ring, ring[:6] + 1], [], None, [np.zeros(6)]]),
        keypoints=np.concatenate([np.arange(n * 6.0).reshape(n, 2, 3)[:3], np.full((3, 2, 3), np.nan)]),
        iscrowd=[False, False, True, False, False, True],
        attributes={
            "colour": obj_array(["red", None, "blue", "red", None, None]),
            "occluded": obj_array([True, False, None, True, None, None]),
            "count": obj_array([1, None, 3, -(2**62), None, 0]),
            "weight": obj_array([0.5, float("nan"), None, 1e300, None, -0.0]),
            "anything": obj_array([{"a": [1, 2.5, None]}, [1, "x"], "s", 4, None, True]),
            "empty": obj_array([None] * n),
        },
        annotator=obj_array(["ann1", None, "ann2", "ann1", "", None]),
        source=obj_array(["human", "model", "pseudo", "synthetic", "model", "human"]),
        extra={"coco_id": np.array([10, 11, 12, 13, 14, 15]), "area": np.array([25, np.nan, 1, 2, 3, 0.0]),
               "blob": obj_array([b"\x00\x01", None, b"", b"x", None, None]),
               "i16": np.array([1, -2, 3, 4, 5, 6], np.int16)},
    )
    schema = LabelSchema(
        classes=(ClassDef("a", id=1, supercategory="s", color="#ff0000"), ClassDef("b", kind="semantic"),
                 ClassDef("c", keypoints=("p", "q"), skeleton=((0, 1),), label_types=("box", "keypoints"))),
        tasks=(Task.KEYPOINTS, Task.DETECTION),
        attributes=(AttributeDef("colour", type="enum", values=("red", "blue"), required=True),),
        guidelines="be careful", version=3,
    )
    return Dataset(schema=schema, images=images, annotations=annotations, root=Path("/data/images"))


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_every_column_round_trips_exactly(tmp_path: Path) -> None:
    ds = every_column()
    rep = write_parquet(ds, tmp_path / "ds")
    assert rep.lossless and rep.n_annotations == 6
    back = read_parquet(tmp_path / "ds")
    assert_identical(ds, back)
    assert back.annotations.polygon is not None and back.annotations.polygon[3] == []


def test_shapes_round_trip_exactly(tmp_path: Path, shapes_ds: Dataset) -> None:
    write_parquet(shapes_ds, tmp_path / "s")
    assert_identical(shapes_ds, read_parquet(tmp_path / "s"))


@pytest.mark.parametrize("rows", [1, 2, 5])
def test_many_row_groups_round_trip(tmp_path: Path, rows: int) -> None:
    ds = every_column()
    write_parquet(ds, tmp_path / "g", row_group_size=rows, compression="none")
    assert_identical(ds, read_parquet(tmp_path / "g"))


def test_empty_dataset_round_trips(tmp_path: Path) -> None:
    ds = Dataset(schema=LabelSchema.from_names(["x"]), images=Images.empty(), annotations=Annotations.empty())
    write_parquet(ds, tmp_path / "e")
    assert_identical(ds, read_parquet(tmp_path / "e"))


def test_same_dataset_gives_the_same_bytes(tmp_path: Path) -> None:
    write_parquet(every_column(), tmp_path / "a")
    write_parquet(every_column(), tmp_path / "b")
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert sorted(digests(tmp_path / "a")) == ["annotations.parquet", "dataset.json", "images.parquet",
                                               "polygon_rings.parquet", "polygon_xy.parquet"]
    write_parquet(shapes(3), tmp_path / "c")
    assert digests(tmp_path / "c") != digests(tmp_path / "a")


def test_golden_folder_still_reads() -> None:
    """Files written by an earlier maslow stay readable (the golden folder is checked in)."""
    assert_identical(every_column(), read_parquet(GOLDEN, images_root="/data/images"))
    header = json.loads((GOLDEN / "dataset.json").read_text())
    kinds = {c["column"]: c["kind"] for c in header["annotations"]}
    assert kinds["polygon"] == "polygon" and kinds["attr:anything"] == "json" and kinds["attr:count"] == "int"


def test_images_root_overrides_the_stored_root(tmp_path: Path) -> None:
    write_parquet(every_column(), tmp_path / "x")
    assert read_parquet(tmp_path / "x", images_root=tmp_path).root == tmp_path
    assert io.read(tmp_path / "x", "parquet").root == Path("/data/images")


def test_values_that_are_not_json_are_refused_and_the_old_output_kept(tmp_path: Path) -> None:
    write_parquet(shapes(2), tmp_path / "x")
    before = digests(tmp_path / "x")
    ds = every_column()
    bad = ds.annotations.with_columns(extra={"arr": obj_array([np.zeros(2)] * 6)})
    with pytest.raises(FormatError, match="column 'extra:arr' holds values that are not JSON"):
        write_parquet(ds.replace(annotations=bad), tmp_path / "x")
    assert digests(tmp_path / "x") == before


@pytest.mark.parametrize(("damage", "match"), [
    pytest.param(lambda d: (d / "dataset.json").unlink(), r"dataset.json, which is missing", id="no-header"),
    pytest.param(lambda d: (d / "dataset.json").write_text("{"), r"unreadable header", id="bad-header"),
    pytest.param(lambda d: (d / "dataset.json").write_text('{"format": "x"}'), r"format must be", id="not-ours"),
    pytest.param(lambda d: (d / "images.parquet").unlink(), r"images.parquet: file not found", id="no-images"),
    pytest.param(lambda d: (d / "annotations.parquet").write_bytes(b"PAR1 nonsense"), r"unreadable Parquet",
                 id="corrupt"),
    pytest.param(lambda d: (d / "dataset.json").write_text(
        (d / "dataset.json").read_text().replace('"version": 1', '"version": 99')), r"version must be 1",
        id="version"),
    pytest.param(lambda d: (d / "polygon_xy.parquet").unlink(), r"polygon_xy.parquet: file not found", id="no-xy"),
    pytest.param(lambda d: (d / "polygon_rings.parquet").write_bytes(b"PAR1 x"), r"polygon_rings.parquet.*unreadable",
                 id="corrupt-rings"),
    pytest.param(lambda d: pq.write_table(pa.table({"xy": pa.array(np.zeros(5))}), d / "polygon_xy.parquet"),
                 r"polygon files disagree: .*ring_offsets must rise from 0 to 5", id="short-xy"),
])
def test_damaged_folders_raise(tmp_path: Path, damage: Any, match: str) -> None:
    write_parquet(shapes(3), tmp_path / "d")
    damage(tmp_path / "d")
    with pytest.raises(FormatError, match=match):
        parse(tmp_path / "d")


# -- property test -----------------------------------------------------------------------------------
json_leaf = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.floats(allow_nan=False) | st.text(max_size=5)
json_value = st.recursive(json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c,
                                                                                         max_size=3), max_leaves=6)


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    m = draw(st.integers(1, 4))
    n = draw(st.integers(0, 8))
    image = np.sort(np.asarray(draw(st.lists(st.integers(0, m - 1), min_size=n, max_size=n)), np.int64))
    xy = draw(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(0, 1e3), st.floats(0, 1e3),
                                 st.booleans()), min_size=n, max_size=n))
    box = np.array([[x, y, x + w, y + h] if keep else [np.nan] * 4 for x, y, w, h, keep in xy]).reshape(n, 4)
    ring = st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=0, max_size=8).map(np.array)
    polygon = obj_array(draw(st.lists(st.none() | st.lists(ring, max_size=3), min_size=n, max_size=n)))
    value_cols = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                      st.lists(json_value, min_size=n, max_size=n), max_size=2))
    score = draw(st.none() | st.lists(st.floats(0, 1) | st.just(float("nan")), min_size=n, max_size=n))
    ann = Annotations(
        image=image, label=np.asarray(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), np.int64),
        box=box, score=score, polygon=polygon if n else None,
        attributes={k: obj_array(v) for k, v in value_cols.items()},
        source=obj_array(draw(st.lists(st.sampled_from(SOURCES), min_size=n, max_size=n))),
        extra={"j": obj_array(draw(st.lists(json_value, min_size=n, max_size=n)))},
    )
    images = Images(path=[f"{i}.jpg" for i in range(m)], width=np.full(m, 4), height=np.full(m, 3),
                    extra={"t": obj_array(draw(st.lists(st.none() | st.text(max_size=4), min_size=m, max_size=m)))})
    return Dataset(schema=LabelSchema.from_names(["p", "q"]), images=images, annotations=ann)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(datasets())
def test_round_trip_property(tmp_path: Path, ds: Dataset) -> None:
    write_parquet(ds, tmp_path / "p")
    back = read_parquet(tmp_path / "p")
    assert_identical(ds, back)
