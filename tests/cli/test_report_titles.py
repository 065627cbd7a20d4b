"""The HTML reports name the data they are about, and the tables' columns and titles say what they hold."""

from __future__ import annotations

import html as html_lib
import json
from pathlib import Path

from maslow import io
from maslow.sample import write_shapes
from tests.helpers import run_cli


def _shapes(tmp_path: Path) -> Path:
    ds = write_shapes(tmp_path / "shapes <&>", 12, seed=4)
    gt = tmp_path / "shapes <&>" / "annotations.json"
    io.write_coco(ds, gt)
    return gt


def test_check_and_qa_pages_are_titled_with_their_data(tmp_path: Path) -> None:
    gt = _shapes(tmp_path)
    code, text = run_cli(["check", str(gt), "--from", "coco", "--html", str(tmp_path / "check.html")])
    assert code == 0, text
    page = (tmp_path / "check.html").read_text(encoding="utf-8")
    assert f"<title>maslow check: {html_lib.escape(str(gt), quote=False)}</title>" in page.replace("&#34;", '"')
    coco = json.loads(gt.read_text(encoding="utf-8"))
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
             for a in coco["annotations"]]
    (tmp_path / "pred.json").write_text(json.dumps(preds), encoding="utf-8")
    code, text = run_cli(["qa", "--gt", str(gt), "--pred", str(tmp_path / "pred.json"), "--out",
                          str(tmp_path / "issues.json"), "--html", str(tmp_path / "qa.html")])
    assert code == 0, text
    page = (tmp_path / "qa.html").read_text(encoding="utf-8")
    assert "maslow qa: " in page and "shapes &lt;&amp;&gt;" in page and "shapes <&>" not in page


def test_slice_table_names_its_last_column_and_coverage_title_says_its_rule_once(tmp_path: Path) -> None:
    gt = _shapes(tmp_path)
    coco = json.loads(gt.read_text(encoding="utf-8"))
    for i, im in enumerate(coco["images"]):
        im["site"] = "north" if i % 2 else "south"
    gt.write_text(json.dumps(coco), encoding="utf-8")
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
             for a in coco["annotations"]]
    (tmp_path / "pred.json").write_text(json.dumps(preds), encoding="utf-8")
    code, text = run_cli(["eval", "--gt", str(gt), "--pred", str(tmp_path / "pred.json"), "--slice-by", "site",
                          "--n-boot", "20"])
    assert code == 0, text
    assert "vs overall" in text
    code, text = run_cli(["diversity", "coverage", str(gt), "--from", "coco"])
    assert code == 0, text
    assert "under-covered: share" not in text and "Under-covered values (share <" in " ".join(text.split())


def test_export_table_does_not_call_kept_annotations_not_written(tmp_path: Path) -> None:
    """An attribute's value has no place in YOLO, but its annotation is written: the table of what the format
    doesn't keep must not say "not written" (it did, for every field); the annotation without a box, not written,
    is named by a note."""
    src = tmp_path / "tag.json"
    src.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 80}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "area": 1200,
                         "iscrowd": 0, "attributes": {"color": "red"}},
                        {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 0}]}), encoding="utf-8")
    code, text = run_cli(["convert", str(src), str(tmp_path / "yolo"), "--from", "coco", "--to", "yolo"])
    assert code == 0, text
    flat = " ".join(text.split())
    assert "Not kept by this format" in flat and "not written)" not in flat
    assert "note: annotations not written: 1 without a box" in flat
