"""COCO files whose image ids are strings (file stems, as some labelling tools export them): read as pycocotools
reads them, written back unchanged, matched by results files; mixed or repeated ids reported."""

from __future__ import annotations

import contextlib
import io as _io
import json
from pathlib import Path
from typing import Any

import pytest
from pycocotools.coco import COCO

from maslow import io
from maslow.core.dataset import Dataset
from maslow.errors import FormatError
from maslow.io import coco, coco_results
from tests.helpers import assert_datasets_equal

IDS = ["frame_10", "frame_9", "10", "näher/β", "empty"]  # "10" before "9": ordered as strings, not numbers


def string_file() -> dict[str, Any]:
    """Five images with string ids (one without annotations), boxes, a polygon, a crowd RLE, annotations listed
    out of image order."""
    images = [{"id": i, "file_name": f"img{k}.jpg", "width": 64, "height": 48} for k, i in enumerate(IDS)]
    anns = []
    for k, image in enumerate(["frame_9", "10", "frame_10", "frame_9", "näher/β", "10", "frame_10"]):
        anns.append({"id": 100 + k, "image_id": image, "category_id": 1 + k % 2, "bbox": [k, 2, 10.5, 7],
                     "area": 70.0, "iscrowd": 0})
    anns[1]["segmentation"] = [[1, 2, 20, 2, 20, 9, 1, 9]]
    anns[4].update(iscrowd=1, segmentation={"size": [48, 64], "counts": [64 * 10, 8, 48 * 64 - 64 * 10 - 8]})
    cats = [{"id": 1, "name": "car", "supercategory": ""}, {"id": 2, "name": "bus", "supercategory": ""}]
    return {"images": images, "annotations": anns, "categories": cats}


