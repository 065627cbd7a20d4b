"""maslow Parquet: every column round-trips exactly, bytes are deterministic, bad folders raise FormatError."""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
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


# -- damaged files and values that can't round-trip (found by fuzzing) ---------------------------------
def _chunk_end(path: Path, column: str) -> int:
    meta = pq.ParquetFile(path).metadata.row_group(0)
    c = next(meta.column(j) for j in range(meta.num_columns) if meta.column(j).path_in_schema == column)
    return int((c.dictionary_page_offset or c.data_page_offset) + c.total_compressed_size)


def test_a_damaged_page_raises_naming_file_and_column(tmp_path: Path) -> None:
    """A flipped byte inside a page used to decode silently to other values (no page checksums)."""
    write_parquet(every_column(), tmp_path / "d", compression="none")
    f = tmp_path / "d" / "annotations.parquet"
    data = bytearray(f.read_bytes())
    data[_chunk_end(f, "score") - 3] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(FormatError, match=r"annotations\.parquet, field 'score': unreadable Parquet.*CRC"):
        parse(tmp_path / "d")


def test_random_byte_damage_raises_format_error_or_reads_back_exactly(tmp_path: Path) -> None:
    """Seeded byte flips in every Parquet file: never another exception (KeyError, UnicodeDecodeError,
    IndexError escaped before), never different values."""
    ds = every_column()
    write_parquet(ds, tmp_path / "src")
    rng = np.random.default_rng(0)
    for name in ("annotations.parquet", "images.parquet", "polygon_rings.parquet", "polygon_xy.parquet"):
        data = (tmp_path / "src" / name).read_bytes()
        for k in range(40):
            bad = bytearray(data)
            for j in rng.integers(0, len(data), size=int(rng.integers(1, 4))).tolist():
                bad[j] = int(rng.integers(0, 256))
            d = tmp_path / f"{name}{k}"
            d.mkdir()
            for p in (tmp_path / "src").iterdir():
                (d / p.name).write_bytes(bytes(bad) if p.name == name else p.read_bytes())
            try:
                back, _ = parse(d)
            except FormatError as e:
                assert str(d) in str(e)
            else:
                assert_identical(ds, back)


def _rewrite(path: Path, change: Any) -> None:
    table = pq.read_table(path)
    pq.write_table(change(table), path)


@pytest.mark.parametrize(("damage", "match"), [
    pytest.param(lambda d: _rewrite(d / "annotations.parquet", lambda t: t.drop_columns(["attr:colour"])),
                 r"annotations\.parquet, field 'attr:colour': column is missing", id="missing-str-column"),
    pytest.param(lambda d: _rewrite(d / "images.parquet", lambda t: t.set_column(
        0, "path", t.column("path").cast(pa.binary()))), r"column 'path' can't be decoded.*must be stored as string",
        id="str-as-binary"),
    pytest.param(lambda d: _rewrite(d / "polygon_rings.parquet", lambda t: t.rename_columns(["other"])),
                 r"polygon_rings\.parquet, field 'length': column is missing", id="renamed-rings"),
])
def test_tables_that_disagree_with_the_header_raise(tmp_path: Path, damage: Any, match: str) -> None:
    write_parquet(every_column(), tmp_path / "d")
    damage(tmp_path / "d")
    with pytest.raises(FormatError, match=match):
        parse(tmp_path / "d")


@pytest.mark.parametrize(("edit", "match"), [
    pytest.param(lambda e: e.pop("field"), r"annotations\[0\]: column 'image' must have a field", id="no-field"),
    pytest.param(lambda e: e.update(field="nope"), r"got field 'nope'", id="unknown-field"),
    pytest.param(lambda e: e.update(kind="nope"), r"kind 'nope'", id="unknown-kind"),
    pytest.param(lambda e: e.update(dtype="nope"), r"column 'image' must have a numpy dtype", id="bad-dtype"),
    pytest.param(lambda e: e.update(column=3), r"must be an object with a 'column' name", id="bad-column"),
])
def test_a_damaged_column_list_in_the_header_raises(tmp_path: Path, edit: Any, match: str) -> None:
    """Used to escape as KeyError or TypeError (Annotations() got an unexpected keyword argument)."""
    write_parquet(every_column(), tmp_path / "d")
    head = tmp_path / "d" / "dataset.json"
    header = json.loads(head.read_text())
    edit(header["annotations"][0])
    head.write_text(json.dumps(header))
    with pytest.raises(FormatError, match=r"dataset\.json, .*" + match):
        parse(tmp_path / "d")


