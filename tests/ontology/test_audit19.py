"""Audit 19 regressions (schema level): keypoint clicks in the cost, annotator throughput, class guidelines in the
schema diff, semantic polygon regions and crowd rows in ``validate``. Expected values are computed by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import quality
from maslow.core import AttributeDef, ClassDef, Dataset, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array, str_array
from maslow.io.coco import read_coco
from maslow.ontology import annotator_throughput, diff_schemas, estimate_cost, load_schema, read_schema_document
from maslow.ontology import validate as run_validate
from tests.helpers import flat_text
from tests.helpers import run_cli as run

# ---- cost: only labelled keypoints are clicks -------------------------------------------------------------------

KP_NAMES = ["nose", "l_eye", "r_eye", "l_ear", "r_ear"]


def _kp_coco(tmp_path: Path) -> Path:
    """Two persons: one with no point labelled (COCO writes 0, 0, 0 for each), one with a single labelled point."""
    d = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
         "categories": [{"id": 1, "name": "person", "keypoints": KP_NAMES, "skeleton": [[1, 2]]}],
         "annotations": [
             {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 30, 60], "area": 1800, "iscrowd": 0,
              "keypoints": [0] * 15, "num_keypoints": 0},
             {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 10, 30, 60], "area": 1800, "iscrowd": 0,
              "keypoints": [60, 20, 2] + [0] * 12, "num_keypoints": 1}]}
    p = tmp_path / "kp.json"
    p.write_text(json.dumps(d))
    return p


def test_cost_counts_only_labelled_keypoints_from_coco(tmp_path: Path) -> None:
    ds = read_coco(_kp_coco(tmp_path))
    e = estimate_cost(ds)
    # by hand: 2 boxes at 7.0 s and 1 labelled point at 2.4 s (the 9 points (0, 0, 0) are not labelled)
    assert e.to_dict()["per_class"]["person"]["counts"]["keypoints"] == 1.0
    assert e.total_seconds == pytest.approx(2 * 7.0 + 2.4)
    code, out = run(["schema", "cost", str(tmp_path / "kp.json"), "--from", "coco", "--json"])
    assert code == 0, out
    assert json.loads(out)["strategies"]["as annotated"]["total_seconds"] == pytest.approx(16.4)


def test_cost_keypoint_counts_in_memory() -> None:
    """Visibility 2 and 1 are clicks, (0, 0, 0) and NaN are not; a keypoints strategy on a row without keypoints
    counts the class's names."""
    schema = LabelSchema(classes=(ClassDef("car"), ClassDef("person", keypoints=("a", "b", "c"))))
    kp = np.full((3, 3, 3), np.nan)
    kp[1] = [[10, 10, 2], [12, 12, 1], [0, 0, 0]]
    kp[2, 0] = [5, 5, 0]  # v = 0 with coordinates: not labelled either
    a = Annotations(image=np.zeros(3, np.int64), label=np.array([0, 1, 1]),
                    box=np.array([[0, 0, 5, 5], [8, 8, 20, 20], [np.nan] * 4]), keypoints=kp)
    ds = Dataset(schema=schema, images=Images(path=str_array(["a.png"]), width=np.array([50]),
                                              height=np.array([50])), annotations=a)
    e = estimate_cost(ds)
    assert e.counts[:, 3].tolist() == [0.0, 2.0]  # person: 2 labelled + 0 (the third row has none labelled)
    assert e.total_seconds == pytest.approx(2 * 7.0 + 2 * 2.4)
    kps = estimate_cost(ds, label_types={"car": ["keypoints"]})  # car names no keypoints: 0
    assert kps.counts[0, 3] == 0.0
    only = estimate_cost(ds.select(np.array([True, False, False])), label_types=["keypoints"])
    assert only.counts[0, 3] == 0.0
    # a person row without keypoints priced as keypoints: the class's 3 names
    boxes = ds.replace(annotations=a.with_columns(keypoints=np.full((3, 3, 3), np.nan)))
    assert estimate_cost(boxes, label_types=["keypoints"]).counts[1, 3] == 6.0


# ---- annotator throughput -----------------------------------------------------------------------------------------


def _timed(annotators: list[Any], times: list[Any]) -> Dataset:
    n = len(times)
    a = Annotations(image=np.zeros(n, np.int64), label=np.zeros(n, np.int64), box=np.tile([0, 0, 5, 5.0], (n, 1)),
                    annotator=obj_array(annotators), extra={"created": obj_array(times)})
    return Dataset(schema=LabelSchema.from_names(["a"]), images=Images(
        path=str_array(["a.png"]), width=np.array([50]), height=np.array([50])), annotations=a)


def test_throughput_rate_counts_timed_annotations() -> None:
    two = annotator_throughput(_timed(["x", "x"], ["2024-01-01T10:00:00", "2024-01-01T10:00:30"]))
    assert two.per_hour.tolist() == [120.0]  # one 30 s gap: 3600 / 30 (the old rate said 240)
    # gaps 30, 60, a 1000 s break, 20: 3 timed annotations in 110 s; 5 annotations in all
    tp = annotator_throughput(_timed(["x"] * 5, [0.0, 30.0, 90.0, 1090.0, 1110.0]))
    assert tp.n_annotations.tolist() == [5] and tp.active_seconds.tolist() == [110.0]
    assert tp.per_hour[0] == pytest.approx(3 / 110 * 3600)
    assert np.isnan(annotator_throughput(_timed(["x"], [0.0])).per_hour[0])


