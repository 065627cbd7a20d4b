"""COCO annotation ids that are present but not read say why (out of the int64 range, not an integer), and a
top-level key given twice (a second ``"annotations": []`` emptied the dataset silently) is refused naming it. The
Python path and the C kernel give the same results (``both_parse``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.errors import FormatError
from maslow.io import coco
from tests.io.test_coco_native import both_parse

_BASE = {"images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}],
         "categories": [{"id": 1, "name": "a"}]}


def _ann(i: Any, **kw: Any) -> dict[str, Any]:
    return {"id": i, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0, **kw}


def _file(tmp_path: Path, anns: list[dict[str, Any]], name: str = "in.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({**_BASE, "annotations": anns}))
    return path


def test_an_id_out_of_the_int64_range_is_said_so_naming_the_record(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ds, report = both_parse(monkeypatch, _file(tmp_path, [_ann(5), _ann(2**70), _ann(6)]))
    (issue,) = report.issues
    assert (issue.type, issue.severity, issue.record, issue.field, issue.annotation) == \
        ("coco_bad_id", "warning", "annotations[1]", "id", 1)
    assert "int64 range" in issue.message and "out of that range" in issue.message
    assert "1.1805916207174113e+21" in issue.message and "have none" not in issue.message
    assert ds.n_annotations == 3 and ds.annotations.extra["coco_id"].tolist() == [5, -1, 6]


def test_each_kind_of_unread_id_has_its_own_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    anns = [_ann(5), _ann("x7"), _ann(1.5), _ann(None), _ann(True), _ann(2**63), _ann(7.0), _ann(-(2**63))]
    del anns[3]["id"]  # absent (null reads the same)
    anns.append(_ann(None))
    ds, report = both_parse(monkeypatch, _file(tmp_path, anns))
    got = {(i.type, i.record): i.message for i in report.issues}
    assert got.pop(("coco_missing_id", "annotations[3]")).startswith(
        "id must be an integer for every annotation, 2 annotations have none")
    assert got.pop(("coco_negative_id", f"annotations[7] (id={-(2**63)})")).startswith(
        f"id must be >= 0 for a written COCO file to keep it, got {-(2**63)} (1 annotations;")
    assert got == {
        ("coco_bad_id", "annotations[1]"): "id must be an integer, got 'x7' (a new id is assigned on write)",
        ("coco_bad_id", "annotations[2]"): "id must be an integer, got 1.5 (a new id is assigned on write)",
        ("coco_bad_id", "annotations[4]"): "id must be an integer, got True (a new id is assigned on write)",
        ("coco_bad_id", "annotations[5]"): "id must be an integer in the int64 range (-2**63 to 2**63 - 1), got "
                                           "9223372036854775808, out of that range (a new id is assigned on write)",
    }
    assert ds.annotations.extra["coco_id"].tolist()[6:8] == [7, -(2**63)]  # integral floats and int64's ends read


def test_ids_all_absent_are_counted_once_and_not_per_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    anns = [_ann(0) for _ in range(3)]
    for a in anns:
        del a["id"]
    _, report = both_parse(monkeypatch, _file(tmp_path, anns))
    assert report.counts() == {"coco_missing_id": 1}


@pytest.mark.parametrize("native", ["0", "1"])
def test_a_top_level_key_given_twice_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          native: str) -> None:
    monkeypatch.setenv("MASLOW_NATIVE", native)
    text = json.dumps({**_BASE, "annotations": [_ann(1), _ann(2)]})
    path = tmp_path / "dup.json"
    path.write_text(text[:-1] + ', "annotations": []}')  # the real list, then an empty one: the last wins in JSON
    with pytest.raises(FormatError, match=r"dup\.json, field 'annotations': the top-level key 'annotations' appears "
                                          r"2 times; JSON readers \(pycocotools too\) keep only the last"):
        coco.parse(path)
    path.write_text(text[:-1] + ', "images": [], "annotations": []}')
    with pytest.raises(FormatError, match=r"field 'images': the top-level key 'images' appears 2 times, "
                                          r"'annotations' 2 times"):
        coco.parse(path)


def test_the_same_name_inside_records_is_not_a_duplicate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "nested.json"
    path.write_text(json.dumps({**_BASE, "info": {"annotations": "see below", "images": 1},
                                "annotations": [_ann(1, annotations="x")]}))
    ds, report = both_parse(monkeypatch, path)
    assert len(report) == 0 and ds.n_annotations == 1 and ds.info["coco"]["info"] == {"annotations": "see below", "images": 1}


def test_the_cli_exits_2_on_a_duplicated_key(tmp_path: Path) -> None:
    from tests.helpers import run_cli

    text = json.dumps({**_BASE, "annotations": [_ann(1)]})
    (tmp_path / "dup.json").write_text(text[:-1] + ', "annotations": []}')
    code, out = run_cli(["convert", str(tmp_path / "dup.json"), str(tmp_path / "out.json"), "--from", "coco",
                         "--to", "coco"])
    assert code == 2 and "'annotations' appears 2 times" in out
    assert not (tmp_path / "out.json").exists()


def test_ids_given_anew_on_write_are_said(tmp_path: Path) -> None:
    """An id out of int64's range (or negative) was replaced on write without a word."""
    import json as _json

    from maslow.io import coco as _coco
    from maslow.sample import shapes as _shapes

    ds = _shapes(3, seed=0)
    ids = np.arange(1, ds.n_annotations + 1, dtype=np.int64)
    ids[1] = -3
    ds = ds.replace(annotations=ds.annotations.with_columns(extra={**ds.annotations.extra, "coco_id": ids}))
    rep = _coco.write(ds, tmp_path / "a.json")
    note = [n for n in rep.notes if "were given new ones" in n]
    assert len(note) == 1 and note[0].startswith("1 annotations without an id COCO can keep"), rep.notes
    written = [a["id"] for a in _json.loads((tmp_path / "a.json").read_text())["annotations"]]
    assert written[1] == ds.n_annotations + 1 and note[0].endswith("were given new ones")
    ids[1] = 1  # a repeat: renumbered, said
    rep = _coco.write(ds.replace(annotations=ds.annotations.with_columns(
        extra={**ds.annotations.extra, "coco_id": ids})), tmp_path / "b.json")
    assert any("annotations renumbered 1..N" in n for n in rep.notes), rep.notes
    plain = _shapes(3, seed=0)  # no coco_id column: numbered without a word
    assert not any("new ones" in n or "renumbered" in n for n in _coco.write(plain, tmp_path / "c.json").notes)


