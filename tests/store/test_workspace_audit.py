"""Workspace fixes from the audit of the store layer: the commit's compare-and-swap (``base``) and its ``unchanged``
answer, version records checked field by field, ``NAME@ID`` looked up by id (a deleted ancestor no longer hides the
versions after it), the temp folders of killed commits cleaned, and ``inside_store`` for the export guards."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from maslow.core.atomic import file_lock
from maslow.core.dataset import Dataset
from maslow.core.issues import Issue, Report
from maslow.errors import FormatError, MaslowError
from maslow.io import ExportReport, parquet
from maslow.sample import shapes
from maslow.store import Workspace, init_workspace, inside_store
from maslow.store._records import IN_USE, clean_temp_folders


def _two(tmp_path: Path) -> tuple[Workspace, Dataset, str, str]:
    ws = init_workspace(tmp_path)
    ds = shapes(6, seed=0)
    v1 = ws.commit(ds, dataset="d", message="one")
    v2 = ws.commit(ds.select(ds.annotations.label != 0), dataset="d", message="two")
    return ws, ds, v1.id, v2.id


# -- compare-and-swap ----------------------------------------------------------------------------------------------
def test_a_commit_landing_between_load_and_commit_is_not_undone(tmp_path: Path) -> None:
    """As ``schema migrate --commit`` runs: the head read and loaded, a concurrent import commits, then the result is
    committed with the id read as ``base``: refused, naming both ids, and the concurrent version stays the head."""
    ws = init_workspace(tmp_path)
    ds = shapes(6, seed=0)
    ws.commit(ds, dataset="d", message="v1")
    read = ws.resolve("d")  # once: the data changed and the base are one version
    data = ws.load(read)
    other = ws.commit(shapes(9, seed=1), dataset="d", message="concurrent import")  # lands meanwhile
    derived = data.select(data.annotations.label != 0)
    with pytest.raises(MaslowError, match=f"made from version {read}, but the head is {other.id}") as e:
        ws.commit(derived, dataset="d", message="migration", base=read)
    assert "would undo the versions after" in str(e.value)
    assert ws.resolve("d") == other.id and [v.message for v in ws.log("d")] == ["concurrent import", "v1"]
    done = ws.commit_result(ws.load(other.id).select([0]), dataset="d", message="migration", base=other.id)
    assert not done.unchanged and done.version.parent == other.id


def test_the_base_is_compared_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit landing while this one writes its snapshot (before the lock) is seen by the guard."""
    ws, ds, _, v2 = _two(tmp_path)
    real_write = parquet.write
    landed: list[str] = []

    def write_then_race(d: Dataset, dst: Path, **kw: Any) -> ExportReport:
        out = real_write(d, dst, **kw)
        if not landed:
            landed.append("")  # before: the commit below writes through this too
            landed[0] = ws.commit(shapes(3, seed=5), dataset="d", message="other").id
        return out

    monkeypatch.setattr(parquet, "write", write_then_race)
    with pytest.raises(MaslowError, match=f"made from version {v2}, but the head is"):
        ws.commit(ds.select([0]), dataset="d", message="mine", base=v2)
    monkeypatch.undo()
    assert ws.resolve("d") == landed[0]


