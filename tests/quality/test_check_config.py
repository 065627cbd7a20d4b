"""fix2: one rule for attribute values in ``maslow schema validate`` and ``maslow check``; rows without an
annotator name nobody in the class counts; ``CheckConfig`` checks every field and reads YAML (``--config``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from maslow.cli.main import app
from maslow.core import AttributeDef, ClassDef, Dataset, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.ontology import validate
from maslow.quality import CheckConfig
from maslow.quality.consistency import check_attributes, class_counts

runner = CliRunner()
VALUES: list[Any] = [True, False, 0, 1, 2, 2.5, np.int64(1), np.float64(0.0), "yes", "No", " TRUE ", "1", "0",
                     "3.5", "-4e2", " 7 ", "nan", "", "maybe", "red", "blue", "7", 7]
SCHEMA = LabelSchema(classes=(ClassDef("car"),), attributes=(
    AttributeDef("b", type="bool"), AttributeDef("x", type="number"),
    AttributeDef("e", type="enum", values=("red", "blue", "7")), AttributeDef("t", type="text"),
    AttributeDef("tv", type="text", values=("red", "7"))))


def _dataset(values: list[Any]) -> Dataset:
    n = len(values)
    attrs = {a.name: obj_array(values) for a in SCHEMA.attributes}
    return Dataset(SCHEMA, Images(path=["p.jpg"], width=[9], height=[9]),
                   Annotations(image=[0] * n, label=[0] * n, attributes=attrs), root=None)


def test_validate_and_check_judge_attribute_values_alike() -> None:
    ds = _dataset(VALUES)
    by_validate = {(i.field.removeprefix("attributes."), i.annotation) for i in validate(ds, SCHEMA)
                   if i.type == "value_not_allowed"}
    by_check = set()
    for part in check_attributes(ds, schema=SCHEMA):
        if part.type[0] == "attribute_invalid":
            for r, reason in zip(part.annotation.tolist(), part.reason.tolist(), strict=True):
                by_check.add((reason.split("'")[1], r))
    assert by_validate == by_check
    bad = {name: sorted(r for n, r in by_check if n == name) for name in ("b", "x", "e", "t", "tv")}
    # text that reads as the type fits (XML formats hold only text); the rest does not
    assert [VALUES[r] for r in bad["b"]] == [2, 2.5, "3.5", "-4e2", " 7 ", "nan", "", "maybe", "red", "blue", "7", 7]
    assert [VALUES[r] for r in bad["x"]] == [True, False, "yes", "No", " TRUE ", "nan", "", "maybe", "red", "blue"]
    assert [VALUES[r] for r in bad["e"]] == [v for v in VALUES if v not in ("red", "blue", "7", 7)]
    assert bad["t"] == []
    assert [VALUES[r] for r in bad["tv"]] == [v for v in VALUES if str(v) not in ("red", "7")]


def test_both_commands_agree_on_a_file(tmp_path: Path) -> None:
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}], "categories": [{"id": 1,
            "name": "car"}], "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2],
                                              "area": 4, "iscrowd": 0, "attributes": {"occluded": v, "speed": s}}
                                             for i, (v, s) in enumerate([("yes", "3.5"), ("maybe", 2), (1, "fast")])]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    (tmp_path / "schema.yaml").write_text(yaml.safe_dump({"classes": [{"name": "car"}], "attributes": [
        {"name": "occluded", "type": "bool"}, {"name": "speed", "type": "number"}]}))
    data = [str(tmp_path / "a.json"), "--from", "coco"]
    res = runner.invoke(app, ["schema", "validate", *data, "--schema", str(tmp_path / "schema.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    validated = {(i["annotation"], i["field"]) for i in json.loads(res.stdout)["issues"]}
    res = runner.invoke(app, ["check", *data, "--schema", str(tmp_path / "schema.yaml"), "--json", "--top", "99"])
    assert res.exit_code == 0, res.output
    checked = {(i["annotation"], "attributes." + i["reason"].split("'")[1]) for i in json.loads(res.stdout)["issues"]
               if i["type"] == "attribute_invalid"}
    assert validated == checked == {(1, "attributes.occluded"), (2, "attributes.speed")}


def test_rows_without_an_annotator_name_nobody_in_class_counts() -> None:
    who = ["a", "a", "b", "b", None, float("nan"), "a", None, float("nan"), np.float32("nan")]
    image = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
    ds = Dataset(LabelSchema.from_names(["car"]), Images(path=["0.jpg", "1.jpg", "2.jpg"], width=[9] * 3,
                                                          height=[9] * 3),
                 Annotations(image=image, label=[0] * len(who), box=np.tile([1.0, 1, 4, 4], (len(who), 1)),
                             annotator=obj_array(who)), root=None)
    named = [{w for w, i in zip(who, image, strict=True) if i == img and isinstance(w, str)} for img in range(3)]
    expect = [image.count(img) / max(len(named[img]), 1) for img in range(3)]
    assert class_counts(ds)[:, 0].tolist() == expect == [3.0, 3.0, 1.0]  # before: "None" and "nan" were raters


@pytest.mark.parametrize(("field", "value"), [
    ("size_z", -1.0), ("count_z", 0), ("count_z", math.nan), ("min_side", -0.5), ("bounds_tolerance", math.inf),
    ("keypoint_tolerance", -1), ("min_log_scale", -0.1), ("max_polygon_vertices", -3), ("min_class_count", 2.5),
    ("min_images", True), ("max_categories", 1), ("bias_cramers_v", 1.5), ("annotator_bias_v", -0.1),
    ("bias_p", 0.0), ("duplicate_iou", 1.2), ("families", "geometry"), ("families", ("shape",)),
    ("exclusive_attributes", (("a",),)), ("exclusive_attributes", (("a", 3),)),
    ("forbidden_combinations", ((("a", None),),)), ("forbidden_combinations", ((),)),
    ("bias_columns", ("",)), ("size_z", "5")])
def test_every_field_is_checked(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"CheckConfig\.{field}"):
        CheckConfig(**{field: value})


def test_config_from_yaml_round_trips_and_names_the_bad_key(tmp_path: Path) -> None:
    cfg = CheckConfig(families=("consistency",), size_z=4.0, exclusive_attributes=(("occluded", "truncated"),),
                      forbidden_combinations=((("colour", "red"), ("occluded", True)),), bias_columns=("site",))
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert CheckConfig.from_yaml(path) == cfg
    assert CheckConfig.from_dict({"families": ["bias"]}) == CheckConfig(families=("bias",))
    for text, where in [("size_zz: 3\n", "size_zz"), ("count_z: -2\n", "count_z"),
                        ("forbidden_combinations: [[[colour]]]\n", r"forbidden_combinations\[0\]\[0\]"),
                        ("families: [geometry, nope]\n", r"families\[1\]"), ("- 1\n", "mapping")]:
        path.write_text(text)
        with pytest.raises(FormatError, match=where) as e:
            CheckConfig.from_yaml(path)
        assert str(e.value).startswith(str(path))


def _planted(tmp_path: Path) -> list[str]:
    """A COCO file of 2 images whose first box has occluded and truncated both true."""
    anns = [{"id": i + 1, "image_id": i % 2 + 1, "category_id": 1, "bbox": [1, 1, 3, 3], "area": 9, "iscrowd": 0,
             "attributes": {"occluded": i == 0, "truncated": i == 0}} for i in range(4)]
    coco = {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 10, "height": 10} for i in (1, 2)],
            "categories": [{"id": 1, "name": "car"}], "annotations": anns}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    return [str(tmp_path / "a.json"), "--from", "coco", "--json"]


def test_check_config_option(tmp_path: Path) -> None:
    data = _planted(tmp_path)
    res = runner.invoke(app, ["check", *data])
    assert res.exit_code == 0 and "attribute_conflict" not in json.loads(res.stdout)["counts"]
    (tmp_path / "rules.yaml").write_text("families: [consistency]\nexclusive_attributes: [[occluded, truncated]]\n")
    res = runner.invoke(app, ["check", *data, "--config", str(tmp_path / "rules.yaml")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["counts"] == {"attribute_conflict": 1} and out["issues"][0]["annotation"] == 0
    (tmp_path / "rules.yaml").write_text("exclusive_attributes: [[occluded]]\n")
    res = runner.invoke(app, ["check", *data, "--config", str(tmp_path / "rules.yaml")])
    assert res.exit_code == 2 and "exclusive_attributes[0]" in res.output and "rules.yaml" in res.output
