"""ISSUES.json of `maslow qa` carries the model's keypoints as data (``suggestion.keypoints``): the predictions' own
keypoints for planted keypoint errors; box runs unchanged but for ``"keypoints": null``; the chunked writer still
holds one chunk of records at a time with keypoints in every record."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.cli.qa import _write_outputs, read_predictions
from maslow.cli.render import json_bytes
from maslow.core.dataset import Dataset
from maslow.quality import QualityIssues, check, find_label_issues
from maslow.quality.records import issue_record_chunks, issue_records
from tests.helpers import run_cli, shapes_coco, traced_peak
from tests.quality.test_consensus import _clean
from tests.quality.test_consensus_keypoints import TRIANGLE_SIGMAS, triangle_case

SIGMAS = ",".join(str(s) for s in TRIANGLE_SIGMAS)


def _no_nan(text: str) -> Any:
    def refuse(c: str) -> None:
        raise AssertionError(f"not JSON: {c}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def kp_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A keypoints truth (the sample's triangles) with planted errors, a keypoints-only results file simulated from
    the clean truth, and `maslow qa` run on them."""
    tmp = tmp_path_factory.mktemp("kpcol")
    case = triangle_case(tmp)
    gt, res = case["gt"], case["pred"]
    out, html = tmp / "ISSUES.json", tmp / "page.html"
    code, text = run_cli(["qa", "--gt", str(gt), "--images-root", str(tmp / "shapes"), "--pred", str(res),
                          "--iou-type", "keypoints", "--kpt-sigmas", SIGMAS, "--out", str(out), "--html", str(html),
                          "--json"])
    assert code == 0, text
    return {**case, "ann_id": np.asarray(io.read_coco(gt).annotations.extra["coco_id"]),
            "issues": _no_nan(out.read_text()),
            "stdout": json.loads(text), "page": html.read_text()}


def _clean_row(clean: Dataset, noisy: Dataset, r: int) -> int:
    a_c, a_n = clean.annotations, noisy.annotations
    assert a_c.box is not None and a_n.box is not None
    return int(np.flatnonzero((a_c.image == a_n.image[r]) & (a_c.box == a_n.box[r]).all(1))[0])


def _points(record: dict[str, Any]) -> list[list[float]]:
    flat = record["keypoints"]
    return [flat[j:j + 3] for j in range(0, len(flat), 3)]


def test_issues_json_keypoints_are_the_predictions_keypoints(kp_run: dict[str, Any]) -> None:
    issues, records, src, kind = kp_run["issues"], kp_run["records"], kp_run["src"], kp_run["kind"]
    assert len(issues) == kp_run["stdout"]["n_issues"]
    for r in issues:  # keypoint findings: three [x, y, v]; every other finding: null
        kp = r["suggestion"]["keypoints"] if r["suggestion"] is not None else None
        if r["type"] in ("low_iou", "missing"):
            assert kp is not None and len(kp) == 3 and all(len(p) == 3 for p in kp), r
            assert kp in [_points(rec) for rec in records if rec["image_id"] == r["image_id"]], r
        else:
            assert kp is None, r
        if r["suggestion"] is not None:
            assert list(r["suggestion"]) == ["class", "box", "box_xyxy", "keypoints", "text"]
    first: dict[int, dict[str, Any]] = {}
    for r in issues:
        if r["annotation_id"] is not None:
            first.setdefault(r["annotation_id"], r)
    planted = np.flatnonzero((kind == 1) | (kind == 2))
    assert planted.size == 6
    for row in planted.tolist():  # the fix of a moved or swapped keypoint: the model's prediction of that object
        r = first[int(kp_run["ann_id"][row])]
        assert r["type"] == "low_iou", r
        p = int(np.flatnonzero(src == _clean_row(kp_run["clean"], kp_run["noisy"], row))[0])
        assert r["suggestion"]["keypoints"] == _points(records[p]), (r, records[p])
    missing = [r for r in issues if r["type"] == "missing"]
    for d in kp_run["dropped"].tolist():  # a dropped object: the model's keypoints of it, and its box
        rec = records[int(np.flatnonzero(src == d)[0])]
        hit = [r for r in missing if r["suggestion"]["keypoints"] == _points(rec)]
        assert len(hit) == 1 and hit[0]["image_id"] == rec["image_id"] and hit[0]["rank"] <= 40, hit
        pts = np.asarray(_points(rec))
        assert hit[0]["suggestion"]["box_xyxy"] == pytest.approx(
            [*pts[:, :2].min(0), *pts[:, :2].max(0)], abs=0.01)  # the box is the keypoints' extent here
    # --json's top records are ISSUES.json's first ones, keypoints included
    top = kp_run["stdout"]["top"]
    assert top == issues[:len(top)] and any(r["suggestion"]["keypoints"] for r in top)
    assert kp_run["page"].count("data:image/png;base64,") >= 5


