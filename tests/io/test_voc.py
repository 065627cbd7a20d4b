"""Pascal VOC XML: golden file, 1-based pixel convention, round trips, planted errors, bad input, real data."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from maslow import Annotations, ClassDef, Dataset, FormatError, Images, LabelSchema, MaslowWarning, io
from maslow.io import voc
from tests.conftest import shared_path
from tests.helpers import assert_datasets_equal

GOLDEN = Path(__file__).parents[1] / "data" / "voc"


def _xml(objects: str, *, filename: str = "a.png", size: str = "<width>10</width><height>8</height>") -> str:
    return f"<annotation><filename>{filename}</filename><size>{size}</size>{objects}</annotation>"


def _obj(name: str, box: tuple[object, object, object, object], extra: str = "") -> str:
    x1, y1, x2, y2 = box
    return (f"<object><name>{name}</name>{extra}<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
            f"<ymax>{y2}</ymax></bndbox></object>")


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    for name, text in files.items():
        (root / "Annotations" / name).write_text(text)
    (root / "JPEGImages").mkdir()
    Image.new("RGB", (10, 8)).save(root / "JPEGImages" / "a.png")
    return root


# -- golden file -------------------------------------------------------------------------------------
def test_golden_converts_one_based_pixels_and_keeps_difficult() -> None:
    ds, report = voc.parse(GOLDEN)
    assert len(report) == 0
    assert ds.root == GOLDEN / "JPEGImages"
    assert ds.images.path.tolist() == ["a.png", "b.png", "c.png"]
    assert ds.images.split.tolist() == ["train", "train", "val"]  # trainval and dog_train.txt ignored
    assert ds.schema.names == ("cat", "dog")
    assert ds.annotations.image.tolist() == [0, 0, 2]  # b.xml has no object: an empty image
    # xmin=1 -> x1=0 and xmax=width -> x2=width: boxes touching the border stay inside the image
    np.testing.assert_array_equal(ds.annotations.box, [[6, 3, 10, 9], [0, 0, 2, 12], [16, 3, 20, 7]])
    at = ds.annotations.attributes
    assert at["difficult"].tolist() == [False, True, None]
    assert at["truncated"].tolist() == [False, True, None]
    assert at["pose"].tolist() == ["Left", "Unspecified", None]
    assert at["occluded"].tolist() == [None, None, True]
    assert at["colour"].tolist() == [None, None, "brown"]
    types = {a.name: a.type for a in ds.schema.attributes}
    assert types == {"pose": "text", "truncated": "bool", "difficult": "bool", "occluded": "bool", "colour": "text"}


def test_golden_round_trip(tmp_path: Path) -> None:
    ds = voc.read_voc(GOLDEN)
    rep = voc.write(ds, tmp_path / "out")
    assert rep.lossless and rep.n_annotations == 3
    back = io.read(tmp_path / "out", "pascal-voc")
    assert_datasets_equal(ds, back, fields=("path", "size", "split", "label", "box"),
                          attributes=("difficult", "truncated", "pose", "occluded", "colour"))
    assert (tmp_path / "out/Annotations/a.xml").read_text().count("<xmin>1</xmin>") == 1
    assert (tmp_path / "out/ImageSets/Main/val.txt").read_text() == "c\n"


# -- round trips ---------------------------------------------------------------------------------------
def test_shapes_round_trip_and_lost_counts(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    ds = shapes_on_disk
    extra = ds.schema.with_classes([*ds.schema.classes, ClassDef("hexagon", color="#ff8000")])
    ds = ds.replace(schema=extra)
    rep = voc.write(ds, tmp_path / "out")
    back = voc.read_voc(tmp_path / "out")
    assert back.schema.names == ds.schema.names  # order and the unused class kept by labelmap.txt
    names = np.array([p.rsplit("/", 1)[-1] for p in ds.images.path], dtype=object)
    flat = ds.replace(images=Images(path=names, width=ds.images.width, height=ds.images.height, split=ds.images.split))
    assert_datasets_equal(flat, back, fields=("path", "size", "split", "label", "box"),
                          attributes=("colour", "occluded"))
    a = ds.annotations
    assert rep.lost["mask"] == len(a)
    assert rep.lost["polygon"] == sum(p is not None for p in a.polygon)
    assert rep.lost["iscrowd"] == int(a.iscrowd.sum())
    assert rep.lost["images.extra"] == 2 * ds.n_images
    assert "attributes" not in rep.lost
    assert "hexagon:255,128,0::" in (tmp_path / "out/labelmap.txt").read_text()


def test_write_without_images_and_integer_coordinates(tmp_path: Path) -> None:
    ds = Dataset(
        schema=LabelSchema.from_names(["a"]),
        images=Images(path=["sub/x.png"], width=[10], height=[8]),
        annotations=Annotations(image=[0, 0], label=[0, 0], box=[[0.4, 1, 5, 6], [np.nan] * 4],
                                attributes={"extra": [[1, 2], None]}),
        root=tmp_path,
    )
    rep = voc.write(ds, tmp_path / "out", images=False, integer_coordinates=True)
    assert rep.lost["box_precision"] == 1 and rep.lost["annotations"] == 1 and rep.lost["attributes"] == 1
    text = (tmp_path / "out/Annotations/x.xml").read_text()
    assert "<filename>sub/x.png</filename>" in text and "<xmin>1</xmin>" in text
    back, report = voc.parse(tmp_path / "out", images_root=tmp_path)
    assert len(report) == 0  # <filename> sub/x.png matches x.xml by stem
    np.testing.assert_array_equal(back.annotations.box, [[0, 1, 5, 6]])


@settings(max_examples=40, deadline=None)
@given(xmin=st.integers(1, 2000), ymin=st.integers(1, 2000), dw=st.integers(0, 500), dh=st.integers(0, 500))
def test_voc_pixel_convention_round_trip(xmin: int, ymin: int, dw: int, dh: int) -> None:
    xmax, ymax = xmin + dw, ymin + dh
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.xml"
        src.write_text(_xml(_obj("a", (xmin, ymin, xmax, ymax)), filename="in.png",
                            size="<width>3000</width><height>3000</height>"))
        ds, report = voc.parse(src)
        assert len(report) == 0
        np.testing.assert_array_equal(ds.annotations.box[0], [xmin - 1, ymin - 1, xmax, ymax])
        voc.write(ds, Path(tmp) / "out", images=False)
        text = (Path(tmp) / "out/Annotations/in.xml").read_text()
    for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), (xmin, ymin, xmax, ymax), strict=True):
        assert f"<{tag}>{v}</{tag}>" in text


@settings(max_examples=30, deadline=None)
@given(box=st.lists(st.floats(0, 5000, allow_subnormal=False), min_size=4, max_size=4))
def test_float_boxes_round_trip_exactly(box: list[float]) -> None:
    b = [min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])]
    ds = Dataset(schema=LabelSchema.from_names(["a"]), images=Images(path=["i.png"], width=[5000], height=[5000]),
                 annotations=Annotations(image=[0], label=[0], box=[b]))
    with tempfile.TemporaryDirectory() as tmp:
        voc.write(ds, Path(tmp) / "o", images=False)
        back, _ = voc.parse(Path(tmp) / "o")
    np.testing.assert_allclose(back.annotations.box[0], b, rtol=0, atol=1e-9)


# -- planted errors ------------------------------------------------------------------------------------
def test_parse_reports_planted_errors(tmp_path: Path) -> None:
    root = _folder(tmp_path, {
        "a.xml": _xml(_obj("cat", (0, 0, 4, 4)) + _obj("cat", (1, 5, 3, 6)) + _obj("cat", (4, 1, 2, 2))
                      + _obj("cat", (3, 1, 2, 2))
                      + _obj("cat", (1, "x", 3, 3)) + "<object><pose>Left</pose></object>"
                      + _obj("cat", (2, 2, 3, 3), "<part><name>head</name></part>"),
                      size="<width>0</width><height>0</height>"),
        "b.xml": _xml(_obj("ghost", (1, 1, 2, 2)), filename="other.png"),
    })
    (root / "ImageSets/Main").mkdir(parents=True)
    (root / "ImageSets/Main/train.txt").write_text("a\nb\nzzz\n")
    ds, report = voc.parse(root, classes=["cat"])
    by = {i.type: i for i in report}
    assert report.counts() == {"voc_zero_size": 1, "voc_inverted_box": 1, "voc_bad_value": 1, "voc_missing_name": 1,
                               "voc_zero_based": 1, "voc_filename_mismatch": 1, "voc_nested_tag": 1,
                               "voc_missing_xml": 1, "voc_unknown_class": 1}
    assert "read 10x8 from the image" in by["voc_zero_size"].message
    assert ds.images.width.tolist() == [10, 10] and ds.images.height.tolist() == [8, 8]
    assert "1 boxes" in by["voc_zero_based"].message and by["voc_zero_based"].file.endswith("a.xml")
    assert by["voc_bad_value"].field == "ymin" and by["voc_bad_value"].record == "object[4]"
    inverted = report.of_type("voc_inverted_box")
    assert [(i.record, i.severity, i.field) for i in inverted] == [("object[2]", "error", "xmax")]
    assert by["voc_unknown_class"].file.endswith("b.xml")
    assert by["voc_missing_xml"].record == "line 3"
    # kept: the 0-based box, the fine one, the inverted one (swapped), the empty one (xmax = xmin - 1), the one
    # with a bad value (without a box) and the one with a <part>; only the object without a name can't be kept
    assert ds.annotations.image.tolist() == [0, 0, 0, 0, 0, 0]
    assert ds.annotations.box[:4].tolist() == [[-1, -1, 4, 4], [0, 4, 3, 6], [1, 0, 4, 2], [2, 0, 2, 2]]
    assert np.isnan(ds.annotations.box[4]).all()


def test_missing_bndbox_is_a_boxless_annotation(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a.xml": _xml("<object><name>cat</name><difficult>1</difficult></object>")})
    ds, report = voc.parse(root)
    assert report.counts() == {"voc_missing_bndbox": 1}
    assert np.isnan(ds.annotations.box).all() and ds.annotations.attributes["difficult"][0] is True


def test_cvat_attributes_and_strict(tmp_path: Path) -> None:
    attrs = "<attributes><attribute><name>colour</name><value>red</value></attribute></attributes>"
    root = _folder(tmp_path, {"a.xml": _xml(_obj("cat", (1, 1, 2, 2), attrs))})
    ds = voc.read_voc(root)
    assert ds.annotations.attributes["colour"].tolist() == ["red"]
    bad = _folder(tmp_path / "z", {"a.xml": _xml(_obj("cat", (0, 1, 2, 2)))})
    with pytest.raises(FormatError, match=r"0-based.*strict mode"):
        voc.parse(bad, strict=True)
    with pytest.warns(MaslowWarning, match="voc_zero_based"):
        voc.read_voc(bad)


# -- CVAT's VOC export: 0-based corners -----------------------------------------------------------------
# datumaro's VocExporter (CVAT "PASCAL VOC 1.1") writes xmin = x, xmax = x + w from CVAT's 0-based continuous box
# (_write_xml_bbox in plugins/data_formats/voc/exporter.py) and its reader reads them back unchanged (_parse_bbox).
CVAT_BOX = (0.0, 3.0, 12.0, 13.5)  # xtl, ytl, xbr, ybr as CVAT holds them: the box touches the left border


def _datumaro_voc(tmp_path: Path) -> Path:
    x1, y1, x2, y2 = CVAT_BOX
    root = _folder(tmp_path, {"a.xml": (
        "<annotation><folder></folder><filename>a.png</filename><source><database>Unknown</database>"
        "<annotation>Unknown</annotation><image>Unknown</image></source><size><width>40</width><height>30</height>"
        "<depth></depth></size><segmented>0</segmented><object><name>cat</name><truncated>0</truncated>"
        f"<occluded>0</occluded><difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object></annotation>")})
    (root / "ImageSets/Main").mkdir(parents=True)
    (root / "ImageSets/Main/default.txt").write_text("a\n")
    return root


def test_cvat_voc_export_reads_on_cvats_pixels_with_origin_0(tmp_path: Path) -> None:
    """Read as 1-based VOC, a box drawn in CVAT came back one pixel left/up (x1 = -1 here, past the border)."""
    root = _datumaro_voc(tmp_path)
    ds, report = voc.parse(root, origin=0)
    assert len(report) == 0
    np.testing.assert_array_equal(ds.annotations.box, [CVAT_BOX])
    as_voc, report = voc.parse(root)  # the default stays VOC's 1-based convention, and says why it looks wrong
    np.testing.assert_array_equal(as_voc.annotations.box, [[-1.0, 2.0, 12.0, 13.5]])
    assert report.counts() == {"voc_zero_based": 1} and "origin=0" in report.issues[0].message


def test_origin_0_from_the_cli_and_in_writing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from maslow.cli.main import app

    root = _datumaro_voc(tmp_path)
    res = CliRunner().invoke(app, ["convert", str(root), str(tmp_path / "a.json"), "--from", "voc", "--to", "coco",
                                   "--read-option", "origin=0", "--json"])
    assert res.exit_code == 0, res.output
    back = io.read_coco(tmp_path / "a.json", images_root=root / "JPEGImages")
    np.testing.assert_array_equal(back.annotations.box, [CVAT_BOX])
    ds, _ = voc.parse(root, origin=0)
    voc.write(ds, tmp_path / "out", images=False, origin=0)  # for CVAT: its corners as they are
    assert "<xmin>0</xmin>" in (tmp_path / "out/Annotations/a.xml").read_text()
    again, report = voc.parse(tmp_path / "out", images_root=ds.root, origin=0)
    assert len(report) == 0 and again.annotations.box.tolist() == [list(CVAT_BOX)]


def test_origin_0_empty_and_inverted_boxes(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a.xml": _xml(_obj("cat", (2, 2, 2, 5)) + _obj("cat", (4, 1, 3, 2)))})
    ds, report = voc.parse(root, origin=0)
    assert ds.annotations.box.tolist() == [[2, 2, 2, 5], [3, 1, 4, 2]]  # xmax = xmin: empty; xmax < xmin: swapped
    (issue,) = report.of_type("voc_inverted_box")
    assert issue.field == "xmax" and "xmax >= xmin," in issue.message


@pytest.mark.parametrize("origin", [2, -1, True, "0"])
def test_origin_must_be_0_or_1(tmp_path: Path, origin: object) -> None:
    with pytest.raises(FormatError, match="origin must be 0"):
        voc.parse(_datumaro_voc(tmp_path), origin=origin)  # type: ignore[arg-type]


# -- bad input -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "match"), [
    pytest.param("<annotation><filename>a.png</filename>", r"a\.xml: malformed XML at line 1", id="truncated"),
    pytest.param("<root/>", "root element must be <annotation>, got <root>", id="wrong-root"),
    pytest.param('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><annotation>&x;</annotation>',
                 "refused unsafe XML", id="entities"),
    pytest.param(_xml("", filename="../../etc/passwd"), "field 'filename': image path must stay inside",
                 id="path-traversal"),
])
def test_bad_xml(tmp_path: Path, text: str, match: str) -> None:
    root = _folder(tmp_path, {"a.xml": text})
    with pytest.raises(FormatError, match=match):
        voc.parse(root)


def test_a_junk_labelmap_line_raises_naming_the_line(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a.xml": _xml(_obj("cat", (1, 1, 2, 2)))})
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\ncat:1,2,3::\nthis is not a label\n")
    with pytest.raises(FormatError, match=r"labelmap\.txt, line 3: line must be 'label:color_rgb:parts:actions', "
                                          r"got 'this is not a label'"):
        voc.parse(root)  # used to become a class "this is not a label"


def test_a_negative_size_is_reported_with_its_value(tmp_path: Path) -> None:
    root = _folder(tmp_path, {"a.xml": _xml(_obj("cat", (1, 1, 2, 2)), size="<width>-160</width><height>8</height>")})
    ds, report = voc.parse(root)
    (issue,) = report.of_type("voc_zero_size")
    assert "<size><width> must be > 0, got -160 (negative)" in issue.message and issue.field == "width"
    assert "missing" not in issue.message and ds.images.width.tolist() == [10]  # read from the image


def test_no_xml_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"\.xml annotation files"):
        voc.parse(tmp_path)
    with pytest.raises(FormatError, match="not found"):
        voc.parse(tmp_path / "nope")


# -- real data -----------------------------------------------------------------------------------------
def test_bccd_exact_counts() -> None:
    base = shared_path("bccd")
    ds, report = voc.parse(base / "annotations")
    assert len(report) == 0
    assert ds.root == base / "images"
    assert (ds.n_images, ds.n_annotations) == (364, 4888)
    counts = dict(zip(ds.schema.names, np.bincount(ds.annotations.label).tolist(), strict=True))
    assert counts == {"Platelets": 361, "RBC": 4155, "WBC": 372}
    splits = ds.images.split.tolist()
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (205, 87, 72)
    assert sum(v is True for v in ds.annotations.attributes["truncated"]) > 0
    assert io.check_images(ds).counts() == {}


@pytest.mark.parametrize("fmt", ["pascalvoc_format", "imagenet_format"])
def test_od_metrics_fixture(fmt: str) -> None:
    base = shared_path("od_metrics_fixture")
    ds, report = voc.parse(base / "annotations/gts" / fmt, images_root=base / "images")
    assert len(report) == 0
    assert (ds.n_images, ds.n_annotations, len(ds.schema.names)) == (100, 273, 20)
    assert io.check_images(ds).counts() == {}
    if fmt == "imagenet_format":  # CVAT export: labelmap.txt gives the order; ImageSets/Main/default.txt lists
        assert ds.schema.names[:2] == ("person", "cat")  # the images without a subset (datumaro's default)
        assert set(ds.images.split.tolist()) == {""}


def test_both_fixture_formats_agree() -> None:
    gts = shared_path("od_metrics_fixture", "annotations", "gts")
    a, _ = voc.parse(gts / "pascalvoc_format")
    b, _ = voc.parse(gts / "imagenet_format")
    assert_datasets_equal(a, b, fields=("path", "size"))

    def objects(d: Dataset) -> dict[str, list[tuple[str, list[float]]]]:  # objects come in another order
        s, x = d.image_slices(), d.annotations
        return {p: sorted((d.schema.names[x.label[r]], x.box[r].tolist()) for r in range(s[i], s[i + 1]))
                for i, p in enumerate(d.images.path)}

    assert objects(a) == objects(b)


def _odd_names_dataset(tmp_path: Path) -> Dataset:
    for name in ("img 1.png", "b.png"):
        Image.new("L", (20, 10)).save(tmp_path / name)
    schema = LabelSchema(classes=(ClassDef("x:y"), ClassDef("#hash"), ClassDef("pad "), ClassDef("ok")))
    ann = Annotations(image=[0, 0, 1, 1], label=[0, 3, 1, 2], box=[[1, 1, 5, 5]] * 4,
                      attributes={"note": [" padded ", "a\x01b", "fine", None]})
    images = Images(path=["img 1.png", "b.png"], width=[20, 20], height=[10, 10], split=["val", "train"])
    return Dataset(schema=schema, images=images, annotations=ann, root=tmp_path)


def test_ids_with_spaces_and_class_names_with_colons_round_trip(tmp_path: Path) -> None:
    """ImageSets lines 'img 1' were read as id 'img' (split lost); labelmap line 'x:y:::' raised FormatError."""
    ds = _odd_names_dataset(tmp_path)
    io.write_voc(ds, tmp_path / "out")
    back, _ = voc.parse(tmp_path / "out")
    assert back.images.path.tolist() == ["b.png", "img 1.png"]
    assert back.images.split.tolist() == ["train", "val"]
    assert back.schema.names == ("x:y", "hash", "pad", "ok")  # '#hash' is written 'hash': counted lost (below)
    assert [back.schema.names[k] for k in back.annotations.label] == ["hash", "pad", "x:y", "ok"]


def test_what_labelmap_and_xml_text_cannot_hold_is_counted(tmp_path: Path) -> None:
    """A leading '#' (a labelmap comment), surrounding spaces (stripped on reading) and control characters
    (malformed XML) were lost silently or made the written file unreadable."""
    rep = io.write_voc(_odd_names_dataset(tmp_path), tmp_path / "out")
    assert rep.lost["class_names"] == 2  # '#hash', 'pad '
    assert rep.lost["attributes"] == 2  # ' padded ', 'a\x01b' (not written)
    back, _ = voc.parse(tmp_path / "out")  # readable
    assert back.annotations.attributes["note"].tolist() == ["fine", None, "padded", None]  # b.png, then img 1.png
