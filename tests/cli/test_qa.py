"""`maslow qa`: planted errors found end to end, the ISSUES.json schema, the HTML report, bad input -> exit 2."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.sample import write_shapes
from tests.helpers import run_cli as _run


@pytest.fixture
def qa_files(tmp_path: Path) -> dict[str, Any]:
    ds = write_shapes(tmp_path / "shapes", 24, seed=2)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    coco = json.loads((tmp_path / "shapes" / "annotations.json").read_text())
    anns = [a for a in coco["annotations"] if not a.get("iscrowd")]
    preds = []
    for k, a in enumerate(anns):
        x, y, w, h = a["bbox"]
        preds.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": 0.6 + 0.35 * (k % 7) / 6,
                      "bbox": [x + 0.5, y - 0.5, w, h]})
    by_size = sorted(anns, key=lambda a: -a["bbox"][2] * a["bbox"][3])
    swap, drop = by_size[0], by_size[1]
    swap["category_id"] = 2 if swap["category_id"] != 2 else 1
    coco["annotations"] = [a for a in coco["annotations"] if a is not drop]
    img = coco["images"][-1]
    coco["annotations"].append({"id": 99999, "image_id": img["id"], "category_id": 3, "bbox": [3, 3, 20, 20],
                                "area": 400, "iscrowd": 0})
    gt = tmp_path / "shapes" / "noisy.json"
    gt.write_text(json.dumps(coco))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(preds))
    return {"gt": gt, "pred": pred, "root": tmp_path / "shapes", "swap": swap["id"], "drop": drop,
            "tmp": tmp_path, "preds": preds}


def test_qa_finds_planted_errors_and_writes_issues_json(qa_files: dict[str, Any]) -> None:
    out = qa_files["tmp"] / "issues.json"
    html = qa_files["tmp"] / "report.html"
    code, text = _run(["qa", "--gt", str(qa_files["gt"]), "--images-root", str(qa_files["root"]), "--pred",
                       str(qa_files["pred"]), "--out", str(out), "--html", str(html), "--top", "5"])
    assert code == 0, text
    assert "Top 5 issues" in text and "wrong_class" in text
    issues = json.loads(out.read_text())
    assert isinstance(issues, list) and issues
    for r in issues:
        assert {"image_id", "annotation_id", "type", "score", "suggestion", "file_name", "class", "reason"} <= set(r)
        assert r["type"] in {"wrong_class", "missing", "extra", "low_iou", "ambiguous"}
        assert 0 <= r["score"] <= 1
        assert (r["annotation_id"] is None) == (r["type"] == "missing")
    firsts = {}
    for r in issues:
        firsts.setdefault(r["type"], r)
    assert firsts["extra"]["annotation_id"] == 99999
    assert firsts["wrong_class"]["annotation_id"] == qa_files["swap"]
    assert firsts["wrong_class"]["suggestion"]["class"] in ("circle", "square", "triangle")
    miss = firsts["missing"]
    drop = qa_files["drop"]
    assert miss["image_id"] == drop["image_id"]
    assert miss["suggestion"]["box"] == pytest.approx([drop["bbox"][0] + 0.5, drop["bbox"][1] - 0.5,
                                                       *drop["bbox"][2:]], abs=0.02)
    assert [r["rank"] for r in issues] == list(range(1, len(issues) + 1))
    page = html.read_text()
    assert "data:image/png;base64," in page and "missing" in page



def test_qa_with_rules_ranks_rule_checks_in_the_same_table(qa_files: dict[str, Any]) -> None:
    """--rules joins the rule-check findings (here a planted zero-area box) to the model's, in one ranking."""
    coco = json.loads(qa_files["gt"].read_text())
    img = coco["images"][0]
    coco["annotations"].append({"id": 77777, "image_id": img["id"], "category_id": 1, "bbox": [5, 5, 0, 0],
                                "area": 0, "iscrowd": 0})
    qa_files["gt"].write_text(json.dumps(coco))
    base = ["qa", "--gt", str(qa_files["gt"]), "--images-root", str(qa_files["root"]), "--pred",
            str(qa_files["pred"]), "--html", str(qa_files["tmp"] / "r.html")]
    code, text = _run([*base, "--out", str(qa_files["tmp"] / "plain.json")])
    assert code == 0, text
    code, text = _run([*base, "--out", str(qa_files["tmp"] / "rules.json"), "--rules"])
    assert code == 0, text
    plain = json.loads((qa_files["tmp"] / "plain.json").read_text())
    joined = json.loads((qa_files["tmp"] / "rules.json").read_text())
    consensus = {"wrong_class", "missing", "extra", "low_iou", "ambiguous"}
    assert {r["type"] for r in plain} <= consensus
    rule_rows = [r for r in joined if r["type"] not in consensus]
    assert any(r["annotation_id"] == 77777 for r in rule_rows)
    assert len([r for r in joined if r["type"] in consensus]) == len(plain)
    scores = [r["score"] for r in joined]
    assert scores == sorted(scores, reverse=True)

