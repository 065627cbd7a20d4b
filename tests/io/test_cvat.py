"""CVAT for images 1.1 XML: golden file, round trips, bad input, planted findings, real data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maslow import io
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError, MaslowWarning
from maslow.io import cvat
from tests.conftest import shared_path
from tests.helpers import assert_datasets_equal

GOLDEN = Path(__file__).parents[1] / "data" / "cvat" / "annotations.xml"

HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><labels>
<label><name>car</name><attributes><attribute><name>colour</name><input_type>select</input_type>
<values>red
blue</values></attribute></attributes></label>
</labels></task></meta>
"""


def _xml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "annotations.xml"
    p.write_text(HEAD + body + "\n</annotations>\n", encoding="utf-8")
    return p


# -- golden file -----------------------------------------------------------------------------------------------
def test_golden_reads_every_shape() -> None:
    ds, report = cvat.parse(GOLDEN)
    assert len(report) == 0, report.to_dict()
    assert ds.schema.names == ("car", "person", "lane", "daytime")
    assert ds.images.path.tolist() == ["img0.jpg", "img1.jpg", "sub/img2.png"]
    assert ds.images.split.tolist() == ["train", "train", "val"]
    assert ds.images.extra["cvat_id"].tolist() == [0, 1, 2]
    assert ds.images.width.tolist() == [100, 64, 20]
    a = ds.annotations
    # image 0: 2 boxes + polygon; image 1 empty; image 2: polyline, box+points (merged by group), mask, tag
    assert a.image.tolist() == [0, 0, 0, 2, 2, 2, 2]
    assert [ds.schema.names[k] for k in a.label] == ["car", "person", "car", "lane", "person", "car", "daytime"]
    np.testing.assert_allclose(a.box[0], [0, 10, 40, 80])  # touches the left and bottom border
    np.testing.assert_allclose(a.box[1], [50.5, 20.25, 60, 70])
    np.testing.assert_allclose(a.box[2], [60, 10, 90, 30])  # polygons also get their bounding box
    assert a.polygon[2][0].tolist() == [60, 10, 90, 10, 90, 30, 60, 30]
    assert a.extra["cvat_shape"][3] == "polyline"
    assert a.keypoints.shape == (7, 3, 3)
    np.testing.assert_allclose(a.keypoints[4], [[5, 2, 2], [3, 8, 2], [7, 8, 2]])
    assert np.isnan(a.keypoints[0]).all()
    assert M.area([a.mask[5]])[0] == 5
    np.testing.assert_allclose(a.box[5], [12, 4, 15, 6])
    assert np.isnan(a.box[6]).all()
    assert a.source.tolist() == ["human", "model", "human", "human", "human", "human", "human"]
    assert a.extra["cvat_source"][2] == "semi-auto"
    assert a.attributes["occluded"].tolist() == [False, True, False, False, False, False, None]
    assert a.attributes["colour"].tolist() == ["red", None, "blue", None, None, "red", None]
    assert a.attributes["parked"].tolist()[:3] == [True, None, False]
    assert a.attributes["age"][1] == 42.0
    assert a.attributes["note"][6] == "sunny"
    assert a.extra["cvat_z_order"][1] == 1
    specs = {x.name: x for x in ds.schema.attributes}
    assert specs["colour"].type == "enum" and specs["colour"].values == ("red", "blue")
    assert specs["colour"].classes == ("car",)
    assert specs["parked"].type == "bool" and specs["age"].type == "number"
    assert specs["age"].values == ("0", "120", "1") and specs["note"].type == "text"
    assert ds.schema.classes[2].label_types == ("polygon",) and ds.schema.classes[0].color == "#ff0000"


def test_golden_round_trip(tmp_path: Path) -> None:
    ds, _ = cvat.parse(GOLDEN)
    report = cvat.write(ds, tmp_path / "out.xml")
    assert report.lossless, report.lost
    back, rep = cvat.parse(tmp_path / "out.xml")
    assert len(rep) == 0
    assert_datasets_equal(ds, back, fields=("path", "size", "split", "label", "box", "polygon", "keypoints", "mask"),
                          attributes=("colour", "parked", "age", "note", "occluded"))
    assert back.annotations.extra["cvat_shape"].tolist() == ds.annotations.extra["cvat_shape"].tolist()
    assert back.annotations.source.tolist() == ds.annotations.source.tolist()
    assert back.schema.attributes == ds.schema.attributes
    assert [c.label_types for c in back.schema.classes] == [c.label_types for c in ds.schema.classes]


