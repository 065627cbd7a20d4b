"""Shared io plumbing: safe_relpath, atomic writes, load_json, Collector, ExportReport, Report."""

from __future__ import annotations

import json
import os
import stat
from collections import Counter
from pathlib import Path

import pytest

from maslow import io
from maslow.core import Issue, Report
from maslow.core.atomic import atomic_dir, atomic_path
from maslow.errors import FormatError
from maslow.io._common import Collector, ExportReport, dump_json, load_json, safe_relpath

# -- safe_relpath -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("a.jpg", "a.jpg", id="plain"),
        pytest.param("a/./b/../c.jpg", "a/c.jpg", id="dots"),
        pytest.param("./images//x.png", "images/x.png", id="leading-dot-double-slash"),
        pytest.param("images\\train\\x.png", "images/train/x.png", id="windows-separators"),
        pytest.param("  spaced.jpg \n", "spaced.jpg", id="surrounding-whitespace"),
        pytest.param("a/b/../../c.jpg", "c.jpg", id="back-to-root"),
    ],
)
def test_safe_relpath_normalises(name: str, expected: str, tmp_path: Path) -> None:
    assert safe_relpath(name, root=tmp_path) == expected
    assert safe_relpath(name, root=None) == expected


@pytest.mark.parametrize(
    ("name", "match"),
    [
        pytest.param("../../etc/passwd", r"must stay inside the dataset root, got '\.\./\.\./etc/passwd'", id="dotdot"),
        pytest.param("a/../../x.jpg", "must stay inside the dataset root", id="dotdot-after-part"),
        pytest.param("..\\..\\windows\\win.ini", "must stay inside the dataset root", id="windows-dotdot"),
        pytest.param("/etc/passwd", r"must be relative to the dataset root, got absolute '/etc/passwd'", id="absolute"),
        pytest.param("C:\\x", r"got absolute 'C:\\\\x'", id="drive"),
        pytest.param("C:/images/x.jpg", "got absolute", id="drive-forward"),
        pytest.param("c:x.jpg", "got absolute", id="drive-relative"),
        pytest.param("\\\\server\\share\\x.jpg", "got absolute", id="unc"),
        pytest.param("a\x00b.jpg", "must not contain NUL bytes", id="nul"),
        pytest.param("", "must be non-empty", id="empty"),
        pytest.param("   ", "must be non-empty", id="blank"),
        pytest.param(".", "must name a file", id="dot"),
        pytest.param("a/..", "must name a file", id="nothing-left"),
    ],
)
def test_safe_relpath_refuses_escapes(name: str, match: str, tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=match):
        safe_relpath(name, root=tmp_path, file="ann.json", record="images[3]", field="file_name")


def test_safe_relpath_error_names_file_record_and_field(tmp_path: Path) -> None:
    with pytest.raises(FormatError) as info:
        safe_relpath("../x", root=tmp_path, file="ann.json", record="images[3]", field="file_name")
    assert str(info.value).startswith("ann.json, images[3], field 'file_name': ")
    assert (info.value.path, info.value.record, info.value.field) == ("ann.json", "images[3]", "file_name")


def test_drive_paths_are_refused_even_when_the_root_is_the_working_directory(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # on POSIX "C:/x" is a relative path: resolving it must not smuggle it inside a root above the cwd
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FormatError, match="got absolute"):
        safe_relpath("C:\\x", root=Path("."))
    with pytest.raises(FormatError, match="got absolute"):
        safe_relpath("D:/data/x.png", root=tmp_path.parent)


def test_absolute_paths_inside_the_root_become_relative(tmp_path: Path) -> None:
    root = tmp_path / "data"
    assert safe_relpath(str(root / "img" / "a.jpg"), root=root) == "img/a.jpg"
    assert safe_relpath(str(root / "img" / ".." / "b.jpg"), root=root) == "b.jpg"
    with pytest.raises(FormatError, match="got absolute"):
        safe_relpath(str(root / ".." / "other.jpg"), root=root)
    with pytest.raises(FormatError, match="got absolute"):
        safe_relpath(str(tmp_path / "database.jpg"), root=root)  # a sibling with a common prefix
    with pytest.raises(FormatError, match="got absolute"):
        safe_relpath(str(root), root=root)  # the root itself is not a file
    with pytest.raises(FormatError, match="got absolute"):
        safe_relpath(str(root / "a.jpg"), root=None)


# -- atomic writes ----------------------------------------------------------------------------------


def umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_atomic_path_replaces_on_success_with_normal_permissions(tmp_path: Path) -> None:
    dst = tmp_path / "sub" / "out.json"
    with atomic_path(dst) as tmp:
        assert tmp.parent == dst.parent and tmp != dst and tmp.exists()
        tmp.write_text("one")
        assert not dst.exists()  # nothing visible before success
    assert dst.read_text() == "one"
    with atomic_path(dst) as tmp:
        tmp.write_text("two")
    assert dst.read_text() == "two"
    assert os.listdir(dst.parent) == ["out.json"]
    assert stat.S_IMODE(dst.stat().st_mode) == 0o666 & ~umask()