def dump(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def pycoco(path: Path) -> COCO:
    with contextlib.redirect_stdout(_io.StringIO()):
        return COCO(str(path))


@pytest.fixture
def string_path(tmp_path: Path) -> Path:
    return dump(tmp_path / "s.json", string_file())


@pytest.mark.parametrize("native", ["1", "0"], ids=["kernel", "python"])
def test_string_ids_read_as_pycocotools_groups_them(string_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    native: str) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    ds, report = coco.parse(string_path)
    assert not report.issues
    ids = ds.images.extra["coco_id"]
    assert ids.tolist() == IDS
    ann_ids = ds.annotations.extra["coco_id"]
    ref = pycoco(string_path)
    for row, image_id in enumerate(IDS):
        mine = sorted(ann_ids[ds.annotations.image == row].tolist())
        assert mine == sorted(ref.getAnnIds(imgIds=[image_id])), image_id
    assert ds.annotations.polygon is not None and ds.annotations.mask is not None


def test_write_coco_gives_the_string_ids_back(string_path: Path, tmp_path: Path) -> None:
    ds = io.read_coco(string_path)
    io.write_coco(ds, tmp_path / "out.json")
    src, out = string_file(), json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert [im["id"] for im in out["images"]] == IDS
    assert {a["id"]: a["image_id"] for a in out["annotations"]} == {a["id"]: a["image_id"] for a in src["annotations"]}
    back = io.read_coco(tmp_path / "out.json")
    assert back.images.extra["coco_id"].tolist() == IDS
    assert_datasets_equal(ds, back, fields=("path", "size", "label", "box", "polygon", "mask", "iscrowd"))


def test_duplicate_string_id_reported_as_an_integer_duplicate_is(tmp_path: Path) -> None:
    def read(key: Any) -> tuple[Dataset, list[tuple[Any, ...]], list[Any]]:
        src = string_file()
        for k, im in enumerate(src["images"]):
            im["id"] = key([1, 1, 2, 3, 4][k])  # images[1] repeats images[0]'s id
        for k, a in enumerate(src["annotations"]):
            a["image_id"] = key(1 + k % 4)
        ds, report = coco.parse(dump(tmp_path / "d.json", src))
        rep = io.write_coco(ds, tmp_path / "out.json")
        written = [im["id"] for im in json.loads((tmp_path / "out.json").read_text())["images"]]
        return ds, [(i.type, i.severity, i.record, i.message, i.image) for i in report.issues] + rep.notes, written

    ds_int, found_int, written_int = read(lambda i: i)
    ds_str, found_str, written_str = read(lambda i: f"id{i}")
    assert found_int[0][:3] == ("coco_duplicate_image_id", "error", "images[1] (id=1)")
    assert [tuple(str(v).replace("'id1'", "1") for v in f) for f in found_str] == \
        [tuple(str(v) for v in f) for f in found_int]  # the same findings and notes, the id quoted
    assert ds_str.annotations.image.tolist() == ds_int.annotations.image.tolist()  # on the first image with the id
    assert written_str == written_int == [1, 2, 3, 4, 5]  # renumbered


@pytest.mark.parametrize(("ids", "match"), [
    pytest.param([1, "x", 3], r"images\[1\], field 'id': id must be an integer like images\[0\]'s \(1;.*got 'x'",
                 id="int-then-string"),
    pytest.param(["a", "b", 2, None], r"images\[2\], field 'id': id must be a string like images\[0\]'s \('a';"
                 r".*got 2", id="string-then-int"),
    pytest.param(["a", None, 2], r"images\[1\], field 'id': id must be an integer or a string, got None",
                 id="string-then-null"),
    pytest.param(["a", 2.5], r"images\[1\], field 'id': id must be an integer or a string, got 2.5",
                 id="string-then-float"),
])
def test_mixed_ids_are_refused_naming_the_first_offender(tmp_path: Path, ids: list[Any], match: str) -> None:
    images = [{"id": i, "file_name": f"{k}.jpg", "width": 4, "height": 4} for k, i in enumerate(ids)]
    path = dump(tmp_path / "m.json", {"images": images, "annotations": [], "categories": []})
    with pytest.raises(FormatError, match=match):
        coco.parse(path)


@pytest.mark.parametrize("native", ["1", "0"], ids=["kernel", "python"])
def test_annotations_pointing_at_no_image_name_the_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      native: str) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    src = string_file()
    src["annotations"][2]["image_id"] = "frame_11"
    src["annotations"][5]["image_id"] = 10  # the integer 10 is not the id "10" (nor is it in pycocotools)
    ds, report = coco.parse(dump(tmp_path / "u.json", src))
    unknown = [(i.record, i.message) for i in report.issues if i.type == "coco_unknown_image"]
    assert [r for r, _ in unknown] == ["annotations[2] (id=102)", "annotations[5] (id=105)"]
    assert "got 'frame_11'" in unknown[0][1] and "got 10;" in unknown[1][1]
    assert ds.n_annotations == len(src["annotations"]) - 2
    ints = json.loads(json.dumps(src))  # an integer-id file with one string image_id
    for im in ints["images"]:
        im["id"] = IDS.index(im["id"]) + 1
    for a in ints["annotations"]:
        a["image_id"] = IDS.index(a["image_id"]) + 1 if a["image_id"] in IDS else 1
    ints["annotations"][0]["image_id"] = "frame_9"
    report = coco.parse(dump(tmp_path / "i.json", ints))[1]
    assert ["got 'frame_9'" in i.message for i in report.issues if i.type == "coco_unknown_image"] == [True]


# -- results -----------------------------------------------------------------------------------------------------
def results(src: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.1 * k}
            for k, a in enumerate(src["annotations"])]


@pytest.fixture
def truth(string_path: Path) -> Dataset:
    return io.read_coco(string_path)


@pytest.mark.parametrize("native", ["1", "0"], ids=["kernel", "python"])
def test_predictions_match_the_truths_string_ids(tmp_path: Path, truth: Dataset, monkeypatch: pytest.MonkeyPatch,
                                                 native: str) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    recs = results(string_file())
    pred, report = coco_results.parse(dump(tmp_path / "dt.json", recs), like=truth)
    assert not report.issues
    rows = sorted(IDS.index(r["image_id"]) for r in recs)
    assert pred.annotations.image.tolist() == rows
    assert sorted(pred.annotations.score.tolist()) == sorted(r["score"] for r in recs)


