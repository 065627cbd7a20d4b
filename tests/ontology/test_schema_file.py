"""schema.yaml: load/save round trip, per-class notes, errors naming the file and YAML path, JSON Schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from maslow.core import AttributeDef, ClassDef, LabelSchema, Task
from maslow.errors import FormatError
from maslow.ontology import ClassNotes, load_schema, read_schema_document, save_schema, schema_json_schema
from maslow.sample import schema as shapes_schema


def rich() -> LabelSchema:
    return LabelSchema(
        classes=(ClassDef("person", label_types=("box", "keypoints"), supercategory="human",
                          keypoints=("nose", "eye"), skeleton=((0, 1),), color="#ff0000", id=1),
                 ClassDef("road", kind="semantic", label_types=("mask",))),
        tasks=(Task.KEYPOINTS, Task.SEMANTIC_SEGMENTATION),
        attributes=(AttributeDef("pose", type="enum", values=("standing", "sitting"), required=True,
                                 classes=("person",)), AttributeDef("age", type="number")),
        guidelines="Label every person.", version=4)


@pytest.mark.parametrize("schema", [rich(), shapes_schema(), LabelSchema.from_names(["a"])], ids=["rich", "shapes", "min"])
def test_round_trip(tmp_path: Path, schema: LabelSchema) -> None:
    notes = {schema.names[0]: ClassNotes("a thing", "box it whole", ("ex/1.jpg",))}
    save_schema(schema, tmp_path / "schema.yaml", class_notes=notes)
    doc = read_schema_document(tmp_path / "schema.yaml")
    assert doc.schema == schema
    assert doc.class_notes == notes
    assert load_schema(tmp_path / "schema.yaml") == schema


BAD = [
    pytest.param("classes:\n  - name: a\n  - name: b\n    kind: thing\n", r"classes\[1\]\.kind", id="kind"),
    pytest.param("classes:\n  - {name: a, label_types: [box, cube]}\n", r"classes\[0\]\.label_types\[1\]", id="ltype"),
    pytest.param("classes: [{name: a}, {name: a}]\n", r"classes\[1\]\.name.*unique", id="dup"),
    pytest.param("classes: [{name: a, colour: red}]\n", r"classes\[0\]\.colour.*unknown key", id="unknown-key"),
    pytest.param("classes: [{name: a, keypoints: [x], skeleton: [[0, 3]]}]\n", r"classes\[0\]\.skeleton\[0\]",
                 id="skeleton"),
    pytest.param("classes: [{name: a}]\nattributes: [{name: t, type: enum}]\n", r"attributes\[0\]\.values",
                 id="enum-no-values"),
    pytest.param("classes: [{name: a}]\nattributes: [{name: t, classes: [b]}]\n", r"attributes\[0\]\.classes\[0\]",
                 id="attr-class"),
    pytest.param("classes: [{name: a}]\nattributes: [{name: t, type: colour}]\n", r"attributes\[0\]\.type",
                 id="attr-type"),
    pytest.param("version: 0\nclasses: []\n", r"version", id="version"),
    pytest.param("tasks: [counting]\nclasses: []\n", r"tasks\[0\]", id="task"),
    pytest.param("classes: {a: 1}\n", r"classes.*must be a list", id="classes-map"),
    pytest.param("classes: [{name: a}]\nclass_guidelines: {b: {description: x}}\n", r"class_guidelines\.b",
                 id="notes-class"),
    pytest.param("classes: [\n  {name: a\n", r"line \d+.*malformed YAML", id="yaml"),
]


@pytest.mark.parametrize(("text", "match"), BAD)
def test_errors_name_file_and_yaml_path(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "schema.yaml"
    p.write_text(text)
    with pytest.raises(FormatError, match=match) as e:
        load_schema(p)
    assert str(p) in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="can't read"):
        load_schema(tmp_path / "nope.yaml")


def test_json_schema_accepts_saved_files_and_rejects_bad_ones(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    js = schema_json_schema()
    save_schema(rich(), tmp_path / "s.yaml", class_notes={"road": ClassNotes(guidelines="whole road")})
    jsonschema.validate(yaml.safe_load((tmp_path / "s.yaml").read_text()), js)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"classes": [{"name": "a", "kind": "thing"}]}, js)


def test_json_schema_shape() -> None:
    js = schema_json_schema()
    assert js["required"] == ["classes"]
    cls = js["properties"]["classes"]["items"]
    assert cls["properties"]["kind"]["enum"] == ["object", "semantic"]
    assert "mask" in cls["properties"]["label_types"]["items"]["enum"]
