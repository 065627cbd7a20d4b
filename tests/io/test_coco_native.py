"""The C reader of COCO annotation records (``maslow._native.records``) against the Python path.

Every file is read twice, with ``MASLOW_NATIVE=0`` (the Python path) and with the kernel, and the two Datasets
and Reports must be equal bit for bit. Where the kernel must take a file (plain records) the tests also check
that it did; where it must bail out (anything the Python path reports or converts), that it did.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow._native import load
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.polygons import Polygons
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import coco, coco_results
from maslow.io._coco_columns import AnnColumns
from maslow.io._coco_native import read_coco_native, read_results_native
from maslow.io.coco import write_coco
from maslow.io.coco_results import write_coco_results
from maslow.sample import shapes
from tests.conftest import shared_path
from tests.helpers import assert_datasets_equal

KERNEL = load("records")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="maslow._native.records is not built")
DATA = Path(__file__).parents[1] / "data"
ALL_FIELDS = ("path", "size", "split", "label", "box", "score", "mask", "polygon", "keypoints", "iscrowd")
ANN_FIELDS = ("image", "label", "box", "score", "mask", "polygon", "keypoints", "iscrowd", "attributes", "annotator",
              "source", "extra")


# -- comparing the two paths -------------------------------------------------------------------------------
def _same(a: Any, b: Any, where: str) -> None:
    """Equal bit for bit (floats compared by their bytes: -0.0 and NaN payloads count)."""
    if isinstance(a, Polygons):
        for f in ("xy", "ring_offsets", "row_offsets", "null"):
            _same(getattr(a, f), getattr(b, f), f"{where}.{f}")
    elif isinstance(a, np.ndarray) and a.dtype != object:
        assert isinstance(b, np.ndarray) and (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, np.ndarray) or isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(list(a), list(b), strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, float):
        assert type(b) is float and struct.pack("<d", a) == struct.pack("<d", b), where
    else:
        assert type(a) is type(b) and a == b, where


def _same_result(py: tuple[Dataset, Report], nat: tuple[Dataset, Report]) -> None:
    (a, ra), (b, rb) = py, nat
    for f in ANN_FIELDS:
        x, y = getattr(a.annotations, f), getattr(b.annotations, f)
        if x is None or y is None:
            assert x is y, f
        else:
            _same(x, y, f"annotations.{f}")
    _same(a.images.extra, b.images.extra, "images.extra")
    assert a.schema == b.schema and a.root == b.root
    assert [(i.type, i.severity, i.message, i.record, i.field, i.image, i.annotation) for i in ra.issues] == \
        [(i.type, i.severity, i.message, i.record, i.field, i.image, i.annotation) for i in rb.issues]
    # masks: compared by their bytes above (a planted bad RLE can't be decoded)
    present = [f for f in ALL_FIELDS if f != "mask" and (f != "polygon" or a.annotations.polygon is not None)]
    assert_datasets_equal(a, b, fields=present)


def both(mp: pytest.MonkeyPatch, path: Path, like: Dataset | None = None) -> Dataset:
    """parse() with the Python path and with the kernel: equal results (the kernel's Dataset returned)."""
    return both_parse(mp, path, like)[0]


def both_parse(mp: pytest.MonkeyPatch, path: Path, like: Dataset | None = None) -> tuple[Dataset, Report]:
    """parse() with the Python path and with the kernel: equal results (the kernel's returned)."""
    def read() -> tuple[Dataset, Report]:
        return coco.parse(path) if like is None else coco_results.parse(path, like=like)

    mp.setenv("MASLOW_NATIVE", "0")
    py = read()
    mp.setenv("MASLOW_NATIVE", "1")
    nat = read()
    _same_result(py, nat)
    return nat


def taken(path: Path, *, results: bool) -> bool:
    """Whether the kernel reads ``path`` (True) or bails out to the Python path (False)."""
    if results and read_results_native(path.read_bytes(), AnnColumns(bbox_optional=True)):
        return True  # a results list
    return read_coco_native(path, bbox_optional=results) is not None  # a COCO object


def dump(path: Path, obj: Any, **kw: Any) -> Path:
    path.write_text(json.dumps(obj, **kw))
    return path


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shapes dataset written as COCO (boxes, polygons, RLE, keypoints, crowds, attributes)."""
    path = tmp_path_factory.mktemp("native") / "truth.json"
    write_coco(shapes(24, seed=0), path)
    return path


@pytest.fixture(scope="module")
def truth(truth_file: Path) -> Dataset:
    return coco.parse(truth_file)[0]


def _result(image_id: int = 1, category_id: int = 1, **kw: Any) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": category_id, "bbox": [1, 2, 3, 4], "score": 0.5, **kw}


def _ids(truth: Dataset) -> tuple[int, int]:
    return int(truth.images.extra["coco_id"][0]), int(truth.schema.classes[0].id)  # type: ignore[arg-type]


# -- files: the golden files, shared data, maslow's writers --------------------------------------------------
def test_golden_files(monkeypatch: pytest.MonkeyPatch) -> None:
    truth = both(monkeypatch, DATA / "coco" / "instances.json")
    pred = both(monkeypatch, DATA / "coco_results" / "results.json", like=truth)
    assert pred.n_annotations == 5 and truth.schema.attributes


@needs_kernel
def test_golden_files_taken() -> None:
    assert taken(DATA / "coco" / "instances.json", results=False)  # with attributes and keypoints
    assert taken(DATA / "coco_results" / "results.json", results=True)


@needs_kernel
def test_shared_coco_files(monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_path("coco_instances_10", "annotations", "instances_val2017_subset.json")
    assert taken(path, results=False)  # polygons and an uncompressed crowd RLE
    ds = both(monkeypatch, path)
    assert ds.n_annotations == 77 and ds.annotations.mask is not None
    case = shared_path("od_metrics_fixture", "annotations", "coco_eval_case")
    gts = case / "gts" / "sampled_gts_bbox_area.json"
    assert taken(gts, results=False)
    truth = both(monkeypatch, gts)
    for name in ("cocoapi_results.json", "dets/sampled_bbox_results.json"):
        assert taken(case / name, results=True)
        assert both(monkeypatch, case / name, like=truth).n_annotations == 734
    v1 = shared_path("od_metrics_fixture", "annotations", "gts", "coco_format_v1", "instances_default.json")
    dets = shared_path("od_metrics_fixture", "annotations", "dets", "coco_format", "coco_dets.json")
    assert taken(v1, results=False)  # CVAT's export: attributes on every annotation
    assert taken(dets, results=True)  # a whole COCO object with "ignore" keys
    pred = both(monkeypatch, dets, like=both(monkeypatch, v1))
    assert "ignore" in pred.annotations.extra


@needs_kernel
def test_files_written_by_maslow(monkeypatch: pytest.MonkeyPatch, truth_file: Path, tmp_path: Path) -> None:
    assert taken(truth_file, results=False)
    truth = both(monkeypatch, truth_file)
    a = truth.annotations
    assert {a.name for a in truth.schema.attributes} >= {"colour", "occluded"}
    assert a.polygon is not None and a.mask is not None and a.keypoints is not None and bool(np.any(a.iscrowd))
    n = len(a)
    scores = np.linspace(0.01, 0.99, n)
    pred = truth.replace(annotations=a.with_columns(score=scores, source=obj_array(["model"] * n)))
    path = tmp_path / "results.json"
    write_coco_results(pred, path)
    assert taken(path, results=True)
    got = both(monkeypatch, path, like=truth)
    assert got.annotations.mask is not None and got.n_annotations > 0


# -- numbers --------------------------------------------------------------------------------------------
TRICKY = ["0", "-0", "-0.0", "0.0", "1", "-1", "1.5", "0.1", "0.30000000000000004", "1e5", "1E5", "1e+5", "1e-5",
          "2.5E-3", "123456789012345", "1234567890123456789", "9007199254740993", "9007199254740993.0",
          "0.1e1", "100.0", "1e22", "1e23", "1e-22", "1e-23", "8.98846567431158e307", "1e308", "1.7976931348623157e308",
          "2.2250738585072014e-308", "2.2250738585072011e-308", "4.9406564584124654e-324", "5e-324", "1e-400",
          "0.000000000000000000000000000001", "12345678901234567890.123", "3.141592653589793238462643383279",
          "1.00000000000000011102230246251565404236316680908203125", "7.038531e-26", "123.456e-2",
          "-9223372036854775808", "9223372036854775807"]


@needs_kernel
def test_numbers_of_every_shape(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    text = ",".join(f'{{"image_id":{image_id},"category_id":{cat},"bbox":[{v},{v},{v},{v}],"score":{v},'
                    f'"area":{v}}}' for v in TRICKY)
    path = tmp_path / "numbers.json"
    path.write_text(f"[{text}]")
    assert taken(path, results=True)
    pred = both(monkeypatch, path, like=truth)
    want = [float(json.loads(v)) for v in TRICKY]
    assert pred.annotations.score is not None
    assert [struct.pack("<d", v) for v in pred.annotations.score] == [struct.pack("<d", v) for v in want]
    assert math.copysign(1, pred.annotations.score[TRICKY.index("-0.0")]) == -1
    assert math.copysign(1, pred.annotations.score[TRICKY.index("-0")]) == 1  # the integer 0, as float(int)


@needs_kernel
@pytest.mark.parametrize("text", ["1e400", "-1e400", "18446744073709551616", "-9223372036854775809", "NaN",
                                  "Infinity", "01", "1.", ".5", "-", "1e", "+1", "0x10"])
def test_numbers_kernel_refuses(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path, text: str) -> None:
    image_id, cat = _ids(truth)
    path = tmp_path / "n.json"
    path.write_text(f'[{{"image_id":{image_id},"category_id":{cat},"bbox":[1,2,3,4],"score":{text}}}]')
    assert not taken(path, results=True)
    _either_way(monkeypatch, path, truth)


def _either_way(mp: pytest.MonkeyPatch, path: Path, like: Dataset | None = None) -> None:
    """Both paths give the same Dataset and Report, or the same FormatError."""
    try:
        both(mp, path, like)
    except FormatError:
        errors = []
        for flag in ("0", "1"):
            mp.setenv("MASLOW_NATIVE", flag)
            with pytest.raises(FormatError) as err:
                coco.parse(path) if like is None else coco_results.parse(path, like=like)
            errors.append(str(err.value))
        assert errors[0] == errors[1]


def _kernel_values(payload: bytes) -> np.ndarray:
    assert KERNEL is not None
    cols = KERNEL.parse(payload, 0, len(payload), True)
    assert isinstance(cols, dict), cols
    return np.concatenate([np.frombuffer(cols["bbox"], np.float64), np.frombuffer(cols["score"], np.float64)])


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=5, max_size=5),
       st.integers(min_value=1, max_value=17))
def test_random_floats_parse_back_bit_identical(values: list[float], digits: int) -> None:
    rec = {"image_id": 1, "category_id": 1, "bbox": values[:4], "score": values[4]}
    for payload in (json.dumps([rec]).encode(), orjson.dumps([rec])):
        got = _kernel_values(payload)
        assert got.tobytes() == np.asarray(values, np.float64).tobytes()
    short = [f"{v:.{digits}e}" for v in values]  # fewer digits: rounding from decimal, not a round trip
    payload = f'[{{"image_id":1,"category_id":1,"bbox":[{",".join(short[:4])}],"score":{short[4]}}}]'.encode()
    want = [json.loads(s) for s in short]
    if any(math.isinf(v) for v in want):  # 1.75e308 written 1.8e+308: beyond the largest float
        assert KERNEL is not None and isinstance(KERNEL.parse(payload, 0, len(payload), True), str)
        return
    assert _kernel_values(payload).tobytes() == np.asarray(want, np.float64).tobytes()
    rec = orjson.loads(payload)[0]
    assert _kernel_values(payload).tobytes() == np.asarray([*rec["bbox"], rec["score"]], np.float64).tobytes()


# -- text: escapes, whitespace ----------------------------------------------------------------------------
@needs_kernel
def test_escaped_rle_strings(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    i = int(np.flatnonzero(truth.images.extra["coco_id"] == image_id)[0])
    h, w = int(truth.images.height[i]), int(truth.images.width[i])
    mask = np.zeros((h, w), np.uint8)
    mask[3:40, 5:60] = 1
    counts = M.to_json(M.encode(mask))["counts"]
    assert "\\" in counts or True  # counts strings may hold backslashes: written escaped by json
    escaped = json.dumps(counts).replace("A", "\\u0041").replace("/", "\\/")
    rec = f'{{"image_id":{image_id},"category_id":{cat},"score":0.5,"segmentation":{{"size":[{h},{w}],' \
          f'"counts":{escaped}}}}}'
    path = tmp_path / "escaped.json"
    path.write_text(f"[{rec},{rec.replace('0.5', '0.25')}]")
    assert taken(path, results=True)
    pred = both(monkeypatch, path, like=truth)
    assert pred.annotations.mask is not None and pred.annotations.mask[0]["counts"] == counts.encode()
    slash = tmp_path / "slash.json"  # a backslash in counts, written \\ in JSON
    dump(slash, [_result(image_id, cat, segmentation={"size": [h, w], "counts": "a\\b"})])
    assert KERNEL is not None
    cols = KERNEL.parse(slash.read_bytes(), 0, len(slash.read_bytes()), True)
    assert isinstance(cols, dict) and bytes(cols["rle_chars"]) == b"a\\b"


@needs_kernel
def test_whitespace_anywhere(monkeypatch: pytest.MonkeyPatch, truth_file: Path, tmp_path: Path) -> None:
    top = json.loads(truth_file.read_text())
    top = {"annotations": top.pop("annotations"), **top}  # annotations first, images after
    spaced = tmp_path / "spaced.json"
    text = json.dumps(top, indent="\t").replace(": ", " :\r\n ").replace(",", " \n,\t")
    spaced.write_text(text)
    assert taken(spaced, results=False)
    truth = both(monkeypatch, spaced)
    a = truth.annotations
    pred = truth.replace(annotations=a.with_columns(score=np.full(len(a), 0.5), source=obj_array(["model"] * len(a))))
    res = tmp_path / "results.json"
    write_coco_results(pred, res)
    res.write_text("\n  " + json.dumps(json.loads(res.read_text()), indent=2).replace(",", "\r\n,") + "\n\t ")
    assert taken(res, results=True)
    both(monkeypatch, res, like=truth)


@needs_kernel
def test_empty_lists(monkeypatch: pytest.MonkeyPatch, truth: Dataset, truth_file: Path, tmp_path: Path) -> None:
    assert both(monkeypatch, dump(tmp_path / "none.json", []), like=truth).n_annotations == 0
    top = json.loads(truth_file.read_text())
    top["annotations"] = []
    path = dump(tmp_path / "truth.json", top)
    assert taken(path, results=False)
    assert both(monkeypatch, path).n_annotations == 0


@needs_kernel
def test_uncompressed_crowd_rle(monkeypatch: pytest.MonkeyPatch, truth_file: Path, tmp_path: Path) -> None:
    top = json.loads(truth_file.read_text())
    im = top["images"][0]
    h, w = im["height"], im["width"]
    crowd = {"id": 10**6, "image_id": im["id"], "category_id": top["categories"][0]["id"], "iscrowd": 1,
             "bbox": [0, 0, 2, 2], "area": 4.0, "segmentation": {"size": [h, w], "counts": [0, 2, h - 2, 2, h * w - h - 2]}}
    top["annotations"].append(crowd)
    path = dump(tmp_path / "crowd.json", top)
    assert taken(path, results=False)
    both(monkeypatch, path)
    crowd["segmentation"]["counts"] = [0, 2, 5]  # runs that don't cover the image: the Python path reports it
    path = dump(tmp_path / "bad_crowd.json", top)
    assert not taken(path, results=False)
    _, report = both_parse(monkeypatch, path)
    assert report.of_type("coco_bad_rle")


# -- bail-outs: the Python path decides -------------------------------------------------------------------
BAD_RESULTS: dict[str, dict[str, Any]] = {
    "null score": {"score": None},
    "string score": {"score": "0.5"},
    "bool score": {"score": True},
    "short bbox": {"bbox": [1, 2, 3]},
    "string bbox": {"bbox": "1,2,3,4"},
    "null bbox": {"bbox": None},
    "odd polygon": {"segmentation": [[1, 2, 3, 4, 5, 6, 7]]},
    "short polygon": {"segmentation": [[1, 2, 3, 4]]},
    "flat polygon": {"segmentation": [1, 2, 3, 4, 5, 6]},
    "empty ring": {"segmentation": [[]]},
    "short keypoints": {"keypoints": [1, 2, 3, 4]},
    "empty keypoints": {"keypoints": []},
    "non-ascii counts": {"segmentation": {"size": [4, 4], "counts": "é1"}},
    "rle without size": {"segmentation": {"counts": "abc"}},
    "rle extra key": {"segmentation": {"size": [4, 4], "counts": "abc", "x": 1}},
    "attributes list": {"attributes": ["occluded"]},
    "attributes string": {"attributes": "occluded"},
    "annotator not a string": {"annotator": 3},
    "source not a string": {"source": ["model"]},
    "float id": {"category_id": 1.0},
    "float iscrowd": {"iscrowd": 0.5},
    "huge id": {"id": 2**70},
}


@needs_kernel
@pytest.mark.parametrize("case", sorted(BAD_RESULTS))
def test_bail_out_gives_the_python_result(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path,
                                          case: str) -> None:
    image_id, cat = _ids(truth)
    recs = [_result(image_id, cat), {**_result(image_id, cat), **BAD_RESULTS[case]}]
    path = dump(tmp_path / "bad.json", recs)
    assert not taken(path, results=True)
    _either_way(monkeypatch, path, truth)


@needs_kernel
@pytest.mark.parametrize("text", ['[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5},]',
                                  '[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}',
                                  '[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}] x',
                                  '[{"image_id":1,"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]',
                                  '[{"image_id":1 "category_id":1}]', '[1]', '{"a": 1}', "", "[{]"])
def test_malformed_results(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    if text:
        assert not taken(path, results=True)
    _either_way(monkeypatch, path, truth)


@needs_kernel
@pytest.mark.parametrize("change", ["no bbox", "null area", "truncated", "annotations in a string"])
def test_truth_bail_outs(monkeypatch: pytest.MonkeyPatch, truth_file: Path, tmp_path: Path, change: str) -> None:
    top = json.loads(truth_file.read_text())
    text = json.dumps(top)
    if change == "no bbox":
        del top["annotations"][0]["bbox"]
        text = json.dumps(top)
    elif change == "null area":
        top["annotations"][0]["area"] = None
        text = json.dumps(top)
    elif change == "truncated":
        text = text[: len(text) // 2]
    else:
        text = '{"info": {"description": "\\"annotations\\": ["}, ' + text[1:]
    path = tmp_path / "t.json"
    path.write_text(text)
    if change != "annotations in a string":
        assert not taken(path, results=False)
    _either_way(monkeypatch, path)


@needs_kernel
def test_keypoints_of_several_lengths(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    recs = [_result(image_id, cat, keypoints=[1.5, 2, 2] * k) for k in (2, 1, 3, 1, 2)]
    recs.append(_result(image_id, cat))  # and one without
    path = dump(tmp_path / "kp.json", recs)
    assert taken(path, results=True)
    pred = both(monkeypatch, path, like=truth)
    kp = pred.annotations.keypoints
    assert kp is not None and np.isnan(kp[5]).all() and not np.isnan(kp[2, 2]).any()


def test_negative_box_found_next_to_a_nan_box(monkeypatch: pytest.MonkeyPatch, truth_file: Path,
                                              tmp_path: Path) -> None:
    top = json.loads(truth_file.read_text())
    top["annotations"][0]["bbox"] = [1, 2, 3, float("nan")]  # NaN: json writes it, the Python path reads it
    top["annotations"][1]["bbox"] = [1, 2, 3, -4]
    path = dump(tmp_path / "neg.json", top)
    assert not taken(path, results=False)
    _, report = both_parse(monkeypatch, path)
    assert report.of_type("coco_negative_box_size") and report.of_type("coco_bad_bbox")


@needs_kernel
def test_attributes_of_every_type(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    values: list[Any] = [{"occluded": True, "note": "café \\ \"quoted\" \u2603", "n": 3, "x": -1.5e-7},
                         None, {"nested": {"a": [1, {"b": None}], "c": []}, "occluded": False}, {}, {"big": 2**62}]
    recs = [_result(image_id, cat, attributes=v) for v in values] + [_result(image_id, cat)]
    path = tmp_path / "attrs.json"
    path.write_text(json.dumps(recs, ensure_ascii=False, indent=1), encoding="utf-8")
    assert taken(path, results=True)
    pred = both(monkeypatch, path, like=truth)
    attrs = pred.annotations.attributes
    assert attrs["occluded"].tolist() == [True, None, False, None, None, None]
    assert attrs["note"][0] == "café \\ \"quoted\" \u2603" and attrs["nested"][2] == {"a": [1, {"b": None}], "c": []}


@needs_kernel
def test_attributes_not_utf8(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    path = tmp_path / "latin1.json"
    path.write_bytes(json.dumps([_result(image_id, cat, attributes={"name": "X"})]).encode().replace(b"X", b"\xff"))
    assert not taken(path, results=True)
    _either_way(monkeypatch, path, truth)
    path.write_bytes(json.dumps([_result(image_id, cat, note="X")]).encode().replace(b"X", b"\xff"))  # an extra key
    assert not taken(path, results=True)
    _either_way(monkeypatch, path, truth)


@needs_kernel
def test_text_after_the_array_leaves_nothing_behind(truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    data = json.dumps([_result(image_id, cat)]).encode() + b" ]"
    acc = AnnColumns(bbox_optional=True)
    assert not read_results_native(data, acc)
    assert acc.n == 0 and not acc.keys  # the Python path starts from an empty accumulator


# -- keys without a column: located by the kernel, parsed and checked by the glue -------------------------------
@needs_kernel
def test_extra_keys_annotator_and_source(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    extras: list[dict[str, Any]] = [
        {"ignore": 0, "annotator": "ann", "source": "model", "neg_category_ids": [1, 2]},
        {"ignore": 1, "annotator": None, "note": "café \u2603", "lvis": {"a": [1, None]}},
        {},
        {"ignore": 0, "note": None, "source": "human", "big": 2**62, "f": -1.5e-7},
        {"ignore": 1, "\u00e9t\u00e9": True},
    ]
    recs = [_result(image_id, cat, **e) for e in extras]
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(recs, ensure_ascii=False, indent=1), encoding="utf-8")
    assert taken(path, results=True)
    pred = both(monkeypatch, path, like=truth)
    a = pred.annotations
    assert a.extra["ignore"].tolist() == [0, 1, None, 0, 1] and a.extra["neg_category_ids"][0] == [1, 2]
    assert a.extra["note"][1] == "café \u2603" and a.extra["lvis"][1] == {"a": [1, None]}
    assert not any(k.startswith("\0") for k in a.extra)  # results: annotator/source read, then set to "model"
    many = dump(tmp_path / "many.json", [_result(image_id, cat, **{f"k{i}": i}) for i in range(40)])
    assert not taken(many, results=True)  # more than 32 distinct keys: the Python path
    assert both(monkeypatch, many, like=truth).annotations.extra["k39"][39] == 39
    every = [_result(image_id, cat, ignore=i % 2, area=1.5) for i in range(6)]  # one key on every record: int64
    got = both(monkeypatch, dump(tmp_path / "every.json", every), like=truth)
    assert got.annotations.extra["ignore"].dtype == np.int64


@needs_kernel
def test_extra_keys_in_instances(monkeypatch: pytest.MonkeyPatch, truth_file: Path, tmp_path: Path) -> None:
    top = json.loads(truth_file.read_text())
    for i, a in enumerate(top["annotations"]):
        a["ignore"] = i % 3 == 0
        if i % 2:
            a["annotator"] = f"a{i % 4}"
    path = dump(tmp_path / "extra.json", top)
    assert taken(path, results=False)
    ds = both(monkeypatch, path)
    a = ds.annotations
    assert a.extra["ignore"].dtype == bool and a.annotator is not None and a.annotator.tolist()[:2] == [None, "a1"]


@needs_kernel
@pytest.mark.parametrize("text", [
    '[{"image_id":%d,"category_id":%d,"bbox":[1,2,3,4],"score":0.5,"x":1,"x":2}]',  # an extra key twice
    '[{"image_id":%d,"category_id":%d,"bbox":[1,2,3,4],"score":0.5,"\\u0073core":0.7}]',  # "score", escaped
    '[{"image_id":%d,"category_id":%d,"bbox":[1,2,3,4],"score":0.5,"\\u0000source":"a","source":"b"}]',
    '[{"image_id":%d,"category_id":%d,"bbox":[1,2,3,4],"score":0.5,"x":[1,}]',  # malformed value
])
def test_extra_keys_bail_outs(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text % _ids(truth))
    assert not taken(path, results=True)
    _either_way(monkeypatch, path, truth)


# -- boxes of masks: the kernel's toBbox of a counts string, bit for bit pycocotools' ------------------------------
def _random_masks(rng: np.random.Generator) -> list[np.ndarray]:
    masks = []
    for h, w in [(1, 1), (1, 7), (7, 1), (3, 4), (480, 640), (1, 900), (900, 1)]:
        masks += [np.zeros((h, w), bool), np.ones((h, w), bool)]
        for y, x in [(0, 0), (h - 1, w - 1), (0, w - 1), (h - 1, 0), (h // 2, w // 2)]:  # 1-pixel masks
            m = np.zeros((h, w), bool)
            m[y, x] = True
            masks.append(m)
        for edge in (np.s_[0, :], np.s_[-1, :], np.s_[:, 0], np.s_[:, -1]):  # touching each border
            m = np.zeros((h, w), bool)
            m[edge] = True
            masks.append(m)
        for _ in range(8):
            masks.append(rng.random((h, w)) < rng.random() ** 2)
            m = np.zeros((h, w), bool)
            (y0, y1), (x0, x1) = np.sort(rng.integers(0, h + 1, 2)), np.sort(rng.integers(0, w + 1, 2))
            m[y0:y1, x0:x1] = True
            masks.append(m)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        masks.append(rng.random((h, w)) < rng.random() ** 3)
    return masks


@needs_kernel
def test_mask_boxes_equal_pycocotools(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path) -> None:
    mask_utils = pytest.importorskip("pycocotools.mask")
    image_id, cat = _ids(truth)
    rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in _random_masks(np.random.default_rng(0))]
    recs = [{"image_id": image_id, "category_id": cat, "score": 0.5,
             "segmentation": {"size": r["size"], "counts": r["counts"].decode()}} for r in rles]
    path = dump(tmp_path / "masks.json", recs)
    assert taken(path, results=True)
    box = both(monkeypatch, path, like=truth).annotations.box
    want = np.asarray(mask_utils.toBbox(rles), np.float64)
    want[:, 2:] += want[:, :2]
    assert box is not None and box.tobytes() == want.tobytes()


def _assert_box_of_counts(counts: str, h: int, w: int) -> None:
    """The kernel's box of one RLE counts string is pycocotools' toBbox, or left to it (NaN)."""
    mask_utils = pytest.importorskip("pycocotools.mask")
    data = json.dumps([{"image_id": 1, "category_id": 1, "score": 0.5,
                        "segmentation": {"size": [h, w], "counts": counts}}]).encode()
    assert KERNEL is not None
    cols = KERNEL.parse(data, 0, len(data), True)
    assert isinstance(cols, dict)
    got = np.frombuffer(cols["rle_box"], np.float64)
    if not np.isnan(got).all():
        want = np.asarray(mask_utils.toBbox([{"size": [h, w], "counts": counts.encode()}])[0], np.float64)
        assert got.tobytes() == want.tobytes()


@needs_kernel
@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=14),
       st.integers(0, 60), st.integers(0, 60))
def test_mask_boxes_of_any_counts_string(counts: str, h: int, w: int) -> None:
    """Any ASCII counts string: the kernel's box is pycocotools', or left to it (NaN)."""
    _assert_box_of_counts(counts, h, w)


@needs_kernel
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=111), min_size=2, max_size=24),
       st.sampled_from([1, 2, 3, 7, 480, 65_537, 2**31 - 1, 2**31, 2**32 - 1]), st.integers(1, 5))
def test_mask_boxes_at_any_height(counts: str, h: int, w: int) -> None:
    """Heights up to 2**32 - 1 (the kernel's quotient by the height is a multiplication, exact for every 32-bit
    position): the box is pycocotools', or left to it (NaN)."""
    _assert_box_of_counts(counts, h, w)
