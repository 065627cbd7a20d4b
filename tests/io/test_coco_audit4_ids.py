"""COCO ids at the edges of int64 (audit 4): ids present and unique are written back as they were, int64's largest
too (the writer computed max + 1 even when no id was missing: OverflowError, exit 1); an integer id beyond int64 is
said to be one; negative image and annotation ids, which the writers can't keep (-1 marks a missing id in maslow's
integer columns), are an import finding; negative category ids are kept. The Python path and the C kernel give the
same results (``both_parse``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maslow.core.schema import ClassDef, LabelSchema
from maslow.errors import FormatError
from maslow.io import coco, coco_results
from maslow.io._coco_write import category_ids
from tests.helpers import run_cli_streams
from tests.io.test_coco_native import both_parse

BIG = 2**63 - 1


def _file(path: Path, img_ids: list[Any], ann_ids: list[Any], cat_ids: list[Any]) -> Path:
    """One image per image id, annotations on the first image and category; ``None``: an annotation without id."""
    anns = [{"image_id": img_ids[0], "category_id": cat_ids[0], "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0}
            for _ in ann_ids]
    for a, i in zip(anns, ann_ids, strict=True):
        if i is not None:
            a["id"] = i
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{k}.png", "width": 10, "height": 10} for k, i in enumerate(img_ids)],
        "annotations": anns, "categories": [{"id": c, "name": f"c{k}"} for k, c in enumerate(cat_ids)]}))
    return path


def _ids(path: Path) -> dict[str, list[Any]]:
    top = json.loads(path.read_text())
    return {k: [r.get("id") for r in top[k]] for k in ("images", "annotations", "categories")}


def _convert(src: Path, dst: Path) -> tuple[int, str]:
    code, out, err = run_cli_streams(["convert", str(src), str(dst), "--from", "coco", "--to", "coco"])
    return code, out + err


@pytest.mark.parametrize(("img", "ann", "cat"), [
    pytest.param([BIG], [1], [1], id="image-id"),
    pytest.param([1], [BIG], [1], id="annotation-id"),
    pytest.param([1], [1], [BIG], id="category-id"),
    pytest.param([BIG, 2**62], [BIG, BIG - 1], [1, 2**40], id="all-large"),
    pytest.param([-(2**63), 0], [0, 7], [BIG, -(2**63), -3], id="int64-ends-categories"),
])
def test_ids_present_and_unique_are_written_back_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              img: list[int], ann: list[int], cat: list[int]) -> None:
    src = _file(tmp_path / "in.json", img, ann, cat)
    ds, _ = both_parse(monkeypatch, src)
    rep = coco.write(ds, tmp_path / "out.json")
    got = _ids(tmp_path / "out.json")
    want = _ids(src)
    if img[0] < 0:  # a negative image id is given a new one (coco_negative_id); the rest are kept
        want["images"] = [1, 0]
    assert got == want
    if img[0] >= 0:
        assert rep.notes == []
        code, out = _convert(src, tmp_path / "cli.json")  # the CLI: exit 0, the same ids
        assert code == 0, out
        assert _ids(tmp_path / "cli.json") == want
        back = json.loads((tmp_path / "cli.json").read_text())
        assert back["annotations"][0]["image_id"] == img[0] and back["annotations"][0]["category_id"] == cat[0]


def test_a_missing_id_beside_int64s_largest_gets_the_smallest_unused(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    src = _file(tmp_path / "in.json", [BIG], [BIG, None, 1], [BIG])
    ds, _ = both_parse(monkeypatch, src)
    rep = coco.write(ds, tmp_path / "out.json")
    assert _ids(tmp_path / "out.json")["annotations"] == [BIG, 2, 1]
    assert any("1 annotations without an id COCO can keep" in n for n in rep.notes)
    classes = (ClassDef("a", id=BIG), ClassDef("b"), ClassDef("c", id=2**64), ClassDef("d", id=-4))
    assert category_ids(LabelSchema(classes=classes)).tolist() == [BIG, 1, 2, -4]  # 2**64: not an int64, new


def test_an_image_id_beyond_int64_is_said_to_be_an_integer_out_of_range(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """orjson reads 2**64 as a float: the message said "must be an integer or a string, got 1.8e+19"."""
    for native in ("0", "1"):
        monkeypatch.setenv("MASLOW_NATIVE", native)
        for value in (2**64, -(2**64), 2**63):
            src = tmp_path / "huge.json"
            src.write_text(json.dumps({"images": [{"id": value, "file_name": "a.png", "width": 1, "height": 1}],
                                       "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
            with pytest.raises(FormatError, match=r"huge\.json, images\[0\], field 'id': id must be an integer in "
                                                  r"the int64 range \(-2\*\*63 to 2\*\*63 - 1\) or a string, got "
                                                  r"\S+, an integer out of that range$"):
                coco.parse(src)
        src.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 1, "height": 1}],
                                   "annotations": [], "categories": [{"id": 2**63, "name": "a"}]}))
        with pytest.raises(FormatError, match=r"categories\[0\], field 'id': id must be an integer in the int64 "
                                              r"range \(-2\*\*63 to 2\*\*63 - 1\), got 9223372036854775808, an "
                                              r"integer out of that range$"):
            coco.parse(src)  # was an OverflowError
    src.write_text(json.dumps({"images": [{"id": 1.5, "file_name": "a.png", "width": 1, "height": 1}],
                               "annotations": [], "categories": []}))
    with pytest.raises(FormatError, match=r"id must be an integer or a string, got 1\.5$"):
        coco.parse(src)
    src.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 3.0, "name": "a"}]}))
    with pytest.raises(FormatError, match=r"categories\[0\], field 'id': id must be an integer, got 3\.0$"):
        coco.parse(src)  # an integral float in range is not said to be out of range


def test_negative_ids_are_an_import_finding_naming_file_record_and_field(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    src = _file(tmp_path / "neg.json", [3, -5, -6], [-1, 4, -2, None], [0])
    ds, report = both_parse(monkeypatch, src)
    got = {(i.type, i.severity, i.file, i.record, i.field, i.image): i.message for i in report.issues
           if i.type == "coco_negative_id"}
    assert set(got) == {("coco_negative_id", "warning", str(src), "images[1] (id=-5)", "id", 1),
                        ("coco_negative_id", "warning", str(src), "annotations[0] (id=-1)", "id", None)}
    msgs = list(got.values())
    assert msgs[0].startswith("id must be >= 0 for a written COCO file to keep it, got -5 (2 images;")
    assert msgs[1].startswith("id must be >= 0 for a written COCO file to keep it, got -1 (2 annotations;")
    assert ds.images.extra["coco_id"].tolist() == [3, -5, -6]  # read as they are (a results file can match them)
    rep = coco.write(ds, tmp_path / "out.json")
    assert _ids(tmp_path / "out.json")["images"] == [3, 4, 5]  # the writer's rule, as the finding says
    assert any("2 images without an id COCO can keep" in n for n in rep.notes)
    # nothing negative: no finding (and ids 0 are kept)
    _, clean = both_parse(monkeypatch, _file(tmp_path / "ok.json", [0, 1], [0, 1], [-3]))
    assert "coco_negative_id" not in clean.counts()


def test_a_negative_category_id_is_kept_so_results_still_match(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer renumbered category -3 to 1 without a word: results naming -3 no longer matched the file."""
    src = _file(tmp_path / "in.json", [1], [1, 2], [-3, 0])
    ds, report = both_parse(monkeypatch, src)
    assert len(report) == 0
    coco.write(ds, tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert [c["id"] for c in out["categories"]] == [-3, 0]
    assert [a["category_id"] for a in out["annotations"]] == [-3, -3]
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "category_id": -3, "bbox": [1, 2, 3, 4], "score": 0.5}]))
    truth = coco.read_coco(tmp_path / "out.json")
    pred, rep = coco_results.parse(dets, like=truth)
    assert len(rep) == 0 and pred.n_annotations == 1 and pred.annotations.label.tolist() == [0]
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    gt = COCO(str(tmp_path / "out.json"))
    assert gt.getCatIds() == [-3, 0] and len(gt.loadRes(str(dets)).getAnnIds(catIds=[-3])) == 1
