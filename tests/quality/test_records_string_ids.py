"""Findings of a truth with string COCO image ids are checked against the truth's ids as integer ids are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import maslow.io as io
from maslow.errors import InvalidDatasetError
from maslow.quality import QualityIssues
from maslow.quality.records import check_findings_match, issue_records, parse_findings


def _truth(path: Path, ids: list[str]) -> Path:
    doc = {"images": [{"id": i, "file_name": "same.jpg" if n else "a.jpg", "width": 50, "height": 50}
                      for n, i in enumerate(ids)],
           "annotations": [{"id": n + 1, "image_id": i, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100,
                            "iscrowd": 0} for n, i in enumerate(ids)],
           "categories": [{"id": 1, "name": "cat"}]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_a_finding_on_an_image_with_another_string_id_is_refused(tmp_path: Path) -> None:
    truth = io.read(_truth(tmp_path / "gt.json", ["a", "frame_1", "frame_2"]), "coco")
    issues = QualityIssues(image=np.array([1]), annotation=np.array([1]), other=np.array([-1]),
                           type=np.array(["wrong_class"], object), severity=np.array(["warning"], object),
                           score=np.array([0.9]), reason=np.array(["r"], object), suggestion=np.array(["s"], object))
    records = issue_records(issues, truth)
    assert records[0]["image_id"] == "frame_1"
    findings = parse_findings(records)
    check_findings_match(truth, findings)  # the same truth: accepted
    other = io.read(_truth(tmp_path / "other.json", ["a", "frame_9", "frame_2"]), "coco")
    with pytest.raises(InvalidDatasetError, match="image_row 1 must have image_id 'frame_1', got 'frame_9'"):
        check_findings_match(other, findings)
