"""`maslow check` and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maslow import io
from maslow.cli.main import app
from maslow.core.dataset import Dataset
from maslow.quality import check, write_html
from maslow.sample import shapes

runner = CliRunner()


def _planted(n: int = 30) -> Dataset:
    ds = shapes(n, seed=1)
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None
    box = a.box.copy()
    r0, r1 = (int(r) for r in np.flatnonzero(~a.iscrowd)[:2])
    box[r0, 2] = box[r0, 0]                       # zero area
    box[r1, 2] = ds.images.width[a.image[r1]] + 40  # out of bounds
    return ds.replace(annotations=a.with_columns(box=box))


def _invoke(args: list[str]) -> tuple[int, str]:
    res = runner.invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def test_check_file_json_and_html(tmp_path: Path) -> None:
    ds = _planted()
    io.write(ds, tmp_path / "ann.json", "coco")
    html = tmp_path / "out" / "report.html"
    code, out = _invoke(["check", str(tmp_path / "ann.json"), "--from", "coco", "--json", "--top", "5",
                         "--html", str(html)])
    assert code == 0, out
    d = json.loads(out)
    assert d["counts"].get("zero_area_box") == 1 and d["counts"].get("box_out_of_bounds") == 1
    assert len(d["issues"]) == min(5, d["n_issues"])
    text = html.read_text(encoding="utf-8")
    assert "zero_area_box" in text and "Per class" in text and "<script" not in text
    code, out = _invoke(["check", str(tmp_path / "ann.json"), "--from", "coco", "--top", "3"])
    assert code == 0 and "zero_area_box" in out


def test_check_workspace_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    io.write(_planted(), tmp_path / "ann.json", "coco")
    assert _invoke(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    code, out = _invoke(["import", str(tmp_path / "ann.json"), "--from", "coco", "--name", "s", "--json",
                         "--no-check-files"])
    assert code == 0, out
    code, out = _invoke(["check", "--json"])
    assert code == 0, out
    assert json.loads(out)["counts"]["zero_area_box"] == 1


def test_check_with_schema_file(tmp_path: Path) -> None:
    ontology = pytest.importorskip("maslow.ontology.schema_file")
    ds = shapes(20, seed=0)
    io.write(ds, tmp_path / "ann.json", "coco")
    from dataclasses import replace

    from maslow.core.schema import AttributeDef

    strict = replace(ds.schema, attributes=(AttributeDef("colour", type="enum", values=("red",)),))
    ontology.save_schema(strict, tmp_path / "schema.yaml")
    code, out = _invoke(["check", str(tmp_path / "ann.json"), "--from", "coco", "--schema",
                         str(tmp_path / "schema.yaml"), "--json"])
    assert code == 0, out
    d = json.loads(out)
    colours = ds.annotations.attributes["colour"]
    assert d["counts"]["attribute_invalid"] == int(np.sum(colours != "red"))


def test_missing_from_without_dataset_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["check", "--from", "coco"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["check"])  # no workspace here
    assert res.exit_code == 2


def test_write_html_is_atomic_and_escaped(tmp_path: Path) -> None:
    ds = _planted()
    issues = check(ds)
    path = write_html(issues, ds, tmp_path / "r.html", top=2, title="<b>x</b>")
    text = path.read_text(encoding="utf-8")
    assert "&lt;b&gt;x&lt;/b&gt;" in text and text.count("<tr>") >= 3
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]
