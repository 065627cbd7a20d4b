"""QualityIssues.rows() and to_dict() carry the suggested class and box of model-based findings, field for field
as ``maslow qa`` writes them in ISSUES.json (``maslow.quality.records.issue_records``), so Python users get what CLI users
get."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from maslow.cli.render import json_text
from maslow.quality import QualityIssues, find_label_issues, write_html
from maslow.quality.records import issue_records
from tests.quality.test_consensus import _clean, _model, _plant


def test_rows_carry_the_suggested_class_and_box_as_qa_writes_them() -> None:
    clean = _clean()
    noisy, _, _ = _plant(clean)
    issues = find_label_issues(noisy, _model(clean), iou_type="bbox")
    names = noisy.schema.names
    assert (issues.label >= 0).any() and np.isfinite(issues.box).all(axis=1).any()  # both kinds of suggestion
    rows = issues.rows(names=names)
    records = issue_records(issues, noisy, xywh=False)
    assert len(rows) == len(records) == len(issues)
    for row, rec in zip(rows, records, strict=True):
        got, want = row["suggestion"], rec["suggestion"]
        assert (got is None) == (want is None), (row, rec)
        if want is None:
            continue
        assert got["class"] == want["class"] and got["text"] == want["text"]
        assert (got["box_xyxy"] is None) == (want["box_xyxy"] is None)
        if want["box_xyxy"] is not None:
            assert got["box_xyxy"] == pytest.approx(want["box_xyxy"], abs=0.005)  # the CLI rounds to 2 decimals
            assert got["box_xyxy"] == pytest.approx(want["box"], abs=0.005)  # xyxy for a non-COCO truth
    # a missing object: its suggested class and box are the prediction's
    miss = next(r for r, k in zip(rows, range(len(issues)), strict=True) if issues.type[k] == "missing")
    k = rows.index(miss)
    assert miss["suggestion"]["class"] == names[int(issues.label[k])]
    assert miss["suggestion"]["box_xyxy"] == issues.box[k].tolist()
    d = json.loads(json_text(issues.to_dict(limit=5, names=names)))  # JSON-safe, no NaN
    assert d["issues"] == json.loads(json.dumps(rows[:5]))


def test_rows_need_names_only_when_a_class_is_suggested() -> None:
    plain = QualityIssues.block("zero_area_box", "error", image=[0, 1], score=[0.5, 0.9], reason="r",
                                suggestion="fix it")
    assert [r["suggestion"] for r in plain.rows()] == [{"class": None, "box_xyxy": None, "keypoints": None,
                                                         "text": "fix it"}] * 2
    assert QualityIssues.block("x", "info", image=[0], score=0.5, reason="r").rows()[0]["suggestion"] is None
    sug = QualityIssues.block("wrong_class", "warning", image=[0, 0], score=[0.2, 0.7], reason="r", label=[-1, 2])
    with pytest.raises(ValueError, match=r"names must be given .*\(row 1 suggests class 2; 1 rows suggest one\)"):
        sug.rows()
    with pytest.raises(ValueError, match=r"must be a row of names \(0..1\), got 2"):
        sug.to_dict(names=["a", "b"])
    assert [r["suggestion"] for r in sug.rows(names=["a", "b", "c"])] == [
        None, {"class": "c", "box_xyxy": None, "keypoints": None, "text": ""}]  # block() keeps the order given


def test_html_report_shows_the_suggestion_text(tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    clean = _clean(20)
    issues = find_label_issues(clean, _model(clean), iou_type="bbox")
    issues = QualityIssues.build([issues, QualityIssues.block("zero_area_box", "error", image=[0], score=1.0,
                                                              reason="r", suggestion="remove the box")])
    page = write_html(issues, clean, tmp_path / "r.html", top=len(issues)).read_text(encoding="utf-8")
    assert "<td>remove the box</td>" in page and "box_xyxy" not in page
    # a missing object has no annotation: the class column names the suggested class, as ISSUES.json's "class"
    records = issue_records(issues, clean, xywh=False)
    miss = [r for r in records if r["type"] == "missing"]
    assert miss
    for r in miss:
        # rank, the object's crop (when the images are there), score, ..., class, reason, suggestion
        row = re.search(rf'<tr><td class="num">{r["rank"]}</td>(<td>.*?</td>)?\s*<td class="num">[0-9.]+</td>.*?</tr>',
                        page, re.S)
        assert row is not None
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
        assert cells[-3] == r["class"]


@pytest.mark.parametrize("size", [1, 3, 4, 5, 1000])
def test_row_chunks_are_the_rows_split(size: int) -> None:
    """row_chunks(size) is rows() (and to_dict()'s rows) cut every ``size`` rows; a bad name fails before the first
    chunk, and an empty table has no chunk."""
    clean = _clean(20)
    issues = find_label_issues(clean, _model(clean), iou_type="bbox", min_score=0.0)
    issues = QualityIssues.build([issues, QualityIssues.block("zero_area_box", "error", image=[0], score=1.0,
                                                              reason="r", suggestion="remove the box")])
    names = clean.schema.names
    assert len(issues) > 5 and (issues.label >= 0).any()
    chunks = list(issues.row_chunks(names=names, size=size))
    assert [len(c) for c in chunks] == [min(size, len(issues) - lo) for lo in range(0, len(issues), size)]
    rows = issues.rows(names=names)
    assert [r for c in chunks for r in c] == rows == issues.to_dict(names=names)["issues"]
    assert list(issues.take(np.zeros(len(issues), bool)).row_chunks(size=size)) == []
    it = issues.row_chunks(names=None, size=size)
    with pytest.raises(ValueError, match="names must be given"):
        next(it)
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        next(issues.row_chunks(names=names, size=0))


def test_equal_texts_are_kept_once() -> None:
    """block() keeps equal reasons and suggestions as one string object each (most findings repeat one of a few
    texts: 276,148 consensus findings at 30,000 images had 3,647 distinct reasons), values and order unchanged."""
    reasons = ["".join(["reason ", str(k % 3)]) for k in range(9)]  # 9 distinct objects, 3 values
    issues = QualityIssues.block("x", "info", image=np.arange(9), score=0.5, reason=reasons,
                                 suggestion=[None if k == 4 else f"fix {k % 2}" for k in range(9)])
    assert issues.reason.tolist() == reasons and len({id(r) for r in issues.reason.tolist()}) == 3
    assert issues.suggestion.tolist() == [None if k == 4 else f"fix {k % 2}" for k in range(9)]
    assert len({id(s) for s in issues.suggestion.tolist()}) == 3
