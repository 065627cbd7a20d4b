"""Label Studio as the real tool writes and reads it: files shaped like Label Studio's own exports (JSON, JSON-MIN,
LS < 1.0 completions, split <Labels> + <Rectangle> results) and maslow's export checked against what Label
Studio's import and its SDK's label interface accept.

Sources (public): HumanSignal/label-studio ``label_studio/data_import`` / ``tasks/serializers.py``
(``_insert_valid_completed_by``), HumanSignal/label-studio-sdk ``src/label_studio_sdk/converter/converter.py``
(``convert_to_json_min``, ``annotation_result_from_task``), ``converter/utils.py`` (``prettify_result``,
``get_annotator``) and ``label_interface/interface.py`` / ``control_tags.py`` (``_validate_region_logic``,
``LabelsTag._get_split_partner_value_class``, the value models).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from defusedxml import ElementTree as SafeET
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.io import labelstudio as ls
from maslow.sample import shapes

CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image"><Label value="car"/><Label value="person"/></RectangleLabels>
  <KeyPointLabels name="kp" toName="image"><Label value="nose"/></KeyPointLabels>
  <Choices name="weather" toName="image" choice="multiple"><Choice value="sunny"/><Choice value="rain"/></Choices>
  <Choices name="colour" toName="image" perRegion="true"><Choice value="red"/><Choice value="blue"/></Choices>
</View>
"""


