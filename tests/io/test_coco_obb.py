"""Oriented boxes in COCO files: hotcoco's ``obb`` (truth and results) and Ultralytics' ``rbox``/``poly``
(``predictions.json`` of ``yolo val task=obb save_json=True``), read as 4-corner polygons and written as ``obb``.

hotcoco (a Rust COCO evaluator with ``COCOeval(gt, dt, "obb")``) is the reference where installed: its obb stats on
the files maslow writes must equal those on the originals, and its IoU of a known pair fixes the angle convention.
"""

from __future__ import annotations

import contextlib
import io as stdio
import json
import math
import mmap
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from maslow import io
from maslow._native import load
from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.core.obb import corners_from_xywhr
from maslow.core.polygons import Polygons
from maslow.core.types import obj_array
from maslow.errors import FormatError, MaslowWarning
from maslow.io import coco, coco_results
from maslow.io._coco_columns import AnnColumns
from maslow.io._coco_native import read_coco_native, read_results_native
from maslow.sample import write_shapes

KERNEL = load("records")
IMAGES = [{"id": 1, "file_name": "a.jpg", "width": 1000, "height": 800},
          {"id": 2, "file_name": "b.jpg", "width": 640, "height": 480},
          {"id": 3, "file_name": "c.jpg", "width": 1200, "height": 900}]
CATEGORIES = [{"id": 1, "name": "plane"}, {"id": 2, "name": "ship"}]