def _strip_keypoints(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        r = dict(r)
        if r["suggestion"] is not None:
            sug = dict(r["suggestion"])
            assert sug.pop("keypoints") is None, r
            r["suggestion"] = sug
        out.append(r)
    return out


def test_box_run_issues_json_is_unchanged_but_for_a_null_keypoints(tmp_path: Path) -> None:
    """A bbox run: each suggestion is the one built from the table's columns (class, box rounded, xywh, text),
    plus ``"keypoints": null``; the file's bytes are those of the records without it but for those lines."""
    coco = shapes_coco(tmp_path, 30, seed=5)
    rng = np.random.default_rng(0)
    preds = []
    for a in coco["annotations"]:
        if a.get("iscrowd") or rng.random() < 0.1:
            continue
        x, y, w, h = (np.asarray(a["bbox"]) + rng.normal(0, 1.5, 4)).tolist()
        cat = a["category_id"] if rng.random() > 0.1 else 1 + a["category_id"] % 3
        preds.append({"image_id": a["image_id"], "category_id": cat, "bbox": [x, y, max(w, 1), max(h, 1)],
                      "score": float(rng.uniform(0.3, 0.99))})
    coco["annotations"] = coco["annotations"][5:]  # objects the model sees that the truth lacks: missing
    gt, pred = tmp_path / "shapes" / "noisy.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(coco))
    pred.write_text(json.dumps(preds))
    out = tmp_path / "ISSUES.json"
    code, text = run_cli(["qa", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--rules", "--min-score",
                          "0", "--json"])
    assert code == 0, text
    raw = out.read_bytes()
    got = _no_nan(raw.decode())
    truth = io.read_coco(gt)
    issues = QualityIssues.build([find_label_issues(truth, read_predictions(pred, "coco-results", truth),
                                                    iou_type="bbox", min_score=0.0), check(truth)])
    assert len(got) == len(issues) > 20 and {"missing", "low_iou", "wrong_class"} <= set(issues.type.tolist())
    names = truth.schema.names
    assert issues.box is not None and issues.label is not None
    stripped = _strip_keypoints(got)
    for k, r in enumerate(stripped):
        cls = names[int(issues.label[k])] if issues.label[k] >= 0 else None
        b = issues.box[k]
        xyxy = [round(float(v), 2) for v in b] if np.isfinite(b).all() else None
        xywh = None if xyxy is None else [xyxy[0], xyxy[1], round(xyxy[2] - xyxy[0], 2),
                                          round(xyxy[3] - xyxy[1], 2)]
        text_k = str(issues.suggestion[k])
        want = None if cls is None and xyxy is None and not text_k else {"class": cls, "box": xywh, "box_xyxy": xyxy,
                                                                         "text": text_k}
        assert r["suggestion"] == want, (k, r)
        assert r["type"] == issues.type[k] and r["score"] == round(float(issues.score[k]), 6)
    with_sug = sum(r["suggestion"] is not None for r in got)
    assert len(re.findall(rb'\n +"keypoints": null,\n', raw)) == with_sug > 0
    assert re.sub(rb'\n +"keypoints": null,(?=\n)', b"", raw) == json_bytes(stripped) + b"\n"


def _kp_table(n: int, k: int = 17, seed: int = 0) -> tuple[QualityIssues, Dataset]:
    clean = _clean(20)
    a = clean.annotations
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(a), n)
    kp = np.where(rng.random((n, 1, 1)) < 0.5, rng.uniform(0, 100, (n, k, 3)), np.nan)
    kp[rng.random((n, k, 3)) < 0.02] = np.nan  # a value a prediction lacks: null
    kp[:, :, 2] = np.where(np.isnan(kp[:, :, 2]), np.nan, rng.random((n, k)))
    issues = QualityIssues.block("low_iou", "info", image=a.image[rows], annotation=rows, score=rng.random(n),
                                 reason=[f"reason {j}" for j in range(n)], suggestion="use the model's keypoints",
                                 label=a.label[rows], keypoints=kp)
    extra = QualityIssues.block("extra", "warning", image=a.image[:5], annotation=np.arange(5), score=0.5,
                                reason="r", suggestion="remove it")
    return QualityIssues.build([issues, extra]), clean


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_keypoints_in_chunks_are_the_whole_list_and_rounded(tmp_path: Path, size: int) -> None:
    issues, truth = _kp_table(40)
    out = tmp_path / "ISSUES.json"
    _write_outputs(issues, truth, out, None, xywh=True, chunk_size=size)
    records = issue_records(issues, truth, xywh=True)
    assert out.read_bytes() == json_bytes(records) + b"\n"
    assert [r for c in issue_record_chunks(issues, truth, size=size) for r in c] == records
    got = _no_nan(out.read_text())
    assert issues.keypoints is not None
    n_kp = 0
    for r, kp in zip(got, issues.keypoints, strict=True):
        if np.isnan(kp).all():
            assert r["suggestion"]["keypoints"] is None
            continue
        n_kp += 1
        want = [[None if np.isnan(v) else round(float(v), 2 if j < 2 else 6) for j, v in enumerate(p)] for p in kp]
        assert r["suggestion"]["keypoints"] == want
    assert 5 < n_kp < len(got)


def test_writing_keypoints_holds_one_chunk_of_records(tmp_path: Path) -> None:
    """With 17 keypoints in half the records, the chunked writer's peak stays a fraction of the plain path's (a
    list per keypoint for every record at once)."""
    issues, clean = _kp_table(10_000)
    out = tmp_path / "ISSUES.json"
    chunked = traced_peak(lambda: _write_outputs(issues, clean, out, None, xywh=True, chunk_size=250))
    plain = traced_peak(lambda: json_bytes(issue_records(issues, clean, xywh=True)))
    assert out.read_bytes() == json_bytes(issue_records(issues, clean, xywh=True)) + b"\n"
    assert chunked < plain / 8, (chunked, plain)
