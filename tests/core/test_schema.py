"""LabelSchema, ClassDef, AttributeDef: validation, lookup, to_dict/from_dict."""

from __future__ import annotations

import json
from typing import Any

import pytest

from maslow.core import AttributeDef, ClassDef, LabelSchema, LabelType, Task
from maslow.errors import SchemaError, UnknownLabelError
from maslow.sample import schema as shapes_schema


def rich_schema() -> LabelSchema:
    return LabelSchema(
        classes=(
            ClassDef("person", label_types=("box", "keypoints"), supercategory="human",
                     keypoints=("nose", "left_eye", "right_eye"), skeleton=((0, 1), (0, 2)), color="#ff0000", id=1),
            ClassDef("road", kind="semantic", label_types=("mask",), id=7),
            ClassDef("cat"),
        ),
        tasks=(Task.KEYPOINTS, "detection"),
        attributes=(
            AttributeDef("occluded", type="bool", default=False),
            AttributeDef("breed", type="enum", values=("tabby", "siamese"), required=True, classes=("cat",)),
            AttributeDef("age", type="number"),
            AttributeDef("note"),
        ),
        guidelines="Box every person.",
        version=3,
    )


@pytest.mark.parametrize("schema", [rich_schema(), shapes_schema(), LabelSchema.from_names(["a", "b"], task="classification")],
                         ids=["rich", "shapes", "plain"])
def test_to_dict_from_dict_round_trip_through_json(schema: LabelSchema) -> None:
    d = schema.to_dict()
    back = LabelSchema.from_dict(json.loads(json.dumps(d)))
    assert back == schema
    assert back.to_dict() == d
    assert back.names == schema.names and back.tasks == schema.tasks


def test_to_dict_is_compact_and_json_safe() -> None:
    d = LabelSchema.from_names(["a"]).to_dict()
    assert d == {"version": 1, "tasks": ["detection"], "classes": [{"name": "a"}], "attributes": [], "guidelines": ""}
    rich = rich_schema().to_dict()
    assert rich["classes"][0]["skeleton"] == [[0, 1], [0, 2]]
    assert rich["classes"][1] == {"name": "road", "kind": "semantic", "label_types": ["mask"], "id": 7}
    assert rich["attributes"][1] == {"name": "breed", "type": "enum", "values": ["tabby", "siamese"], "required": True,
                                     "classes": ["cat"]}


def test_from_names_index_and_lookup() -> None:
    s = LabelSchema.from_names(["cat", "dog"], task=Task.MULTILABEL, ids=[3, 9])
    assert s.names == ("cat", "dog") and s.task is Task.MULTILABEL
    assert [c.id for c in s.classes] == [3, 9]
    assert s.index("dog") == 1 and "cat" in s and "bird" not in s
    assert s.tasks == (Task.MULTILABEL,)


def test_unknown_label_error_is_readable_and_catchable_as_key_error() -> None:
    s = LabelSchema.from_names(["cat", "dog"])
    with pytest.raises(UnknownLabelError) as info:
        s.index("bird")
    assert str(info.value) == "class 'bird' is not in the schema; known: cat, dog"
    assert isinstance(info.value, KeyError) and isinstance(info.value, SchemaError)
    with pytest.raises(KeyError):
        s.index("horse")
    with pytest.raises(UnknownLabelError, match="attribute 'colour' is not in the schema"):
        s.attribute("colour")
    assert rich_schema().attribute("breed").values == ("tabby", "siamese")


