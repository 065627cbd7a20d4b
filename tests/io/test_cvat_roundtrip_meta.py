"""CVAT -> maslow -> CVAT keeps what ``<meta>`` and ``<image>`` say beyond the schema: mutable attributes, label
types maslow has no label type for (polyline, ellipse, cuboid), skeleton drawings and point colours, the task's name
and mode, the video's name and a project export's ``task_id`` per image (``Dataset.info["cvat"]``,
``images.extra["cvat_task_id"]``).

Source (public): cvat-ai/cvat ``cvat/apps/dataset_manager/formats/cvat.py`` (``dump_as_cvat_annotation`` writes
``<image id name [subset task_id] width height>``, ``task_id`` for a project export) and ``bindings.py`` (the
``<meta>`` of a task, job or project export; each label's attributes with ``<mutable>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET

from maslow import io
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import cvat
from tests.conftest import shared_path

DATA = Path(__file__).parents[1] / "data" / "cvat"
PROJECT = DATA / "project.xml"
VIDEO = DATA / "video.xml"


def _top(path: Path) -> Any:
    return SafeET.parse(path).getroot()


def _labels(path: Path) -> dict[str, Any]:
    """Each <label> of <meta> as CVAT reads it: colour, type, parent, <svg> text and per attribute its mutable
    flag, input type, default and values."""
    meta = _top(path).find("meta")
    labels = next(h for h in meta if h.find("labels") is not None).find("labels")
    out = {}
    for lab in labels.findall("label"):
        attrs = {a.findtext("name"): ((a.findtext("mutable") or "").lower(), a.findtext("input_type"),
                                      a.findtext("default_value") or "", (a.findtext("values") or "").split("\n"))
                 for a in lab.findall("attributes/attribute")}
        out[lab.findtext("name")] = (lab.findtext("color") or "", lab.findtext("type"), lab.findtext("parent"),
                                     lab.findtext("svg"), attrs)
    return out


def _images(path: Path) -> list[dict[str, str]]:
    return [dict(im.attrib) for im in _top(path).findall("image")]


def _shapes(path: Path) -> list[tuple[str, dict[str, str], dict[str, str | None]]]:
    return [(s.tag, dict(s.attrib), {a.get("name"): a.text for a in s.findall("attribute")})
            for im in _top(path).findall("image") for s in im]


def test_project_export_round_trip_keeps_labels_images_and_shapes(tmp_path: Path) -> None:
    ds, report = cvat.parse(PROJECT)
    assert len(report) == 0, report.to_dict()
    assert ds.images.extra["cvat_task_id"].tolist() == [31, 32]
    rep = cvat.write(ds, tmp_path / "out.xml")
    assert rep.lossless, rep.lost
    assert _labels(tmp_path / "out.xml") == _labels(PROJECT)  # <mutable>True</mutable>, polyline, ellipse, cuboid
    assert _images(tmp_path / "out.xml") == _images(PROJECT)  # subset and task_id
    assert _shapes(tmp_path / "out.xml") == _shapes(PROJECT)  # source, z_order, occluded, group_id, attributes
    task = _top(tmp_path / "out.xml").find("meta/task")
    assert (task.findtext("name"), task.findtext("mode")) == ("parking lot", "annotation")
    back, report = cvat.parse(tmp_path / "out.xml")
    assert len(report) == 0 and back.info["cvat"]["labels"] == ds.info["cvat"]["labels"]


def test_video_export_round_trip_keeps_mutable_attributes_drawings_and_the_video(tmp_path: Path) -> None:
    ds, _ = cvat.parse(VIDEO)
    assert ds.info["cvat"]["labels"]["car"]["mutable"] == ["parked"]
    cvat.write(ds, tmp_path / "out.xml")
    # label colours, types (polyline, ellipse), the skeleton's <svg> as CVAT drew it, its points' colours
    assert _labels(tmp_path / "out.xml") == _labels(VIDEO)
    meta = _top(tmp_path / "out.xml").find("meta")
    assert (meta.findtext("task/name"), meta.findtext("task/mode"), meta.findtext("source")) == (
        "street", "interpolation", "street.mp4")


def test_an_attribute_changing_within_a_track_is_written_mutable(tmp_path: Path) -> None:
    """Without ``info`` (a dataset from elsewhere): CVAT keeps only the first frame's value of an attribute that is
    not mutable, so one whose value changes along a track is declared mutable; a constant one is not."""
    ds, _ = cvat.parse(VIDEO)
    a = ds.annotations
    colour = obj_array(["red" if lab == ds.schema.index("car") else None for lab in a.label.tolist()])
    ds = ds.replace(info={}, annotations=a.with_columns(attributes={**a.attributes, "colour": colour}),
                    schema=LabelSchema(ds.schema.classes, ds.schema.tasks,
                                       (*ds.schema.attributes, AttributeDef("colour", classes=("car",)))))
    cvat.write(ds, tmp_path / "out.xml")
    attrs = _labels(tmp_path / "out.xml")["car"][4]
    assert attrs["parked"][0] == "true" and attrs["colour"][0] == "false"


def test_kept_meta_is_used_only_while_it_fits_the_schema(tmp_path: Path) -> None:
    ds, _ = cvat.parse(VIDEO)
    cvat.write(ds, tmp_path / "same.xml")
    assert _labels(tmp_path / "same.xml")["lane"][1] == "polyline"
    person = ds.schema.index("person")
    classes = list(ds.schema.classes)
    classes[ds.schema.index("lane")] = ClassDef("lane", label_types=("box",))
    classes[person] = ClassDef("person", keypoints=classes[person].keypoints, skeleton=())
    changed = ds.replace(schema=ds.schema.with_classes(classes))
    cvat.write(changed, tmp_path / "changed.xml")
    labels = _labels(tmp_path / "changed.xml")
    assert labels["lane"][1] == "rectangle"  # no longer a polyline label: the kept type is not written
    assert labels["person"][3] != _labels(VIDEO)["person"][3]  # the edge was removed: the drawing is made anew
    back, _ = cvat.parse(tmp_path / "changed.xml")
    assert back.schema.classes[back.schema.index("person")].skeleton == ()


@pytest.mark.parametrize("info", [
    pytest.param({"cvat": ["task"]}, id="not-an-object"),
    pytest.param({"cvat": {"task": "x", "labels": {"car": {"mutable": "parked", "type": 3, "svg": 1}}}},
                 id="wrong-types"),
])
def test_malformed_kept_meta_is_not_used(tmp_path: Path, info: dict[str, Any]) -> None:
    ds, _ = cvat.parse(VIDEO)
    rep = cvat.write(ds.replace(info=info), tmp_path / "out.xml")
    labels = _labels(tmp_path / "out.xml")
    assert labels["car"][1] == "rectangle" and labels["lane"][1] == "polygon"
    assert labels["car"][4]["parked"][0] == "true"  # from the track, where its value changes
    assert _top(tmp_path / "out.xml").findtext("meta/task/name") == "maslow export"
    assert any("info['cvat'] must be an object" in n for n in rep.notes) == isinstance(info["cvat"], list)


def test_parquet_keeps_what_cvat_needs_back(tmp_path: Path) -> None:
    ds, _ = cvat.parse(PROJECT)
    io.write(ds, tmp_path / "pq", "parquet")
    cvat.write(io.read(tmp_path / "pq", "parquet"), tmp_path / "out.xml")
    assert _labels(tmp_path / "out.xml") == _labels(PROJECT)
    assert _images(tmp_path / "out.xml") == _images(PROJECT)


def test_a_non_integer_task_id_names_the_image(tmp_path: Path) -> None:
    text = PROJECT.read_text(encoding="utf-8").replace('task_id="32"', 'task_id="x"')
    (tmp_path / "a.xml").write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=r"image id=1 name='evening/lot_0002.jpg'.*task_id must be an integer"):
        cvat.parse(tmp_path / "a.xml")


def test_real_cvat_export_keeps_task_name_and_colours(tmp_path: Path) -> None:
    src = shared_path("od_metrics_fixture", "annotations", "gts", "cvat_format", "annotations.xml")
    ds, _ = cvat.parse(src)
    cvat.write(ds, tmp_path / "out.xml")
    assert _top(tmp_path / "out.xml").findtext("meta/task/name") == "VOC2012_100_samples_gt"
    colours = {k: v[0] for k, v in _labels(src).items()}
    assert {k: v[0] for k, v in _labels(tmp_path / "out.xml").items()} == colours
    back, _ = cvat.parse(tmp_path / "out.xml")
    np.testing.assert_array_equal(back.annotations.box, ds.annotations.box)
