"""Label Studio round trips as its users meet them, on a project export shaped like Label Studio 1.x writes it
(``tests/data/labelstudio/project``: rectangles with per-region choices/textarea/rating, a polygon, an ellipse, a
brush, a keypoint, a relation, image-level choices/textarea/rating/taxonomy, region ``meta``/``origin``, a result
accepted from a prediction, three annotators (one cancelled), a prediction, an empty annotation, task data besides
the image, a region drawn on a turned image, and the server's bookkeeping keys).

Label Studio -> maslow -> Label Studio gives back the JSON read (results compared by id, type and control;
numbers to 1e-9 percent; a brush by its pixels) and the labeling config; through COCO, what COCO holds, the rest
counted."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.io import coco, labelstudio, parquet
from maslow.io._labelstudio_export import brush_decode

PROJECT = Path(__file__).parents[1] / "data" / "labelstudio" / "project"


def _key(res: dict[str, Any]) -> str:
    return json.dumps([res.get("id"), res.get("type"), res.get("from_name"), res.get("from_id"), res.get("to_id")])


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two task lists differ: results matched by id/type/control (their order is free), numbers to 1e-9,
    brush RLE by the pixels it decodes to."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.get("format") == "rle" and isinstance(a.get("rle"), list) and isinstance(b.get("rle"), list):
            same = np.array_equal(brush_decode(a["rle"], 48, 64), brush_decode(b["rle"], 48, 64))
            a, b = {**a, "rle": None}, {**b, "rle": None}
            if not same:
                return [f"{path}.rle: other pixels"]
        out = [f"{path}.{k}: only in {'the first' if k in a else 'the second'}" for k in sorted(set(a) ^ set(b))]
        return out + [d for k in sorted(set(a) & set(b)) for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if a and b and all(isinstance(r, dict) and "type" in r for r in a + b):
            return _differences({_key(r): r for r in a}, {_key(r): r for r in b}, path)
        if len(a) != len(b):
            return [f"{path}: {len(a)} items, then {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    if numbers and math.isclose(a, b, rel_tol=0, abs_tol=1e-9):
        return []
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r}, then {b!r}"]


def test_label_studio_to_maslow_and_back_gives_the_json_read(tmp_path: Path) -> None:
    ds, report = labelstudio.parse(PROJECT / "export.json")
    assert report.counts() == {"labelstudio_kept": 2, "cancelled_annotation": 1, "labelstudio_image_rotation": 1,
                               "labelstudio_image_values": 2, "labelstudio_unknown_size": 1}
    assert not [i for i in report if i.severity == "error"]
    rep = labelstudio.write(ds, tmp_path / "out" / "tasks.json")
    assert rep.lossless, rep.lost
    read = json.loads((PROJECT / "export.json").read_text())
    assert _differences(read, json.loads((tmp_path / "out/tasks.json").read_text())) == []
    assert (tmp_path / "out/tasks.label_config.xml").read_text() == (PROJECT / "label_config.xml").read_text()
    # a workspace keeps a version as Parquet: through it, the same
    parquet.write_parquet(ds, tmp_path / "snapshot")
    labelstudio.write(parquet.read_parquet(tmp_path / "snapshot"), tmp_path / "again" / "tasks.json")
    assert _differences(read, json.loads((tmp_path / "again/tasks.json").read_text())) == []


def test_what_maslow_makes_of_the_export(tmp_path: Path) -> None:
    ds, _ = labelstudio.parse(PROJECT / "export.json")
    a, names = ds.annotations, ds.schema.names
    # three annotators of task 1 (the cancelled one has no rows), the prediction apart
    assert sorted(set(a.annotator[a.image == 0].tolist()) - {None}) == ["1", "bob@example.org"]
    assert a.source.tolist().count("model") == 1 and a.score[a.source == "model"].tolist() == [0.91]
    # task data besides the image: image metadata, one column per key (maslow eval --slice-by site)
    assert ds.images.extra["site"].tolist() == ["north", "south", "north"]
    assert ds.images.extra["camera"].tolist() == [2, 1, 1] and ds.images.extra["camera"].dtype == np.int64
    # the ellipse: its outline as a polygon, its exact box; written back as an ellipse
    e = int(np.flatnonzero(np.asarray(names)[a.label] == "wheel")[0])
    np.testing.assert_allclose(a.box[e], [24, 19.2, 40, 28.8])  # centre 50 %, 50 %; radii 12.5 % of 64, 10 % of 48
    ring = np.asarray(a.polygon[e][0]).reshape(-1, 2)
    area = 0.5 * abs(np.dot(ring[:, 0], np.roll(ring[:, 1], -1)) - np.dot(ring[:, 1], np.roll(ring[:, 0], -1)))
    assert area == pytest.approx(math.pi * 8 * 4.8, rel=2e-3)
    assert a.extra["ls_shape"][e] == "ellipse"
    # region notes and origin, kept beside the region
    r1 = int(np.flatnonzero(a.extra["ls_result_id"] == "r1")[0])
    assert a.extra["ls_result"][r1]["meta"] == {"text": ["check the bumper"]}
    assert a.attributes["occluded"][r1] == "no" and a.attributes["conf"][r1] == 4
    # empty and cancelled annotations, ground truth and lead times: kept per task, in order
    heads = ds.images.extra["ls_annotations"]
    assert [h["id"] for h in heads[0]["annotations"]] == [11, 12, 13]
    assert heads[0]["annotations"][0]["ground_truth"] is True and heads[0]["annotations"][2]["was_cancelled"]
    assert heads[1]["annotations"][0]["result"] == []  # task 2: an annotator looked and found nothing


def test_empty_and_cancelled_annotations_are_written_back(tmp_path: Path) -> None:
    """Agreement needs to know who looked at a task: an empty annotation is an annotator's answer."""
    ds, _ = labelstudio.parse(PROJECT / "export.json")
    labelstudio.write(ds, tmp_path / "tasks.json")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert [[(x["id"], x.get("was_cancelled"), len(x["result"])) for x in t["annotations"]] for t in tasks] == [
        [(11, False, 13), (12, False, 1), (13, True, 0)], [(14, False, 0)], [(15, False, 1)]]
    assert tasks[0]["annotations"][1]["completed_by"]["email"] == "bob@example.org"