def test_qa_json_summary(qa_files: dict[str, Any]) -> None:
    out = qa_files["tmp"] / "issues.json"
    code, text = _run(["qa", "--gt", str(qa_files["gt"]), "--pred", str(qa_files["pred"]), "--out", str(out),
                       "--json", "--top", "3"])
    assert code == 0, text
    d = json.loads(text)
    assert d["n_issues"] == len(json.loads(out.read_text())) and len(d["top"]) == 3
    assert set(d["error_rate"]) == {"circle", "square", "triangle"}
    assert d["top"][0]["score"] >= d["top"][1]["score"]


@pytest.mark.parametrize("edit, match", [
    (lambda p: "not a list", "results list"),
    (lambda p: [{**p[0], "image_id": 123456}, *p[1:]], "image"),
    (lambda p: [{**p[0], "category_id": 77}, *p[1:]], "categor"),
])
def test_qa_bad_predictions_exit_2(qa_files: dict[str, Any], edit: Any, match: str) -> None:
    bad = qa_files["tmp"] / "bad.json"
    bad.write_text(json.dumps(edit(qa_files["preds"])))
    code, text = _run(["qa", "--gt", str(qa_files["gt"]), "--pred", str(bad), "--out", str(qa_files["tmp"] / "o.json")])
    assert code == 2
    assert "bad.json" in text and match in text
    assert not (qa_files["tmp"] / "o.json").exists()


def test_qa_needs_one_source_of_predictions(qa_files: dict[str, Any]) -> None:
    out = str(qa_files["tmp"] / "o.json")
    code, text = _run(["qa", "--gt", str(qa_files["gt"]), "--out", out])
    assert code == 2 and "--pred" in text
    code, text = _run(["qa", "--gt", str(qa_files["gt"]), "--out", out, "--model", str(qa_files["tmp"] / "no.yaml")])
    assert code == 2 and "no.yaml" in text