# -- files built in code ---------------------------------------------------------------------------------------------
def _boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 5) xywhr boxes of every size COCO ranges (small, medium, large), any angle."""
    side = rng.choice([8.0, 40.0, 150.0], n) * rng.uniform(0.6, 1.6, (n, 2)).T
    return np.column_stack([rng.uniform(100, 600, n), rng.uniform(100, 400, n), side[0], side[1],
                            rng.uniform(-math.pi, math.pi, n)])


def _truth(rng: np.random.Generator, n: int = 30, *, bbox: str = "some", area: str = "some") -> dict[str, Any]:
    """A hotcoco truth file: every annotation an ``obb``; ``bbox``/``area`` on "all", "some" or "none" of them."""
    anns = []
    for j, b in enumerate(_boxes(rng, n).tolist()):
        rec: dict[str, Any] = {"id": j + 1, "image_id": j % 3 + 1, "category_id": j % 2 + 1, "obb": b, "iscrowd": 0}
        c = corners_from_xywhr(b)[0]
        if bbox == "all" or (bbox == "some" and j % 2):
            lo, hi = c.min(0), c.max(0)
            rec["bbox"] = [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]
        if area == "all" or (area == "some" and j % 3 == 0):
            rec["area"] = b[2] * b[3]
        anns.append(rec)
    return {"images": IMAGES, "annotations": anns, "categories": CATEGORIES}


def _detections(rng: np.random.Generator, truth: dict[str, Any], *, bbox: bool = False) -> list[dict[str, Any]]:
    """hotcoco results: each truth box moved a little (some a lot), plus stray boxes, scored."""
    out = []
    for a in truth["annotations"]:
        b = np.asarray(a["obb"]) + rng.normal(0, [2, 2, 1, 1, 0.05]) * rng.choice([1, 8], p=[0.8, 0.2])
        b[2:4] = np.abs(b[2:4])
        out.append({"image_id": a["image_id"], "category_id": a["category_id"], "obb": b.tolist(),
                    "score": float(rng.uniform(0.3, 1))})
    for b in _boxes(rng, 10).tolist():
        out.append({"image_id": int(rng.integers(1, 4)), "category_id": int(rng.integers(1, 3)), "obb": b,
                    "score": float(rng.uniform(0, 0.6))})
    if bbox:
        for d in out:
            c = corners_from_xywhr(d["obb"])[0]
            d["bbox"] = [round(float(v), 2) for v in (c[:, 0].min(), c[:, 1].min(), np.ptp(c[:, 0]), np.ptp(c[:, 1]))]
    return out


def _ultralytics_poly(xywhr: list[float]) -> list[float]:
    """Ultralytics' ``xywhr2xyxyxyxy``: ``ctr +- vec1 +- vec2`` with vec1 = w/2 (cos, sin), vec2 = h/2 (-sin, cos),
    in its order (pt1 = ctr + vec1 + vec2, pt2 = ctr + vec1 - vec2, pt3 = ctr - vec1 - vec2, pt4 = ctr - vec1 + vec2)."""
    cx, cy, w, h, r = xywhr
    v1 = np.array([w / 2 * math.cos(r), w / 2 * math.sin(r)])
    v2 = np.array([-h / 2 * math.sin(r), h / 2 * math.cos(r)])
    c = np.array([cx, cy])
    return np.concatenate([c + v1 + v2, c + v1 - v2, c - v1 - v2, c - v1 + v2]).tolist()


def _ultralytics(dets: list[dict[str, Any]], *, decimals: int | None = 3, stems: bool = False) -> list[dict[str, Any]]:
    """``predictions.json`` as ``OBBValidator.pred_to_json`` writes it: ``rbox`` and ``poly`` rounded to 3 decimals,
    ``image_id`` the file stem (an integer when numeric), ``file_name`` in newer versions."""
    def rnd(v: list[float]) -> list[float]:
        return [round(x, decimals) for x in v] if decimals is not None else v

    names = {im["id"]: im["file_name"] for im in IMAGES}
    return [{"image_id": Path(names[d["image_id"]]).stem if stems else d["image_id"],
             "file_name": names[d["image_id"]], "category_id": d["category_id"], "score": round(d["score"], 5),
             "rbox": rnd(d["obb"]), "poly": rnd(_ultralytics_poly(d["obb"]))} for d in dets]


def _dump(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _corner_gap(a: np.ndarray, b: np.ndarray) -> float:
    """The largest distance from a corner of one (4, 2) box to the nearest corner of the other (any order)."""
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return float(max(d.min(0).max(), d.min(1).max()))


def _issues(rep: Any) -> list[tuple[str, str, str | None, str | None]]:
    return [(i.type, i.severity, i.record, i.field) for i in rep.issues]


# -- reading ---------------------------------------------------------------------------------------------------------
def test_truth_obb_is_a_4_corner_polygon_with_the_file_bbox_or_the_corners_extent(tmp_path: Path) -> None:
    src = _dump(tmp_path / "gt.json", _truth(np.random.default_rng(0), 12))
    ds, rep = coco.parse(src)
    assert _issues(rep) == []  # no coco_bad_bbox for the missing bboxes, no coco_missing_area for the obbs
    recs = json.loads(src.read_text())["annotations"]
    a = ds.annotations
    row = {int(v): r for r, v in enumerate(a.extra["coco_id"].tolist())}
    for rec in recs:
        r = row[rec["id"]]
        corners = corners_from_xywhr(rec["obb"])[0]
        assert a.polygon[r] is not None and len(a.polygon[r]) == 1
        np.testing.assert_array_equal(a.polygon[r][0], corners.ravel())
        np.testing.assert_array_equal(a.extra["coco_obb"][r], rec["obb"])
        if "bbox" in rec:
            x, y, w, h = rec["bbox"]
            np.testing.assert_array_equal(a.box[r], [x, y, x + w, y + h])
        else:
            np.testing.assert_array_equal(a.box[r], [*corners.min(0), *corners.max(0)])
        assert (a.extra["area"][r] == rec["area"]) if "area" in rec else np.isnan(a.extra["area"][r])
    assert [t.value for t in ds.schema.tasks] == ["detection", "instance_segmentation"]  # as YOLO OBB reads


def test_a_bbox_missing_without_an_obb_is_still_reported(tmp_path: Path) -> None:
    truth = _truth(np.random.default_rng(1), 4, bbox="all", area="all")
    truth["annotations"].append({"id": 99, "image_id": 1, "category_id": 1, "area": 4.0})
    _, rep = coco.parse(_dump(tmp_path / "gt.json", truth))
    assert _issues(rep) == [("coco_bad_bbox", "error", "annotations[4] (id=99)", "bbox")]


def test_ultralytics_predictions_read_poly_with_rbox_as_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    truth_file = _truth(rng, 12)
    ultra = _ultralytics(_detections(rng, truth_file), stems=True)
    stem = {im["id"]: Path(im["file_name"]).stem for im in IMAGES}  # string ids: the file stems, as Ultralytics'
    truth_file["images"] = [im | {"id": stem[im["id"]]} for im in IMAGES]
    truth_file["annotations"] = [a | {"image_id": stem[a["image_id"]]} for a in truth_file["annotations"]]
    truth = io.read_coco(_dump(tmp_path / "gt.json", truth_file))
    pred, rep = coco_results.parse(_dump(tmp_path / "predictions.json", ultra), like=truth)
    assert _issues(rep) == []  # poly and rbox agree to Ultralytics' rounding; no bbox needed
    a = pred.annotations
    assert len(a) == len(ultra)
    for rec in ultra:  # rows are sorted by image: found by score and image
        r = int(np.flatnonzero((a.score == rec["score"]) & (truth.images.path[a.image] == rec["file_name"]))[0])
        np.testing.assert_array_equal(a.polygon[r][0], rec["poly"])  # poly wins, in the file's corner order
        np.testing.assert_array_equal(a.extra["coco_obb"][r], rec["rbox"])
        c = np.asarray(rec["poly"]).reshape(4, 2)
        np.testing.assert_array_equal(a.box[r], [*c.min(0), *c.max(0)])
    assert "rbox" not in a.extra and "poly" not in a.extra and "file_name" in a.extra


def test_ultralytics_file_stems_match_a_truth_with_integer_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    truth_file = _truth(rng, 9)
    truth = io.read_coco(_dump(tmp_path / "gt.json", truth_file))  # ids 1, 2, 3; files a.jpg, b.jpg, c.jpg
    dets = _detections(rng, truth_file)
    by_id = io.read_coco_predictions(_dump(tmp_path / "ids.json", _ultralytics(dets)), like=truth)
    stems = _ultralytics(dets, stems=True)
    stems[0] = stems[0] | {"image_id": "elsewhere"}  # no truth image has that stem
    pred, rep = coco_results.parse(_dump(tmp_path / "stems.json", stems), like=truth)
    assert _issues(rep) == [("ids_are_file_stems", "info", None, "image_id"),
                            ("coco_unknown_image", "error", "[0]", "image_id")]
    assert pred.n_annotations == by_id.n_annotations - 1
    key = sorted(zip(pred.annotations.score.tolist(), pred.annotations.image.tolist(), strict=True))
    ref = sorted(zip(by_id.annotations.score.tolist(), by_id.annotations.image.tolist(), strict=True))
    assert key == [k for k in ref if k[0] != stems[0]["score"]]
    with pytest.warns(MaslowWarning, match="coco_unknown_image: 1"):  # match="id": the ids, which are no truth ids
        assert io.read_coco_predictions(tmp_path / "stems.json", like=truth, match="id").n_annotations == 0


def test_poly_and_rbox_that_disagree_are_reported_and_poly_is_read(tmp_path: Path) -> None:
    truth = io.read_coco(_dump(tmp_path / "gt.json", _truth(np.random.default_rng(3), 3)))
    ultra = _ultralytics(_detections(np.random.default_rng(3), _truth(np.random.default_rng(3), 3)))
    ultra[1]["rbox"][0] += 1.0  # a centre 1 px off: not rounding
    pred, rep = coco_results.parse(_dump(tmp_path / "p.json", ultra), like=truth)
    assert _issues(rep) == [("coco_obb_disagree", "warning", "[1]", "rbox")]
    assert "poly is read" in rep.issues[0].message
    assert any(np.array_equal(p[0], ultra[1]["poly"]) for p in pred.annotations.polygon.tolist())


def test_a_segmentation_stays_the_shape_and_its_obb_is_kept_and_written_back(tmp_path: Path) -> None:
    truth = _truth(np.random.default_rng(4), 3, bbox="all", area="all")
    seg = [[10.0, 10.0, 50.0, 12.0, 40.0, 60.0]]
    truth["annotations"][1]["segmentation"] = seg
    src = _dump(tmp_path / "gt.json", truth)
    ds, rep = coco.parse(src)
    assert _issues(rep) == [("coco_obb_with_segmentation", "info", "annotations[1] (id=2)", "obb")]
    a = ds.annotations
    r = int(np.flatnonzero(a.extra["coco_id"] == 2)[0])
    np.testing.assert_array_equal(a.polygon[r][0], seg[0])
    assert a.extra["obb"][r] == truth["annotations"][1]["obb"] and np.isnan(a.extra["coco_obb"][r]).all()
    assert [v is None for v in a.extra["obb"].tolist()].count(False) == 1
    io.write_coco(ds, tmp_path / "out.json")
    back = {d["id"]: d for d in json.loads((tmp_path / "out.json").read_text())["annotations"]}
    assert back[2]["segmentation"] == seg and back[2]["obb"] == truth["annotations"][1]["obb"]
    assert "segmentation" not in back[1] and back[1]["obb"] == truth["annotations"][0]["obb"]


def test_a_zero_size_obb_is_read(tmp_path: Path) -> None:
    truth = _truth(np.random.default_rng(5), 2, bbox="none", area="none")
    truth["annotations"][0]["obb"] = [50.0, 60.0, 0.0, 10.0, 0.5]  # a line: data for quality/, not a format error
    ds, rep = coco.parse(_dump(tmp_path / "gt.json", truth))
    assert _issues(rep) == [] and ds.n_annotations == 2
    io.write_coco(ds, tmp_path / "out.json")
    assert json.loads((tmp_path / "out.json").read_text())["annotations"][0]["obb"] == [50.0, 60.0, 0.0, 10.0, 0.5]


BAD = [
    pytest.param("obb", [1, 2, 3], "obb must be [cx, cy, w, h, angle] (5 numbers", id="obb-short"),
    pytest.param("obb", "10 10 5 5 0", "obb must be [cx, cy, w, h, angle]", id="obb-string"),
    pytest.param("obb", [1, 2, "3", 4, 0], "obb must be [cx, cy, w, h, angle]", id="obb-not-numbers"),
    pytest.param("obb", [1, 2, 3, 4, True], "obb must be [cx, cy, w, h, angle]", id="obb-bool"),
    pytest.param("obb", [10, 10, -3, 4, 0.1], "obb width and height must be >= 0", id="obb-negative"),
    pytest.param("rbox", [10, 10, 3, -4, 0.1], "rbox width and height must be >= 0", id="rbox-negative"),
    pytest.param("poly", [1, 2, 3, 4, 5, 6], "poly must be [x1, y1, x2, y2, x3, y3, x4, y4] (8", id="poly-6"),
    pytest.param("obb", [1, 2, 1e400, 4, 0], "obb must be finite numbers", id="obb-infinite"),
]


@pytest.mark.parametrize("native", ["1", "0"])
@pytest.mark.parametrize(("key", "value", "message"), BAD)
def test_a_malformed_oriented_box_names_file_record_and_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              native: str, key: str, value: Any, message: str) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    truth = _truth(np.random.default_rng(6), 3, bbox="all", area="all")
    truth["annotations"][1].pop("obb")
    truth["annotations"][1][key] = value
    src = tmp_path / "gt.json"
    src.write_text(json.dumps(truth).replace("Infinity", "1e400"))  # a number past the largest float
    with pytest.raises(FormatError, match=re.escape(message)) as e:
        coco.parse(src)
    assert (e.value.path, e.value.record, e.value.field) == (str(src), "annotations[1] (id=2)", key)
    ds = io.read_coco(_dump(tmp_path / "ok.json", _truth(np.random.default_rng(6), 3)))
    dets = _detections(np.random.default_rng(6), _truth(np.random.default_rng(6), 3))
    dets[2].pop("obb")
    dets[2][key] = value
    pred = tmp_path / "dets.json"
    pred.write_text(json.dumps(dets).replace("Infinity", "1e400"))
    with pytest.raises(FormatError, match=re.escape(message)) as e:
        coco_results.parse(pred, like=ds)
    assert (e.value.path, e.value.record, e.value.field) == (str(pred), "[2]", key)


# -- the C reader and the Python path --------------------------------------------------------------------------------
def _snapshot(ds: Dataset, rep: Any) -> tuple[Any, ...]:
    a = ds.annotations

    def col(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, Polygons):
            return tuple(getattr(v, f).tobytes() for f in ("xy", "ring_offsets", "row_offsets", "null"))
        return (v.dtype.str, v.shape, v.tolist() if v.dtype == object else v.tobytes())

    return (tuple(col(getattr(a, f)) for f in ("image", "label", "box", "score", "polygon", "iscrowd")),
            {k: col(v) for k, v in a.extra.items()}, ds.schema,
            [(i.type, i.severity, i.message, i.record, i.field, i.image, i.annotation) for i in rep.issues])


@pytest.mark.parametrize("case", ["truth-bbox", "truth-no-bbox", "results-obb", "results-ultralytics"])
def test_the_c_reader_and_the_python_path_give_the_same_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                case: str) -> None:
    rng = np.random.default_rng(7)
    truth_file = _truth(rng, 20, bbox="all" if case == "truth-bbox" else "some")
    truth_file["annotations"][3]["segmentation"] = [[1.0, 1.0, 9.0, 1.0, 9.0, 9.0]]  # obb kept in extra
    gt = _dump(tmp_path / "gt.json", truth_file)
    dets = _detections(rng, truth_file, bbox=True)
    dets[4]["poly"] = _ultralytics_poly(dets[4]["obb"])  # obb and poly together
    src = gt if case.startswith("truth") else _dump(
        tmp_path / "dets.json", dets if case == "results-obb" else _ultralytics(dets))

    def read() -> tuple[Any, ...]:
        if case.startswith("truth"):
            return _snapshot(*coco.parse(src))
        return _snapshot(*coco_results.parse(src, like=coco.parse(gt)[0]))

    nat = read()
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    assert read() == nat
    if KERNEL is not None and case in ("truth-bbox", "results-obb", "results-ultralytics"):  # plain records
        monkeypatch.delenv("MASLOW_NATIVE")
        if case == "truth-bbox":
            assert read_coco_native(src) is not None
        else:
            with open(src, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                assert read_results_native(data, AnnColumns(bbox_optional=True))


# -- writing ---------------------------------------------------------------------------------------------------------
def test_truth_and_results_round_trip_to_the_bit(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    truth_file = _truth(rng, 25)
    gt = _dump(tmp_path / "gt.json", truth_file)
    truth = io.read_coco(gt)
    rep = io.write_coco(truth, tmp_path / "gt2.json")
    assert dict(rep.lost) == {} and "25 oriented boxes written as obb" in rep.notes[0]
    written = {d["id"]: d for d in json.loads((tmp_path / "gt2.json").read_text())["annotations"]}
    for rec in truth_file["annotations"]:
        out = written[rec["id"]]
        assert out["obb"] == rec["obb"] and "segmentation" not in out  # the file's numbers, no segmentation added
        assert out["area"] == rec.get("area", rec["obb"][2] * rec["obb"][3])  # hotcoco's w * h where none
    again = io.read_coco(tmp_path / "gt2.json")  # (a box from the corners' extent comes back to 1e-12: a bbox now)
    np.testing.assert_allclose(again.annotations.box, truth.annotations.box, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(again.annotations.polygon.xy, truth.annotations.polygon.xy)
    np.testing.assert_array_equal(again.annotations.extra["coco_obb"], truth.annotations.extra["coco_obb"])

    dets = _detections(rng, truth_file)
    pred = io.read_coco_predictions(_dump(tmp_path / "dets.json", dets), like=truth)
    rep = io.write_coco_results(pred, tmp_path / "dets2.json")
    assert "annotations.extra" not in rep.lost and "polygon" not in rep.lost
    out = json.loads((tmp_path / "dets2.json").read_text())
    assert sorted(map(json.dumps, (d["obb"] for d in out))) == sorted(map(json.dumps, (d["obb"] for d in dets)))
    assert not any("segmentation" in d for d in out)
    back = io.read_coco_predictions(tmp_path / "dets2.json", like=truth)
    np.testing.assert_array_equal(back.annotations.polygon.xy, pred.annotations.polygon.xy)


def test_ultralytics_predictions_are_written_as_obb_that_reads_back_the_same_boxes(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    truth_file = _truth(rng, 10)
    truth = io.read_coco(_dump(tmp_path / "gt.json", truth_file))
    ultra = _ultralytics(_detections(rng, truth_file))
    pred = io.read_coco_predictions(_dump(tmp_path / "predictions.json", ultra), like=truth)
    io.write_coco_results(pred, tmp_path / "a.json")
    a = io.read_coco_predictions(tmp_path / "a.json", like=truth)
    for r in range(len(pred.annotations)):  # the box of poly, as rbox and obb spell it (any corner order)
        assert _corner_gap(a.annotations.polygon[r][0].reshape(4, 2), pred.annotations.polygon[r][0].reshape(4, 2)) \
            < 5e-3
    io.write_coco_results(a, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()  # and then to the bit


def test_an_edited_polygon_is_written_from_its_corners(tmp_path: Path) -> None:
    truth = io.read_coco(_dump(tmp_path / "gt.json", _truth(np.random.default_rng(10), 3)))
    a = truth.annotations
    rows = a.polygon.tolist()
    rows[0] = [rows[0][0] + np.tile([5.0, 0.0], 4)]  # moved 5 px right after reading
    moved = truth.replace(annotations=a.with_columns(polygon=Polygons.from_rows(rows)))
    io.write_coco(moved, tmp_path / "out.json")
    rec = json.loads((tmp_path / "out.json").read_text())["annotations"][0]
    assert rec["obb"][0] == pytest.approx(a.extra["coco_obb"][0][0] + 5, abs=1e-9)
    assert _corner_gap(corners_from_xywhr(rec["obb"])[0], rows[0][0].reshape(4, 2)) < 1e-9


def _quads() -> Dataset:
    """One image, a turned rectangle, a quadrilateral that is no rectangle, a pentagon and a box."""
    rect = corners_from_xywhr([50.0, 40.0, 30.0, 12.0, 0.4])[0].ravel()
    quad = np.array([10.0, 10.0, 40.0, 12.0, 42.0, 30.0, 8.0, 35.0])
    penta = np.array([60.0, 60.0, 80.0, 60.0, 85.0, 75.0, 70.0, 85.0, 55.0, 75.0])
    box = np.array([[rect[0::2].min(), rect[1::2].min(), rect[0::2].max(), rect[1::2].max()],
                    [8.0, 10.0, 42.0, 35.0], [55.0, 60.0, 85.0, 85.0], [1.0, 2.0, 5.0, 7.0]])
    return Dataset(schema=LabelSchema.from_names(["a"]),
                   images=Images(path=obj_array(["im.jpg"]), width=np.array([100]), height=np.array([100])),
                   annotations=Annotations(image=np.zeros(4, np.int64), label=np.zeros(4, np.int64), box=box,
                                           score=np.array([0.9, 0.8, 0.7, 0.6]),
                                           polygon=Polygons.from_rows([[rect], [quad], [penta], None])))


@pytest.mark.parametrize("results", [False, True], ids=["coco", "coco-results"])
def test_obb_true_writes_every_4_point_polygon_as_obb(tmp_path: Path, results: bool) -> None:
    ds = _quads()
    write = io.write_coco_results if results else io.write_coco
    rep = write(ds, tmp_path / "plain.json")
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert not any("obb" in d for d in (plain if results else plain["annotations"]))  # as before: segmentations
    rep = write(ds, tmp_path / "obb.json", obb=True)
    out = json.loads((tmp_path / "obb.json").read_text())
    recs = out if results else out["annotations"]
    assert ["obb" in d for d in recs] == [True, True, False, False]
    assert ["segmentation" in d for d in recs] == [False, False, True, False]
    assert _corner_gap(corners_from_xywhr(recs[0]["obb"])[0], ds.annotations.polygon[0][0].reshape(4, 2)) < 1e-9
    quad = ds.annotations.polygon[1][0].reshape(4, 2)  # no rectangle: its smallest enclosing one, counted lost
    corners = corners_from_xywhr(recs[1]["obb"])[0]
    d1, d2 = quad[2] - quad[0], quad[3] - quad[1]  # the diagonals: the quad's area is half their cross product
    assert recs[1]["obb"][2] * recs[1]["obb"][3] >= 0.5 * abs(d1[0] * d2[1] - d1[1] * d2[0]) - 1e-9
    assert (corners.min(0) <= quad.min(0) + 1e-9).all() and (corners.max(0) >= quad.max(0) - 1e-9).all()
    assert rep.lost["polygon"] == 1 and "1 4-point polygons that are not rectangles" in rep.notes[0]


def test_convert_yolo_obb_to_coco_obb_from_the_command_line(tmp_path: Path) -> None:
    from maslow.cli.main import app

    ds = write_shapes(tmp_path / "shapes", 4, seed=1)
    io.write(ds, tmp_path / "yolo", "yolo", task="obb", copy_images=True)
    res = CliRunner().invoke(app, ["convert", str(tmp_path / "yolo"), str(tmp_path / "out.json"), "--from", "yolo",
                                   "--read-option", "task=obb", "--to", "coco", "--write-option", "obb=true",
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["export"]["lost"].get("polygon", 0) == 0  # YOLO OBB corners are rectangles
    anns = json.loads((tmp_path / "out.json").read_text())["annotations"]
    assert anns and all("obb" in d and "segmentation" not in d for d in anns)
    yolo = io.read(tmp_path / "yolo", "yolo", task="obb")
    back = io.read_coco(tmp_path / "out.json")
    for r in range(back.n_annotations):
        assert _corner_gap(back.annotations.polygon[r][0].reshape(4, 2),
                           yolo.annotations.polygon[r][0].reshape(4, 2)) < 1e-2


def test_results_progress_is_monotone_and_leaves_the_bytes_unchanged(tmp_path: Path) -> None:
    n = 9000  # past two chunks
    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 80, (n, 2))
    ds = Dataset(schema=LabelSchema.from_names(["a", "b"]),
                 images=Images(path=obj_array([f"{i}.jpg" for i in range(30)]), width=np.full(30, 100),
                               height=np.full(30, 100)),
                 annotations=Annotations(image=np.sort(rng.integers(0, 30, n)), label=rng.integers(0, 2, n),
                                         box=np.column_stack([xy, xy + rng.uniform(1, 20, (n, 2))]),
                                         score=np.where(np.arange(n) % 7 == 0, np.nan, rng.uniform(0, 1, n))))
    plain = io.write(ds, tmp_path / "plain.json", "coco-results")
    calls: list[tuple[int, int]] = []
    rep = io.write(ds, tmp_path / "bar.json", "coco-results", progress=lambda d, t: calls.append((d, t)))
    text = (tmp_path / "bar.json").read_text()
    assert text == (tmp_path / "plain.json").read_text() == json.dumps(json.loads(text), separators=(",", ":"))
    assert rep.to_dict() | {"path": ""} == plain.to_dict() | {"path": ""}
    assert rep.n_annotations == len(json.loads(text)) == int(np.isfinite(ds.annotations.score).sum())
    done = [d for d, _ in calls]
    assert {t for _, t in calls} == {n} and done == sorted(done) and calls[0] == (0, n) and calls[-1] == (n, n)
    assert 3 <= len(calls) <= 102
    calls.clear()
    io.write(ds.select(np.zeros(n, bool)), tmp_path / "none.json", "coco-results",
             progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 0)] and (tmp_path / "none.json").read_text() == "[]"


# -- hotcoco, the reference ------------------------------------------------------------------------------------------
def _hotcoco_stats(gt: Path, dt: Path) -> dict[str, float]:
    hotcoco = pytest.importorskip("hotcoco")
    e = hotcoco.COCOeval(hotcoco.COCO(str(gt)), hotcoco.COCO(str(gt)).loadRes(str(dt)), "obb")
    with contextlib.redirect_stdout(stdio.StringIO()):
        e.evaluate()
        e.accumulate()
        e.summarize()
    out: dict[str, float] = e.get_results()
    return out


@pytest.mark.filterwarnings("ignore:hotcoco:UserWarning")
def test_hotcoco_stats_on_the_files_maslow_writes_equal_those_on_the_originals(tmp_path: Path) -> None:
    pytest.importorskip("hotcoco")
    rng = np.random.default_rng(12)
    truth_file = _truth(rng, 60)
    gt = _dump(tmp_path / "gt.json", truth_file)
    dets = _detections(rng, truth_file)
    with_bbox = _detections(np.random.default_rng(12), truth_file, bbox=True)  # loadRes takes their area from bbox
    dt = _dump(tmp_path / "dt.json", [d | ({"bbox": b["bbox"]} if j % 2 else {})
                                      for j, (d, b) in enumerate(zip(dets, with_bbox, strict=True))])
    before = _hotcoco_stats(gt, dt)
    assert 0.2 < before["AP"] < 0.95 and before["APs"] > 0 and before["APl"] > 0  # a test that can tell
    truth = io.read_coco(gt)
    io.write_coco(truth, tmp_path / "gt2.json")
    io.write_coco_results(io.read_coco_predictions(dt, like=truth), tmp_path / "dt2.json")
    assert _hotcoco_stats(tmp_path / "gt2.json", tmp_path / "dt2.json") == before
    assert sorted((d["score"], "bbox" in d) for d in json.loads((tmp_path / "dt2.json").read_text())) == \
        sorted((d["score"], "bbox" in d) for d in json.loads(dt.read_text()))  # a bbox where the file had one
    # Ultralytics' predictions (hotcoco can't read rbox/poly): maslow's obb from poly gives the stats of the same
    # boxes written as obb directly (unrounded here, so the boxes are the same but for float noise)
    io.write_coco_results(io.read_coco_predictions(_dump(tmp_path / "pred.json", _ultralytics(dets, decimals=None)),
                                                   like=truth), tmp_path / "dt3.json")
    plain = _hotcoco_stats(gt, _dump(tmp_path / "dt4.json", dets))  # the same boxes as obb, no bbox
    assert _hotcoco_stats(gt, tmp_path / "dt3.json") == pytest.approx(plain, abs=1e-12)


def _clip_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two convex (4, 2) polygons (Sutherland-Hodgman clipping and the shoelace formula)."""
    def area(p: np.ndarray) -> float:
        return 0.0 if len(p) < 3 else abs(float(np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1)
                                                     * p[:, 1]))) / 2

    sign = np.sign(np.sum(b[:, 0] * np.roll(b[:, 1], -1) - np.roll(b[:, 0], -1) * b[:, 1]))
    out = list(a)
    for k in range(4):
        p0, p1 = b[k], b[(k + 1) % 4]

        def side(q: np.ndarray, p0: np.ndarray = p0, p1: np.ndarray = p1) -> float:
            return float(sign * ((p1[0] - p0[0]) * (q[1] - p0[1]) - (p1[1] - p0[1]) * (q[0] - p0[0])))

        pts, out = out, []
        for j in range(len(pts)):
            cur, prev = pts[j], pts[j - 1]
            if (side(cur) >= 0) != (side(prev) >= 0):
                t = side(prev) / (side(prev) - side(cur))
                out.append(prev + t * (cur - prev))
            if side(cur) >= 0:
                out.append(cur)
    inter = area(np.array(out))
    return inter / (area(a) + area(b) - inter)


