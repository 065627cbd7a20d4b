"""VOC -> maslow -> VOC keeps every value of a file: person-layout ``<part>`` boxes, ``<actions>``, the object
flags, ``<source>``, ``<owner>``, ``<segmented>``, decimal coordinates on the 1-based pixel convention, and
labelmap.txt's colours, parts and actions.

Source (public): the PASCAL VOC2012 development kit documentation (layout: ``<part><name>head|hand|foot</name>
<bndbox>``; action: ``<actions><jumping>0|1</jumping>...``) and datumaro's ``plugins/voc_format`` (CVAT's "PASCAL
VOC 1.1"): parts and actions per label in labelmap.txt's ``label:color_rgb:parts:actions``, actions read as the
object's attributes named after them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pytest

from maslow import io
from maslow.core.schema import ClassDef
from maslow.errors import FormatError
from maslow.io import voc
from tests.conftest import shared_path

LAYOUT = Path(__file__).parents[1] / "data" / "voc" / "layout"
_FLAG_TAGS = ("difficult", "truncated", "occluded")


def _box(el: Any) -> dict[str, float]:
    return {c.tag: float(c.text or "nan") for c in el.find("bndbox")}


def _values(path: Path) -> dict[str, Any]:
    """What a VOC file says, as values: tag order, indentation and number spelling (``44`` or ``44.0``) aside;
    ``<folder>`` and ``<depth>`` aside too (not kept)."""
    root = ET.parse(path).getroot()

    def block(tag: str) -> dict[str, str] | None:
        el = root.find(tag)
        return None if el is None else {c.tag: (c.text or "").strip() for c in el}

    objects = []
    for o in root.findall("object"):
        simple = {c.tag: (c.text or "").strip() for c in o if not len(c) and c.tag != "name"}
        simple.update({k: str(int(simple[k])) for k in _FLAG_TAGS if k in simple})
        objects.append({
            "name": o.findtext("name"), "tags": simple, "box": _box(o),
            "parts": [(p.findtext("name"), _box(p)) for p in o.findall("part")],
            "actions": {a.tag: int(a.text or "0") for a in o.findall("actions/*")},
        })
    return {"filename": root.findtext("filename"), "source": block("source"), "owner": block("owner"),
            "segmented": int(root.findtext("segmented") or "0"),
            "size": (int(root.findtext("size/width") or 0), int(root.findtext("size/height") or 0)),
            "objects": objects}


def _labelmap(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]


def test_layout_and_action_file_round_trips_value_for_value(tmp_path: Path) -> None:
    ds, report = voc.parse(LAYOUT)
    assert len(report) == 0, report.to_dict()
    rep = voc.write(ds, tmp_path / "out", images=False)
    assert rep.lossless, rep.lost
    src = LAYOUT / "Annotations" / "2008_000008.xml"
    assert _values(tmp_path / "out" / "Annotations" / "2008_000008.xml") == _values(src)
    assert _labelmap(tmp_path / "out" / "labelmap.txt") == _labelmap(LAYOUT / "labelmap.txt")


def test_parts_and_actions_in_the_data_model() -> None:
    ds, _ = voc.parse(LAYOUT)
    person = ds.annotations.label == ds.schema.index("person")
    parts = ds.annotations.extra["voc_parts"]
    # maslow's pixels: x1 = xmin - 1, y1 = ymin - 1 (the hand touches the top-left corner: 0, 0)
    assert parts[person].tolist() == [[{"name": "head", "box": [176.0, 43.0, 206.0, 85.5]},
                                       {"name": "hand", "box": [0.0, 0.0, 12.25, 9.0]}]]
    assert parts[~person].tolist() == [None]
    at = ds.annotations.attributes
    assert at["ridinghorse"][person].tolist() == [True] and at["jumping"][person].tolist() == [False]
    assert ds.schema.attribute("ridinghorse").type == "bool"
    assert [c.color for c in ds.schema.classes] == ["#c00080", "#c08080"]  # labelmap.txt's 192,0,128 and 192,128,128
    assert ds.images.extra["voc_segmented"].tolist() == [1]
    assert ds.images.extra["voc_owner"].tolist() == [{"flickrid": "ebird", "name": "Eb"}]
    assert ds.info["voc"]["parts"] == {"person": ["head", "hand", "foot"]}  # foot: from labelmap.txt


def test_origin_0_reads_and_writes_part_corners_as_they_are(tmp_path: Path) -> None:
    ds, _ = voc.parse(LAYOUT, origin=0)
    person = int(np.flatnonzero(ds.annotations.label == ds.schema.index("person"))[0])
    assert ds.annotations.extra["voc_parts"][person][1]["box"] == [1.0, 1.0, 12.25, 9.0]
    voc.write(ds, tmp_path / "out", images=False, origin=0)
    assert _values(tmp_path / "out" / "Annotations" / "2008_000008.xml") == _values(
        LAYOUT / "Annotations" / "2008_000008.xml")


def test_rounding_moves_parts_too_and_counts_them(tmp_path: Path) -> None:
    ds, _ = voc.parse(LAYOUT)
    rep = voc.write(ds, tmp_path / "out", images=False, integer_coordinates=True)
    assert rep.lost["box_precision"] == 3  # the person's box, the head (85.5) and the hand (12.25)
    back, _ = voc.parse(tmp_path / "out")
    got = [p["box"] for p in back.annotations.extra["voc_parts"][1]]
    assert got == [[176.0, 43.0, 206.0, 86.0], [0.0, 0.0, 12.0, 9.0]]


def test_a_part_without_a_box_is_reported_and_the_others_kept(tmp_path: Path) -> None:
    text = (LAYOUT / "Annotations" / "2008_000008.xml").read_text(encoding="utf-8")
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "2008_000008.xml").write_text(text.replace("<xmax>206</xmax>", "<xmax>x</xmax>"),
                                                              encoding="utf-8")
    ds, report = voc.parse(tmp_path)
    assert report.counts() == {"voc_nested_tag": 1}
    issue = report.issues[0]
    assert (issue.severity, issue.record, issue.field) == ("warning", "object[1] part[0]", "part")
    assert "<part> must have a <name> and a <bndbox>" in issue.message and issue.file.endswith("2008_000008.xml")
    assert [p["name"] for p in ds.annotations.extra["voc_parts"][1]] == ["hand"]
    with pytest.raises(FormatError, match=r"2008_000008\.xml, object\[1\] part\[0\], field 'part': <part> must"):
        voc.parse(tmp_path, strict=True)


def test_parts_that_voc_cannot_hold_are_counted(tmp_path: Path) -> None:
    ds, _ = voc.parse(LAYOUT)
    a = ds.annotations
    bad = np.empty(len(a), object)
    bad[:] = [[{"name": "tail", "box": [5, 5, 1, 1]}, {"name": "ear", "box": "1234"}], [{"name": "head", "box": [1, 2, 3, 4]}]]
    rep = voc.write(ds.replace(annotations=a.with_columns(extra={**a.extra, "voc_parts": bad})), tmp_path / "o",
                    images=False)
    assert rep.lost["voc_parts"] == 2
    back, _ = voc.parse(tmp_path / "o")
    assert back.annotations.extra["voc_parts"].tolist() == [None, [{"name": "head", "box": [1.0, 2.0, 3.0, 4.0]}]]


def test_class_colours_voc_cannot_write_are_counted_not_a_crash(tmp_path: Path) -> None:
    ds, _ = voc.parse(LAYOUT)
    classes = [ClassDef(c.name, color="#12345g" if c.name == "horse" else c.color) for c in ds.schema.classes]
    rep = voc.write(ds.replace(schema=ds.schema.with_classes(classes)), tmp_path / "o", images=False)
    assert rep.lost["class_color"] == 1
    assert _labelmap(tmp_path / "o" / "labelmap.txt")[1] == "horse:::"


def test_a_malformed_labelmap_colour_is_reported(tmp_path: Path) -> None:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "2008_000008.xml").write_bytes((LAYOUT / "Annotations" / "2008_000008.xml").read_bytes())
    (tmp_path / "labelmap.txt").write_text("horse:300,0,0::\nperson:1,2,3::\n", encoding="utf-8")
    ds, report = voc.parse(tmp_path)
    assert report.counts() == {"voc_labelmap_color": 1} and report.issues[0].record == "line 1"
    assert [c.color for c in ds.schema.classes] == ["", "#010203"]


def test_parts_travel_through_coco_and_back_to_voc(tmp_path: Path) -> None:
    ds, _ = voc.parse(LAYOUT)
    io.write(ds, tmp_path / "a.json", "coco")
    voc.write(io.read(tmp_path / "a.json", "coco"), tmp_path / "out", images=False)
    got = _values(tmp_path / "out" / "Annotations" / "2008_000008.xml")["objects"]
    want = _values(LAYOUT / "Annotations" / "2008_000008.xml")["objects"]
    assert [o["parts"] for o in got] == [o["parts"] for o in want]


def test_real_voc_files_keep_segmented_and_source(tmp_path: Path) -> None:
    gts = shared_path("od_metrics_fixture", "annotations", "gts", "pascalvoc_format")
    ds, _ = voc.parse(gts)
    assert int(ds.images.extra["voc_segmented"].sum()) == 93  # 93 of the 100 files say <segmented>1
    voc.write(ds, tmp_path / "out", images=False)
    for src in sorted(gts.glob("*.xml")):
        assert _values(tmp_path / "out" / "Annotations" / src.name) == _values(src), src.name