def test_atomic_path_keeps_the_previous_file_on_error(tmp_path: Path) -> None:
    dst = tmp_path / "out.txt"
    dst.write_text("previous")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(dst) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert dst.read_text() == "previous"
    assert os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("x")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_dir_replaces_the_whole_folder_on_success(tmp_path: Path) -> None:
    dst = tmp_path / "export"
    with atomic_dir(dst) as tmp:
        (tmp / "labels").mkdir()
        (tmp / "labels" / "a.txt").write_text("1")
        assert not dst.exists()
    assert (dst / "labels" / "a.txt").read_text() == "1"
    assert stat.S_IMODE(dst.stat().st_mode) == 0o777 & ~umask()
    with atomic_dir(dst) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in dst.iterdir()) == ["b.txt"]  # old contents removed
    assert os.listdir(tmp_path) == ["export"]


def test_atomic_dir_keeps_the_previous_folder_on_error(tmp_path: Path) -> None:
    dst = tmp_path / "export"
    dst.mkdir()
    (dst / "keep.txt").write_text("old")
    with pytest.raises(ValueError, match="half way"), atomic_dir(dst) as tmp:
        (tmp / "new.txt").write_text("new")
        raise ValueError("half way")
    assert sorted(p.name for p in dst.iterdir()) == ["keep.txt"]
    assert (dst / "keep.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["export"]


def test_atomic_dir_survives_leftovers_of_a_crashed_run(tmp_path: Path) -> None:
    dst = tmp_path / "export"
    dst.mkdir()
    stale = tmp_path / f".export.old-{os.getpid()}"  # the name an earlier version used for the old folder
    stale.mkdir()
    (stale / "junk").write_text("j")
    with atomic_dir(dst) as tmp:
        (tmp / "a").write_text("a")
    assert [p.name for p in dst.iterdir()] == ["a"]


def test_atomic_dir_over_a_file(tmp_path: Path) -> None:
    dst = tmp_path / "export"
    dst.write_text("a file")
    with atomic_dir(dst) as tmp:
        (tmp / "a").write_text("a")
    assert dst.is_dir() and os.listdir(tmp_path) == ["export"]


def test_dump_json_then_load_json(tmp_path: Path) -> None:
    obj = {"a": [1, 2.5, None], "é": "ü"}
    dump_json(obj, tmp_path / "x.json")
    assert load_json(tmp_path / "x.json") == obj
    dump_json(obj, tmp_path / "y.json", indent=2)
    assert (tmp_path / "y.json").read_text(encoding="utf-8").startswith("{\n  ")
    assert load_json(str(tmp_path / "y.json")) == obj


# -- load_json --------------------------------------------------------------------------------------


def test_load_json_names_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{\n  "images": [\n    {"id": 1,}\n  ]\n}\n')
    with pytest.raises(FormatError, match=r"bad\.json: malformed JSON at line 3 column 14"):
        load_json(p)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        pytest.param(b"", "malformed JSON at line 1 column 1", id="empty"),
        pytest.param(b'{"a": 1', "malformed JSON at line 1", id="truncated"),
        pytest.param(b'\xff\xfe\x00\x00garbage', "must be UTF-8 text|malformed JSON", id="binary"),
        pytest.param(b"[" * 200_000, "nested too deeply", id="deep-nesting"),
    ],
)
def test_load_json_refuses_malformed_files(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "x.json"
    p.write_bytes(content)
    with pytest.raises(FormatError, match=match):
        load_json(p)


def test_load_json_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"nope\.json: file not found"):
        load_json(tmp_path / "nope.json")
    with pytest.raises(FormatError, match="must be a file, got a directory"):
        load_json(tmp_path)


# -- Collector --------------------------------------------------------------------------------------


def test_collector_collects_in_order() -> None:
    c = Collector()
    c.add("dup_id", "id 3 repeats", file=Path("a.json"), record="images[2]", field="id", image=2)
    c.add("note", "fyi", severity="info")
    c.add("bad_box", "x", severity="error", annotation=7)
    rep = c.report()
    assert [i.type for i in rep] == ["dup_id", "note", "bad_box"]
    assert rep.issues[0].file == "a.json" and rep.issues[0].severity == "warning"
    assert rep.issues[2].annotation == 7 and rep.n_errors == 1


@pytest.mark.parametrize("severity", ["warning", "error"])
def test_collector_strict_raises_at_the_first_warning_or_error(severity: str) -> None:
    c = Collector(strict=True)
    c.add("note", "only information", severity="info")  # info never raises
    with pytest.raises(FormatError, match=r"a\.json, images\[2\], field 'id': id 3 repeats \[dup_id; strict mode\]"):
        c.add("dup_id", "id 3 repeats", severity=severity, file="a.json", record="images[2]", field="id")
    assert [i.type for i in c.report()] == ["note"]


def test_collector_refuses_unknown_severity() -> None:
    with pytest.raises(ValueError, match="severity must be one of"):
        Collector().add("x", "y", severity="fatal")


