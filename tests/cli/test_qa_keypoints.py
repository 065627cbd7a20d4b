"""`maslow qa` on keypoints: a keypoints-only COCO results file scored by OKS (--iou-type keypoints, --kpt-sigmas)
end to end with --json and --html, auto choosing it, and the extent boxes no longer compared silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from tests.helpers import run_cli as _run
from tests.quality.test_consensus_keypoints import TRIANGLE_SIGMAS, triangle_case

SIGMAS = ",".join(str(s) for s in TRIANGLE_SIGMAS)


@pytest.fixture(scope="module")
def kp_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("kpqa")
    case = triangle_case(tmp)
    gt, res, clean, noisy, kind, dropped = (case[k] for k in ("gt", "pred", "clean", "noisy", "kind", "dropped"))
    back = io.read_coco(gt)
    assert back.annotations.box is not None and noisy.annotations.box is not None
    np.testing.assert_allclose(back.annotations.box, noisy.annotations.box, atol=1e-6)  # rows kept in order
    ann_id = np.asarray(back.annotations.extra["coco_id"])
    dropped_box = clean.annotations.box[dropped]  # type: ignore[index]
    return {"gt": gt, "pred": res, "root": tmp / "shapes", "tmp": tmp, "kind": kind, "ann_id": ann_id,
            "dropped_box": dropped_box}


def _qa(f: dict[str, Any], *extra: str, name: str = "issues") -> tuple[int, str, Path]:
    out = f["tmp"] / f"{name}.json"
    code, text = _run(["qa", "--gt", str(f["gt"]), "--images-root", str(f["root"]), "--pred", str(f["pred"]),
                       "--out", str(out), *extra])
    return code, text, out


def test_qa_scores_keypoints_end_to_end_with_json_and_html(kp_files: dict[str, Any]) -> None:
    html = kp_files["tmp"] / "page.html"
    code, text, out = _qa(kp_files, "--iou-type", "keypoints", "--kpt-sigmas", SIGMAS, "--json", "--html", str(html),
                          "--top", "1000")
    assert code == 0, text
    doc = json.loads(text)
    assert doc["iou_type"] == "keypoints" and doc["notes"] == []
    issues = json.loads(out.read_text())
    assert len(issues) == doc["n_issues"] and [r["rank"] for r in issues] == list(range(1, len(issues) + 1))
    kind, ann_id = kp_files["kind"], kp_files["ann_id"]
    first = {}
    for r in issues:
        if r["annotation_id"] is not None:
            first.setdefault(r["annotation_id"], r)
    for row in np.flatnonzero(kind > 0).tolist():  # every planted error is found, as its type
        r = first[int(ann_id[row])]
        assert r["type"] == ("extra" if kind[row] == 3 else "low_iou"), r
        assert r["rank"] <= 40, r
    for row in np.flatnonzero(kind == 2).tolist():
        assert "left and right look swapped" in first[int(ann_id[row])]["suggestion"]["text"]
    for row in np.flatnonzero(kind == 1).tolist():
        sug = first[int(ann_id[row])]["suggestion"]
        assert sug["box"] is None and " px from the model's (" in sug["text"]  # keypoints, not a box
    missing = [r for r in issues if r["type"] == "missing"]
    for b in kp_files["dropped_box"]:
        near = [r for r in missing if np.abs(np.asarray(r["suggestion"]["box_xyxy"]) - b).max() < 6]
        assert near and near[0]["rank"] <= 40 and "with the model's keypoints: top (" in near[0]["suggestion"]["text"]
    page = html.read_text()
    assert "look swapped" in page and page.count("data:image/png;base64,") >= 5


def test_qa_without_sigmas_for_three_keypoints_names_the_option(kp_files: dict[str, Any]) -> None:
    code, text, out = _qa(kp_files, "--iou-type", "keypoints", name="no-sigmas")
    assert code == 2 and "--kpt-sigmas" in text and "got 3" in text, text
    assert not out.exists()
    code, text, _ = _qa(kp_files, "--iou-type", "keypoints", "--kpt-sigmas", "0.1,0.1", name="two")
    assert code == 2 and "--kpt-sigmas: must be 3 positive numbers" in text, text
    code, text, _ = _qa(kp_files, "--iou-type", "bbox", "--kpt-sigmas", SIGMAS, name="bbox-sigmas")
    assert code == 2 and "--kpt-sigmas applies to keypoints" in text, text


def test_keypoints_only_results_are_not_compared_as_extent_boxes_silently(kp_files: dict[str, Any]) -> None:
    code, text, _ = _qa(kp_files, "--kpt-sigmas", SIGMAS, "--json", name="auto")  # a keypoints truth: auto
    assert code == 0, text
    doc = json.loads(text)
    assert doc["iou_type"] == "keypoints" and doc["notes"] == []
    code, text, _ = _qa(kp_files, "--iou-type", "bbox", "--json", name="boxes")
    assert code == 0, text
    notes = json.loads(text[text.index("{"):])["notes"]
    assert len(notes) == 1 and "keypoints' extent" in notes[0] and "--iou-type keypoints" in notes[0]
    assert "note: --pred:" in text
