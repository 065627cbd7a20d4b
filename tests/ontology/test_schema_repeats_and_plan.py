"""fix2: enum values and keypoint names must be unique (in the schema, the schema file, its JSON Schema, and as
the readers build schemas from files); a planned migration reorders classes only when their order changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from maslow import io
from maslow.cli.main import app
from maslow.core import AttributeDef, ClassDef, LabelSchema
from maslow.errors import FormatError, MaslowWarning, SchemaError
from maslow.ontology import load_schema, plan_migration, schema_json_schema

runner = CliRunner()


def test_repeated_enum_values_and_keypoint_names_are_refused() -> None:
    with pytest.raises(SchemaError, match=r"attribute 'colour': values\[2\] must be unique, 'red' repeats values\[0\]"):
        AttributeDef("colour", type="enum", values=("red", "blue", "red"))
    with pytest.raises(SchemaError, match=r"class 'person': keypoints\[1\] must be unique, 'eye' repeats keypoints\[0\]"):
        ClassDef("person", keypoints=("eye", "eye"))
    with pytest.raises(SchemaError, match="must be unique"):
        LabelSchema.from_dict({"classes": [{"name": "a", "keypoints": ["p", "p"]}]})
    # a CVAT number attribute's values are min, max and step: "0, 1, 1" is a range, not a repeat
    assert AttributeDef("speed", type="number", values=("0", "1", "1")).values == ("0", "1", "1")


@pytest.mark.parametrize(("body", "where"), [
    ("classes:\n  - name: a\n    keypoints: [p, q, p]\n", r"classes\[0\]\.keypoints\[2\]: must be unique"),
    ("classes:\n  - name: a\nattributes:\n  - name: c\n    type: enum\n    values: [r, g, r]\n",
     r"attributes\[0\]\.values\[2\]: must be unique"),
    ("classes:\n  - name: a\nattributes:\n  - name: c\n    values: [r, r]\n", r"attributes\[0\]\.values\[1\]")])
def test_the_loader_and_the_json_schema_refuse_repeats(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(body)
    with pytest.raises(FormatError, match=where) as e:
        load_schema(path)
    assert str(e.value).startswith(str(path))
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError, match="non-unique"):
        jsonschema.validate(yaml.safe_load(body), schema_json_schema())


def test_a_number_range_with_a_repeat_loads_and_validates(tmp_path: Path) -> None:
    body = "classes:\n  - name: a\nattributes:\n  - name: s\n    type: number\n    values: ['0', '1', '1']\n"
    (tmp_path / "schema.yaml").write_text(body)
    assert load_schema(tmp_path / "schema.yaml").attributes[0].values == ("0", "1", "1")
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(yaml.safe_load(body), schema_json_schema())


def test_coco_repeated_keypoint_names_are_renamed_and_reported(tmp_path: Path) -> None:
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 3, 3], "area": 9, "iscrowd": 0,
                             "keypoints": [1, 1, 2, 3, 3, 1], "num_keypoints": 2}],
            "categories": [{"id": 1, "name": "p", "keypoints": ["eye", "eye"], "skeleton": [[1, 2]]}]}
    path = tmp_path / "a.json"
    path.write_text(json.dumps(coco))
    from maslow.io.coco import parse

    ds, report = parse(path)
    assert ds.schema.classes[0].keypoints == ("eye", "eye (2)") and ds.schema.classes[0].skeleton == ((0, 1),)
    assert ds.annotations.keypoints is not None and ds.annotations.keypoints[0].tolist() == [[1, 1, 2], [3, 3, 1]]
    assert report.counts() == {"coco_duplicate_keypoint_name": 1}
    assert report.issues[0].record == "categories[0] (id=1)" and report.issues[0].field == "keypoints"
    with pytest.raises(FormatError, match="keypoint names must be unique"):
        io.read_coco(path, strict=True)


def test_yolo_repeated_kpt_names_are_renamed_and_reported(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    (tmp_path / "images/train").mkdir(parents=True)
    (tmp_path / "labels/train").mkdir(parents=True)
    Image.new("RGB", (10, 10)).save(tmp_path / "images/train/x.jpg")
    (tmp_path / "labels/train/x.txt").write_text("0 0.5 0.5 0.2 0.2 0.4 0.4 2 0.5 0.5 2\n")
    (tmp_path / "data.yaml").write_text("path: .\ntrain: images/train\nnames: {0: p}\nkpt_shape: [2, 3]\n"
                                        "kpt_names: {0: [eye, eye]}\n")
    res = runner.invoke(app, ["check", str(tmp_path / "data.yaml"), "--from", "yolo", "--json"])
    assert res.exit_code == 0, res.output
    assert "yolo_duplicate_kpt_name" in res.output  # the import warning
    with pytest.warns(MaslowWarning, match="yolo_duplicate_kpt_name"):
        ds = io.read(tmp_path / "data.yaml", "yolo")
    assert ds.schema.classes[0].keypoints == ("eye", "eye (2)")
    with pytest.raises(FormatError, match=r"data.yaml, field 'kpt_names': kpt_names of class 0 must be unique"):
        io.read(tmp_path / "data.yaml", "yolo", strict=True)


CVAT = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
  <meta><task><labels>
    <label><name>car</name><type>rectangle</type><attributes>
      <attribute><name>colour</name><input_type>select</input_type><default_value>red</default_value><values>red
blue
red</values></attribute>
      <attribute><name>speed</name><input_type>number</input_type><default_value>0</default_value><values>0
1
1</values></attribute></attributes></label>
    <label><name>person</name><type>skeleton</type><attributes></attributes></label>
    <label><name>nose</name><type>points</type><parent>person</parent><attributes></attributes></label>
    <label><name>nose</name><type>points</type><parent>person</parent><attributes></attributes></label>
  </labels></task></meta>
  <image id="0" name="a.jpg" width="10" height="10">
    <box label="car" occluded="0" xtl="1" ytl="1" xbr="5" ybr="5" z_order="0"><attribute name="colour">blue</attribute>
    </box>
    <skeleton label="person" z_order="0"><points label="nose" occluded="0" outside="0" points="2,3"></points>
    </skeleton>
  </image>
</annotations>
"""


