from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maslow.cli.main import app

runner = CliRunner()


def _run(args: list[str], cwd: Path | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str]:
    if cwd is not None and monkeypatch is not None:
        monkeypatch.chdir(cwd)
    res = runner.invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    code, out = _run(["sample", str(tmp_path / "shapes"), "-n", "12", "--seed", "3"])
    assert code == 0, out
    return tmp_path / "shapes"


def test_workspace_flow(tmp_path: Path, sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "ws"
    assert _run(["init", str(ws)])[0] == 0
    monkeypatch.chdir(ws)
    code, out = _run(["import", str(sample / "annotations.json"), "--from", "coco", "--name", "shapes", "--json"])
    assert code == 0, out
    imported = json.loads(out)
    assert imported["version"]["dataset"] == "shapes"
    assert imported["report"]["n_errors"] == 0
    vid = imported["version"]["id"]

    code, out = _run(["stats", "--json"])
    assert code == 0, out
    stats = json.loads(out)
    assert stats["n_images"] == 12
    assert stats["n_annotations"] == imported["version"]["n_annotations"]

    code, out = _run(["export", vid[:6], str(tmp_path / "yolo"), "--to", "yolo", "--json"])
    assert code == 0, out
    rep = json.loads(out)
    assert rep["n_annotations"] > 0 and rep["lost"]["attributes"] > 0  # YOLO can't hold attributes: counted
    assert (tmp_path / "yolo" / "data.yaml").is_file()

    code, out = _run(["log", "--json"])
    assert code == 0 and [v["id"] for v in json.loads(out)] == [vid]


def test_convert_reports_what_the_target_cannot_hold(tmp_path: Path, sample: Path) -> None:
    code, out = _run(["convert", str(sample / "annotations.json"), str(tmp_path / "voc"), "--from", "coco",
                      "--to", "voc", "--json"])
    assert code == 0, out
    d = json.loads(out)
    assert d["export"]["lost"].get("mask", 0) > 0 or d["export"]["lost"].get("polygon", 0) > 0
    assert len(list((tmp_path / "voc").rglob("*.xml"))) == 12


def test_stats_on_a_file_without_workspace(sample: Path) -> None:
    code, out = _run(["stats", str(sample / "annotations.json"), "--from", "coco"])
    assert code == 0 and "Per class" in out


@pytest.mark.parametrize(
    ("content", "match"),
    [
        pytest.param("{not json", "line 1", id="malformed-json"),
        pytest.param(json.dumps({"images": [{"id": 1, "file_name": "../../etc/passwd", "width": 5, "height": 5}],
                                 "annotations": [], "categories": []}), "dataset root", id="path-traversal"),
        pytest.param(json.dumps({"images": "nope", "annotations": [], "categories": []}), "images", id="wrong-type"),
    ],
)
def test_bad_input_exits_2_with_a_located_message(tmp_path: Path, content: str, match: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, out = _run(["convert", str(bad), str(tmp_path / "out"), "--from", "coco", "--to", "yolo"])
    assert code == 2
    assert "bad.json" in out and match in out
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize("fmt", ["coco", "yolo", "parquet"])
def test_unwritable_output_exits_2_naming_it(tmp_path: Path, sample: Path, fmt: str) -> None:
    (tmp_path / "afile").write_text("x")
    code, out = _run(["convert", str(sample / "annotations.json"), str(tmp_path / "afile" / "out"), "--from", "coco",
                      "--to", fmt])
    assert code == 2, out
    assert "afile" in out and "a file where a folder must be" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "shapes"]


def test_the_same_file_imported_under_two_names(tmp_path: Path, sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    for name in ("a", "b"):
        code, out = _run(["import", str(sample / "annotations.json"), "--from", "coco", "--name", name, "--json"])
        assert code == 0, out
    code, out = _run(["log", "b", "--json"])
    assert code == 0 and [v["dataset"] for v in json.loads(out)] == ["b"]


def test_unknown_format_and_strict_mode(tmp_path: Path, sample: Path) -> None:
    code, out = _run(["convert", str(sample / "annotations.json"), str(tmp_path / "o"), "--from", "nope", "--to", "yolo"])
    assert code == 2 and "--from must be one of" in out  # the option named, not "format"
    coco = json.loads((sample / "annotations.json").read_text())
    coco["annotations"][0]["category_id"] = 999
    bad = sample / "bad.json"
    bad.write_text(json.dumps(coco))
    code, out = _run(["convert", str(bad), str(tmp_path / "o"), "--from", "coco", "--to", "yolo", "--strict"])
    assert code == 2 and "strict" in out
    code, out = _run(["convert", str(bad), str(tmp_path / "o"), "--from", "coco", "--to", "yolo", "--json"])
    assert code == 0
    assert json.loads(out)["report"]["n_errors"] >= 1


def test_commands_outside_a_workspace_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = _run(["log"])
    assert code == 2 and "maslow init" in out


@pytest.mark.parametrize("command", [["select"], ["check"], ["diversity", "balance"]])
def test_a_path_that_does_not_exist_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             command: list[str]) -> None:
    missing = str(tmp_path / "nope")
    code, out = _run([*command, missing], cwd=tmp_path, monkeypatch=monkeypatch)  # used to say "not inside a
    assert code == 2 and "file or folder not found" in out and "workspace" not in out  # maslow workspace"
    assert "nope" in out


def test_python_dash_m_maslow_runs_the_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "maslow", "sample", str(tmp_path / "s"), "-n", "3", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "s" / "annotations.json").is_file()
    bad = subprocess.run([sys.executable, "-m", "maslow", "eval", "--gt", str(tmp_path / "missing.json"),
                          "--pred", str(tmp_path / "missing.json")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2  # usage errors exit 2, as from the script


def test_each_command_is_built_from_the_module_main_names() -> None:
    """``main`` builds only the module that registers the named command: its map must name every command, each
    with the module that registers it."""
    import typer

    from maslow.cli import main as cli_main

    owners: dict[str, str] = {}
    for module in cli_main._MODULES:
        one = typer.Typer()
        __import__(f"maslow.cli.{module}", fromlist=["register"]).register(one)
        names = [c.name for c in one.registered_commands] + [g.name for g in one.registered_groups]
        assert names, module
        for name in names:
            assert isinstance(name, str), module
            owners[name] = module
    assert owners == cli_main._COMMANDS
    every = typer.main.get_command(cli_main.app)
    assert sorted(every.commands) == sorted(owners)  # type: ignore[attr-defined]  # the full app has them all


@pytest.mark.parametrize("args", [["eval", "--help"], ["schema", "--help"], ["formats"], ["eval"]])
def test_a_command_alone_behaves_as_in_the_full_app(args: list[str]) -> None:
    from maslow.cli import main as cli_main

    alone = cli_main.build((cli_main._COMMANDS[args[0]],))
    full, part = runner.invoke(cli_main.app, args), runner.invoke(alone, args)
    assert (part.exit_code, part.output) == (full.exit_code, full.output)
    assert full.exit_code == (2 if args == ["eval"] else 0)


@pytest.mark.parametrize("command", [["check"], ["stats"], ["schema", "infer"], ["diversity", "balance"]])
def test_import_issues_of_a_file_read_with_from_are_said(tmp_path: Path, sample: Path, command: list[str]) -> None:
    coco = json.loads((sample / "annotations.json").read_text())
    coco["annotations"][3]["bbox"][2] = -5  # a box that is not imported
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(coco))
    code, out = _run([*command, str(bad), "--from", "coco"])
    assert code == 0, out
    flat = " ".join(out.split())
    assert f"warning: {bad}: 1 import issues (coco_negative_box_size: 1)" in flat
    assert f"annotations[3] (id={coco['annotations'][3]['id']}), field 'bbox'" in flat
    code, out = _run([*command, str(sample / "annotations.json"), "--from", "coco"])
    assert code == 0 and "import issues" not in out


def test_names_with_brackets_print_as_written(tmp_path: Path) -> None:
    # split names and attribute values land in table titles and headers: rich read "[/x]" as markup (a crash)
    # and "[red]" as a style (dropped from the output)
    from maslow.core.types import obj_array
    from maslow.io.parquet import write
    from maslow.sample import shapes

    ds = shapes(12, seed=1)
    split = np.where(ds.images.split == "train", "[red]tr[/red]", "v[/x]")  # type: ignore[comparison-overlap]
    ds = ds.replace(images=dataclasses.replace(ds.images, split=obj_array(split)))
    write(ds, tmp_path / "ds")
    code, out = _run(["stats", str(tmp_path / "ds"), "--from", "parquet"])
    assert code == 0, out
    assert re.search(r"splits: \[red\]tr\[/red\] \d+, v\[/x\] \d+$", out.splitlines()[0])
    assert "in v[/x]" in out and out.count("[red]tr") == 2  # the per-class header (cut to its column's width)


def test_embed_auto_uses_the_light_embedder_on_tiny_images(tmp_path: Path) -> None:
    # maslow embed resolved auto by the installed packages alone (EfficientNet on 28 x 28 digits), unlike select
    from PIL import Image

    from maslow.embed import embedder_for, get_embedder
    from maslow.io.imagefolder import read_imagefolder

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "digits" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / "digits" / c / f"{i}.png")
    code, out = _run(["embed", str(tmp_path / "digits"), "--from", "imagefolder", "-o", str(tmp_path / "f.npy"),
                      "--no-cache", "--json"])
    assert code == 0, out
    assert json.loads(out)["embedder"] == get_embedder("light").name
    assert embedder_for(read_imagefolder(tmp_path / "digits")).name == get_embedder("light").name
