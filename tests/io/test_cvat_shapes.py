"""CVAT XML shapes beyond boxes and polygons: <ellipse>, <cuboid>, <skeleton> (read, written back, findings).

Source (public): cvat-ai/cvat ``cvat/apps/dataset_manager/formats/cvat.py`` (``dump_as_cvat_annotation`` writes
``cx cy rx ry [rotation]``, the 16 cuboid corners, skeleton points labelled by sublabel with ``outside`` and
``occluded``) and ``transformations.py`` (rotation: ``x' = cx + cos*dx - sin*dy``, degrees, as ``cv2.ellipse``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.io import cvat
from tests.helpers import assert_datasets_equal

SHAPES = Path(__file__).parents[1] / "data" / "cvat" / "shapes.xml"

HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><labels>
<label><name>person</name><type>skeleton</type></label>
<label><name>nose</name><type>points</type><parent>person</parent></label>
<label><name>tail</name><type>points</type><parent>person</parent></label>
<label><name>ball</name><type>ellipse</type></label>
</labels></task></meta>
"""


def _xml(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "annotations.xml"
    p.write_text(HEAD + body + "\n</annotations>\n", encoding="utf-8")
    return p


def test_ellipse_cuboid_and_skeleton_are_imported() -> None:
    ds, report = cvat.parse(SHAPES)
    assert len(report) == 0, report.to_dict()
    a = ds.annotations
    assert [ds.schema.names[k] for k in a.label] == ["ball", "ball", "crate", "person"]
    assert a.extra["cvat_shape"].tolist() == ["ellipse", "ellipse", "cuboid", "skeleton"]
    # ellipse: its exact bounding box (rotated by 90 degrees: the axes swap), its outline as a polygon
    np.testing.assert_allclose(a.box[:2], [[4, 4, 16, 12], [28, 7, 32, 23]], atol=1e-12)
    assert a.extra["cvat_rotation"][:2].tolist() == [0.0, 90.0]
    assert a.attributes["occluded"].tolist() == [False, True, False, False]
    ring = a.polygon[0][0].reshape(-1, 2)
    np.testing.assert_allclose(((ring[:, 0] - 10) / 6) ** 2 + ((ring[:, 1] - 8) / 4) ** 2, 1.0)
    area = M.area([M.from_polygons([a.polygon[0][0].tolist()], 30, 40)])[0]
    assert abs(area - math.pi * 6 * 4) < 0.1 * math.pi * 6 * 4  # rasterised: pi*rx*ry, give or take its rim
    # cuboid: the 8 corners as keypoints in CVAT's order, their bounding box
    np.testing.assert_array_equal(a.keypoints[2, :, :2], [[2, 20], [2, 28], [10, 20], [10, 28], [5, 17], [5, 25],
                                                          [13, 17], [13, 25]])
    np.testing.assert_array_equal(a.box[2], [2, 17, 13, 28])
    # skeleton: the class's points from <meta> (<parent>), v = 2 visible, 1 occluded, 0 outside
    assert ds.schema.classes[2].keypoints == ("nose", "hand", "tail")
    np.testing.assert_array_equal(a.keypoints[3, :3], [[5, 6, 2], [8, 9, 1], [7, 8, 0]])
    assert np.isnan(a.box[3]).all()


def test_ellipse_cuboid_and_skeleton_are_written_back(tmp_path: Path) -> None:
    ds, _ = cvat.parse(SHAPES)
    report = cvat.write(ds, tmp_path / "out.xml")
    assert report.lossless, report.lost
    text = (tmp_path / "out.xml").read_text()
    assert 'cx="30.00" cy="15.00" rx="8.00" ry="2.00" rotation="90.00"' in text  # not a 64-point polygon
    top = SafeET.parse(tmp_path / "out.xml").getroot()
    assert [e.tag for e in top.find("image")] == ["ellipse", "ellipse", "cuboid"]
    skel = top.find("image[@id='1']/skeleton")
    assert [(p.get("label"), p.get("outside"), p.get("occluded")) for p in skel] == [
        ("nose", "0", "0"), ("hand", "0", "1"), ("tail", "1", "0")]
    parents = [(lab.findtext("name"), lab.findtext("parent")) for lab in top.iter("label") if lab.find("parent") is not None]
    assert parents == [("nose", "person"), ("hand", "person"), ("tail", "person")]
    back, rep = cvat.parse(tmp_path / "out.xml")
    assert len(rep) == 0
    assert_datasets_equal(ds, back, fields=("path", "size", "label", "box", "polygon", "keypoints"),
                          attributes=("occluded",), atol=0)
    assert back.annotations.extra["cvat_shape"].tolist() == ds.annotations.extra["cvat_shape"].tolist()
    assert back.schema.classes[2].keypoints == ("nose", "hand", "tail")


def test_an_edited_ellipse_or_cuboid_is_written_as_what_it_has_become(tmp_path: Path) -> None:
    ds, _ = cvat.parse(SHAPES)
    a = ds.annotations
    poly = [p for p in a.polygon.tolist()]
    poly[0] = [poly[0][0] + np.tile([1.0, 0.0], 64) * np.arange(64).repeat(2) / 64]  # no longer an ellipse
    kp = a.keypoints.copy()
    kp[2, 7, 2] = 0  # a cuboid corner unlabelled: not a cuboid
    edited = ds.replace(annotations=a.with_columns(polygon=poly, keypoints=kp))
    report = cvat.write(edited, tmp_path / "e.xml")
    assert report.lost["cvat_shape"] == 2 and report.lost["box"] == 1  # the ellipse's box is not its polygon's
    top = SafeET.parse(tmp_path / "e.xml").getroot()
    assert [e.tag for e in top.find("image")] == ["polygon", "ellipse", "box", "points"]


def test_rotated_ellipse_polygon_follows_cvats_rotation() -> None:
    """CVAT rotates clockwise on screen (y down): the end of the rx axis of a 90-degree ellipse points down."""
    ds, _ = cvat.parse(SHAPES)
    ring = ds.annotations.polygon[1][0].reshape(-1, 2)
    np.testing.assert_allclose(ring[0], [30, 23], atol=1e-12)  # (cx, cy + rx)


def test_a_skeleton_with_every_point_outside_stays_a_skeleton(tmp_path: Path) -> None:
    body = ('<image id="0" name="a.jpg" width="9" height="9"><skeleton label="person" source="manual" z_order="0">'
            '<points label="nose" outside="1" occluded="0" points="1,2"/></skeleton></image>')
    ds, report = cvat.parse(_xml(tmp_path, body))
    assert len(report) == 0 and ds.annotations.keypoints[0].tolist() == [[1, 2, 0], [0, 0, 0]]
    assert cvat.write(ds, tmp_path / "o.xml").lossless
    back, _ = cvat.parse(tmp_path / "o.xml")
    assert back.annotations.extra["cvat_shape"].tolist() == ["skeleton"]
    np.testing.assert_array_equal(back.annotations.keypoints, ds.annotations.keypoints)


def test_skeleton_without_meta_takes_its_points_in_order_of_appearance(tmp_path: Path) -> None:
    p = tmp_path / "n.xml"
    p.write_text('<annotations><image id="0" name="a.jpg" width="9" height="9">'
                 '<skeleton label="cat" z_order="0"><points label="ear" outside="0" occluded="0" points="1,2"/>'
                 '</skeleton><skeleton label="cat" z_order="0"><points label="paw" outside="0" occluded="0" '
                 'points="3,4"/><points label="ear" outside="0" occluded="0" points="5,6"/></skeleton>'
                 "</image></annotations>", encoding="utf-8")
    ds, report = cvat.parse(p)
    assert report.counts() == {"unknown_label": 1}  # the label is not declared: added to the schema
    assert ds.schema.classes[0].keypoints == ("ear", "paw")
    np.testing.assert_array_equal(ds.annotations.keypoints, [[[1, 2, 2], [0, 0, 0]], [[5, 6, 2], [3, 4, 2]]])


@pytest.mark.parametrize(
    ("body", "kind", "field"),
    [
        pytest.param('<skeleton label="person" z_order="0"><points label="ear" outside="0" occluded="0" '
                     'points="1,2"/></skeleton>', "unknown_keypoint", "label", id="undeclared-point"),
        pytest.param('<skeleton label="person" z_order="0"><box label="nose" xtl="0" ytl="0" xbr="1" ybr="1"/>'
                     "</skeleton>", "unsupported_shape", None, id="not-points"),
        pytest.param('<skeleton label="person" z_order="0"><points label="nose" outside="0" occluded="0" '
                     'points="1,2"><attribute name="side">left</attribute></points></skeleton>',
                     "skeleton_point_attribute", None, id="point-attribute"),
        pytest.param('<skeleton label="person" z_order="0"><points label="nose" outside="0" occluded="0" '
                     'points="1,2;3,4"/></skeleton>', "skeleton_point", "points", id="two-points"),
        pytest.param('<ellipse label="ball" cx="5" cy="5" rx="-2" ry="1" z_order="0"/>', "invalid_ellipse", "rx",
                     id="negative-radius"),
    ],
)
def test_what_a_skeleton_or_ellipse_cannot_hold_is_reported(tmp_path: Path, body: str, kind: str,
                                                           field: str | None) -> None:
    ds, report = cvat.parse(_xml(tmp_path, f'<image id="7" name="a.jpg" width="9" height="9">{body}</image>'))
    (issue,) = report.issues
    assert (issue.type, issue.severity, issue.field) == (kind, "error", field)
    assert issue.file.endswith("annotations.xml") and "image id=7" in (issue.record or "")
    assert ds.n_annotations == 1  # the shape itself is kept


def test_missing_cuboid_corner_raises_naming_it(tmp_path: Path) -> None:
    body = '<image id="2" name="a.jpg" width="9" height="9"><cuboid label="ball" xtl1="1"/></image>'
    with pytest.raises(Exception, match=r"image id=2.*<cuboid> #0.*field 'ytl1'"):
        cvat.parse(_xml(tmp_path, body))


def test_a_keypoint_dataset_without_cvat_shape_is_written_as_before(shapes_ds: Dataset, tmp_path: Path) -> None:
    """Only rows read from a <skeleton> become one: other keypoints stay <points> in the object's group."""
    cvat.write(shapes_ds, tmp_path / "s.xml")
    top = SafeET.parse(tmp_path / "s.xml").getroot()
    assert not list(top.iter("skeleton")) and list(top.iter("points"))