def test_cvat_repeated_values_and_points_are_read_once_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "a.xml"
    path.write_text(CVAT)
    from maslow.io.cvat import parse

    ds, report = parse(path)
    assert ds.schema.attribute("colour").values == ("red", "blue")
    assert ds.schema.attribute("speed").values == ("0", "1", "1")
    assert ds.schema.classes[ds.schema.index("person")].keypoints == ("nose",)
    assert ds.annotations.keypoints is not None and ds.annotations.keypoints[1, 0].tolist() == [2, 3, 2]
    assert report.counts() == {"cvat_repeated_value": 1, "cvat_repeated_point": 1}
    assert {(i.record, i.field) for i in report} == {("label 'car'", "colour"), ("label 'person'", "points")}


def test_labelstudio_repeated_choice_is_a_format_error(tmp_path: Path) -> None:
    task = [{"id": 1, "data": {"image": "a.jpg"}, "annotations": [{"result": [{
        "id": "r1", "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 10,
        "original_height": 10, "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["car"]}}]}]}]
    (tmp_path / "a.json").write_text(json.dumps(task))
    (tmp_path / "label_config.xml").write_text(
        '<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
        '<Label value="car"/></RectangleLabels><Choices name="colour" toName="image" perRegion="true">'
        '<Choice value="red"/><Choice value="blue"/><Choice value="red"/></Choices></View>')
    with pytest.raises(FormatError, match=r"label_config.xml, label_config, field 'colour': .*'red' twice"):
        io.read_labelstudio(tmp_path / "a.json")
    res = runner.invoke(app, ["check", str(tmp_path / "a.json"), "--from", "labelstudio"])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_plan_has_no_reorder_step_when_the_order_is_kept(tmp_path: Path) -> None:
    old = LabelSchema.from_names(["a", "b", "c"])
    assert [s.op for s in plan_migration(old, LabelSchema.from_names(["a", "b", "c", "d"])).steps] == ["add_class"]
    assert [s.op for s in plan_migration(old, LabelSchema.from_names(["a", "c"])).steps] == ["drop_class"]
    assert [s.op for s in plan_migration(old, old).steps] == []
    moved = plan_migration(old, LabelSchema.from_names(["c", "a", "b"]))
    assert [s.op for s in moved.steps] == ["reorder_classes"]
    from maslow.ontology import save_schema

    save_schema(old, tmp_path / "old.yaml")
    save_schema(LabelSchema.from_names(["a", "b", "c", "d"]), tmp_path / "new.yaml")
    res = runner.invoke(app, ["schema", "diff", str(tmp_path / "old.yaml"), str(tmp_path / "new.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    assert [s["op"] for s in json.loads(res.stdout)["migration"]["steps"]] == ["add_class"]