def test_predictions_with_other_ids_are_reported_with_them(tmp_path: Path, truth: Dataset, string_path: Path) -> None:
    recs = results(string_file())
    recs[0]["image_id"], recs[3]["image_id"] = "frame_11", 10  # unknown: a new string; an integer (not "10")
    path = dump(tmp_path / "dt.json", recs)
    with contextlib.redirect_stdout(_io.StringIO()), pytest.raises(AssertionError):
        pycoco(string_path).loadRes(str(path))  # pycocotools refuses the file
    pred, report = coco_results.parse(path, like=truth)
    [issue] = report.issues
    assert issue.type == "coco_unknown_image" and issue.severity == "error"
    assert "2 predictions point at none (ids 10, 'frame_11')" in issue.message
    assert pred.n_annotations == len(recs) - 2
    with pytest.raises(FormatError, match="id_offset must be 0 when the truth's image ids are strings, got 1"):
        coco_results.parse(path, like=truth, id_offset=1)


def test_whole_coco_results_file_matched_by_file_name(tmp_path: Path, truth: Dataset) -> None:
    src = string_file()
    own = {i: f"run_{k}" for k, i in enumerate(IDS)}  # the file's own string ids, its file_names the truth's
    doc = {"images": [dict(im, id=own[im["id"]]) for im in src["images"]], "categories": src["categories"],
           "annotations": [dict(r, image_id=own[r["image_id"]]) for r in results(src)]}
    pred, report = coco_results.parse(dump(tmp_path / "whole.json", doc), like=truth)
    assert not report.issues
    assert pred.annotations.image.tolist() == sorted(IDS.index(a["image_id"]) for a in src["annotations"])


def test_results_written_with_string_ids(tmp_path: Path, truth: Dataset, string_path: Path) -> None:
    pred = coco_results.parse(dump(tmp_path / "dt.json", results(string_file())), like=truth)[0]
    io.write_coco_results(pred, tmp_path / "w.json")
    with contextlib.redirect_stdout(_io.StringIO()):
        res = pycoco(string_path).loadRes(str(tmp_path / "w.json"))
    assert sorted(a["image_id"] for a in res.dataset["annotations"]) == sorted(a["image_id"] for a in
                                                                                string_file()["annotations"])


# -- writing datasets that mix string and other ids ---------------------------------------------------------------
def test_concat_of_string_and_integer_ids_writes_strings(tmp_path: Path, truth: Dataset) -> None:
    other = io.read_coco(dump(tmp_path / "i.json", {
        "images": [{"id": 10, "file_name": "x.jpg", "width": 4, "height": 4},
                   {"id": 7, "file_name": "y.jpg", "width": 4, "height": 4}],
        "annotations": [], "categories": [{"id": 1, "name": "car"}]}))
    rep = io.write_coco(truth.concat(other), tmp_path / "both.json")
    written = [im["id"] for im in json.loads((tmp_path / "both.json").read_text(encoding="utf-8"))["images"]]
    assert written == [*IDS, "1", "7"]  # 7 as its text; "10" is taken by a string id: a new one
    assert rep.notes == ["1 integer image coco_id values among strings written as their text; 1 images without a "
                         "string coco_id of their own given new ones"]
    assert io.read_coco(tmp_path / "both.json").images.extra["coco_id"].tolist() == written
    rep = io.write_coco(truth.select_images([0, 1, 0]), tmp_path / "twice.json")  # a bootstrap sample
    assert rep.notes[0] == "image coco_id values repeat: images renumbered 1..N"
    assert rep.notes[1:] in ([], ["annotation coco_id values repeat: annotations renumbered 1..N"])
    assert [im["id"] for im in json.loads((tmp_path / "twice.json").read_text())["images"]] == [1, 2, 3]
