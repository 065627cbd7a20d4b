"""Workspace versions as a user of DVC or git expects them: ids that do not depend on the folder a command ran in,
a workspace that still works once moved, ``NAME@ID`` refs, snapshots that can't be edited after the fact, and
failed writes that commit nothing."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from maslow.errors import FormatError, MaslowError, NoRoomError
from maslow.sample import shapes, write_shapes
from maslow.store import Workspace, init_workspace


def _ws_with_images(tmp_path: Path) -> tuple[Workspace, Path]:
    ws = init_workspace(tmp_path / "ws")
    write_shapes(ws.root / "shapes", 4, seed=0)
    return ws, ws.root / "shapes"


def test_the_image_root_is_stored_relative_to_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, images = _ws_with_images(tmp_path)
    (ws.root / "sub").mkdir()
    monkeypatch.chdir(ws.root / "sub")  # a root relative to a subfolder, as a reader run there gives it
    v1 = ws.commit(shapes(4, seed=0).replace(root=Path("../shapes")), dataset="d", message="from sub")
    monkeypatch.chdir(ws.root)
    v2 = ws.commit(shapes(4, seed=0).replace(root=Path("shapes")), dataset="d", message="from the root")
    assert v2.id == v1.id  # the same data: was a second version (the root "../shapes" vs "shapes")
    monkeypatch.chdir(tmp_path)
    ds = ws.load("d")
    assert ds.root is not None and ds.root.resolve() == images.resolve()  # was "../shapes", from the current folder
    assert (ds.root / str(ds.images.path[0])).is_file()


def test_a_moved_workspace_finds_its_images(tmp_path: Path) -> None:
    ws, images = _ws_with_images(tmp_path)
    ws.commit(shapes(4, seed=0).replace(root=images.resolve()), dataset="d", message="absolute path")
    shutil.move(ws.root, tmp_path / "moved é")  # the old folder is gone: nothing may point there
    ds = Workspace(tmp_path / "moved é").load("d")
    assert ds.root is not None and ds.root.resolve() == (tmp_path / "moved é" / "shapes").resolve()
    assert (ds.root / str(ds.images.path[0])).is_file()


def test_images_outside_the_workspace_keep_an_absolute_root(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    write_shapes(tmp_path / "elsewhere", 2, seed=0)
    ws.commit(shapes(2, seed=0).replace(root=tmp_path / "elsewhere"), dataset="d", message="x")
    shutil.move(ws.root, tmp_path / "ws2")
    ds = Workspace(tmp_path / "ws2").load("d")
    assert ds.root == (tmp_path / "elsewhere").resolve()


def test_name_at_id_refs(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(6, seed=0)
    v1 = ws.commit(ds, dataset="a", message="one")
    v2 = ws.commit(ds.select(ds.annotations.label != 0), dataset="a", message="two")
    vb = ws.commit(ds, dataset="b", message="b")
    # as `maslow import` prints a version: NAME@ID, whole or its first digits (was refused: not a name or an id)
    assert ws.resolve(f"a@{v1.id}") == v1.id
    assert ws.resolve(f"a@{v2.id[:6]}") == v2.id
    assert ws.load(f"a@{v1.id[:6]}").n_annotations == ds.n_annotations
    with pytest.raises(MaslowError, match=f"no version of 'a' has an id starting with '{vb.id[:8]}'"):
        ws.resolve(f"a@{vb.id[:8]}")  # b's version is not one of a's
    with pytest.raises(MaslowError, match="dataset 'c' is not in the workspace; known: a, b"):
        ws.resolve(f"c@{v1.id[:4]}")
    # an id copied in upper case (a spreadsheet, a ticket) is the same id (was: "must be NAME@ID", or no version)
    assert ws.resolve(f"a@{v2.id.upper()}") == ws.resolve(v2.id.upper()) == ws.resolve(v2.id[:7].upper()) == v2.id
    for bad in ("a@", "@" + v1.id[:4], "a@zz", f"a@{v1.id}0"):
        with pytest.raises(MaslowError, match="must be NAME@ID"):
            ws.resolve(bad)


def test_an_ambiguous_prefix_lists_the_ids(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ids = [ws.commit(shapes(2, seed=s), dataset=f"d{s}", message="x").id for s in range(17)]
    first = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)  # 17 ids, 16 digits
    with pytest.raises(MaslowError, match=f"version '{first}' is ambiguous: matches .*; give more digits"):
        ws.resolve(first)
    with pytest.raises(MaslowError, match="datasets: d0, d1"):
        ws.resolve("nope")


def test_a_snapshot_edited_after_its_commit_is_refused(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    v = ws.commit(shapes(4, seed=0), dataset="d", message="x")
    folder = tmp_path / ".maslow" / "versions" / v.id
    (folder / ".DS_Store").write_bytes(b"\0")  # a hidden file a file browser leaves is not the data
    assert ws.load("d").schema.names[0] == "circle"
    header = folder / "dataset.json"
    header.write_text(header.read_text().replace('"circle"', '"disc"'))  # parses: it read as other data
    with pytest.raises(FormatError, match=f"the files of version {v.id} changed after it was committed"):
        ws.load("d")


def test_a_deleted_version_folder_is_named(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    v = ws.commit(shapes(2, seed=0), dataset="d", message="x")
    shutil.rmtree(tmp_path / ".maslow" / "versions" / v.id)
    for call in (lambda: ws.log("d"), lambda: ws.load("d")):
        with pytest.raises(FormatError, match=f"version {v.id} is missing from the workspace"):
            call()


def test_a_commit_made_from_an_old_version_is_refused(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    ds = shapes(6, seed=0)
    v1 = ws.commit(ds, dataset="d", message="one")
    v2 = ws.commit(ds.select_images([0, 1, 2]), dataset="d", message="two")
    derived = ws.load(v1.id).select(ws.load(v1.id).annotations.label != 0)  # a cleaning of v1, not of the head
    with pytest.raises(MaslowError, match=f"made from version {v1.id}, but the head is {v2.id}"):
        ws.commit(derived, dataset="d", message="clean", base=v1.id)
    assert [v.id for v in ws.log("d")] == [v2.id, v1.id]
    v3 = ws.commit(ws.load("d").select([0]), dataset="d", message="clean", base=v2.id)
    assert v3.parent == v2.id


@contextlib.contextmanager
def _limited(limit: int) -> Iterator[None]:
    """This process can't write files past ``limit`` bytes (EFBIG; Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _state(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / ".maslow").rglob("*") if p.name != "lock")