def test_percentages_come_back_without_float_noise(tmp_path: Path) -> None:
    ds, _ = labelstudio.parse(PROJECT / "export.json")
    labelstudio.write(ds, tmp_path / "tasks.json")
    text = (tmp_path / "tasks.json").read_text()
    assert "24.999999999999996" not in text and "25.999999999999996" not in text
    value = json.loads(text)[0]["annotations"][0]["result"][0]["value"]
    assert [value[k] for k in ("x", "y", "width", "height")] == [10, 12.5, 25, 25]
    back, _ = labelstudio.parse(tmp_path / "tasks.json")
    np.testing.assert_allclose(back.annotations.box, ds.annotations.box, atol=1e-9)


def test_results_of_another_size_are_placed_on_the_task_size(tmp_path: Path) -> None:
    """A prediction made on a resized copy (``original_width`` twice the image's): percentages are relative, so the
    region lands on the same pixels of the task's image; a brush is resampled."""
    mask = np.zeros((20, 40), bool)
    mask[4:12, 10:30] = True
    from maslow.io._labelstudio_export import _brush_encode

    def res(rid: str, rtype: str, w: int, h: int, value: dict[str, Any]) -> dict[str, Any]:
        return {"id": rid, "type": rtype, "from_name": "x", "to_name": "image", "original_width": w,
                "original_height": h, "value": value}

    task = {"id": 1, "data": {"image": "a.png"},
            "annotations": [{"id": 1, "result": [res("a", "rectanglelabels", 40, 20, {
                "x": 25, "y": 20, "width": 50, "height": 40, "rectanglelabels": ["car"]})]}],
            "predictions": [{"id": 2, "result": [
                res("b", "rectanglelabels", 80, 40, {"x": 25, "y": 20, "width": 50, "height": 40,
                                                     "rectanglelabels": ["car"]}),
                res("c", "brushlabels", 80, 40, {"format": "rle", "rle": _brush_encode(np.kron(mask, np.ones(
                    (2, 2), bool))), "brushlabels": ["car"]})]}]}
    (tmp_path / "tasks.json").write_text(json.dumps([task]))
    ds, report = labelstudio.parse(tmp_path / "tasks.json")
    assert report.counts() == {"labelstudio_size_mismatch": 2}
    assert (ds.images.width[0], ds.images.height[0]) == (40, 20)
    np.testing.assert_allclose(ds.annotations.box[:2], [[10, 4, 30, 12], [10, 4, 30, 12]])
    from maslow.core import masks as M

    assert np.array_equal(M.decode(ds.annotations.mask[2]), mask)


