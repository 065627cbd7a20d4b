"""Image-level values of Label Studio controls not tied to a region (``<TextArea>``, ``<Number>``, ``<Rating>``,
``<DateTime>``, and ``<Choices>`` named in ``choice_columns``): one image column per control (``--slice-by``),
written back into the results they came from, so that Label Studio -> maslow -> Label Studio gives the export back.
Result shapes as Label Studio's editor writes them (HumanSignal/label-studio ``web/libs/editor/src/tags/control``:
``TextArea`` ``{"text": [...]}``, ``Number`` ``{"number": n}``, ``Rating`` ``{"rating": n}``, ``DateTime``
``{"datetime": "%Y-%m-%dT%H:%M"}``, ``Choices`` ``{"choices": [...]}``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.errors import FormatError
from maslow.io import coco, parquet
from maslow.io import labelstudio as ls
from maslow.metrics.slices import slice_metrics

CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image"><Label value="car"/></RectangleLabels>
  <TextArea name="note" toName="image" perRegion="true"/>
  <Number name="count" toName="image" perRegion="true"/>
  <Rating name="conf" toName="image" perRegion="true"/>
  <DateTime name="seen" toName="image" perRegion="true"/>
  <Choices name="weather" toName="image"><Choice value="sunny"/><Choice value="rain"/></Choices>
  <TextArea name="caption" toName="image"/>
  <Number name="people" toName="image"/>
  <Rating name="quality" toName="image"/>
  <DateTime name="taken" toName="image" only="date"/>
</View>
"""


def _box(rid: str, x: float) -> dict[str, Any]:
    return {"id": rid, "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 100,
            "original_height": 50, "image_rotation": 0,
            "value": {"x": x, "y": 10, "width": 20, "height": 20, "rotation": 0, "rectanglelabels": ["car"]}}


def _v(rid: str, rtype: str, name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "type": rtype, "from_name": name, "to_name": "image", "value": value}


def _tasks() -> list[dict[str, Any]]:
    per_region = [_v("r1", "textarea", "note", {"text": ["dented"]}), _v("r1", "number", "count", {"number": 2}),
                  _v("r1", "rating", "conf", {"rating": 4}),
                  _v("r1", "datetime", "seen", {"datetime": "2024-05-01T10:30"})]
    return [
        {"id": 1, "data": {"image": "/data/upload/1/a.jpg", "site": "north"}, "annotations": [
            {"id": 11, "completed_by": 1, "result": [
                _box("r1", 10), *per_region, _v("w1", "choices", "weather", {"choices": ["sunny"]}),
                _v("t1", "textarea", "caption", {"text": ["a street"]}), _v("n1", "number", "people", {"number": 3}),
                _v("q1", "rating", "quality", {"rating": 5}),
                _v("d1", "datetime", "taken", {"datetime": "2024-05-01"})]},
        ], "predictions": [{"id": 21, "model_version": "m1", "score": 0.5, "result": [
            {**_box("pr1", 11), "score": 0.9}, _v("pq1", "rating", "quality", {"rating": 2})]}]},
        {"id": 2, "data": {"image": "/data/upload/1/b.jpg", "site": "south"}, "annotations": [
            {"id": 12, "completed_by": 1, "result": [
                _box("r2", 50), _v("w2", "choices", "weather", {"choices": ["rain"]}),
                _v("t2", "textarea", "caption", {"text": ["two lines", "of text"]}),
                _v("n2", "number", "people", {"number": 0.5}), _v("q2", "rating", "quality", {"rating": 2})]}]},
        {"id": 3, "data": {"image": "/data/upload/1/c.jpg", "site": "south"}, "annotations": [
            {"id": 13, "completed_by": 1, "result": [_box("r3", 30), _v("q3", "rating", "quality", {"rating": 5})]}]},
    ]


def _export(tmp_path: Path, tasks: list[dict[str, Any]] | None = None, config: str = CONFIG) -> Path:
    (tmp_path / "label_config.xml").write_text(config, encoding="utf-8")
    src = tmp_path / "export.json"
    src.write_text(json.dumps(_tasks() if tasks is None else tasks), encoding="utf-8")
    return src