@pytest.mark.filterwarnings("ignore:hotcoco:UserWarning")
def test_the_angle_convention_is_hotcocos(tmp_path: Path) -> None:
    """Two boxes turned alike, centres apart on both axes: turning the other way (the other sign convention) would
    give another IoU (0.015 instead of 0.301); hotcoco's matches maslow's corners to its threshold grid."""
    hotcoco = pytest.importorskip("hotcoco")
    g, d = [200.0, 200.0, 120.0, 30.0, 0.6], [215.0, 225.0, 120.0, 30.0, 0.6]
    ours = _clip_iou(corners_from_xywhr(g)[0], corners_from_xywhr(d)[0])
    mirrored = _clip_iou(corners_from_xywhr([*g[:4], -g[4]])[0], corners_from_xywhr([*d[:4], -d[4]])[0])
    assert abs(ours - mirrored) > 0.2
    gt = _dump(tmp_path / "gt.json", {"images": IMAGES[:1], "categories": CATEGORIES[:1], "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "obb": g, "iscrowd": 0}]})
    dt = _dump(tmp_path / "dt.json", [{"image_id": 1, "category_id": 1, "obb": d, "score": 0.9}])
    e = hotcoco.COCOeval(hotcoco.COCO(str(gt)), hotcoco.COCO(str(gt)).loadRes(str(dt)), "obb")
    e.params.iouThrs = [round(t, 3) for t in np.arange(0.0, 1.0, 0.001).tolist()]
    e.evaluate()
    matched = [t for t, m in zip(e.params.iouThrs, e.eval_imgs[0]["dtMatched"], strict=True) if m[0]]
    assert max(matched) == pytest.approx(ours, abs=1.5e-3)
    truth = io.read_coco(gt)  # and maslow reads that box as those corners
    np.testing.assert_array_equal(truth.annotations.polygon[0][0], corners_from_xywhr(g)[0].ravel())
