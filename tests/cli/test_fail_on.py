"""``--fail-on SEVERITY`` on import, convert and check: outputs written, then exit 1 when an issue at that severity
or worse was found; exit 0 otherwise, and without the flag whatever was found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maslow.cli._gate import failing
from tests.helpers import run_cli_streams


def _coco(tmp_path: Path, anns: list[dict]) -> Path:
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
                      {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48}],
           "categories": [{"id": 1, "name": "cat"}], "annotations": anns}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(doc))
    return path


def _box(i: int, image: int, box: list[float]) -> dict:
    return {"id": i, "image_id": image, "category_id": 1, "bbox": box, "area": box[2] * box[3], "iscrowd": 0}


@pytest.fixture
def with_error(tmp_path: Path) -> Path:
    # annotation 2 names an image the file lacks: an import error (the annotation is not read)
    return _coco(tmp_path, [_box(1, 1, [1, 1, 10, 10]), _box(2, 9, [2, 2, 5, 5])])


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    return _coco(tmp_path, [_box(1, 1, [1, 1, 10, 10]), _box(2, 2, [2, 2, 5, 5])])


def test_failing_counts_at_or_above_the_level() -> None:
    sev = ["info", "warning", "error", "warning"]
    assert failing(sev, None) == 0
    assert failing(sev, "error") == 1
    assert failing(sev, "warning") == 3
    assert failing(sev, "info") == 4


@pytest.mark.parametrize("json_out", [False, True])
def test_convert_writes_then_exits_1_on_errors(with_error: Path, tmp_path: Path, json_out: bool) -> None:
    out = tmp_path / "out"
    args = ["convert", str(with_error), str(out), "--from", "coco", "--to", "yolo", "--fail-on", "error",
            *(["--json"] if json_out else [])]
    code, stdout, stderr = run_cli_streams(args)
    assert code == 1, stdout + stderr
    assert "--fail-on error" in stderr and "outputs were written" in stderr
    assert (out / "data.yaml").is_file()  # written before failing
    if json_out:
        report = json.loads(stdout)["report"]
        assert any(i["severity"] == "error" for i in report["issues"])


def test_convert_without_the_flag_or_without_issues_exits_0(with_error: Path, clean: Path, tmp_path: Path) -> None:
    code, out, err = run_cli_streams(["convert", str(with_error), str(tmp_path / "o1"), "--from", "coco",
                                      "--to", "yolo"])
    assert code == 0, out + err
    clean_out = tmp_path / "o2"
    code, out, err = run_cli_streams(["convert", str(clean), str(clean_out), "--from", "coco", "--to", "yolo",
                                      "--fail-on", "info"])
    assert code == 0, out + err


def test_import_fails_after_committing(with_error: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    assert run_cli_streams(["init"])[0] == 0
    code, out, err = run_cli_streams(["import", str(with_error), "--from", "coco", "--no-check-files",
                                      "--fail-on", "warning", "--json"])
    assert code == 1, out + err
    version = json.loads(out)["version"]["id"]
    code, log, _ = run_cli_streams(["log", "--json"])
    assert code == 0 and version in log  # the version was committed before the exit


def test_check_fails_on_warnings_only_when_asked(tmp_path: Path) -> None:
    # two identical boxes on one image: a duplicate finding (a warning or an error, as check rates it)
    path = _coco(tmp_path, [_box(1, 1, [1, 1, 10, 10]), _box(2, 1, [1, 1, 10, 10])])
    code, out, err = run_cli_streams(["check", str(path), "--from", "coco", "--json"])
    assert code == 0, out + err
    severities = json.loads(out)["severity"]
    assert severities, "the fixture should give check a finding"
    worst = next(s for s in ("error", "warning", "info") if s in severities)
    code, out, err = run_cli_streams(["check", str(path), "--from", "coco", "--fail-on", worst])
    assert code == 1, out + err
    assert f"--fail-on {worst}" in err
    if worst != "error":
        code, out, err = run_cli_streams(["check", str(path), "--from", "coco", "--fail-on", "error"])
        assert code == 0, out + err


def test_unknown_level_is_a_usage_error(clean: Path) -> None:
    code, _, _ = run_cli_streams(["check", str(clean), "--from", "coco", "--fail-on", "fatal"])
    assert code == 2