def _results(tasks: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every result, by task, kind, annotation id and result id/type/control."""
    return {(t["id"], kind, g.get("id"), r.get("id"), r["type"], r["from_name"]): r for t in tasks
            for kind in ("annotations", "predictions") for g in t.get(kind, []) for r in g["result"]}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= 1e-9
    return bool(a == b) and type(a) is type(b)


def test_image_level_values_become_image_columns(tmp_path: Path) -> None:
    ds, report = ls.parse(_export(tmp_path))
    x = ds.images.extra
    assert x["caption"].tolist() == ["a street", "two lines\nof text", None]
    assert x["people"].tolist() == [3, 0.5, None]
    assert x["quality"].tolist() == [5, 2, 5] and x["quality"].dtype == np.int64  # the prediction's 2 is not in it
    assert x["taken"].tolist() == ["2024-05-01", None, None]
    assert report.counts()["labelstudio_image_values"] == 4
    # per-region values stay attributes of their region; image-level controls are no annotation attributes
    assert [a.name for a in ds.schema.attributes] == ["note", "count", "conf", "seen"]
    r1 = int(np.flatnonzero(ds.annotations.extra["ls_result_id"] == "r1")[0])
    assert [ds.annotations.attributes[k][r1] for k in ("note", "count", "conf", "seen")] == [
        "dented", 2, 4, "2024-05-01T10:30"]
    # image-level choices stay classes (tags) unless named in choice_columns
    assert "weather" not in x and {"sunny", "rain"} <= set(ds.schema.names)


def test_label_studio_to_maslow_and_back_gives_the_export(tmp_path: Path) -> None:
    src = _export(tmp_path)
    ds, _ = ls.parse(src)
    rep = ls.write(ds, tmp_path / "out" / "tasks.json")
    assert rep.lossless, rep.lost
    read, out = json.loads(src.read_text()), json.loads((tmp_path / "out/tasks.json").read_text())
    a, b = _results(read), _results(out)
    assert sorted(a, key=str) == sorted(b, key=str)
    assert [k for k in a if not _same(a[k], b[k])] == []
    assert [t["data"] for t in out] == [t["data"] for t in read]  # the columns are results, not task data
    assert (tmp_path / "out/tasks.label_config.xml").read_text() == CONFIG  # the config read still fits
    back, _ = ls.parse(tmp_path / "out" / "tasks.json")
    assert {k: v.tolist() for k, v in back.images.extra.items() if k in ("caption", "people", "quality", "taken")} \
        == {k: ds.images.extra[k].tolist() for k in ("caption", "people", "quality", "taken")}
    # a workspace keeps versions as Parquet: through it, the same
    parquet.write_parquet(ds, tmp_path / "snap")
    ls.write(parquet.read_parquet(tmp_path / "snap"), tmp_path / "again" / "tasks.json")
    again = _results(json.loads((tmp_path / "again/tasks.json").read_text()))
    assert [k for k in a if k not in again or not _same(a[k], again[k])] == []


def test_values_changed_in_maslow_are_written_back(tmp_path: Path) -> None:
    ds, _ = ls.parse(_export(tmp_path))
    x = dict(ds.images.extra)
    x["quality"] = np.asarray([1, 2, 5], np.int64)  # changed on image 0
    x["caption"] = np.asarray([None, "two lines\nof text", "added"], object)  # removed on 0, added on 2
    changed = ds.replace(images=ds.images.__class__(path=ds.images.path, width=ds.images.width,
                                                   height=ds.images.height, extra=x))
    ls.write(changed, tmp_path / "out" / "tasks.json")
    tasks = json.loads((tmp_path / "out/tasks.json").read_text())
    res = _results(tasks)
    assert res[(1, "annotations", 11, "q1", "rating", "quality")]["value"] == {"rating": 1}
    assert res[(1, "predictions", 21, "pq1", "rating", "quality")]["value"] == {"rating": 2}  # as read
    assert (1, "annotations", 11, "t1", "textarea", "caption") not in res
    assert res[(2, "annotations", 12, "t2", "textarea", "caption")]["value"] == {"text": ["two lines", "of text"]}
    (new,) = [r for k, r in res.items() if k[0] == 3 and k[-1] == "caption"]
    assert new["type"] == "textarea" and new["value"] == {"text": ["added"]} and new["to_name"] == "image"
    back, _ = ls.parse(tmp_path / "out" / "tasks.json")
    assert back.images.extra["caption"].tolist() == [None, "two lines\nof text", "added"]
    assert back.images.extra["quality"].tolist() == [1, 2, 5]


def test_the_ground_truth_annotation_gives_the_value_and_disagreement_is_reported(tmp_path: Path) -> None:
    task = {"id": 1, "data": {"image": "a.jpg"}, "annotations": [
        {"id": 11, "completed_by": 1, "result": [_box("r1", 10), _v("q1", "rating", "quality", {"rating": 2})]},
        {"id": 12, "completed_by": 2, "ground_truth": True,
         "result": [_box("r2", 10), _v("q2", "rating", "quality", {"rating": 4})]},
        {"id": 13, "completed_by": 3, "result": [_v("q3", "rating", "quality", {"rating": 4})]}]}
    ds, report = ls.parse(_export(tmp_path, [task]))
    assert ds.images.extra["quality"].tolist() == [4]
    (issue,) = report.of_type("labelstudio_value_disagreement")
    assert "'quality' values in 1 tasks" in issue.message and issue.image == 0
    ls.write(ds, tmp_path / "out" / "tasks.json")
    out = json.loads((tmp_path / "out/tasks.json").read_text())
    assert [[r["value"] for r in g["result"] if r["type"] == "rating"] for g in out[0]["annotations"]] == [
        [{"rating": 2}], [{"rating": 4}], [{"rating": 4}]]  # every annotator's value, in its annotation


def test_image_values_slice_metrics(tmp_path: Path) -> None:
    truth, _ = ls.parse(_export(tmp_path))
    truth = truth.select(truth.annotations.source == "human")
    truth = truth.select(~np.isnan(truth.annotations.box[:, 0]))  # the boxes (the weather tags aside)
    pred = truth.replace(annotations=truth.annotations.with_columns(score=np.ones(truth.n_annotations)))
    res = slice_metrics(truth, pred, by="quality", n_boot=5, rng=0)
    assert res.values == (2, 5) and res.n_images.tolist() == [1, 2]
    np.testing.assert_allclose(res.value, 1.0)


def test_choice_columns_read_image_choices_as_a_column(tmp_path: Path) -> None:
    src = _export(tmp_path)
    ds, report = ls.parse(src, choice_columns=["weather"])
    assert ds.images.extra["weather"].tolist() == ["sunny", "rain", None]
    assert ds.schema.names == ("car",) and report.counts()["labelstudio_image_values"] == 5
    rep = ls.write(ds, tmp_path / "out" / "tasks.json")
    assert rep.lossless, rep.lost
    a, b = _results(json.loads(src.read_text())), _results(json.loads((tmp_path / "out/tasks.json").read_text()))
    assert sorted(a, key=str) == sorted(b, key=str) and [k for k in a if not _same(a[k], b[k])] == []
    assert (tmp_path / "out/tasks.label_config.xml").read_text() == CONFIG
    with pytest.raises(FormatError, match="choice_columns: 'caption' must be a <Choices> control"):
        ls.parse(src, choice_columns=["caption"])
    with pytest.raises(FormatError, match="choice_columns must be a list"):
        ls.parse(src, choice_columns=[3])


def test_a_made_config_declares_the_image_level_controls(tmp_path: Path) -> None:
    ds, _ = ls.parse(_export(tmp_path), choice_columns=["weather"])
    ls.write(ds.replace(info={}), tmp_path / "out" / "tasks.json")  # no config nor info kept: a config is made
    config = (tmp_path / "out/tasks.label_config.xml").read_text()
    for tag in ('<TextArea name="caption" toName="image"', '<Number name="people" toName="image"',
                '<Rating name="quality" toName="image"', '<DateTime name="taken" toName="image"',
                '<Choices name="weather" toName="image" choice="single">'):
        assert tag in config
    back, _ = ls.parse(tmp_path / "out" / "tasks.json", choice_columns=["weather"])
    for k in ("caption", "people", "quality", "taken", "weather"):
        assert back.images.extra[k].tolist() == ds.images.extra[k].tolist()


def test_values_of_annotations_without_ids_are_read_and_written(tmp_path: Path) -> None:
    task = {"data": {"image": "a.jpg"},
            "annotations": [{"result": [_box("r1", 10), _v("q1", "rating", "quality", {"rating": 3})]}]}
    ds, report = ls.parse(_export(tmp_path, [task]))
    assert ds.images.extra["quality"].tolist() == [3] and not report.of_type("unsupported_result")
    ls.write(ds, tmp_path / "out" / "tasks.json")
    (ann,) = json.loads((tmp_path / "out/tasks.json").read_text())[0]["annotations"]
    assert [(r["type"], r["value"]) for r in ann["result"] if r["type"] == "rating"] == [("rating", {"rating": 3})]


def test_json_min_image_values(tmp_path: Path) -> None:
    records = [{"image": "/data/upload/1/a.jpg", "id": 1, "caption": "a street", "quality": [{"rating": 4}],
                "annotator": 1, "annotation_id": 11}]
    ds, _ = ls.parse(_export(tmp_path, records))
    assert ds.images.extra["caption"].tolist() == ["a street"] and ds.images.extra["quality"].tolist() == [4]


def test_through_coco_the_values_come_back_as_results(tmp_path: Path) -> None:
    """COCO keeps image columns but not the Label Studio info: the kept results still name their columns."""
    src = _export(tmp_path)
    ds, _ = ls.parse(src)
    coco.write_coco(ds, tmp_path / "coco.json")
    back = coco.read_coco(tmp_path / "coco.json")
    assert back.images.extra["quality"].tolist() == [5, 2, 5]
    ls.write(back, tmp_path / "out" / "tasks.json")
    out = json.loads((tmp_path / "out/tasks.json").read_text())
    assert not {"caption", "people", "quality", "taken"} & {k for t in out for k in t["data"]}
    a, b = _results(json.loads(src.read_text())), _results(out)
    assert all(_same(a[k]["value"], b[k]["value"]) for k in a if k[-1] in ("caption", "people", "quality", "taken"))


def test_a_control_named_like_task_data_gets_its_own_column(tmp_path: Path) -> None:
    task = {"id": 1, "data": {"image": "a.jpg", "quality": "raw"}, "annotations": [
        {"id": 11, "completed_by": 1, "result": [_box("r1", 10), _v("q1", "rating", "quality", {"rating": 3})]}]}
    src = _export(tmp_path, [task])
    ds, _ = ls.parse(src)
    assert ds.images.extra["quality"].tolist() == ["raw"] and ds.images.extra["quality_rating"].tolist() == [3]
    ls.write(ds, tmp_path / "out" / "tasks.json")
    (out,) = json.loads((tmp_path / "out/tasks.json").read_text())
    assert out["data"] == task["data"] and _same(_results([out]), _results([task]))
    coco.write_coco(ds, tmp_path / "coco.json")  # the column names are lost with info: "quality" is not the rating's
    ls.write(coco.read_coco(tmp_path / "coco.json"), tmp_path / "back" / "tasks.json")
    (out,) = json.loads((tmp_path / "back/tasks.json").read_text())
    assert out["data"]["quality"] == "raw" and _same(_results([out]), _results([task]))


def test_values_of_a_region_not_imported_are_no_image_values(tmp_path: Path) -> None:
    unlabelled = {**_box("r1", 10), "value": {**_box("r1", 10)["value"], "rectanglelabels": []}}
    task = {"id": 1, "data": {"image": "a.jpg"}, "annotations": [{"id": 11, "completed_by": 1, "result": [
        unlabelled, _v("r1", "textarea", "note", {"text": ["dented"]}), _v("x9", "number", "count", {"number": 1})]}]}
    ds, report = ls.parse(_export(tmp_path, [task]))
    assert report.counts()["missing_label"] == 1 and "labelstudio_image_values" not in report.counts()
    assert not {"note", "count"} & set(ds.images.extra)  # the region's value, and a per-region control's
    ls.write(ds, tmp_path / "out" / "tasks.json")
    assert _same(_results(json.loads((tmp_path / "out/tasks.json").read_text())), _results([task]))