def test_a_snapshot_too_large_to_write_commits_nothing(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    v1 = ws.commit(shapes(2, seed=0), dataset="d", message="x")
    before, settings = _state(tmp_path), (tmp_path / "maslow.yaml").read_text()
    with _limited(4096), pytest.raises(NoRoomError, match=r"could not write a version of 'd' .*nothing was committed"):
        ws.commit(shapes(200, seed=1), dataset="d", message="big")  # was an OSError from pyarrow
    assert _state(tmp_path) == before and ws.head("d") == v1.id
    assert (tmp_path / "maslow.yaml").read_text() == settings


def test_settings_that_cant_be_written_leave_the_head_alone(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path)
    v1 = ws.commit(shapes(2, seed=0), dataset="d", message="x")
    settings = ws.settings()
    settings["notes"] = "x" * 60_000  # maslow.yaml is rewritten whole when a dataset is added
    (tmp_path / "maslow.yaml").write_text(yaml.safe_dump(settings))
    with _limited(40_000), pytest.raises(FormatError, match="nothing was committed"):
        ws.commit(shapes(2, seed=1), dataset="e", message="new dataset")
    assert ws.datasets() == ["d"] and ws.head("d") == v1.id  # the ref of "e" moved before the settings failed
    assert os.path.getsize(tmp_path / "maslow.yaml") > 60_000


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_workspace_in_git_commits_versions_and_refs_not_local_state(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    ws.commit(write_shapes(tmp_path / "ws" / "shapes", 4, seed=0), dataset="s", message="first")
    (ws.state / "cache" / "emb.npy").write_bytes(b"x")
    (ws.state / "maslow.db").write_bytes(b"x")
    (ws.state / "versions" / ".abc.123.tmp").mkdir()
    subprocess.run(["git", "init", "-q", str(tmp_path / "ws")], check=True)
    subprocess.run(["git", "-C", str(tmp_path / "ws"), "add", "-A"], check=True)
    staged = subprocess.run(["git", "-C", str(tmp_path / "ws"), "diff", "--cached", "--name-only"], check=True,
                            capture_output=True, text=True).stdout.split()
    state = [p for p in staged if p.startswith(".maslow/")]
    assert any(p.startswith(".maslow/versions/") for p in state) and any(p.startswith(".maslow/refs/") for p in state)
    assert not [p for p in state if p.startswith((".maslow/cache/", ".maslow/lock", ".maslow/maslow.db"))
                or ".tmp" in p]
    assert init_workspace(tmp_path / "ws").state == ws.state  # a second init keeps the file as it is
