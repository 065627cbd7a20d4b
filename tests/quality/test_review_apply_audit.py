"""Review apply, two audit findings: an accepted pair finding that can't be applied (a duplicate whose boxes differ
in a polygon, a class conflict without a class) still keeps one box of its pair when other accepted findings remove
both (before, both went: the object and its polygon were lost); and an added object never takes the id of a removed
one (before, new ids were "max of the remaining ids + 1": removing the highest id gave it to the added box)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io, quality
from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.quality.records import issue_records
from maslow.quality.review import Decision, apply_decisions

SQUARE = [np.array([1.0, 1, 9, 1, 9, 9, 1, 9])]


def _pair(labels: tuple[int, int] = (0, 0)) -> Dataset:
    """One 20 x 20 image: rows 0 and 1 one object drawn twice (the same box; row 0 also outlined by a polygon,
    row 1 not), row 2 another object; COCO ids 21, 1000, 5."""
    schema = LabelSchema.from_names(["cat", "dog"], task=Task.DETECTION)
    return Dataset(schema, Images(path=["a.png"], width=[20], height=[20], extra={"coco_id": np.array([10])}),
                   Annotations(image=[0, 0, 0], label=[*labels, 1], box=[[1.0, 1, 9, 9], [1, 1, 9, 9], [12, 12, 18, 18]],
                               polygon=Polygons.from_rows([SQUARE, None, None]),
                               extra={"coco_id": np.array([21, 1000, 5])}))


def _extra(rank: int, row: int, cls: str) -> dict[str, Any]:
    return {"rank": rank, "type": "extra", "image_row": 0, "annotation_row": row, "file_name": "a.png", "class": cls,
            "suggestion": {"class": None, "box_xyxy": None, "keypoints": None, "text": ""}}


def _rules(ds: Dataset) -> list[dict[str, Any]]:
    records = issue_records(quality.check(ds), ds)
    return [{**r, "rank": 1 + i} for i, r in enumerate(records)]


def _by_key(result: Any) -> dict[int, Any]:
    return {c.key: c for c in result.changes}


def test_an_unapplicable_duplicate_keeps_its_earlier_box_when_both_are_accepted_as_extra() -> None:
    ds = _pair()
    rules = _rules(ds)
    (dup,) = [r for r in rules if r["type"] == "duplicate_box"]
    assert (dup["annotation_row"], dup["other_row"]) == (1, 0)
    findings = [*rules, _extra(50, 0, "cat"), _extra(51, 1, "cat")]
    r = apply_decisions(ds, findings, {f["rank"]: Decision("accepted") for f in findings})
    c = _by_key(r)
    assert c[dup["rank"]].outcome == "not_applicable" and "polygon" in c[dup["rank"]].detail
    assert "annotation row 0 is kept" in c[dup["rank"]].detail and "50" in c[dup["rank"]].detail  # says which, why
    assert (c[50].outcome, c[51].outcome) == ("conflict", "applied")
    assert "accepted finding 1 (duplicate_box" in c[50].detail
    a = r.dataset.annotations
    assert a.extra["coco_id"].tolist() == [21, 5]  # the original stays, with its polygon
    assert a.polygon is not None and a.polygon[0] is not None and np.array_equal(a.polygon[0][0], SQUARE[0])


def test_removing_one_box_of_an_unapplicable_duplicate_is_no_conflict() -> None:
    """The pair stays labelled through its other box: nothing to protect."""
    ds = _pair()
    rules = _rules(ds)
    for row in (0, 1):
        findings = [*rules, _extra(50, row, "cat")]
        r = apply_decisions(ds, findings, {f["rank"]: Decision("accepted") for f in findings})
        assert _by_key(r)[50].outcome == "applied"
        assert sorted(r.dataset.annotations.extra["coco_id"].tolist()) == sorted({21, 1000, 5} - {[21, 1000][row]})


def test_a_polygon_less_duplicate_still_resolves_as_before() -> None:
    """Without the polygon the duplicate is applied: the earlier box stays (the existing keep/remove conflict)."""
    ds = _pair()
    ds = ds.replace(annotations=ds.annotations.with_columns(polygon=None))
    findings = [*_rules(ds), _extra(50, 0, "cat"), _extra(51, 1, "cat")]
    r = apply_decisions(ds, findings, {f["rank"]: Decision("accepted") for f in findings})
    assert r.dataset.annotations.extra["coco_id"].tolist() == [21, 5]


def test_a_class_conflict_accepted_without_a_class_keeps_one_box() -> None:
    ds = _pair(labels=(0, 1))
    ds = ds.replace(annotations=ds.annotations.with_columns(polygon=None))
    rules = _rules(ds)
    (conflict,) = [r for r in rules if r["type"] == "class_conflict"]
    findings = [*rules, _extra(50, 0, "cat"), _extra(51, 1, "dog")]
    r = apply_decisions(ds, findings, {f["rank"]: Decision("accepted") for f in findings})
    c = _by_key(r)
    assert c[conflict["rank"]].outcome == "not_applicable" and {c[50].outcome, c[51].outcome} == {"conflict", "applied"}
    kept = conflict["other_row"]
    assert r.dataset.annotations.extra["coco_id"].tolist() == [[21, 1000][kept], 5]
    # rejected, the pair finding protects nothing: both extras apply
    decisions = {f["rank"]: Decision("accepted") for f in findings} | {conflict["rank"]: Decision("rejected")}
    assert apply_decisions(ds, findings, decisions).dataset.annotations.extra["coco_id"].tolist() == [5]


# --- ids of added objects ---------------------------------------------------------------------------------------


def _two_images(ids: np.ndarray) -> Dataset:
    schema = LabelSchema.from_names(["cat", "dog"], task=Task.DETECTION)
    return Dataset(schema, Images(path=["a.png", "b.png"], width=[20, 20], height=[20, 20],
                                  extra={"coco_id": np.array([1, 2])}),
                   Annotations(image=[0, 0, 1], label=[0, 0, 1], box=[[1.0, 1, 5, 5], [8, 8, 12, 12], [10, 10, 15, 15]],
                               extra={"coco_id": ids}))


def _remove_last_add_one(ds: Dataset) -> Any:
    findings = [_extra(1, 2, "dog") | {"image_row": 1, "file_name": "b.png"},
                {"rank": 2, "type": "missing", "image_row": 0, "annotation_row": None, "file_name": "a.png",
                 "class": None, "suggestion": {"class": "cat", "box_xyxy": [2, 2, 9, 9], "keypoints": None, "text": ""}}]
    return apply_decisions(ds, findings, {1: Decision("accepted"), 2: Decision("accepted")})


@pytest.mark.parametrize("ids", [
    pytest.param(np.array([5, 9, 77]), id="int"),
    pytest.param(np.array([5.0, np.nan, 77.0]), id="float-with-a-missing-id"),
])
def test_an_added_object_gets_an_id_above_every_id_of_the_truth(ids: np.ndarray, tmp_path: Path) -> None:
    r = _remove_last_add_one(_two_images(ids))
    added = _by_key(r)[2]
    assert added.outcome == "applied" and added.detail.endswith("(annotation id 78)")
    assert float(r.dataset.annotations.extra["coco_id"][added.new_row]) == 78
    io.write(r.dataset, tmp_path / "fixed.json", "coco")  # the writer keeps the id given
    anns = json.loads((tmp_path / "fixed.json").read_text())["annotations"]
    by_id = {a["id"]: a for a in anns}
    assert 77 not in by_id and by_id[78]["bbox"] == [2.0, 2.0, 7.0, 7.0] and by_id[78]["image_id"] == 1
    assert by_id[5]["bbox"] == [1.0, 1.0, 4.0, 4.0]


def test_an_id_is_never_reused_through_a_read_coco_round_trip(tmp_path: Path) -> None:
    """The audit's case: a COCO file read, its highest id removed, a box added, the result written."""
    io.write(_two_images(np.array([5, 9, 77])), tmp_path / "gt.json", "coco")
    truth = io.read_coco(tmp_path / "gt.json")
    r = _remove_last_add_one(truth)
    io.write(r.dataset, tmp_path / "fixed.json", "coco")
    ids = [a["id"] for a in json.loads((tmp_path / "fixed.json").read_text())["annotations"]]
    assert sorted(ids) == [5, 9, 78]


def test_a_truth_without_ids_gets_none_made_up() -> None:
    ds = _two_images(np.array([5, 9, 77]))
    ds = ds.replace(annotations=ds.annotations.with_columns(extra={}))
    r = _remove_last_add_one(ds)
    assert "coco_id" not in r.dataset.annotations.extra and not _by_key(r)[2].detail.endswith(")")
