"""atomic_dir, under every folder writer, never deletes a workspace or the folder a command runs in: ``io.write(ds,
"ws", "voc")`` replaced a workspace (maslow.yaml, every version) and ``"."`` crashed with a ValueError. Any other
existing folder is still replaced as a whole, as the folder writers document."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maslow import io
from maslow.core.atomic import atomic_dir, atomic_path, replace_refusal, workspace_inside
from maslow.errors import FormatError
from maslow.sample import shapes


def _workspace(root: Path) -> Path:
    (root / ".maslow" / "versions" / "v1").mkdir(parents=True)
    (root / ".maslow" / "versions" / "v1" / "version.json").write_text("{}")
    (root / "maslow.yaml").write_text("datasets: {}\n")
    return root


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize("depth", [0, 2], ids=["workspace-root", "a-folder-above-it"])
def test_a_folder_holding_a_workspace_is_refused_and_kept(tmp_path: Path, depth: int) -> None:
    out = tmp_path / "out"
    _workspace(out.joinpath(*["sub"] * depth))
    before = _files(out)
    with pytest.raises(FormatError, match=r"must not hold a maslow workspace, got .*\.maslow"):
        io.write(shapes(3), out, "voc")
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left beside it


def test_a_config_file_alone_marks_a_workspace(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "maslow.yaml").write_text("database: sqlite\n")
    with pytest.raises(FormatError, match=r"maslow\.yaml"), atomic_dir(tmp_path / "out"):
        pass
    assert (tmp_path / "out" / "maslow.yaml").is_file()


@pytest.mark.parametrize("name", [".", "..", "sub/.."], ids=["dot", "dotdot", "sub-dotdot"])
def test_the_current_folder_and_those_above_are_refused_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    here = tmp_path / "here"
    (here / "sub").mkdir(parents=True)
    (here / "keep.txt").write_text("keep")
    monkeypatch.chdir(here)
    with pytest.raises(FormatError, match="must not be the current folder or a folder above it"):
        io.write(shapes(2), name, "yolo")
    assert (here / "keep.txt").read_text() == "keep"
    assert sorted(p.name for p in here.iterdir()) == ["keep.txt", "sub"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]


def test_a_folder_above_the_current_one_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    with pytest.raises(FormatError, match="a folder above the current folder"), atomic_dir(tmp_path / "a"):
        pass
    assert (tmp_path / "a" / "b").is_dir()


def test_a_filesystem_root_is_refused() -> None:
    with pytest.raises(FormatError, match="must not be a filesystem root"), atomic_dir(Path(os.sep)):
        pass


@pytest.mark.parametrize("name", [".", ".."])
def test_a_file_writer_given_a_folder_name_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   name: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FormatError, match="output must be a file path, got a folder"), atomic_path(name):
        pass
    assert not any(tmp_path.iterdir())


def test_any_other_folder_is_still_replaced_as_documented(tmp_path: Path) -> None:
    """The API keeps replacing an existing output (docs/formats/parquet.md, semantic.md: "replaced atomically"); the
    CLI is where a folder that is not empty needs --overwrite."""
    out = tmp_path / "out"
    io.write(shapes(3), out, "yolo")
    (out / "stale.txt").write_text("old")
    io.write(shapes(3), out, "yolo")
    assert (out / "data.yaml").is_file() and not (out / "stale.txt").exists()


def test_a_symlink_to_a_workspace_is_replaced_not_followed(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws")
    before = _files(ws)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(ws, target_is_directory=True)  # inside the output: only the link goes
    (tmp_path / "alias").symlink_to(ws, target_is_directory=True)  # the output itself: the link is replaced
    io.write(shapes(2), tmp_path / "out", "yolo")
    io.write(shapes(2), tmp_path / "alias", "yolo")
    assert _files(ws) == before
    assert not (tmp_path / "alias").is_symlink() and (tmp_path / "alias" / "data.yaml").is_file()


def test_the_refusal_helpers(tmp_path: Path) -> None:
    assert replace_refusal(tmp_path / "missing") is None
    (tmp_path / "f").write_text("x")
    assert replace_refusal(tmp_path / "f") is None  # a file: nothing below it
    _workspace(tmp_path / "a" / "ws")
    assert workspace_inside(tmp_path / "a") == tmp_path / "a" / "ws" / ".maslow"
    assert workspace_inside(tmp_path / "a" / "ws" / ".maslow" / "versions") is None
    assert "maslow workspace" in (replace_refusal(tmp_path / "a") or "")