def test_shapes_round_trip(shapes_ds: Dataset, tmp_path: Path) -> None:
    report = cvat.write(shapes_ds, tmp_path / "a.xml")
    # CVAT has no crowd flag, class ids, supercategories or keypoint names; sequence/frame columns are not CVAT's
    assert report.lost["iscrowd"] == int(shapes_ds.annotations.iscrowd.sum()) > 0
    assert report.lost["class_id"] == 3 and report.lost["class_keypoints"] == 1
    assert "mask" not in report.lost  # the masks are the rasterised polygons
    back = io.read_cvat(tmp_path / "a.xml")
    assert_datasets_equal(shapes_ds, back, fields=("path", "size", "split", "label", "box", "polygon"),
                          attributes=("colour",))
    tri = shapes_ds.annotations.label == 2
    np.testing.assert_allclose(back.annotations.keypoints[tri], shapes_ds.annotations.keypoints[tri])
    crowd = shapes_ds.annotations.iscrowd
    for m0, m1 in zip(shapes_ds.annotations.mask[crowd], back.annotations.mask[crowd], strict=True):
        assert np.array_equal(M.decode(m0), M.decode(m1))
    occ = [bool(x) for x in shapes_ds.annotations.attributes["occluded"]]  # None is written as occluded="0"
    assert back.annotations.attributes["occluded"].tolist() == occ


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.booleans(), min_size=7, max_size=7), min_size=5, max_size=5))
def test_mask_rle_round_trip(tmp_path: Path, bits: list[list[bool]]) -> None:
    binary = np.asarray(bits, bool)
    ds = Dataset(
        schema=LabelSchema.from_names(["blob"]),
        images=Images(path=obj_array(["a.png"]), width=np.array([7]), height=np.array([5])),
        annotations=Annotations(image=np.array([0]), label=np.array([0]), mask=obj_array([M.encode(binary)])),
    )
    cvat.write(ds, tmp_path / "m.xml")
    back, _ = cvat.parse(tmp_path / "m.xml")
    assert np.array_equal(M.decode(back.annotations.mask[0]), binary)


def test_write_counts_what_cvat_cannot_hold(tmp_path: Path) -> None:
    kp = np.array([[[1, 1, 2], [2, 2, 1]], [[np.nan] * 3] * 2])
    ds = Dataset(
        schema=LabelSchema.from_names(["a"]),
        images=Images(path=obj_array(["x.png"]), width=np.array([10]), height=np.array([10]),
                      extra={"camera": obj_array(["c1"])}),
        annotations=Annotations(image=np.array([0, 0]), label=np.array([0, 0]), box=np.array([[0, 0, 5, 5]] * 2),
                                score=np.array([0.9, np.nan]), iscrowd=np.array([True, False]), keypoints=kp,
                                annotator=obj_array(["ann1", None]), extra={"coco_id": np.array([4, 5])}),
    )
    lost = cvat.write(ds, tmp_path / "x.xml").lost
    assert lost == {"score": 1, "iscrowd": 1, "annotator": 1, "keypoint_visibility": 1, "images.extra.camera": 1,
                    "extra.coco_id": 2}
    back, _ = cvat.parse(tmp_path / "x.xml")
    assert back.n_annotations == 2  # the keypoints came back onto their box through the group id
    np.testing.assert_allclose(back.annotations.keypoints[0, :, :2], [[1, 1], [2, 2]])


def test_unlabelled_trailing_keypoints_round_trip(tmp_path: Path) -> None:
    kp = np.array([[[1, 1, 2], [0, 0, 0], [3, 3, 2], [0, 0, 0]]], np.float64)
    ds = Dataset(
        schema=LabelSchema.from_names(["a"]),
        images=Images(path=obj_array(["x.png"]), width=np.array([10]), height=np.array([10])),
        annotations=Annotations(image=np.array([0]), label=np.array([0]), keypoints=kp),
    )
    lost = cvat.write(ds, tmp_path / "k.xml").lost
    assert lost == {"keypoint_visibility": 1}  # the interior v=0 point is written as a point
    back, _ = cvat.parse(tmp_path / "k.xml")
    np.testing.assert_allclose(back.annotations.keypoints[0], [[1, 1, 2], [0, 0, 2], [3, 3, 2]])