# -- ExportReport -----------------------------------------------------------------------------------


def test_export_report_lossless_and_to_dict() -> None:
    r = ExportReport(path="out", format="yolo", n_images=3, n_annotations=10)
    assert r.lossless
    r.lost["mask"] += 0
    assert r.lossless  # zero counts are not losses
    r.lost["attributes"] += 4
    r.notes.append("masks written as polygons")
    assert not r.lossless
    d = r.to_dict()
    assert d == {"path": "out", "format": "yolo", "n_images": 3, "n_annotations": 10, "lossless": False,
                 "lost": {"mask": 0, "attributes": 4}, "notes": ["masks written as polygons"]}
    assert json.loads(json.dumps(d)) == d
    assert ExportReport("a", "b").lost == Counter() and ExportReport("a", "b").lost is not ExportReport("a", "b").lost


# -- Report -----------------------------------------------------------------------------------------


def test_report_counts_of_type_and_dict_round_trip() -> None:
    issues = [
        Issue("missing_image", "error", "gone", file="a.jpg", record="images[0]", field="path", image=0),
        Issue("degenerate_box", "warning", "flat", annotation=4, image=1),
        Issue("missing_image", "error", "gone too", image=2),
        Issue("unknown_size", "info", "?"),
    ]
    rep = Report.of(issues)
    assert len(rep) == 4 and list(rep) == issues
    assert rep.counts() == {"missing_image": 2, "degenerate_box": 1, "unknown_size": 1}
    assert list(rep.counts()) == ["missing_image", "degenerate_box", "unknown_size"]  # most frequent first
    assert rep.of_type("missing_image") == [issues[0], issues[2]] and rep.of_type("other") == []
    assert rep.n_errors == 2
    d = rep.to_dict()
    assert d["n_issues"] == 4 and d["n_errors"] == 2 and d["counts"]["missing_image"] == 2
    back = Report.from_dict(json.loads(json.dumps(d)))
    assert back == rep
    assert (rep + Report()).issues == rep.issues and len(Report() + rep + rep) == 8
    assert issues[0].where() == "a.jpg, images[0], field 'path'" and issues[3].where() == ""
    assert Report.from_dict({}) == Report()


def test_issue_refuses_unknown_severity_and_is_frozen() -> None:
    with pytest.raises(ValueError, match="issue severity must be one of"):
        Issue("x", "critical", "m")
    i = Issue("x", "info", "m")
    with pytest.raises(AttributeError):
        i.type = "y"  # type: ignore[misc]


# -- errors -----------------------------------------------------------------------------------------


def test_format_error_names_the_place_and_keeps_its_parts() -> None:
    e = FormatError("bbox must have 4 numbers, got 3", path=Path("a/ann.json"), record="annotations[12] (id=45)",
                    field="bbox")
    assert str(e) == "a/ann.json, annotations[12] (id=45), field 'bbox': bbox must have 4 numbers, got 3"
    assert (e.path, e.record, e.field) == ("a/ann.json", "annotations[12] (id=45)", "bbox")
    assert str(FormatError("plain")) == "plain" and FormatError("x").path is None
    assert str(FormatError("m", record="line 4")) == "line 4: m"


def test_error_tree() -> None:
    from maslow import errors as E

    assert issubclass(E.FormatError, E.MaslowError) and issubclass(E.FormatError, ValueError)
    assert issubclass(E.InvalidDatasetError, ValueError) and issubclass(E.UnknownLabelError, KeyError)
    assert issubclass(E.MigrationError, E.SchemaError) and issubclass(E.ModelError, RuntimeError)
    assert issubclass(E.MissingDependencyError, ImportError) and issubclass(E.MaslowWarning, UserWarning)
    with pytest.raises(E.MissingDependencyError, match=r"no_such_module_xyz is not installed: pip install 'maslow\[torch\]'"):
        E.require("no_such_module_xyz", "torch")
    E.require("json", "torch")  # present: no error


def test_a_file_of_the_other_kind_of_text_gets_a_hint(tmp_path: Path) -> None:
    """A COCO file read with --from voc said only "malformed XML at line 1 column 0"."""
    coco_file, xml_file, broken = tmp_path / "a.json", tmp_path / "a.xml", tmp_path / "b.json"
    coco_file.write_text('\ufeff  {"images": [], "annotations": [], "categories": []}', encoding="utf-8")
    xml_file.write_text("<annotations><version>1.1</version></annotations>", encoding="utf-8")
    broken.write_text('{"images": [', encoding="utf-8")
    for src, fmt, hint in ((coco_file, "voc", "starts like JSON"), (coco_file, "cvat", "starts like JSON"),
                           (xml_file, "coco", "starts like XML"), (xml_file, "labelstudio", "starts like XML")):
        with pytest.raises(FormatError, match=hint):
            io.read(src, fmt)
    with pytest.raises(FormatError, match="malformed JSON") as e:
        io.read(broken, "coco")
    assert "starts like" not in str(e.value)