def _write(tmp_path: Path, data: Any, name: str = "export.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


def _annotators(tmp_path: Path, names: list[str]) -> tuple[list[dict[str, Any]], Dataset]:
    n = len(names)
    ds = Dataset(schema=LabelSchema.from_names(["a"]),
                 images=Images(path=obj_array(["x.png"]), width=np.array([40]), height=np.array([30])),
                 annotations=Annotations(image=np.zeros(n, np.int64), label=np.zeros(n, np.int64),
                                         box=np.tile([[1.0, 2.0, 10.0, 20.0]], (n, 1)), annotator=obj_array(names)))
    ls.write(ds, tmp_path / "t.json")
    return json.loads((tmp_path / "t.json").read_text())[0]["annotations"], ls.parse(tmp_path / "t.json")[0]


# -- what maslow writes ----------------------------------------------------------------------------------------
def test_completed_by_is_written_as_a_member_id_or_an_email_object(tmp_path: Path) -> None:
    """Label Studio's import (tasks/serializers.py, _insert_valid_completed_by) takes ``completed_by`` as a member
    id (int) or ``{"email": ...}`` and rejects anything else ("Import data contains completed_by=... which is not a
    valid annotator's email or ID"); maslow wrote a bare string for non-numeric annotators."""
    written, back = _annotators(tmp_path, ["7", "ann@example.org", "bob"])
    assert [a["completed_by"] for a in written] == [7, {"email": "ann@example.org"}, {"email": "bob"}]
    assert back.annotations.annotator.tolist() == ["7", "ann@example.org", "bob"]


def test_exported_results_pass_the_sdk_region_checks(tmp_path: Path) -> None:
    """Every result must name a control of the labeling config (``from_name``) tied to an object (``to_name``),
    have that control's tag as ``type``, use labels the control declares, and keep geometry in percent (the SDK's
    value models: x, y, width, height, points <= 100)."""
    ds = shapes(6, seed=3)
    ls.write(ds, tmp_path / "tasks.json")
    view = SafeET.fromstring((tmp_path / "tasks.label_config.xml").read_text())
    objects = {el.get("name") for el in view if el.get("value", "").startswith("$")}
    controls = {el.get("name"): el for el in view if el.get("toName")}
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert all(set(t["data"]) == {"image", "sequence", "frame"} for t in tasks)  # image metadata as task data
    n_checked = 0
    for t in tasks:
        for group in t["annotations"] + t["predictions"]:
            for r in group["result"]:
                ctl = controls[r["from_name"]]
                assert r["type"] == ctl.tag.lower() and r["to_name"] in ctl.get("toName").split(",")
                assert r["to_name"] in objects
                declared = {c.get("value") for c in ctl if c.tag in ("Label", "Choice")}
                chosen = r["value"].get(r["type"], [])
                assert not declared or set(chosen if isinstance(chosen, list) else []) <= declared
                coords = [r["value"][k] for k in ("x", "y", "width", "height") if k in r["value"]]
                coords += [c for p in r["value"].get("points", []) for c in p]
                assert all(0 <= c <= 100 for c in coords)
                n_checked += 1
    assert n_checked > 0


# -- what Label Studio writes ----------------------------------------------------------------------------------
def _json_min() -> list[dict[str, Any]]:
    """Shaped like Converter.convert_to_json_min: data keys, the task ``id``, one key per control whose value lost
    ``type`` (prettify_result), a single choice as text, several as {"choices": [...]}; one record per annotation."""
    box = {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["car"],
           "original_width": 200, "original_height": 100}
    meta = {"created_at": "2024-01-02T03:04:05Z", "updated_at": "2024-01-02T03:04:05Z", "lead_time": 3.5}
    return [
        {"image": "/data/upload/1/a.jpg", "id": 1, "label": [box], "weather": "sunny", "annotator": 1,
         "annotation_id": 11, **meta},
        {"image": "/data/upload/1/a.jpg", "id": 1, "label": [{**box, "x": 50, "rectanglelabels": ["person"]}],
         "kp": [{"x": 5, "y": 5, "width": 0.5, "keypointlabels": ["nose"], "original_width": 200,
                 "original_height": 100}],
         "annotator": "ann@example.org", "annotation_id": 12, **meta},
        {"image": "/data/upload/1/b.jpg", "id": 2, "weather": {"choices": ["sunny", "rain"]}, "colour": "red",
         "annotator": 1, "annotation_id": 13, **meta},
        {"image": "/data/upload/1/c.jpg", "id": 3, "annotator": None, "annotation_id": None, "created_at": None,
         "updated_at": None, "lead_time": None},  # a task without annotations (the SDK yields it too)
    ]


def test_reads_a_json_min_export_with_the_labeling_config(tmp_path: Path) -> None:
    (tmp_path / "label_config.xml").write_text(CONFIG)
    ds, report = ls.parse(_write(tmp_path, _json_min()))
    assert ds.images.path.tolist() == ["upload/1/a.jpg", "upload/1/b.jpg", "upload/1/c.jpg"]
    assert ds.images.extra["ls_task_id"].tolist() == [1, 2, 3]
    a, names = ds.annotations, ds.schema.names
    assert [names[k] for k in a.label] == ["car", "sunny", "person", "nose", "sunny", "rain"]
    assert a.image.tolist() == [0, 0, 0, 0, 1, 1]
    assert a.annotator.tolist() == ["1", "1", "ann@example.org", "ann@example.org", "1", "1"]
    np.testing.assert_allclose(a.box[[0, 2]], [[20, 20, 80, 60], [100, 20, 160, 60]])
    np.testing.assert_allclose(a.keypoints[3], [[10, 5, 2]])
    assert ds.images.width.tolist() == [200, 0, 0]
    assert report.counts() == {"labelstudio_json_min": 1, "unsupported_result": 1, "labelstudio_unknown_size": 1}
    (issue,) = report.of_type("unsupported_result")
    assert issue.field == "colour" and issue.record == "record 2"  # per-region: its region is not in JSON-MIN


def test_json_min_without_a_config_reads_regions_by_their_label_key(tmp_path: Path) -> None:
    ds, report = ls.parse(_write(tmp_path, _json_min()))
    assert ds.schema.names == ("car", "person", "nose", "sunny", "rain")  # multi-choice dicts keep their key
    assert ds.n_annotations == 6 - 1  # the single choice 'sunny' (text) can't be told from task data
    (info,) = report.of_type("labelstudio_json_min")
    assert info.severity == "info" and "without a labeling config" in info.message


def test_labels_beside_a_rectangle_tool_make_one_region(tmp_path: Path) -> None:
    """<Labels name="lbl"> with <Rectangle name="box">: the export holds a ``rectangle`` result and a ``labels``
    result with the same id (LabelsTag._get_split_partner_value_class); maslow dropped both with errors."""
    geo = {"x": 10, "y": 10, "width": 20, "height": 40, "rotation": 0}
    results = [{"id": "q1", "type": "rectangle", "from_name": "box", "to_name": "image", "original_width": 100,
                "original_height": 50, "value": geo},
               {"id": "q1", "type": "labels", "from_name": "lbl", "to_name": "image", "original_width": 100,
                "original_height": 50, "value": {**geo, "labels": ["sign"]}}]
    ds, report = ls.parse(_write(tmp_path, [{"id": 1, "data": {"image": "a.jpg"},
                                              "annotations": [{"id": 5, "completed_by": 1, "result": results}]}]))
    assert len(report) == 0
    assert ds.schema.names == ("sign",) and ds.annotations.extra["ls_from_name"].tolist() == ["box"]
    np.testing.assert_allclose(ds.annotations.box, [[10, 5, 30, 25]])


def test_reads_label_studio_0x_completions_and_skips_skipped_ones(tmp_path: Path) -> None:
    """Label Studio < 1.0 exported ``completions`` (the SDK's converter still reads them) and marked a skipped
    one ``"skipped": true``."""
    rect = {"id": "CPnIaS1e7v", "from_name": "tag", "to_name": "img", "type": "rectanglelabels", "source": "$image",
            "value": {"x": 50.4, "y": 5.0, "width": 10.0, "height": 10.0, "rotation": 0, "rectanglelabels": ["Planet"]}}
    task = {"id": 1, "data": {"image": "planet.jpg"}, "task_path": "../tasks.json",
            "completions": [{"id": 1001, "result": [rect]}, {"id": 1002, "skipped": True, "result": [rect]}]}
    Image.new("RGB", (200, 100)).save(tmp_path / "planet.jpg")  # no original_width: the size comes from the file
    ds, report = ls.parse(_write(tmp_path, [task]))
    assert ds.n_annotations == 1 and ds.schema.names == ("Planet",)
    np.testing.assert_allclose(ds.annotations.box, [[100.8, 5, 120.8, 15]])
    assert report.counts() == {"cancelled_annotation": 1}


def test_an_annotation_result_keeps_no_prediction_score(tmp_path: Path) -> None:
    """An annotation accepted from a prediction keeps its ``score`` and ``origin: prediction-changed`` in the export
    (label-studio issue #3140); the row is human truth, not a prediction."""
    res = {"original_width": 800, "original_height": 800, "image_rotation": 0, "id": "YKhsh44ARh",
           "from_name": "label", "to_name": "image", "type": "rectanglelabels", "origin": "prediction-changed",
           "score": 59, "value": {"x": 16.4, "y": 35.4, "width": 53.0, "height": 60.7, "rotation": 0,
                                  "rectanglelabels": ["U"]}}
    pred = {"id": 3, "model_version": "v1", "score": 0.5, "result": [{**res, "id": "p1", "score": 0.9}]}
    task = {"id": 1589, "data": {"image": "/data/upload/18/0f6142fb-100_21.jpg"}, "predictions": [pred],
            "annotations": [{"id": 10563, "completed_by": {"id": 3, "email": "t@example.org"}, "result": [res],
                             "was_cancelled": False, "ground_truth": False}]}
    ds, _ = ls.parse(_write(tmp_path, [task]))
    assert ds.annotations.source.tolist() == ["human", "model"]
    np.testing.assert_allclose(ds.annotations.score, [np.nan, 0.9])