def test_throughput_nan_annotator_is_nobody() -> None:
    tp = annotator_throughput(_timed(["x", "x", np.nan, None, float("nan")], [0.0, 30.0, 60.0, 90.0, 120.0]))
    assert tp.annotators == ("x",)  # not an annotator named "nan"
    assert tp.n_without_time == 3
    assert "nan" not in json.dumps(tp.to_dict()["annotators"])


# ---- schema diff: class guidelines ---------------------------------------------------------------------------------


def _schemas(tmp_path: Path, old_note: str | None, new_note: str | None, new_class: str = "a") -> tuple[Path, Path]:
    paths = []
    for stem, note, cls in (("old", old_note, "a"), ("new", new_note, new_class)):
        text = "version: 1\nclasses:\n  - name: a\n" + (f"  - name: {cls}\n" if cls != "a" else "")
        if note is not None:
            text += f"class_guidelines:\n  a:\n    description: {note}\n"
        p = tmp_path / f"{stem}.yaml"
        p.write_text(text)
        paths.append(p)
    return paths[0], paths[1]


def test_diff_lists_class_guideline_changes(tmp_path: Path) -> None:
    old, new = _schemas(tmp_path, "old text", "NEW text")
    d = diff_schemas(read_schema_document(old), read_schema_document(new))
    assert not d.empty
    assert d.to_dict()["class_guidelines"] == {"a": {"description": {"old": "old text", "new": "NEW text"}}}
    # LabelSchemas hold no notes: the same as before
    assert diff_schemas(load_schema(old), load_schema(new)).empty
    added = diff_schemas(*(read_schema_document(p) for p in _schemas(tmp_path, None, "x")))
    assert dict(added.class_guidelines) == {"a": {"description": ("", "x")}}

    old, new = _schemas(tmp_path, "old text", "NEW text")
    code, out = run(["schema", "diff", str(old), str(new)])
    text = flat_text(out)
    assert code == 0, out
    assert "The schemas are the same." not in text and "Planned migration" not in text
    assert "class guidelines" in text and "NEW text" in text
    code, out = run(["schema", "diff", str(old), str(new), "--json"])
    got = json.loads(out)
    assert got["diff"]["empty"] is False and got["diff"]["class_guidelines"]["a"]["description"]["new"] == "NEW text"
    assert got["migration"]["steps"] == []


def test_diff_same_and_with_steps(tmp_path: Path) -> None:
    old, _ = _schemas(tmp_path, "same", "same")
    code, out = run(["schema", "diff", str(old), str(old)])
    assert code == 0 and out.strip() == "The schemas are the same."  # no empty "Planned migration" table
    old, new = _schemas(tmp_path, "same", "same", new_class="b")
    code, out = run(["schema", "diff", str(old), str(new)])
    assert code == 0 and "Planned migration" in flat_text(out) and "add_class" in flat_text(out)


# ---- validate: semantic polygon regions, crowd rows ---------------------------------------------------------------


def _road_coco(tmp_path: Path, label_types: str) -> tuple[Path, Path]:
    d = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
         "categories": [{"id": 1, "name": "road"}],
         "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 50, 100, 50], "area": 5000,
                          "iscrowd": 0, "segmentation": [[0, 50, 100, 50, 100, 100, 0, 100]]}]}
    p, s = tmp_path / "road.json", tmp_path / f"road_{label_types.replace(', ', '_')}.yaml"
    p.write_text(json.dumps(d))
    s.write_text(f"version: 1\nclasses:\n  - name: road\n    kind: semantic\n    label_types: [{label_types}]\n")
    return p, s


@pytest.mark.parametrize(("label_types", "expected"), [
    ("polygon, box", {}),  # a polygon region with COCO's box: valid (was wrong_kind "must be a mask")
    ("polygon", {"label_type_not_allowed": 1}),  # the box itself is not allowed, as for an object class
    ("", {}),  # any label type
])
def test_semantic_polygon_from_coco_is_a_region(tmp_path: Path, label_types: str, expected: dict[str, int]) -> None:
    data, schema = _road_coco(tmp_path, label_types)
    assert run_validate(read_coco(data), load_schema(schema)).counts() == expected
    code, out = run(["schema", "validate", str(data), "--from", "coco", "--schema", str(schema), "--json"])
    assert code == 0 and json.loads(out)["counts"] == expected


def test_semantic_polygon_not_allowed_is_wrong_kind(tmp_path: Path) -> None:
    data, schema = _road_coco(tmp_path, "mask")
    rep = run_validate(read_coco(data), load_schema(schema))
    assert rep.counts() == {"label_type_not_allowed": 2, "wrong_kind": 1}  # the box and the polygon; no region
    wrong = next(i for i in rep if i.type == "wrong_kind")
    assert "a mask, or a polygon" in wrong.message and wrong.field == "mask"


def test_validate_skips_crowd_rows_like_check() -> None:
    schema = LabelSchema(classes=(ClassDef("car"),), attributes=(AttributeDef("occluded", type="bool",
                                                                                required=True),))
    crowd = np.array([False, True, False, True])
    a = Annotations(image=np.zeros(4, np.int64), label=np.zeros(4, np.int64), box=np.tile([0, 0, 10, 10.0], (4, 1)),
                    iscrowd=crowd, attributes={"occluded": obj_array([True, None, None, np.nan])})
    ds = Dataset(schema=schema, images=Images(path=str_array(["a.png"]), width=np.array([50]),
                                              height=np.array([50])), annotations=a)
    rep = run_validate(ds, schema)
    assert [(i.type, i.annotation) for i in rep] == [("missing_required_attribute", 2)]  # not the crowd rows 1, 3
    iss = quality.check(ds, schema=schema, config=quality.CheckConfig(families=("consistency",)))
    assert [r["annotation"] for r in iss.rows() if r["type"] == "attribute_missing"] == [2]
