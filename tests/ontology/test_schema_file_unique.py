"""Audit: the schema loader refuses what the published JSON Schema refuses (repeated label types), and says how
to write a YAML boolean as a string."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from maslow.errors import FormatError
from maslow.ontology import load_schema, schema_json_schema


def test_repeated_label_types_are_refused_by_the_loader_and_the_json_schema(tmp_path: Path) -> None:
    text = "classes:\n  - name: a\n    label_types: [box, polygon, box]\n"
    match = r"classes\[0\]\.label_types\[2\]: must be unique, 'box' repeats classes\[0\]\.label_types\[0\]"
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    with pytest.raises(FormatError, match=match) as e:
        load_schema(path)
    assert "schema.yaml" in str(e.value)
    jsonschema = pytest.importorskip("jsonschema")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(text), schema_json_schema())


def test_yaml_boolean_value_gets_a_quoting_hint(tmp_path: Path) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text("classes:\n  - name: a\nattributes:\n  - name: ok\n    type: enum\n    values: [yes, no]\n")
    with pytest.raises(FormatError, match=r"attributes\[0\]\.values\[0\]: must be a string, got True \(quote it"):
        load_schema(path)
    path.write_text("classes:\n  - name: a\nattributes:\n  - name: ok\n    type: enum\n    values: ['yes', 'no']\n")
    assert load_schema(path).attributes[0].values == ("yes", "no")
