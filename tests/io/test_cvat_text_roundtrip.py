"""CVAT text a round trip must give back, or refuse, or count: whitespace-only and padded text attributes (read
back as "" or stripped), integer number attributes above 2**53 (read through float), and characters XML can't hold
(written raw: the whole file was unreadable, with nothing counted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import cvat


def _ds(values: list[object], *, kind: str = "text", names: tuple[str, ...] = ("cat",),
        paths: tuple[str, ...] = ("a.png",)) -> Dataset:
    n = len(values)
    schema = LabelSchema(classes=tuple(ClassDef(c) for c in names), attributes=(AttributeDef("note", type=kind),))
    return Dataset(schema=schema, images=Images(path=list(paths), width=[10] * len(paths), height=[10] * len(paths)),
                   annotations=Annotations(image=[0] * n, label=[0] * n, box=[[1, 1, 5, 5]] * n,
                                           attributes={"note": obj_array(values)}))


def test_whitespace_text_attributes_round_trip_exactly(tmp_path: Path) -> None:
    """' ', '\\t', '\\n' came back as '' and 'x\\n' as 'x' (stripped as if pretty-printed), lost={}."""
    values = [" ", "  ", "\t", "\n", "", " x ", "x\n", "\n  y\n", "a\rb", "\r\n", "two\nlines"]
    rep = io.write_cvat(_ds(values), tmp_path / "a.xml")
    back, report = cvat.parse(tmp_path / "a.xml")
    assert back.annotations.attributes["note"].tolist() == values
    assert dict(rep.lost) == {} and not report.issues


def test_pretty_printed_class_names_are_still_stripped(tmp_path: Path) -> None:
    """Class names keep the reader's pretty-printing rule; only attribute values are read as they are."""
    io.write_cvat(_ds([" v "], names=("cat",)), tmp_path / "a.xml")
    text = (tmp_path / "a.xml").read_text().replace("<name>cat</name>", "<name>\n  cat\n</name>")
    (tmp_path / "b.xml").write_text(text)
    back, _ = cvat.parse(tmp_path / "b.xml")
    assert back.schema.names == ("cat",) and back.annotations.attributes["note"].tolist() == [" v "]


def test_integer_number_attributes_are_read_exactly(tmp_path: Path) -> None:
    """9007199254740993 came back as 9007199254740992.0 (float(text)), with nothing counted."""
    values = [2**53 + 1, -(2**62) - 3, 7, 0.5, 1e20, 2.0]
    rep = io.write_cvat(_ds(values, kind="number"), tmp_path / "a.xml")
    back, report = cvat.parse(tmp_path / "a.xml")
    got = back.annotations.attributes["note"].tolist()
    assert got == values and dict(rep.lost) == {} and not report.issues
    assert [type(v) for v in got] == [int, int, int, float, float, int]  # 2.0 is written "2", as CVAT writes it


def test_attribute_values_xml_cannot_hold_are_left_out_and_counted(tmp_path: Path) -> None:
    """'x\\x01y' was written raw: the file was malformed XML and lost said nothing."""
    rep = io.write_cvat(_ds(["x\x01y", "ok", "s\ud800", "\x00"]), tmp_path / "a.xml")
    assert rep.lost["attributes"] == 3 and any("XML can't hold" in n for n in rep.notes)
    back, _ = cvat.parse(tmp_path / "a.xml")  # readable
    assert back.annotations.attributes["note"].tolist() == [None, "ok", None, None]


@pytest.mark.parametrize(("names", "paths", "record", "fld"), [
    (("c\x00t",), ("a.png",), r"schema\.classes\[0\]", "name"),
    (("c\ud800t",), ("a.png",), r"schema\.classes\[0\]", "name"),
    (("cat",), ("a.png", "b\x00.png"), r"images\[1\] \('b\\x00\.png'\)", "path"),
    (("cat",), ("a.png", "b\x1b.png"), r"images\[1\] \(.*\)", "path"),
])
def test_names_and_paths_xml_cannot_hold_are_refused_and_old_output_kept(
        tmp_path: Path, names: tuple[str, ...], paths: tuple[str, ...], record: str, fld: str) -> None:
    """A NUL in a class name or path was written raw: the file was unreadable, lost={}."""
    dst = tmp_path / "a.xml"
    dst.write_text("OLD")
    ds = _ds(["x"] * len(paths), names=names, paths=paths)
    ds = ds.replace(annotations=Annotations(image=list(range(len(paths))), label=[0] * len(paths),
                                            box=[[1, 1, 5, 5]] * len(paths)))
    with pytest.raises(FormatError, match=rf"{record}, field '{fld}': .*a character XML can't hold.*nothing was "
                                          r"written"):
        io.write_cvat(ds, dst)
    assert dst.read_text() == "OLD" and sorted(p.name for p in tmp_path.iterdir()) == ["a.xml"]


def test_keypoint_names_attribute_names_and_splits_xml_cannot_hold_are_refused(tmp_path: Path) -> None:
    kp = _ds(["x"]).replace(schema=LabelSchema(classes=(ClassDef("cat", keypoints=("nose", "e\x02ye")),),
                                               attributes=(AttributeDef("note", type="text"),)))
    with pytest.raises(FormatError, match=r"schema\.classes\[0\] \('cat'\), field 'keypoints'"):
        io.write_cvat(kp, tmp_path / "k.xml")
    ds = _ds(["x"])
    bad_attr = ds.replace(annotations=ds.annotations.with_columns(attributes={"n\x03": obj_array(["x"])}))
    with pytest.raises(FormatError, match=r"attribute 'n\\x03', field 'name'"):
        io.write_cvat(bad_attr, tmp_path / "n.xml")
    split = ds.replace(images=Images(path=["a.png"], width=[10], height=[10], split=["tr\x04ain"]))
    with pytest.raises(FormatError, match=r"images\[0\] \('a\.png'\), field 'split'"):
        io.write_cvat(split, tmp_path / "s.xml")
    assert not list(tmp_path.iterdir())


def test_kept_cvat_info_xml_cannot_hold_is_not_written(tmp_path: Path) -> None:
    """info["cvat"] text holding a control character is left out: the file stays readable."""
    ds = _ds(["x"]).replace(info={"cvat": {"task": {"name": "t\x00sk"}, "source": "v\x01.mp4"}})
    io.write_cvat(ds, tmp_path / "a.xml")
    back, _ = cvat.parse(tmp_path / "a.xml")
    assert back.info["cvat"]["task"]["name"] == "maslow export" and "source" not in back.info["cvat"]
