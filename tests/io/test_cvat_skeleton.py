"""CVAT skeleton labels: the edges in ``<label><svg>`` read into ``ClassDef.skeleton`` and written back.

Source (public): cvat-ai/cvat ``cvat/apps/dataset_manager/bindings.py`` (``_convert_db_labels``: a skeleton label
carries ``svg``, its sublabels' ``data-label-id`` replaced by ``data-label-name``; the XML dumper writes it as
text, so escaped) and ``CVATDataExtractorMixin._load_categories`` (``ET.fromstring('<root>' + svg + '</root>')``:
``<line data-node-from data-node-to>`` are the joints, ``<circle data-label-name>`` the sublabels).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET

from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import cvat
from tests.helpers import assert_datasets_equal

VIDEO = Path(__file__).parents[1] / "data" / "cvat" / "video.xml"

# as CVAT draws a skeleton: node ids in the order the points were drawn, not the order of the sublabels
SVG = ('&lt;line x1="30" y1="20" x2="60" y2="40" stroke="black" data-type="edge" data-node-from="2" '
       'stroke-width="0.5" data-node-to="3"&gt;&lt;/line&gt;&lt;line x1="10" y1="10" x2="30" y2="20" '
       'data-type="edge" data-node-from="1" data-node-to="2"&gt;&lt;/line&gt;'
       '&lt;circle r="1.5" cx="10" cy="10" data-type="element node" data-element-id="1" data-node-id="1" '
       'data-label-name="tail"&gt;&lt;/circle&gt;&lt;circle r="1.5" cx="30" cy="20" data-type="element node" '
       'data-element-id="2" data-node-id="2" data-label-name="nose"&gt;&lt;/circle&gt;&lt;circle r="1.5" cx="60" '
       'cy="40" data-type="element node" data-element-id="3" data-node-id="3" data-label-name="ear"&gt;&lt;/circle&gt;')


def _xml(tmp_path: Path, svg: str) -> Path:
    p = tmp_path / "annotations.xml"
    p.write_text(f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <labels>
        <label>
          <name>person</name>
          <color>#34d1b7</color>
          <type>skeleton</type>
          <attributes>
          </attributes>
          <svg>{svg}</svg>
        </label>
        <label><name>nose</name><type>points</type><attributes></attributes><parent>person</parent></label>
        <label><name>ear</name><type>points</type><attributes></attributes><parent>person</parent></label>
        <label><name>tail</name><type>points</type><attributes></attributes><parent>person</parent></label>
      </labels>
    </task>
  </meta>
  <image id="0" name="a.jpg" width="64" height="48">
    <skeleton label="person" source="manual" z_order="0">
      <points label="nose" source="manual" outside="0" occluded="0" points="5.00,6.00"></points>
      <points label="ear" source="manual" outside="0" occluded="1" points="8.00,9.00"></points>
      <points label="tail" source="manual" outside="1" occluded="0" points="7.00,8.00"></points>
    </skeleton>
  </image>
</annotations>
""", encoding="utf-8")
    return p


def test_skeleton_edges_are_read_from_the_labels_svg(tmp_path: Path) -> None:
    ds, report = cvat.parse(_xml(tmp_path, SVG))
    assert len(report) == 0, report.to_dict()
    person = ds.schema.classes[0]
    assert person.keypoints == ("nose", "ear", "tail")  # the order of the <parent> labels
    assert person.skeleton == ((0, 1), (2, 0))  # nose-ear, tail-nose: node ids 2-3 and 1-2 by their circles
    np.testing.assert_array_equal(ds.annotations.keypoints[0], [[5, 6, 2], [8, 9, 1], [7, 8, 0]])


def test_svg_markup_as_child_elements_is_read_too(tmp_path: Path) -> None:
    unescaped = SVG.replace("&lt;", "<").replace("&gt;", ">")
    ds, report = cvat.parse(_xml(tmp_path, f'<svg xmlns="http://www.w3.org/2000/svg">{unescaped}</svg>'))
    assert len(report) == 0 and ds.schema.classes[0].skeleton == ((0, 1), (2, 0))


def test_skeleton_edges_survive_a_round_trip(tmp_path: Path) -> None:
    ds, _ = cvat.parse(_xml(tmp_path, SVG))
    report = cvat.write(ds, tmp_path / "out.xml")
    assert report.lossless, report.lost  # the edges were counted as lost (class_keypoints) before
    back, findings = cvat.parse(tmp_path / "out.xml")
    assert len(findings) == 0
    assert back.schema.classes == ds.schema.classes
    assert back.schema.classes[0].skeleton == ((0, 1), (2, 0))
    assert_datasets_equal(ds, back, fields=("path", "size", "label", "keypoints"))