# -- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "match"),
    [
        pytest.param('<image id="3" name="a.jpg" width="10" height="10"><box label="car" xtl="1" ytl="x" xbr="2" '
                     'ybr="3"/></image>', r"image id=3 name='a.jpg'.*field 'ytl'.*got 'x'", id="non-numeric"),
        pytest.param('<image id="3" name="a.jpg" width="10" height="10"><box label="car" xtl="1" ytl="1" xbr="2"/>'
                     "</image>", r"field 'ybr'.*must have attribute", id="missing-coordinate"),
        pytest.param('<image id="3" name="a.jpg" width="10" height="10"><polygon label="car" points="1,2;3"/>'
                     "</image>", r"image id=3.*field 'points'", id="bad-points"),
        pytest.param('<image id="3" name="../../etc/passwd" width="1" height="1"/>', "inside the dataset root",
                     id="path-traversal"),
        pytest.param('<image id="x" name="a.jpg" width="1" height="1"/>', r"field 'id'.*integer", id="bad-id"),
        pytest.param('<image id="3" name="a.jpg" width="1" height="1"><mask label="car" rle="1,a" left="0" '
                     'top="0" width="1" height="1"/></image>', r"field 'rle'", id="bad-rle"),
        pytest.param('<image id="3" name="a.jpg" width="-5" height="1"/>',
                     r"image id=3 name='a.jpg', field 'width': <image> width must be an integer >= 0, got '-5'",
                     id="negative-width"),
        pytest.param('<image id="3" name="a.jpg" width="4" height="2.5"/>', r"field 'height'.*got '2.5'",
                     id="fractional-height"),
    ],
)
def test_malformed_records_raise(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        cvat.parse(_xml(tmp_path, body))


def test_malformed_files_raise(tmp_path: Path) -> None:
    p = tmp_path / "t.xml"
    p.write_text(GOLDEN.read_text()[:900], encoding="utf-8")
    with pytest.raises(FormatError, match="malformed XML at line"):
        cvat.parse(p)
    p.write_text("<root/>", encoding="utf-8")
    with pytest.raises(FormatError, match="must be <annotations>"):
        cvat.parse(p)
    p.write_text('<!DOCTYPE x [<!ENTITY e "boom">]><annotations>&e;</annotations>', encoding="utf-8")
    with pytest.raises(FormatError, match="refused XML"):
        cvat.parse(p)
    with pytest.raises(FormatError, match="not found"):
        cvat.parse(tmp_path / "absent.xml")


# -- planted findings ------------------------------------------------------------------------------------------
def test_planted_findings_are_reported(tmp_path: Path) -> None:
    body = """
<image id="0" name="a.jpg" width="50" height="50">
  <box label="truck" xtl="1" ytl="1" xbr="5" ybr="5"/>
  <box label="car" xtl="9" ytl="1" xbr="5" ybr="5" rotation="30"><attribute name="colour">green</attribute></box>
  <polygon label="car" points="1,1;4,4"/>
  <circle label="car" cx="5" cy="5" r="2"/>
  <mask label="car" rle="3, 1" left="0" top="0" width="2" height="3"/>
</image>
<image id="0" name="a.jpg" width="50" height="50"/>
"""
    ds, report = cvat.parse(_xml(tmp_path, body))
    counts = report.counts()
    for t in ("unknown_label", "attribute_value", "degenerate_polygon", "invalid_box", "rotated_box",
              "unsupported_shape", "malformed_mask", "duplicate_id", "duplicate_image"):
        assert counts.get(t) == 1, (t, counts)
    assert {i.type: i.severity for i in report}["rotated_box"] == "warning"
    assert report.n_errors == 8
    # nothing representable is dropped: the unknown label is added, swapped corners stored sorted
    assert ds.schema.names == ("car", "truck")
    assert ds.n_annotations == 3 and ds.n_images == 2
    np.testing.assert_allclose(ds.annotations.box[1], [5, 1, 9, 5])
    assert ds.annotations.extra["cvat_rotation"][1] == 30.0
    assert ds.annotations.attributes["colour"][1] == "green"
    issue = report.of_type("unknown_label")[0]
    assert "image id=0" in (issue.record or "") and issue.field == "label"
    with pytest.warns(MaslowWarning, match="import issues"):
        io.read_cvat(tmp_path / "annotations.xml")
    with pytest.raises(FormatError, match="strict mode"):
        cvat.parse(tmp_path / "annotations.xml", strict=True)


def test_rotation_and_unknown_label_survive_a_round_trip(tmp_path: Path) -> None:
    body = '<image id="4" name="a.jpg" width="50" height="50"><box label="van" xtl="1" ytl="1" xbr="5" ybr="9" ' \
           'rotation="12.5" source="auto"/></image>'
    ds, _ = cvat.parse(_xml(tmp_path, body))
    cvat.write(ds, tmp_path / "b.xml")
    back, report = cvat.parse(tmp_path / "b.xml")
    assert report.counts() == {"rotated_box": 1}  # the label is declared now
    assert back.schema.names == ("car", "van")
    assert back.annotations.extra["cvat_rotation"][0] == 12.5
    assert back.annotations.source[0] == "model" and back.images.extra["cvat_id"][0] == 4


def test_registry_dispatch(tmp_path: Path) -> None:
    ds = io.read(GOLDEN, "cvat")
    io.write(ds, tmp_path / "r.xml", "cvat")
    assert io.read(tmp_path / "r.xml", "cvat").n_annotations == ds.n_annotations == 7


# -- real data -------------------------------------------------------------------------------------------------
@pytest.mark.shared
def test_od_metrics_fixture_matches_coco() -> None:
    base = shared_path("od_metrics_fixture", "annotations", "gts")
    ds, report = cvat.parse(base / "cvat_format" / "annotations.xml")
    assert len(report) == 0
    assert (ds.n_images, ds.n_annotations, len(ds.schema.names)) == (100, 273, 20)
    coco = json.loads((base / "coco_format_v1" / "instances_default.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    want = sorted((files[a["image_id"]], names[a["category_id"]], a["bbox"][0], a["bbox"][1],
                   a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]) for a in coco["annotations"])
    a = ds.annotations
    got = sorted((str(ds.images.path[i]), ds.schema.names[k], *map(float, b))
                 for i, k, b in zip(a.image, a.label, a.box, strict=True))
    assert len(got) == len(want) == 273
    for g, w in zip(got, want, strict=True):
        assert g[:2] == w[:2] and all(math.isclose(x, y) for x, y in zip(g[2:], w[2:], strict=True))
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in coco["images"]}
    assert all(sizes[p] == (w, h) for p, w, h in zip(ds.images.path, ds.images.width, ds.images.height,
                                                     strict=True))


