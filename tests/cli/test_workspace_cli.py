"""The workspace from the command line, as a user coming from DVC or git runs it: from a subfolder, with the
``NAME@ID`` that ``maslow import`` prints, re-importing unchanged data, and on a full disk."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import flat_text as _flat
from tests.helpers import run_cli_streams as _run


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace holding the sample in ``shapes/`` (not imported yet) and an empty ``sub/``; the current folder."""
    root = tmp_path / "my ws é"
    root.mkdir()
    monkeypatch.chdir(root)
    for args in (["init"], ["sample", "shapes", "-n", "6", "--json"], ["sample", "more", "-n", "8", "--json"]):
        code, _, err = _run(args)
        assert code == 0, err
    (root / "sub").mkdir()
    return root


def _import(src: str, *more: str) -> dict:  # type: ignore[type-arg]
    code, out, err = _run(["import", src, "--from", "coco", "--name", "s", "--json", *more])
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_reimporting_the_same_file_from_a_subfolder_is_unchanged(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _import("shapes/annotations.json")
    assert first["unchanged"] is False and first["version"]["source"] == "shapes/annotations.json"
    monkeypatch.chdir(ws / "sub")
    code, out, err = _run(["import", "../shapes/annotations.json", "--from", "coco", "--name", "s", "--json"])
    assert code == 0, err
    again = json.loads(out)
    # was a new version: the image root "../shapes" (relative to sub/) made other content than "shapes"
    assert again["unchanged"] is True and again["version"]["id"] == first["version"]["id"]
    assert "was imported from" not in err  # the same source, spelt from another folder
    code, out, _ = _run(["log", "s", "--json"])
    assert code == 0 and [v["id"] for v in json.loads(out)] == [first["version"]["id"]]


def test_a_version_exported_from_a_subfolder_finds_its_images(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _import("shapes/annotations.json")
    monkeypatch.chdir(ws / "sub")
    code, out, err = _run(["export", "../out", "--to", "yolo", "--write-option", "copy_images=true", "--json"])
    assert code == 0, err
    notes = " ".join(json.loads(out)["notes"])
    assert "missing" not in notes  # was "6 image files were missing and not placed under images/"
    assert len(list((ws / "out" / "images").rglob("*.png"))) == 6


def test_name_at_id_as_import_prints_it(ws: Path) -> None:
    v1 = _import("shapes/annotations.json")["version"]
    v2 = _import("more/annotations.json")["version"]
    assert v2["parent"] == v1["id"]
    ref = f"s@{v1['id'][:6]}"
    code, out, err = _run(["stats", ref, "--json"])  # was "must be a dataset name or a version id"
    assert code == 0, err
    assert json.loads(out)["n_images"] == 6
    code, out, err = _run(["export", ref, "old.json", "--to", "coco", "--json"])
    assert code == 0, err
    assert len(json.loads((ws / "old.json").read_text())["images"]) == 6  # that version's data, not the head's
    code, _, err = _run(["check", ref, "--json"])
    assert code == 0, err
    unused = next(c for c in "0123456789abcdef" if not v1["id"].startswith(c) and not v2["id"].startswith(c))
    code, _, err = _run(["stats", f"s@{unused}", "--json"])
    assert code == 2 and "no version of 's' has an id starting with" in _flat(err)


def test_an_annotation_file_without_from_in_a_workspace_says_from(ws: Path) -> None:
    _import("shapes/annotations.json")
    for args in (["check", "shapes/annotations.json"], ["stats", "shapes/annotations.json"]):
        code, _, err = _run(args)
        # was "version 'shapes/annotations.json': must be a dataset name or a version id", outside a workspace
        # "is read with --from FORMAT": one rule for every command
        assert code == 2 and "is read with --from FORMAT" in _flat(err), err


def test_log_says_what_each_version_changed(ws: Path) -> None:
    _import("shapes/annotations.json")
    _import("more/annotations.json")
    code, out, _ = _run(["log", "s"])
    assert code == 0
    lines = [line for line in out.splitlines() if " images" in line]
    assert "8 images (+2)" in lines[0] and "(+" not in lines[1] and "(-" not in lines[1]


def test_an_import_on_a_full_disk_exits_2_and_commits_nothing(ws: Path) -> None:
    first = _import("shapes/annotations.json")["version"]
    code, _, err = _run(["sample", "big", "-n", "150", "--json"])
    assert code == 0, err

    def limit() -> None:  # writes past 8 KB fail with EFBIG (Python ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    proc = subprocess.run([sys.executable, "-m", "maslow", "import", "big/annotations.json", "--from", "coco",
                           "--name", "s"], capture_output=True, text=True, preexec_fn=limit, timeout=300, cwd=ws)
    assert proc.returncode == 2, proc.stderr  # was 1, an OSError traceback from pyarrow
    assert "nothing was committed" in _flat(proc.stderr) and "Traceback" not in proc.stderr
    code, out, _ = _run(["log", "s", "--json"])
    assert [v["id"] for v in json.loads(out)] == [first["id"]]
    assert sorted(p.name for p in (ws / ".maslow" / "versions").iterdir()) == [first["id"]]