def test_an_inner_object_with_a_repeated_key_is_no_top_level_repeat(tmp_path: Path) -> None:
    """The repeats were kept by ``id()`` of each object: an inner object with a repeated key that its parent drops
    (the parent repeats a key too) was freed, the top level could get its address, and a file whose top level
    repeats nothing was refused."""
    from maslow.io._coco_stream import duplicate_top_keys

    pad = ", ".join(['"d": {}'] * 120)
    info = '{"description": "annotations", "extra": {"k": 1, "k": 2}, ' + pad + ', "extra": 0}'
    text = ('{"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}], '
            '"categories": [{"id": 1, "name": "c"}], "annotations": [], "info": ' + info + '}')
    src = tmp_path / "a.json"
    src.write_text(text)
    for _ in range(20):  # the address reuse depended on the allocator's state: try it often
        assert duplicate_top_keys(src) == []
    ds, _ = coco.parse(src)
    assert ds.n_images == 1
    src.write_text(text.replace('"annotations": []', '"annotations": [], "annotations": []'))
    assert duplicate_top_keys(src) == [("annotations", 2)]


def test_new_ids_beside_int64s_largest_are_the_smallest_unused() -> None:
    """An id of 2**63 - 1 and a missing one: new ids from max + 1 overflowed (OverflowError on write); an object
    column holding an int above int64 crashed the same way."""
    from maslow.io._coco_write import _ids

    big = 2**63 - 1
    ids, renumbered, n_new = _ids(np.array([big, -1, 1, -1], np.int64), 4)
    assert ids.tolist() == [big, 2, 1, 3] and not renumbered and n_new == 2
    ids, _, n_new = _ids(np.array([5, 2**70, "x", 7], object), 4)
    assert ids.tolist() == [5, 8, 9, 7] and n_new == 2
    ids, _, n_new = _ids(np.array([2**64 - 1, 3], np.uint64), 2)
    assert ids.tolist() == [4, 3] and n_new == 1
    ids, _, n_new = _ids(np.array([1e21, 2.0, 2.5]), 3)
    assert ids.tolist() == [3, 2, 4] and n_new == 2
