"""A COCO results file names its records one way, as the file holds them: ``[3]`` in a results list (it has no
``annotations`` key), ``annotations[3]`` in a COCO object whose annotations carry scores, whichever check found
the problem (the results reader's own, or the COCO checks it shares with ``read_coco``), with and without the
compiled record parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maslow.errors import FormatError
from maslow.io.coco import read_coco
from maslow.io.coco_results import parse

TRUTH = Path(__file__).parents[1] / "data" / "coco" / "instances.json"


def _good(k: int) -> dict[str, Any]:
    return {"image_id": 7, "category_id": 1, "bbox": [1.0 + k, 2.0, 5.0, 6.0], "score": 0.5 + k / 100}


#: one bad record (the 4th) per case: the issue type, the field, and what the record is changed to
BAD: dict[str, tuple[str, str, dict[str, Any]]] = {
    "negative-size": ("coco_negative_box_size", "bbox", {"bbox": [10, 10, -5, 20]}),
    "three-numbers": ("coco_bad_bbox", "bbox", {"bbox": [10, 10, 20]}),
    "no-score": ("missing_score", "score", {"score": None}),
    "unknown-image": ("coco_unknown_image", "image_id", {"image_id": 99999}),
    "unknown-category": ("coco_unknown_category", "category_id", {"category_id": 77}),
    "infinite-score": ("coco_bad_score", "score", {"score": 1e999}),
}


def _records(case: str, with_ids: bool) -> list[dict[str, Any]]:
    recs = [_good(k) for k in range(6)]
    _, _, change = BAD[case]
    recs[3] = {k: v for k, v in {**recs[3], **change}.items() if v is not None}
    if with_ids:
        recs = [{**r, "id": 100 + k} for k, r in enumerate(recs)]
    return recs


def _write(path: Path, recs: list[dict[str, Any]], form: str) -> Path:
    if form == "object":
        truth = json.loads(TRUTH.read_text())
        doc: Any = {"images": truth["images"], "categories": truth["categories"], "annotations": recs}
    else:
        doc = recs
    # 1e999 is no JSON number json.dumps writes: spell it (Python's reader gives inf)
    path.write_text(json.dumps(doc).replace("Infinity", "1e999"))
    return path


@pytest.mark.parametrize("native", ["0", "1"])
@pytest.mark.parametrize("form", ["list", "object"])
@pytest.mark.parametrize("with_ids", [False, True])
@pytest.mark.parametrize("case", list(BAD))
def test_the_bad_record_is_named_as_the_file_holds_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str,
                                                      form: str, with_ids: bool, native: str) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    src = _write(tmp_path / "r.json", _records(case, with_ids), form)
    kind, field, _ = BAD[case]
    _, report = parse(src, like=read_coco(TRUTH), match="id")
    found = [i for i in report if i.type == kind]
    assert len(found) == 1, [(i.type, i.record) for i in report]
    issue = found[0]
    assert issue.field == field and issue.file == str(src)
    record = issue.record or ""
    want = "[3]" if form == "list" else "annotations[3]"
    assert record == want or record == f"{want} (id=103)", (record, want)
    if form == "list":
        assert not any((i.record or "").startswith("annotations") for i in report)


@pytest.mark.parametrize("form", ["list", "object"])
def test_a_record_that_is_no_object_is_named_as_the_file_holds_it(tmp_path: Path, form: str) -> None:
    recs: list[Any] = [_good(k) for k in range(3)]
    recs[1] = 5
    src = _write(tmp_path / "r.json", recs, form)
    with pytest.raises(FormatError) as e:
        parse(src, like=read_coco(TRUTH))
    assert e.value.record == ("[1]" if form == "list" else "annotations[1]")


def test_strict_mode_names_the_record_of_a_list_too(tmp_path: Path) -> None:
    src = _write(tmp_path / "r.json", _records("negative-size", False), "list")
    with pytest.raises(FormatError) as e:
        parse(src, like=read_coco(TRUTH), strict=True)
    assert e.value.record == "[3]" and e.value.field == "bbox"
