"""Oriented boxes (``obb``, ``rbox``, ``poly``) parsed by the C reader of COCO records against the Python path.

The kernel parses a value that is a list of 5 (``obb``/``rbox``, ``w``/``h`` >= 0) or 8 (``poly``) numbers into a
float64 column; any other value (null, another length, strings, a negative size), and any value of a record with a
segmentation, goes to the Python path's column of values as read. Random files of such records, numbers spelled
every way JSON allows, are read with ``MASLOW_NATIVE=0`` and with the kernel: Datasets, findings and errors must be
equal bit for bit, and the kernel must take every file whose records are plain JSON.
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from maslow._native import load
from maslow.core.dataset import Dataset
from maslow.errors import FormatError
from maslow.io import coco, coco_results
from maslow.io._coco_columns import AnnColumns
from maslow.io._coco_native import read_coco_native, read_results_native
from tests.io.test_coco_native import _same_result

KERNEL = load("records")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="maslow._native.records is not built")
IMAGES = [{"id": 1, "file_name": "a.jpg", "width": 1000, "height": 800},
          {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480},
          {"id": 3, "file_name": "c.jpg", "width": 1200, "height": 900}]
CATEGORIES = [{"id": 1, "name": "plane"}, {"id": 2, "name": "ship"}]
LENGTH = {"obb": 5, "rbox": 5, "poly": 8}
#: Numbers as JSON spells them: integers, -0, exponents, 17 digits, beyond 19 digits, sub/normal limits, underflow.
ODD = ["0", "-0", "-0.0", "0.0", "1", "-1", "7", "1.5", "-2.25", "0.1", "0.30000000000000004", "1e5", "1E-5",
       "2.5e+3", "-3.5E2", "123456789012345", "9007199254740993", "9007199254740993.0", "1e22", "1e23", "1e-23",
       "5e-324", "2.2250738585072011e-308", "1e-400", "347.34271240234375", "12345678901234567890.123",
       "-9223372036854775808", "9223372036854775807", "3.141592653589793238462643383279", "1e-7", "100.0",
       "0.000000000000000000000000000001", "1.00000000000000011102230246251565404236316680908203125", "7.038531e-26"]
#: Values the Python path reports (each raises FormatError there), or that make the kernel bail out (1e400).
BAD = ["[]", "[1, 2, 3]", "[1,2,3,4,5,6]", '"1,2,3,4,5"', '[1, 2, "3", 4, 5]', "[[1, 2], [3, 4], [5, 6], [7, 8]]",
       "true", "{}", "[1, 2, 3, 4, true]", "[1, 2, 3, 4, null]", "[1e400, 2, 3, 4, 5]", "[1, 2, -3, 4, 0.5]",
       "[1, 2, 3, -1e-300, 0]", "[1,2,3,4,5,6,7,8,9]"]
SEGMENTS = ["[]", "[[10, 10, 50, 10, 50, 40]]", '{"size": [800, 1000], "counts": "0"}']
WS = ["", "", "", " ", "\n", "\t", " \r\n "]


# -- random files ----------------------------------------------------------------------------------------------------
def _number(rng: np.random.Generator, *, size: bool = False) -> str:
    """A JSON number: odd spellings, float32 values in 17 digits, plain decimals; ``size``: >= 0 (or -0)."""
    pick = rng.random()
    if pick < 0.3:
        text = str(rng.choice(ODD))
    elif pick < 0.55:
        text = repr(float(np.float32(rng.uniform(-500, 1500))))
    elif pick < 0.8:
        text = str(round(float(rng.uniform(-500, 1500)), int(rng.integers(0, 4))))
    else:
        text = str(int(rng.integers(-1000, 1000)))
    if size and text.startswith("-") and text not in ("-0", "-0.0"):
        text = "9223372036854775807" if text == "-9223372036854775808" else text[1:]  # not past int64
    return text


def _ws(rng: np.random.Generator) -> str:
    return str(rng.choice(WS))


def _value(rng: np.random.Generator, key: str) -> str:
    """A plain oriented box: a list of 5 or 8 numbers (w, h >= 0 for obb/rbox), with odd whitespace."""
    nums = [_number(rng, size=key != "poly" and k in (2, 3)) for k in range(LENGTH[key])]
    return "[" + _ws(rng) + ("," + _ws(rng)).join(nums) + _ws(rng) + "]"


def _record(rng: np.random.Generator, j: int, *, results: bool, bad: bool, escaped: str | None) -> str:
    parts: list[tuple[str, str]] = [("image_id", str(int(rng.choice([1, 2, 3, 3, 99] if rng.random() < 0.1 else
                                                                     [1, 2, 3])))),
                                    ("category_id", str(int(rng.integers(1, 3))))]
    if not results:
        parts += [("id", str(j + 1)), ("iscrowd", str(int(rng.random() < 0.1)))]
    else:
        parts.append(("score", _number(rng, size=True)))
    boxed = rng.random() < (0.5 if results else 0.8)
    if boxed:
        parts.append(("bbox", "[" + ", ".join(_number(rng, size=k >= 2) for k in range(4)) + "]"))
    if rng.random() < 0.3:
        parts.append(("area", _number(rng, size=True)))
    if rng.random() < 0.2:
        parts.append(("segmentation", str(rng.choice(SEGMENTS))))
    keys = [k for k in LENGTH if rng.random() < 0.5] or [str(rng.choice(list(LENGTH)))]
    for k in keys:
        v = "null" if (results or boxed) and rng.random() < 0.08 else _value(rng, k)  # no box at all: a finding
        parts.append((escaped if escaped is not None and k == "obb" else k, v))
    if bad:
        k = str(rng.choice(keys))
        parts = [(n, str(rng.choice(BAD))) if n == k else (n, v) for n, v in parts]
    if rng.random() < 0.1:
        parts.append(("note", json.dumps(str(rng.choice(["a", "b"])))))
    order = rng.permutation(len(parts))
    body = ("," + _ws(rng)).join(f'"{parts[i][0]}"{_ws(rng)}:{_ws(rng)}{parts[i][1]}' for i in order)
    return "{" + _ws(rng) + body + _ws(rng) + "}"


def _file(rng: np.random.Generator, path: Path, n: int, *, results: bool, bad: bool = False,
          escaped: bool = False) -> Path:
    """A truth file (``results``: a results list) of ``n`` random records; ``bad``: one record with a value the
    Python path reports; ``escaped``: one record spells ``obb`` with an escape."""
    bad_at = int(rng.integers(n)) if bad else -1
    esc_at = int(rng.integers(n)) if escaped else -1
    recs = [_record(rng, j, results=results, bad=j == bad_at, escaped="\\u006fbb" if j == esc_at else None)
            for j in range(n)]
    text = "[" + ",\n".join(recs) + "]"
    if not results:
        head = json.dumps({"images": IMAGES, "categories": CATEGORIES})[:-1]
        text = head + ', "annotations": ' + text + "}"
    path.write_text(text)
    return path


# -- the two paths ---------------------------------------------------------------------------------------------------
def _outcome(mp: pytest.MonkeyPatch, native: str, path: Path, like: Dataset | None) -> Any:
    mp.setenv("MASLOW_NATIVE", native)
    try:
        return coco.parse(path) if like is None else coco_results.parse(path, like=like)
    except (FormatError, ArithmeticError, RuntimeWarning) as e:  # the same error on both paths
        attrs = (e.path, e.record, e.field) if isinstance(e, FormatError) else ()
        return type(e).__name__, str(e), attrs


def _both(mp: pytest.MonkeyPatch, path: Path, like: Dataset | None = None) -> Any:
    py, nat = _outcome(mp, "0", path, like), _outcome(mp, "1", path, like)
    if isinstance(py[0], Dataset) and isinstance(nat[0], Dataset):
        _same_result(py, nat)
    else:
        assert py == nat
    return nat


def _taken(path: Path, *, results: bool) -> bool:
    if results:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return read_results_native(data, AnnColumns(bbox_optional=True))
    return read_coco_native(path) is not None


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = tmp_path_factory.mktemp("obb_native") / "truth.json"
    path.write_text(json.dumps({"images": IMAGES, "categories": CATEGORIES, "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "obb": [100, 100, 40, 20, 0.3], "area": 800, "iscrowd": 0}]}))
    return coco.parse(path)[0]


# -- tests -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("results", [False, True], ids=["truth", "results"])
def test_random_plain_files_are_taken_and_equal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, truth: Dataset,
                                                results: bool) -> None:
    rng = np.random.default_rng(11 if results else 12)
    read = 0
    for i in range(40):
        path = _file(rng, tmp_path / f"f{i}.json", int(rng.integers(1, 30)), results=results)
        got = _both(monkeypatch, path, truth if results else None)
        read += isinstance(got[0], Dataset)
        if KERNEL is not None:  # nulls, segmentations beside boxes, no bbox: all the kernel's now
            assert _taken(path, results=results), path.read_text()[:300]
    assert read >= 30  # most files read (a few raise on both paths: an oriented box overflowing, ...)


@pytest.mark.parametrize("results", [False, True], ids=["truth", "results"])
def test_random_files_with_a_bad_value_fail_alike(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, truth: Dataset,
                                                  results: bool) -> None:
    rng = np.random.default_rng(21 if results else 22)
    errors = 0
    for i in range(40):
        path = _file(rng, tmp_path / f"f{i}.json", int(rng.integers(1, 12)), results=results, bad=True)
        got = _both(monkeypatch, path, truth if results else None)
        errors += got[0] == "FormatError"
    assert errors >= 20


@pytest.mark.parametrize("results", [False, True], ids=["truth", "results"])
def test_a_key_spelled_with_an_escape(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, truth: Dataset,
                                      results: bool) -> None:
    rng = np.random.default_rng(31)
    for i in range(10):
        path = _file(rng, tmp_path / f"f{i}.json", int(rng.integers(2, 12)), results=results, escaped=True)
        _both(monkeypatch, path, truth if results else None)


@pytest.mark.parametrize("results", [False, True], ids=["truth", "results"])
def test_one_record_with_two_spellings_of_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, truth: Dataset,
                                                results: bool) -> None:
    rec = '{"image_id": 1, "category_id": 1, "score": 0.5, "id": 1, "obb": [1, 2, 3, 4, 0], ' \
          '"\\u006fbb": [10, 20, 30, 40, 0.5]}'
    path = tmp_path / "two.json"
    text = "[" + rec + "]"
    path.write_text(text if results else json.dumps({"images": IMAGES, "categories": CATEGORIES})[:-1]
                    + ', "annotations": ' + text + "}")
    ds = _both(monkeypatch, path, truth if results else None)[0]
    assert ds.annotations.extra["coco_obb"][0].tolist() == [10, 20, 30, 40, 0.5]  # the last one counts, as in JSON


@needs_kernel
def test_the_kernel_gives_the_numbers_json_gives(tmp_path: Path) -> None:
    rng = np.random.default_rng(41)
    recs = [{"image_id": 1, "category_id": 1, "score": 0.5} for _ in range(300)]
    texts = []
    for j, r in enumerate(recs):
        key = list(LENGTH)[j % 3]
        value = _value(rng, key)
        texts.append(json.dumps(r)[:-1] + f', "{key}": {value}}}')
    data = ("[" + ",".join(texts) + "]").encode()
    acc = AnnColumns(bbox_optional=True)
    assert read_results_native(data, acc)
    got = acc.extras()
    for key in LENGTH:
        col = got[key]
        assert col.ndim == 2 and col.shape == (300, LENGTH[key])  # parsed by the kernel, not left as JSON values
        rows = np.arange(list(LENGTH).index(key), 300, 3)
        assert np.isnan(np.delete(col, rows, axis=0)).all()
        for lib in (orjson.loads, json.loads):  # bit for bit: -0.0, subnormals, 17 digits, integers
            want = [[float(v) for v in lib(data)[j][key]] for j in rows.tolist()]
            assert [[struct.pack("<d", v) for v in row] for row in col[rows].tolist()] == \
                [[struct.pack("<d", v) for v in row] for row in want]


@needs_kernel
def test_oriented_boxes_stand_in_for_a_missing_bbox_in_the_kernel(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "obb": [100, 100, 40, 20, 0.3], "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 2, "poly": [1, 1, 9, 1, 9, 5, 1, 5]}]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": IMAGES, "categories": CATEGORIES, "annotations": anns}))
    assert _taken(path, results=False)
    ds = _both(monkeypatch, path)[0]
    assert ds.annotations.box[1].tolist() == [1, 1, 9, 5]
    anns.append({"id": 3, "image_id": 1, "category_id": 1, "obb": None})  # no box at all: the Python path reports
    path.write_text(json.dumps({"images": IMAGES, "categories": CATEGORIES, "annotations": anns}))
    assert not _taken(path, results=False)
    assert "coco_bad_bbox" in [i.type for i in _both(monkeypatch, path)[1].issues]


@needs_kernel
def test_a_segmentation_keeps_its_boxes_as_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8], "obb": [5, 5, 8, 8, 0], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 1, 8, 8], "obb": [5, 5, 8, 8, 0], "iscrowd": 0,
             "segmentation": [[1, 1, 9, 1, 9, 9]]}]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": IMAGES, "categories": CATEGORIES, "annotations": anns}))
    assert _taken(path, results=False)
    ds, rep = _both(monkeypatch, path)
    obb = ds.annotations.extra["obb"]
    assert obb[0] is None and obb[1] == [5, 5, 8, 8, 0] and all(type(v) is int for v in obb[1])  # the file's ints
    assert "coco_obb_with_segmentation" in [i.type for i in rep.issues]
