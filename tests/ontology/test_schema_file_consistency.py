"""The schema loader refuses definitions that contradict themselves, naming the file and the YAML path: an
attribute ``default`` that is not a value of the attribute, a semantic class that cannot hold a region, and a
skeleton edge from a keypoint to itself. Before, each of these loaded without an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow.errors import FormatError, MigrationError
from maslow.ontology import SetAttribute, load_schema, migrate
from maslow.sample import shapes

BAD = [
    pytest.param("attributes: [{name: t, type: bool, default: maybe}]", "attributes[0].default",
                 "must be true or false (a value the attribute allows) or absent, got 'maybe'", id="bool"),
    pytest.param("attributes: [{name: t, type: enum, values: [up, down], default: left}]", "attributes[0].default",
                 "must be one of up, down", id="enum"),
    pytest.param("attributes: [{name: t, type: number, default: 'ten'}]", "attributes[0].default",
                 "must be a number", id="number"),
    pytest.param("attributes: [{name: t, type: number, default: true}]", "attributes[0].default",
                 "must be a number", id="number-bool"),
    pytest.param("attributes: [{name: t, type: text, values: [a, b], default: c}]", "attributes[0].default",
                 "must be one of a, b", id="text-values"),
    pytest.param("attributes: [{name: t, type: text, default: [a]}]", "attributes[0].default",
                 "must be a string", id="text-list"),
    pytest.param("classes: [{name: road, kind: semantic, label_types: [box]}]", "classes[0].label_types",
                 "must allow mask (or polygon) for a semantic class", id="semantic-box"),
    pytest.param("classes: [{name: road, kind: semantic, label_types: [keypoints, tag]}]", "classes[0].label_types",
                 "must allow mask (or polygon)", id="semantic-points"),
    pytest.param("classes: [{name: p, keypoints: [a, b], skeleton: [[0, 1], [1, 1]]}]", "classes[0].skeleton[1]",
                 "must join two different keypoints, got [1, 1]", id="self-edge"),
]


@pytest.mark.parametrize(("text", "where", "message"), BAD)
def test_contradictions_are_refused_naming_the_file_and_path(tmp_path: Path, text: str, where: str,
                                                             message: str) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(text if text.startswith("classes") else f"classes: [{{name: a}}]\n{text}\n")
    with pytest.raises(FormatError) as e:
        load_schema(path)
    assert f"{path}, {where}: {message}" in str(e.value)


GOOD = [
    "attributes: [{name: t, type: bool, default: false}]",
    "attributes: [{name: t, type: bool, default: 'yes'}]",  # text that reads as a bool, as validate accepts
    "attributes: [{name: t, type: enum, values: ['1', '2'], default: 1}]",  # YAML's 1: its text is a value
    "attributes: [{name: t, type: number, default: 2.5}]",
    "attributes: [{name: t, type: number, values: ['0', '10', '1'], default: 3}]",  # CVAT's min, max, step
    "attributes: [{name: t, type: text, default: anything}]",
    "attributes: [{name: t, type: number, default: .nan}]",  # NaN is unset, as None
    "classes: [{name: road, kind: semantic, label_types: [mask]}]",
    "classes: [{name: road, kind: semantic, label_types: [polygon, tag]}]",
    "classes: [{name: road, kind: semantic}]",
    "classes: [{name: road, label_types: [box]}]",
    "classes: [{name: p, keypoints: [a, b], skeleton: [[0, 1], [1, 0]]}]",
]


@pytest.mark.parametrize("text", GOOD)
def test_consistent_definitions_load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(text if text.startswith("classes") else f"classes: [{{name: a}}]\n{text}\n")
    load_schema(path)


def test_a_set_attribute_step_refuses_a_bad_default_too() -> None:
    with pytest.raises(MigrationError, match=r"definition\.default: must be one of up, down"):
        migrate(shapes(4, seed=0), [SetAttribute({"name": "pose", "type": "enum", "values": ["up", "down"],
                                                  "default": "left"})])
