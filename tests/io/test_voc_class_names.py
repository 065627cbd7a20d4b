"""VOC class names labelmap.txt or ``<name>`` can't hold as they are: a leading '#' (a comment line: every object of
the class was refused on reading while lost only said class_names), a NUL or lone surrogate (malformed XML), a line
break (a broken labelmap line). They are written changed, counted, and their objects come back."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.errors import FormatError
from maslow.io import voc


def _ds(names: tuple[str, ...], paths: tuple[str, ...] = ("a.png",)) -> Dataset:
    n = len(names)
    return Dataset(schema=LabelSchema(classes=tuple(ClassDef(c) for c in names)),
                   images=Images(path=list(paths), width=[20] * len(paths), height=[20] * len(paths)),
                   annotations=Annotations(image=[0] * n, label=list(range(n)),
                                           box=[[1 + k, 1, 5 + k, 5] for k in range(n)]))


@pytest.mark.parametrize(("names", "written"), [
    (("#hash", "cat"), ("hash", "cat")),
    (("c\x00t", "dog"), ("c t", "dog")),
    (("c\ud800t",), ("c t",)),
    (("two\nlines", "x\u2028y"), ("two lines", "x y")),
    (("# #", "cat"), ("class_0", "cat")),  # nothing left
    (("#cat", "cat"), ("class_0", "cat")),  # another class's name
    ((" lead", "lead"), ("class_0", "lead")),  # was merged with 'lead' on reading
])
def test_class_names_are_written_changed_and_their_objects_survive(
        tmp_path: Path, names: tuple[str, ...], written: tuple[str, ...]) -> None:
    rep = io.write_voc(_ds(names), tmp_path / "out", images=False)
    assert rep.lost["class_names"] == sum(a != b for a, b in zip(names, written, strict=True))
    back, report = voc.parse(tmp_path / "out")
    assert back.schema.names == written and not report.issues
    assert back.n_annotations == len(names)
    assert [back.schema.names[k] for k in back.annotations.label] == list(written)


def test_names_that_read_back_are_written_as_they_are(tmp_path: Path) -> None:
    names = ("x:y", "a#b", "with space", "ünï", "class_0")
    rep = io.write_voc(_ds(names), tmp_path / "out", images=False)
    assert "class_names" not in rep.lost
    assert voc.parse(tmp_path / "out")[0].schema.names == names


@pytest.mark.parametrize("path", ["b\x00.png", "b\x01.png", "b\ud800.png"])
def test_image_paths_xml_cannot_hold_are_refused_and_old_output_kept(tmp_path: Path, path: str) -> None:
    """A NUL in a path failed with ValueError 'embedded null byte' (or wrote malformed XML with images=False)."""
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "old.txt").write_text("OLD")
    for images in (False, True):
        with pytest.raises(FormatError, match=r"images\[1\] \(.*\), field 'path': .*XML can't hold.*nothing was "
                                              r"written"):
            io.write_voc(_ds(("cat",), ("a.png", path)), dst, images=images)
    assert [p.name for p in dst.iterdir()] == ["old.txt"]