def test_schema_without_meta_labels(tmp_path: Path) -> None:
    p = tmp_path / "n.xml"
    p.write_text('<annotations><image id="0" name="a.jpg" width="5" height="5"><tag label="x"/><tag label="y"/>'
                 "</image></annotations>", encoding="utf-8")
    ds, report = cvat.parse(p)
    assert report.counts() == {"unknown_label": 2}
    assert ds.schema.task.value == "multilabel"
    assert ds.schema.classes == (ClassDef("x"), ClassDef("y"))


def test_padded_class_names_and_text_attributes_round_trip(tmp_path: Path) -> None:
    """<name>pad </name> was stripped while shapes say label="pad ": the class came back twice (unknown_label)."""
    schema = LabelSchema(classes=(ClassDef("pad "), ClassDef("b")))
    ann = Annotations(image=[0, 0], label=[0, 1], box=[[1, 1, 5, 5], [2, 2, 4, 4]],
                      attributes={"note": obj_array(["  spaced  ", "two\nlines"])})
    ds = Dataset(schema=schema, images=Images(path=["a.png"], width=[20], height=[10]), annotations=ann)
    io.write_cvat(ds, tmp_path / "a.xml")
    back, report = cvat.parse(tmp_path / "a.xml")
    assert back.schema.names == ("pad ", "b") and not report.issues
    assert back.annotations.attributes["note"].tolist() == ["  spaced  ", "two\nlines"]
    pretty = (tmp_path / "a.xml").read_text().replace("<name>pad </name>", "<name>\n  pad \n</name>")
    (tmp_path / "b.xml").write_text(pretty.replace('label="pad "', 'label="pad"'))
    assert cvat.parse(tmp_path / "b.xml")[0].schema.names == ("pad", "b")  # pretty-printing is still stripped
