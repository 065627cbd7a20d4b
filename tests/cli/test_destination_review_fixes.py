"""Review fixes of the destination checks. ``maslow export`` replaced the very file a workspace dataset was imported
from (``export data/annotations.json --to coco``): now refused, as a folder export holding it is; another existing
file is still replaced, as documented. ``--overwrite`` walked the destination twice for a workspace (the CLI's check,
then ``atomic_dir``'s): now once, the writer trusting the check inside ``maslow.core.atomic.walked``. ``--overwrite``
is one option, defined once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from maslow import io
from maslow.core import atomic
from maslow.errors import FormatError
from maslow.sample import write_shapes
from tests.helpers import count_workspace_walks, flat_text
from tests.helpers import run_cli_streams as _run


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace in ``tmp_path`` (the current folder) with the sample (6 images) in ``shapes/`` and its COCO file
    copied to ``data/annotations.json``, imported from there as dataset ``shapes`` (images under ``shapes/``)."""
    monkeypatch.chdir(tmp_path)
    ds = write_shapes(tmp_path / "shapes", 6, seed=0)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    (tmp_path / "data").mkdir()
    shutil.copy(tmp_path / "shapes" / "annotations.json", tmp_path / "data" / "annotations.json")
    assert _run(["init"])[0] == 0
    code, _, err = _run(["import", "data/annotations.json", "--from", "coco", "--images-root", "shapes",
                         "--name", "shapes", "--json"])
    assert code == 0, err
    return tmp_path


def _refused(args: list[str], *needles: str) -> None:
    code, out, err = _run(args)
    text = flat_text(err)
    assert code == 2 and not out, (code, out, err)
    for needle in needles:
        assert needle in text, text


def test_export_refuses_the_file_the_dataset_was_imported_from(here: Path) -> None:
    source = here / "data" / "annotations.json"
    before = source.read_bytes()
    _refused(["export", "data/annotations.json", "--to", "coco"], "data/annotations.json",
             "'shapes' was imported from", "give another DST")
    assert source.read_bytes() == before
    # named another way (absolute, through a subfolder), it is the same file
    _refused(["export", str(source), "--to", "coco", "--overwrite"], "was imported from")
    _refused(["export", "shapes", "data/../data/annotations.json", "--to", "labelstudio"], "was imported from")
    assert source.read_bytes() == before


def test_export_refuses_a_folder_holding_the_imported_file_even_with_overwrite(here: Path) -> None:
    before = sorted(p.name for p in (here / "data").iterdir())
    _refused(["export", "data", "--to", "yolo", "--overwrite"], "DST data", "must not hold the data read",
             "annotations.json")
    assert sorted(p.name for p in (here / "data").iterdir()) == before


def test_export_replaces_any_other_file_as_documented(here: Path) -> None:
    (here / "out.json").write_text("old")
    code, _, err = _run(["export", "out.json", "--to", "coco", "--json"])
    assert code == 0, err
    assert '"images"' in (here / "out.json").read_text()


def test_export_outside_the_recorded_sources_writes_as_before(here: Path) -> None:
    # the workspace's own records, not the file's name: a copy of the source elsewhere is an ordinary file
    shutil.copy(here / "data" / "annotations.json", here / "copy.json")
    assert _run(["export", "copy.json", "--to", "coco", "--json"])[0] == 0


def _count_walks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    return count_workspace_walks(monkeypatch)


def test_overwrite_walks_the_destination_once(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    convert = ["convert", "shapes/annotations.json", "out", "--from", "coco", "--to", "yolo", "--json"]
    assert _run(convert)[0] == 0
    calls = _count_walks(monkeypatch)
    code, _, err = _run([*convert, "--overwrite"])
    assert code == 0, err
    assert calls == [(here / "out").resolve()]  # the check's walk; atomic_dir's second one is gone
    assert (here / "out" / "data.yaml").is_file()
    calls.clear()
    code, _, err = _run(["export", "out", "--to", "yolo", "--overwrite", "--json"])
    assert code == 0, err
    assert calls == [(here / "out").resolve()]


def test_walked_skips_only_an_unchanged_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    calls = _count_walks(monkeypatch)
    with atomic.walked([out]):
        assert atomic.replace_refusal(out) is None
    assert calls == []
    assert atomic.replace_refusal(out) is None and len(calls) == 1  # outside the scope: walked as before
    with atomic.walked([tmp_path / "new"]):  # didn't exist when the scope began: walked when it is replaced
        (tmp_path / "new").mkdir()
        assert atomic.replace_refusal(tmp_path / "new") is None
    assert len(calls) == 2


def test_walked_still_refuses_a_workspace_made_since(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("a")
    with atomic.walked([out]):
        (out / ".maslow").mkdir()  # the folder changed (its modification time): looked through again
        os.utime(out, ns=(0, 0))  # even with its time set back, the stamp differs from the scope's
        with pytest.raises(FormatError, match="maslow workspace"), atomic.atomic_dir(out):
            pass
    assert (out / ".maslow").is_dir() and (out / "a.txt").read_text() == "a"


def test_overwrite_is_one_option() -> None:
    from maslow.cli import _destination, data

    assert data.OverwriteOpt is _destination.OverwriteOpt


def test_walked_stamps_the_folders_when_called(tmp_path: Path) -> None:
    """A command calls ``walked`` right after its check and enters the scope around the write, after reading (and,
    for crossval, training): a workspace made in between must still be found."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("a")
    checked = atomic.walked([out])
    (out / ".maslow").mkdir()  # after the check, before the write
    with checked, pytest.raises(FormatError, match="maslow workspace"), atomic.atomic_dir(out):
        pass
    assert (out / ".maslow").is_dir() and (out / "a.txt").read_text() == "a"
