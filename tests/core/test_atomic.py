"""Atomic writes: an output that can't be placed is a FormatError naming it, and nothing is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow.core.atomic import atomic_dir, atomic_path
from maslow.errors import FormatError


@pytest.mark.parametrize("writer", [atomic_path, atomic_dir], ids=["file", "folder"])
def test_a_file_in_the_way_is_named(tmp_path: Path, writer: object) -> None:
    (tmp_path / "afile").write_text("x")
    dst = tmp_path / "afile" / "sub" / "out"
    with pytest.raises(FormatError, match=r"afile.*a file where a folder must be"), writer(dst):  # type: ignore[operator]
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_folder_in_the_way_of_a_file_is_named_and_the_temp_file_removed(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(FormatError, match="out: output must be a writable path"), atomic_path(tmp_path / "out") as tmp:
        tmp.write_text("data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert not any((tmp_path / "out").iterdir())