def test_qa_model_makes_out_of_fold_predictions(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("maslow.models.crossval")
    from tests.models.tiny_data import colour_squares

    ds = colour_squares(tmp_path / "data", 30, seed=3)
    a = ds.annotations
    label = a.label.copy()
    label[4] = (label[4] + 1) % len(ds.schema.classes)  # one flipped label
    io.write(ds.replace(annotations=a.with_columns(label=label)), tmp_path / "data" / "ds.parquet", "parquet")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: data/ds.parquet\nformat: parquet\nbackbone: light\nparams:\n  cache_dir: {tmp_path / 'cache'}\n")
    out = tmp_path / "issues.json"
    code, text = _run(["qa", "--gt", str(tmp_path / "data" / "ds.parquet"), "--gt-format", "parquet",
                       "--images-root", str(tmp_path / "data"), "--model", str(cfg), "--folds", "3",
                       "--out", str(out), "--json"])
    assert code == 0, text
    issues = json.loads(out.read_text())
    assert issues[0]["type"] == "wrong_class" and issues[0]["image_row"] == int(a.image[4])
    assert issues[0]["suggestion"]["class"] == ds.schema.names[int(a.label[4])]
    # at 0.5 there is no ambiguous band: share >= 0.5 is wrong_class, below it nothing
    wide = tmp_path / "wide.json"
    code, text = _run(["qa", "--gt", str(tmp_path / "data" / "ds.parquet"), "--gt-format", "parquet",
                       "--images-root", str(tmp_path / "data"), "--model", str(cfg), "--folds", "3",
                       "--out", str(wide), "--ambiguous-share", "0.5"])
    assert code == 0, text
    types = Counter(i["type"] for i in issues)
    wide_types = Counter(i["type"] for i in json.loads(wide.read_text()))
    assert types["ambiguous"] > 0, types  # else the comparison below says nothing
    assert wide_types["ambiguous"] == 0
    assert types["wrong_class"] < wide_types["wrong_class"] <= types["wrong_class"] + types["ambiguous"]


def test_qa_reads_predictions_in_another_format_by_image_path(qa_files: dict[str, Any]) -> None:
    truth = io.read_coco(qa_files["gt"])
    pred = io.read_coco_predictions(qa_files["pred"], like=truth)
    order = np.arange(truth.n_images)[::-1]  # another image order: matched by path
    io.write(pred.select_images(order), qa_files["tmp"] / "pred.parquet", "parquet")
    out = qa_files["tmp"] / "issues.json"
    code, text = _run(["qa", "--gt", str(qa_files["gt"]), "--pred", str(qa_files["tmp"] / "pred.parquet"),
                       "--pred-format", "parquet", "--out", str(out)])
    assert code == 0, text
    firsts: dict[str, Any] = {}
    for r in json.loads(out.read_text()):
        firsts.setdefault(r["type"], r)
    assert firsts["extra"]["annotation_id"] == 99999 and firsts["wrong_class"]["annotation_id"] == qa_files["swap"]


def test_qa_write_failing_halfway_leaves_no_partial_output(qa_files: dict[str, Any]) -> None:
    """ISSUES.json cut off halfway (a file size limit, as a full disk would): exit 2 naming --out and the cause,
    the previous ISSUES.json untouched, no --html and no temp file left."""
    import resource
    import subprocess
    import sys

    tmp = qa_files["tmp"]
    images = {p["image_id"] for p in qa_files["preds"]}
    # a confident prediction in an empty corner of every image: a `missing` finding each, for an ISSUES.json of
    # several pages
    fps = [{"image_id": i, "category_id": 1, "score": 0.9, "bbox": [100.0, 2.0, 8.0, 8.0]} for i in sorted(images)]
    pred = tmp / "pred_fp.json"
    pred.write_text(json.dumps(qa_files["preds"] + fps))
    args = ["qa", "--gt", str(qa_files["gt"]), "--images-root", str(qa_files["root"]), "--pred",
            str(pred), "--html", str(tmp / "r.html")]
    code, text = _run([*args, "--out", str(tmp / "full.json")])
    assert code == 0, text
    size = (tmp / "full.json").stat().st_size
    assert size > 4096
    out = tmp / "out" / "ISSUES.json"
    out.parent.mkdir()
    out.write_bytes(b"[]\n")  # the previous run's
    args[-1] = str(out.parent / "r.html")

    def limit() -> None:  # writes past size // 2 bytes fail with EFBIG (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    proc = subprocess.run([sys.executable, "-m", "maslow", *args, "--out", str(out)], capture_output=True,
                          text=True, preexec_fn=limit, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert str(out) in proc.stderr and "file too large" in proc.stderr.lower()
    assert out.read_bytes() == b"[]\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["ISSUES.json"]


def test_qa_says_why_a_model_that_sees_none_of_the_annotations_finds_nothing(qa_files: dict[str, Any]) -> None:
    # every prediction far from every object (a model that learnt nothing): no annotation can be scored, and the
    # empty table says why instead of passing for a clean dataset
    from tests.helpers import run_cli_streams

    off = [{**p, "bbox": [p["bbox"][0] + 400, p["bbox"][1] + 400, 4, 4]} for p in qa_files["preds"]]
    pred = qa_files["tmp"] / "off.json"
    pred.write_text(json.dumps(off))
    out = qa_files["tmp"] / "issues.json"
    code, stdout, stderr = run_cli_streams(["qa", "--gt", str(qa_files["gt"]), "--pred", str(pred), "--out", str(out),
                                            "--json"])
    assert code == 0, stderr
    d = json.loads(stdout)
    assert d["n_issues"] == 0 and any("explain none of the annotations" in n for n in d["notes"])
    assert "explain none of the annotations" in " ".join(stderr.split())
    assert "boxes of --pred" in " ".join(stderr.split())  # --model runs are told to check the config instead
    # a model that sees the objects gets no such note
    code, stdout, _ = run_cli_streams(["qa", "--gt", str(qa_files["gt"]), "--pred", str(qa_files["pred"]), "--out",
                                       str(out), "--json"])
    assert code == 0 and not any("explain none" in n for n in json.loads(stdout)["notes"])