@pytest.mark.parametrize(("values", "match"), [
    pytest.param([{1: "a"}, None], r"dict keys must be str, got 1", id="int-key"),  # came back as {"1": "a"}
    pytest.param([{"a": {None: 1}}, None], r"dict keys must be str, got None", id="nested-none-key"),
    pytest.param(["\ud800", None], r"surrogates not allowed", id="lone-surrogate"),  # was UnicodeEncodeError
])
def test_object_values_that_would_change_are_refused(tmp_path: Path, values: list[Any], match: str) -> None:
    write_parquet(shapes(2), tmp_path / "x")
    before = digests(tmp_path / "x")
    ds = Dataset(schema=LabelSchema.from_names(["a"]), images=Images(path=["a", "b"], width=[1, 1], height=[1, 1],
                                                                     extra={"v": obj_array(values)}),
                 annotations=Annotations.empty())
    with pytest.raises(FormatError, match=r"column 'extra:v' holds values that are not JSON.*" + match):
        write_parquet(ds, tmp_path / "x")
    assert digests(tmp_path / "x") == before


def test_two_dimensional_object_columns_are_refused(tmp_path: Path) -> None:
    """An (m, 2) object column came back as (m,) lists."""
    ds = Dataset(schema=LabelSchema.from_names(["a"]),
                 images=Images(path=["a"], width=[1], height=[1], extra={"o": np.array([[1, "x"]], object)}),
                 annotations=Annotations.empty())
    with pytest.raises(FormatError, match=r"column 'extra:o' of Python objects must be 1-D, got shape \(1, 2\)"):
        write_parquet(ds, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_fixed_width_strings_keep_inner_nul_bytes(tmp_path: Path) -> None:
    """pyarrow cut numpy S/U values at the first NUL: b'a\\x00b' came back as b'a'."""
    ds = Dataset(schema=LabelSchema.from_names(["a"]), annotations=Annotations.empty(), images=Images(
        path=["a", "b"], width=[1, 1], height=[1, 1],
        extra={"s": np.array([b"a\x00b", b"c"]), "u": np.array(["x\x00y", "é"]), "s2": np.array([[b"\x00z"]] * 2)}))
    write_parquet(ds, tmp_path / "x")
    assert_identical(ds, read_parquet(tmp_path / "x"))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_random_datasets_round_trip_exactly(seed: int) -> None:
    """Seeded datasets with every geometry (multi-part polygons, crowd masks, keypoints), attributes of
    every type, odd names and splits, plus extra columns: every column comes back exactly."""
    from tests.io.gen_datasets import random_dataset

    ds = random_dataset(seed)
    n, m = ds.n_annotations, ds.n_images
    ann = ds.annotations.with_columns(
        score=np.linspace(0, 1, n), annotator=obj_array([None if k % 2 else "ä b" for k in range(n)]),
        extra={"nan": np.where(np.arange(n) % 3, np.nan, 1.5),
               "mix": obj_array([[[None, float("nan")], {"k": "ü"}, 2**70][k % 3] for k in range(n)])})
    im = ds.images
    images = Images(path=im.path, width=im.width, height=im.height, split=im.split,
                    extra={"seq": obj_array(["s"] * m), "none": np.zeros((m, 0)), "f16": np.ones((m, 2), np.float16)})
    schema = LabelSchema(classes=ds.schema.classes, tasks=ds.schema.tasks, attributes=ds.schema.attributes,
                         guidelines="ünï\n guide", version=2)
    ds = ds.replace(annotations=ann, images=images, schema=schema, root=Path("rel/ü"))
    with tempfile.TemporaryDirectory() as tmp:
        for group in (2, 1 << 17):
            write_parquet(ds, Path(tmp) / "p", row_group_size=group)
            assert_identical(ds, read_parquet(Path(tmp) / "p"))