def test_a_skeleton_class_built_in_code_is_written_with_its_edges(tmp_path: Path) -> None:
    """A class with keypoint names and edges, rows marked as CVAT skeletons: CVAT's own reading of the <svg>
    (``_load_categories``) finds the points and the joints between them."""
    person = ClassDef("person", keypoints=("head", "left hand", 'a "quoted" <point>'), skeleton=((0, 1), (0, 2)))
    ds = Dataset(
        schema=LabelSchema(classes=(person,)),
        images=Images(path=obj_array(["a.png"]), width=np.array([64]), height=np.array([48])),
        annotations=Annotations(image=np.array([0]), label=np.array([0]),
                                keypoints=np.array([[[1, 2, 2], [3, 4, 2], [5, 6, 1]]], np.float64),
                                extra={"cvat_shape": obj_array(["skeleton"])}))
    assert cvat.write(ds, tmp_path / "p.xml").lossless
    label = SafeET.parse(tmp_path / "p.xml").getroot().find("meta/task/labels/label")
    assert label.find("type").text == "skeleton"
    joints, sublabels, node_of = [], [], {}
    for el in ET.fromstring("<root>" + label.find("svg").text + "</root>"):
        if el.tag == "line":
            joints.append([int(el.attrib["data-node-from"]), int(el.attrib["data-node-to"])])
        elif el.tag == "circle":
            sublabels.append(el.attrib["data-label-name"])
            node_of[int(el.attrib["data-node-id"])] = el.attrib["data-label-name"]
    assert sublabels == list(person.keypoints)
    assert [(node_of[a], node_of[b]) for a, b in joints] == [("head", "left hand"), ("head", 'a "quoted" <point>')]
    assert cvat.parse(tmp_path / "p.xml")[0].schema.classes == (replace(person, label_types=("keypoints",)),)


def test_the_video_golden_files_skeleton_has_its_edge() -> None:
    ds, _ = cvat.parse(VIDEO)
    person = next(c for c in ds.schema.classes if c.name == "person")
    assert person.keypoints == ("nose", "tail") and person.skeleton == ((0, 1),)


@pytest.mark.parametrize(
    ("svg", "match"),
    [
        pytest.param("&lt;line data-node-from=1&gt;", r"<svg> of skeleton label 'person' must be SVG markup",
                     id="not-markup"),
        pytest.param(SVG.replace('data-node-to="3"', 'data-node-to="9"'),
                     r"label 'person'.*data-node-from='2' data-node-to='9' \(1 of 2 edges\)", id="unknown-node"),
        pytest.param(SVG.replace('data-label-name="ear"', 'data-label-name="hoof"'),
                     r"label 'person'.*\(nose, ear, tail\).*data-node-to='3'", id="not-a-point"),
        pytest.param(SVG.replace('data-label-name="ear"', 'data-label-id="17"'), r"label 'person'.*\(1 of 2 edges\)",
                     id="label-id-only"),
    ],
)
def test_a_malformed_svg_is_reported_naming_the_label(tmp_path: Path, svg: str, match: str) -> None:
    ds, report = cvat.parse(_xml(tmp_path, svg))
    (issue,) = report
    assert (issue.type, issue.severity, issue.record, issue.field) == ("skeleton_svg", "error", "label 'person'",
                                                                      "svg")
    assert re.search(match, issue.message), issue.message
    # what could be read is kept: the points, the shape, the edges that name two points
    assert ds.schema.classes[0].keypoints == ("nose", "ear", "tail")
    assert ds.schema.classes[0].skeleton in ((), ((2, 0),))
    assert ds.n_annotations == 1
    with pytest.raises(FormatError, match=r"label 'person', field 'svg'.*strict mode"):
        cvat.parse(tmp_path / "annotations.xml", strict=True)


def test_edges_of_a_skeleton_without_declared_points_are_reported(tmp_path: Path) -> None:
    p = _xml(tmp_path, SVG)
    p.write_text("\n".join(line for line in p.read_text().splitlines() if "<parent>" not in line))
    ds, report = cvat.parse(p)
    assert report.counts() == {"skeleton_svg": 1}
    assert "has 2 edges in <svg> but no points" in report.of_type("skeleton_svg")[0].message
    assert ds.schema.classes[0].skeleton == ()