def test_unknown_label_message_lists_at_most_20_names() -> None:
    s = LabelSchema.from_names([f"c{i}" for i in range(30)])
    with pytest.raises(UnknownLabelError) as info:
        s.index("x")
    assert "c19" in str(info.value) and "c20" not in str(info.value)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda: LabelSchema.from_names(["a", "b", "a"]),
                     r"schema\.classes\[2\]: name 'a' must be unique, it repeats class 0", id="duplicate-class"),
        pytest.param(lambda: LabelSchema(classes=(ClassDef("a"),), attributes=(AttributeDef("x"), AttributeDef("x"))),
                     r"schema\.attributes: names must be unique", id="duplicate-attribute"),
        pytest.param(lambda: LabelSchema(classes=(ClassDef("a"),), tasks=()), r"schema\.tasks: must name at least one",
                     id="no-task"),
        pytest.param(lambda: LabelSchema(classes=(ClassDef("a"),), tasks=("segmentation",)),
                     r"schema\.tasks: each must be one of detection, .*got 'segmentation'", id="bad-task"),
        pytest.param(lambda: LabelSchema(classes=("a",)), r"schema\.classes\[0\]: must be a ClassDef, got str",  # type: ignore[arg-type]
                     id="class-not-classdef"),
        pytest.param(lambda: ClassDef(""), r"class name must be a non-empty str, got ''", id="empty-name"),
        pytest.param(lambda: ClassDef(3), r"class name must be a non-empty str, got 3", id="int-name"),  # type: ignore[arg-type]
        pytest.param(lambda: ClassDef("a", kind="thing"), r"class 'a': kind must be 'object' or 'semantic', got 'thing'",
                     id="bad-kind"),
        pytest.param(lambda: ClassDef("a", label_types=("box", "cuboid")), r"class 'a': unknown label type 'cuboid'",
                     id="bad-label-type"),
        pytest.param(lambda: ClassDef("a", keypoints=("x", "y"), skeleton=((0, 2),)),
                     r"class 'a': skeleton pair \(0, 2\) must index keypoints 0\.\.1", id="skeleton-out-of-range"),
        pytest.param(lambda: ClassDef("a", keypoints=("x", "y"), skeleton=((-1, 0),)),
                     r"class 'a': skeleton pair \(-1, 0\)", id="skeleton-negative"),
        pytest.param(lambda: ClassDef("a", skeleton=((0, 1),)), r"must index keypoints 0\.\.-1", id="skeleton-no-keypoints"),
        pytest.param(lambda: ClassDef("a", keypoints=("x", "y", "z"), skeleton=((0, 1, 2),)),  # type: ignore[arg-type]
                     r"class 'a': skeleton entries must be pairs", id="skeleton-triple"),
        pytest.param(lambda: AttributeDef("a", type="colour"), r"attribute 'a': type must be bool\|enum\|number\|text",
                     id="bad-attribute-type"),
        pytest.param(lambda: AttributeDef(""), r"attribute name must be a non-empty str", id="empty-attribute-name"),
    ],
)
def test_invalid_schemas_raise_schema_error(make: Any, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        make()


@pytest.mark.parametrize(
    ("d", "match"),
    [
        pytest.param({}, r"schema: malformed \(KeyError: 'classes'\)", id="no-classes"),
        pytest.param({"classes": [{"label": "a"}]}, r"schema: malformed \(KeyError: 'name'\)", id="class-without-name"),
        pytest.param({"classes": ["cat"]}, r"schema: malformed \(TypeError", id="class-as-string"),
        pytest.param({"classes": [{"name": "a", "id": "one"}]}, r"schema: malformed \(ValueError", id="bad-id"),
        pytest.param({"classes": [{"name": "a", "skeleton": [[0]]}]}, r"schema: malformed \(ValueError", id="bad-skeleton"),
        pytest.param({"classes": [{"name": "a"}], "attributes": [{"type": "bool"}]}, r"schema: malformed \(KeyError",
                     id="attribute-without-name"),
        pytest.param({"classes": [{"name": "a"}], "attributes": ["x"]}, r"schema: malformed", id="attribute-as-string"),
        pytest.param({"classes": [{"name": "a"}], "tasks": ["bogus"]}, r"schema\.tasks: each must be one of", id="bad-task"),
        pytest.param({"classes": [{"name": "a", "kind": "blob"}]}, r"class 'a': kind must be", id="bad-kind"),
        pytest.param({"classes": [{"name": "a"}, {"name": "a"}]}, r"name 'a' must be unique", id="duplicate"),
        pytest.param([1, 2], r"schema: malformed", id="not-a-mapping"),
    ],
)
def test_from_dict_refuses_malformed_input_with_schema_error(d: Any, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        LabelSchema.from_dict(d)


def test_schema_is_frozen_hashable_and_compared_by_value() -> None:
    a, b = LabelSchema.from_names(["x", "y"]), LabelSchema.from_names(["x", "y"])
    assert a == b and hash(a) == hash(b)
    assert a != LabelSchema.from_names(["y", "x"])
    with pytest.raises(AttributeError):
        a.version = 2  # type: ignore[misc]
    assert a.with_classes([ClassDef("z")]).names == ("z",) and a.names == ("x", "y")


def test_label_type_values_are_what_classdef_accepts() -> None:
    c = ClassDef("a", label_types=tuple(t.value for t in LabelType))
    assert set(c.label_types) == {"box", "mask", "polygon", "keypoints", "tag"}


def test_a_nan_default_is_no_default_and_equal_schemas_compare_equal() -> None:
    from maslow.core.schema import AttributeDef

    a = AttributeDef("size", type="number", default=float("nan"))
    b = AttributeDef("size", type="number", default=float("nan"))  # another NaN object: NaN != NaN
    assert a.default is None and a == b
    from dataclasses import replace

    base = LabelSchema.from_names(["x"])
    assert replace(base, attributes=(a,)) == replace(base, attributes=(b,))