def test_label_studio_to_coco_and_back_counts_what_coco_cannot_hold(tmp_path: Path) -> None:
    ds, _ = labelstudio.parse(PROJECT / "export.json")
    rep = coco.write_coco(ds, tmp_path / "coco.json")
    # rows without a box, each counted once: the weather choice (a tag) and the region-less keypoint of a class
    # without keypoint names (its keypoints can't be written, nor a box made from them)
    assert dict(rep.lost) == {"tags": 1, "keypoints": 1}
    assert any("1 of classes without keypoint names" in n for n in rep.notes), rep.notes
    back = coco.read_coco(tmp_path / "coco.json")
    labelstudio.write(back, tmp_path / "tasks.json")
    read = json.loads((PROJECT / "export.json").read_text())
    again = json.loads((tmp_path / "tasks.json").read_text())
    for t in again:
        assert t["data"].pop("coco_id") > 0  # COCO's image ids come along as task data
    # only what COCO can't hold differs: those rows, and the attribute types (COCO keeps values, not definitions)
    where = '[0].annotations[0].result.["{}", "{}", "{}", null, null]: only in the {}'
    assert sorted(_differences(read, again)) == sorted(where.format(*k) for k in (
        ("k1", "keypointlabels", "kp", "first"), ("w1", "choices", "weather", "first"),
        ("r1", "choices", "occluded", "first"), ("r1", "textarea", "occluded", "second"),
        ("r1", "rating", "conf", "first"), ("r1", "number", "conf", "second")))


def test_a_labeling_config_that_no_longer_fits_is_replaced_with_a_note(tmp_path: Path) -> None:
    ds, _ = labelstudio.parse(PROJECT / "export.json")
    classes = tuple(replace(c, name="automobile") if c.name == "car" else c for c in ds.schema.classes)
    renamed = ds.replace(schema=replace(ds.schema, classes=classes))
    rep = labelstudio.write(renamed, tmp_path / "tasks.json")
    assert any("<rectanglelabels name='label'> does not declare 'automobile'" in n for n in rep.notes)
    config = (tmp_path / "tasks.label_config.xml").read_text()
    assert 'value="automobile"' in config and "<Rating" in config  # made anew, the rating still a rating


def test_json_min_task_data_become_image_metadata(tmp_path: Path) -> None:
    """JSON-MIN puts the task data beside the control names: with the labeling config, the keys that name no
    control are task data."""
    box = {"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["car"],
           "original_width": 64, "original_height": 48}
    records = [{"image": "/data/upload/7/a.jpg", "id": 1, "site": "north", "camera": 2, "label": [box],
                "weather": "sunny", "annotator": "ann@example.org", "annotation_id": 11, "lead_time": 2.5},
               {"image": "/data/upload/7/b.jpg", "id": 2, "site": "south", "camera": 1, "annotator": 1,
                "annotation_id": 12, "lead_time": 1.0}]
    (tmp_path / "min.json").write_text(json.dumps(records))
    (tmp_path / "label_config.xml").write_text(
        '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
        '<Label value="car"/></RectangleLabels><Choices name="weather" toName="image"><Choice value="sunny"/>'
        '</Choices></View>')
    ds, report = labelstudio.parse(tmp_path / "min.json")
    assert report.counts() == {"labelstudio_json_min": 1, "labelstudio_unknown_size": 1}
    assert ds.images.extra["site"].tolist() == ["north", "south"] and ds.images.extra["camera"].tolist() == [2, 1]
    assert [ds.schema.names[k] for k in ds.annotations.label] == ["car", "sunny"]
    labelstudio.write(ds, tmp_path / "out" / "tasks.json")
    tasks = json.loads((tmp_path / "out/tasks.json").read_text())
    assert [t["data"] for t in tasks] == [{"image": "/data/upload/7/a.jpg", "site": "north", "camera": 2},
                                          {"image": "/data/upload/7/b.jpg", "site": "south", "camera": 1}]
    # JSON-MIN's bare annotator: written as Label Studio's import takes it; the empty annotation kept
    assert [[a["completed_by"] for a in t["annotations"]] for t in tasks] == [[{"email": "ann@example.org"}], [1]]