def test_init_twice_says_the_workspace_is_kept(ws: Path) -> None:
    settings = (ws / "maslow.yaml").read_text()
    code, out, err = _run(["init", "--database", "sqlite:///other.db"])
    assert code == 0 and "already" in _flat(out)  # was "Workspace ready", as if a new one had been made
    assert "--database sqlite:///other.db was not applied" in _flat(err)
    assert (ws / "maslow.yaml").read_text() == settings
    code, _, err = _run(["init", "sub"])
    assert code == 0 and f"inside the workspace at {ws}" in _flat(err)


def test_export_into_the_store_is_refused_even_where_nothing_is_yet(ws: Path) -> None:
    """`.maslow/refs/NAME` did not exist, so the destination check let it through: the export made a ref that names
    nothing and `maslow log` failed for the whole workspace."""
    _import("shapes/annotations.json")
    for dst in (".maslow/refs/fake", ".maslow/new-folder/out.json"):
        code, out, err = _run(["export", "s", "--to", "coco", "--out", dst])
        assert code == 2, (dst, out, err)
        assert not (ws / dst).exists()
    code, out, err = _run(["log", "--json"])
    assert code == 0, err
    assert len(json.loads(out)) == 1


def test_log_says_not_checked_and_gives_whole_reports_with_issues(ws: Path) -> None:
    _import("shapes/annotations.json")
    code, _, err = _run(["schema", "infer", "s", "-o", "schema.yaml"])
    assert code == 0, err
    (ws / "new.yaml").write_text((ws / "schema.yaml").read_text().replace("name: circle", "name: disc"))
    code, _, err = _run(["schema", "migrate", "s", "--to", "new.yaml", "--rename", "circle=disc", "--commit"])
    assert code == 0, err
    code, out, err = _run(["log", "s"])
    assert code == 0, err
    assert "not checked" in _flat(out)  # the migration's version, committed without a technical check
    code, out, _ = _run(["log", "s", "--json"])
    migrated, imported = json.loads(out)
    assert migrated["report"] is None and isinstance(imported["report"], dict)
    code, out, _ = _run(["log", "s", "--json", "--issues"])
    whole = json.loads(out)[1]["report"]
    assert isinstance(whole, dict) and "issues" in whole


def test_migrate_commit_loads_the_version_it_read(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit landing between resolving the head and loading it: the migration loads the version it resolved (by
    id, not the name's new head), and its commit is refused naming that version, never undoing the other."""
    from maslow.cli import schema as schema_cli
    from maslow.store import Workspace

    first = _import("shapes/annotations.json")["version"]["id"]
    assert _run(["schema", "infer", "s", "-o", "schema.yaml"])[0] == 0
    (ws / "new.yaml").write_text((ws / "schema.yaml").read_text().replace("name: circle", "name: disc"))
    loaded: list[int] = []
    original = schema_cli.load_dataset

    def racing_load(ref: str, fmt: str | None, *a: object, **k: object) -> object:
        w = Workspace.find()
        head = w.load("s")
        w.commit(head.select(np.arange(head.n_annotations) > 0), dataset="s", message="another user's edit")
        out = original(ref, fmt, *a, **k)  # type: ignore[arg-type]
        loaded.append(out.n_annotations)
        return out

    monkeypatch.setattr(schema_cli, "load_dataset", racing_load)
    code, out, err = _run(["schema", "migrate", "s", "--to", "new.yaml", "--rename", "circle=disc", "--commit"])
    assert code == 2 and first[:8] in _flat(err), (out, err)
    first_n = Workspace.find().record(first).n_annotations
    assert loaded == [first_n]  # the version read, not the new head (one annotation fewer)
    assert Workspace.find().version("s").message == "another user's edit"  # the other commit stays the head