def test_commit_result_says_unchanged_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Identical imports at once: the caller read no head (or another one) before, the data equals the head when the
    lock is held: unchanged, and only one version (all of them said "Imported" before)."""
    ws = init_workspace(tmp_path)
    ds = shapes(6, seed=0)
    real_write = parquet.write
    raced: list[bool] = []

    def write_then_race(d: Dataset, dst: Path, **kw: Any) -> ExportReport:
        out = real_write(d, dst, **kw)
        if not raced:
            raced.append(True)
            ws.commit(ds, dataset="d", message="the same import, first")
        return out

    monkeypatch.setattr(parquet, "write", write_then_race)
    assert ws.head("d") is None  # what the caller read
    done = ws.commit_result(ds, dataset="d", message="the same import, second")
    assert done.unchanged and done.version.message == "the same import, first"
    assert len(ws.log("d")) == 1
    again = ws.commit_result(ds.select([0]), dataset="d", message="new")
    assert not again.unchanged and again.version.parent == done.version.id
    assert ws.commit(ds.select([0]), dataset="d", message="same").id == again.version.id  # commit: the head


# -- version records -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value", "message"), [
    ("report", [1], "must be an object"),
    ("created", 5, "must be a string"),
    ("parent", 5, "must be an earlier version id"),
    ("n_images", "x", "must be a count"),
    ("n_annotations", True, "must be a count"),
    ("n_images", -1, "must be a count"),
    ("changes", {"a": 1}, "must be a list of objects"),
    ("dataset", "../x", "must be a dataset name"),
    ("message", None, "must be a string"),
])
def test_a_damaged_record_field_is_named(tmp_path: Path, field: str, value: Any, message: str) -> None:
    ws, _, _, v2 = _two(tmp_path)
    path = tmp_path / ".maslow" / "versions" / v2 / "version.json"
    data = json.loads(path.read_text())
    data[field] = value
    path.write_text(json.dumps(data))
    for call in (lambda: ws.log("d"), lambda: ws.version("d"), lambda: ws.load("d")):
        with pytest.raises(FormatError, match=rf"{v2}/version.json, field '{field}': {message}"):
            call()  # used to be a TypeError or AttributeError (a traceback) in `maslow log` or `diff`


def test_a_report_field_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    ws, _, _, v2 = _two(tmp_path)
    path = tmp_path / ".maslow" / "versions" / v2 / "version.json"
    data = json.loads(path.read_text())
    data["report"] = {"n_issues": "3"}
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"field 'report.n_issues': must be an integer"):
        ws.log("d")


def test_a_record_copied_into_another_folder_is_refused(tmp_path: Path) -> None:
    ws, _, v1, v2 = _two(tmp_path)
    versions = tmp_path / ".maslow" / "versions"
    shutil.copy(versions / v1 / "version.json", versions / v2 / "version.json")
    with pytest.raises(FormatError, match=rf"{v2}/version.json, field 'id': must be the id of its folder {v2}, "
                                          rf"got {v1}"):
        ws.log("d")  # listed v1 twice; diff compared v1 with itself


def test_a_parent_that_is_the_version_itself_is_refused(tmp_path: Path) -> None:
    ws, _, _, v2 = _two(tmp_path)
    path = tmp_path / ".maslow" / "versions" / v2 / "version.json"
    data = json.loads(path.read_text())
    data["parent"] = v2
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match="field 'parent': must be an earlier version id"):
        ws.version("d")  # a bare `maslow diff` compared the version with itself: "No change"


def test_checked_tells_imports_from_unchecked_versions(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(4, seed=0)
    clean = ws.commit(ds, dataset="d", message="import", report=Report(()))
    flagged = ws.commit(ds.select([0, 1]), dataset="d", message="import",
                        report=Report((Issue("missing_image", "error", "gone", file="x.png"),)))
    migrated = ws.commit(ds.select([0]), dataset="d", message="migration")
    assert [ws.version(v.id).checked for v in (clean, flagged, migrated)] == [True, True, False]
    assert ws.version(clean.id).report["n_issues"] == 0 and ws.version(migrated.id).report == {}


# -- refs ----------------------------------------------------------------------------------------------------------
def test_name_at_id_reaches_a_version_whose_ancestor_was_deleted(tmp_path: Path) -> None:
    ws, ds, v1, v2 = _two(tmp_path)
    shutil.rmtree(tmp_path / ".maslow" / "versions" / v1)
    assert ws.resolve(f"d@{v2[:6]}") == v2  # used to fail: "version V1 is missing" (the history was walked)
    assert ws.load(f"d@{v2}").n_annotations == int((ds.annotations.label != 0).sum())
    with pytest.raises(MaslowError, match=rf"version {v1} of 'd' is missing \(folder .*versions/{v1} does not exist"):
        ws.resolve(f"d@{v1}")
    with pytest.raises(MaslowError, match=rf"version {v1} is missing \(folder .*versions/{v1} does not exist"):
        ws.resolve(v1)  # `maslow diff` said "must be a dataset name or a version id"
    with pytest.raises(FormatError, match=f"version {v1} is missing from the workspace"):
        ws.record(ws.version("d").parent or "")  # what `maslow diff` compares a head with


def test_name_at_id_keeps_to_the_dataset(tmp_path: Path) -> None:
    ws, ds, v1, _ = _two(tmp_path)
    vb = ws.commit(ds, dataset="b", message="b")
    with pytest.raises(MaslowError, match=f"no version of 'd' has an id starting with '{vb.id}'"):
        ws.resolve(f"d@{vb.id}")
    assert ws.resolve(f"d@{v1}") == v1
    with pytest.raises(MaslowError, match="dataset 'c' is not in the workspace"):
        ws.resolve(f"c@{v1[:4]}")


def test_record_takes_only_a_full_id(tmp_path: Path) -> None:
    ws, _, v1, _ = _two(tmp_path)
    assert ws.record(v1).id == v1
    for bad in ("d", v1[:8], 5):
        with pytest.raises(FormatError, match="must be a version id"):
            ws.record(bad)  # type: ignore[arg-type]


def test_a_damaged_snapshot_header_is_reported_as_an_edit(tmp_path: Path) -> None:
    ws, _, _, v2 = _two(tmp_path)
    header = tmp_path / ".maslow" / "versions" / v2 / "dataset.json"
    data = json.loads(header.read_text())
    data["root"] = 5
    header.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=f"the files of version {v2} changed after it was committed"):
        ws.load("d")  # the content hash first: was a TypeError from the Parquet reader


# -- temp folders of killed commits --------------------------------------------------------------------------------
def _aged(folder: Path, seconds: float) -> None:
    t = time.time() - seconds
    for p in (folder, *folder.iterdir()):
        os.utime(p, (t, t))


def test_temp_folders_of_killed_commits_are_removed(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    state = tmp_path / ".maslow"
    dead, young, live, legacy, old_legacy = (state / f"tmp{n}" for n in ("dead", "young", "live", "legacy", "oldleg"))
    for folder in (dead, young, live, legacy, old_legacy):
        (folder / "snapshot").mkdir(parents=True)
        (folder / "snapshot" / "annotations.parquet").write_bytes(b"\0" * 100)
    for folder in (dead, young, live):
        (folder / IN_USE).touch()
    for folder, age in ((dead, 3600), (young, 5), (live, 3600), (legacy, 3600), (old_legacy, 2 * 86400)):
        _aged(folder, age)
    with file_lock(live / IN_USE):  # a commit still running (in another process, its lock held)
        removed = clean_temp_folders(state)
    assert sorted(p.name for p in removed) == ["tmpdead", "tmpoldleg"]
    assert not dead.exists() and not old_legacy.exists()
    assert young.is_dir() and live.is_dir() and legacy.is_dir()  # a young one may be a commit just started
    _aged(live, 3600)
    ws.commit(shapes(2), dataset="d", message="x")  # the next commit cleans: the live one has ended now
    assert not live.exists() and young.is_dir()
    assert sorted(p.name for p in state.glob("tmp*")) == ["tmplegacy", "tmpyoung"]  # its own temp folder gone


def test_a_commit_holds_the_lock_of_its_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = init_workspace(tmp_path)
    real_write = parquet.write
    seen: list[list[Path]] = []

    def write_and_clean(d: Dataset, dst: Path, **kw: Any) -> ExportReport:
        mine = dst.parent
        _aged(mine, 3600)
        seen.append(clean_temp_folders(tmp_path / ".maslow"))  # another commit cleaning meanwhile
        assert mine.is_dir() and (mine / IN_USE).is_file()
        return real_write(d, dst, **kw)

    monkeypatch.setattr(parquet, "write", write_and_clean)
    v = ws.commit(shapes(3), dataset="d", message="x")
    assert seen == [[]] and ws.load(v.id).n_images == 3


# -- the workspace's own files -------------------------------------------------------------------------------------
def test_inside_store(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    state = (tmp_path / ".maslow").resolve()
    for p in (".maslow", ".maslow/refs/new", ".maslow/versions/z/x.json", ".maslow/y.json", ".maslow/newdir/a/b"):
        assert inside_store(tmp_path / p) == state, p  # existing or not: export wrote them all
    for p in ("maslow.yaml", "out", "out/.maslow2/x", "a.json"):
        assert inside_store(tmp_path / p) is None, p
    (tmp_path / "sub").mkdir()
    link = tmp_path / "sub" / "link"
    link.symlink_to(tmp_path / ".maslow" / "refs")
    assert inside_store(link / "x") == state  # through a symlink
    assert inside_store(tmp_path / "elsewhere" / ".maslow" / "x") is None  # no workspace there

