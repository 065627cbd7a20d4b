"""Schema and migration files round-trip for any text (unicode, quotes, line breaks, empty guidelines), and
damaged files are refused naming the file and the YAML path of the bad value."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow.core import AttributeDef, ClassDef, LabelSchema, Task
from maslow.errors import FormatError
from maslow.ontology import (
    ClassNotes,
    Migration,
    RenameClass,
    UpdateSchema,
    load_migration,
    load_schema,
    read_schema_document,
    save_migration,
    save_schema,
)
from tests.ontology.randomdata import random_dataset, random_schema
from tests.ontology.test_migrate_properties import random_step

FEW = settings(max_examples=60, deadline=None)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
NAME = TEXT.filter(bool)
DEFAULT = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | TEXT
DEFAULTS = {"bool": st.booleans(), "number": st.integers(-(2**70), 2**70) | st.floats(allow_nan=False),
            "text": DEFAULT, "enum": st.none()}


@st.composite
def schemas(draw: st.DrawFn) -> tuple[LabelSchema, dict[str, ClassNotes]]:
    names = draw(st.lists(NAME, max_size=4, unique=True))
    classes = []
    for n in names:
        kps = tuple(draw(st.lists(NAME, max_size=3, unique=True)))
        pairs = st.tuples(st.integers(0, len(kps) - 1), st.integers(0, len(kps) - 1)).filter(lambda p: p[0] != p[1])
        kind = draw(st.sampled_from(["object", "semantic"]))
        types = draw(st.lists(st.sampled_from(["box", "mask", "polygon", "keypoints", "tag"]), unique=True,
                              max_size=3))
        if kind == "semantic" and types and not {"mask", "polygon"} & set(types):
            types.append("mask")  # a semantic class is a region: the loader refuses it otherwise
        classes.append(ClassDef(
            n, kind=kind, label_types=tuple(types), supercategory=draw(TEXT), keypoints=kps,
            skeleton=tuple(draw(st.lists(pairs, max_size=2))) if len(kps) > 1 else (),
            color=draw(st.sampled_from(["", "#a0B1c2"])), id=draw(st.none() | st.integers(-5, 2**40))))
    attrs = []
    for a in draw(st.lists(NAME, max_size=3, unique=True)):
        type_ = draw(st.sampled_from(["bool", "enum", "number", "text"]))
        values = tuple(draw(st.lists(TEXT, min_size=type_ == "enum", max_size=3, unique=True)))
        default = draw(st.none() | (st.sampled_from(values) if values and type_ in ("enum", "text") else
                                    DEFAULTS[type_]))  # a value of the attribute: the loader refuses others
        attrs.append(AttributeDef(a, type=type_, values=values, required=draw(st.booleans()),
                                  classes=tuple(draw(st.lists(st.sampled_from(names), unique=True, max_size=2)))
                                  if names else (), default=default))
    tasks = tuple(draw(st.lists(st.sampled_from(list(Task)), min_size=1, max_size=3, unique=True)))
    schema = LabelSchema(classes=tuple(classes), tasks=tasks, attributes=tuple(attrs), guidelines=draw(TEXT),
                         version=draw(st.integers(1, 2**40)))
    noted = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    notes = {n: ClassNotes(draw(TEXT), draw(TEXT), tuple(draw(st.lists(TEXT, max_size=2)))) for n in noted}
    return schema, {k: v for k, v in notes.items() if v.to_dict()}


@FEW
@given(schemas())
def test_schema_files_round_trip(pair: tuple[LabelSchema, dict[str, ClassNotes]]) -> None:
    schema, notes = pair
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "schema.yaml"
        save_schema(schema, path, class_notes=notes)
        doc = read_schema_document(path)
        assert doc.schema == schema and doc.class_notes == notes
        assert [type(a.default) for a in doc.schema.attributes] == [type(a.default) for a in schema.attributes]
        save_schema(doc.schema, Path(tmp) / "again.yaml", class_notes=doc.class_notes)
        assert (Path(tmp) / "again.yaml").read_bytes() == path.read_bytes()  # saving what was read: the same file
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["again.yaml", "schema.yaml"]  # no temporary files


@FEW
@given(st.integers(0, 2**32 - 1), st.lists(NAME, min_size=1, max_size=3))
def test_migration_files_round_trip(seed: int, names: list[str]) -> None:
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(int(rng.integers(1, 5))):
        schema = random_schema(rng, n_classes=int(rng.integers(1, 4)))
        steps.append(random_step(rng, random_dataset(rng, schema)))
    steps.append(RenameClass(names[0], names[-1]))
    steps.append(UpdateSchema({"guidelines": names[0], "tasks": ["keypoints"]}))
    mig = Migration(tuple(steps), from_version=int(rng.integers(1, 9)), to_version=None, description=names[-1])
    with tempfile.TemporaryDirectory() as tmp:
        save_migration(mig, Path(tmp) / "m.yaml")
        assert load_migration(Path(tmp) / "m.yaml") == mig


def _bad(tmp_path: Path, data: Any) -> FormatError:
    p = tmp_path / "schema.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(FormatError) as e:
        load_schema(p)
    assert str(e.value).startswith(f"{p}, "), e.value
    return e.value


GOOD: dict[str, Any] = {"version": 2, "tasks": ["detection"], "guidelines": "g",
                        "classes": [{"name": "a", "kind": "object", "label_types": ["box"], "keypoints": ["p", "q"],
                                     "skeleton": [[0, 1]], "supercategory": "s", "color": "#000000", "id": 1}],
                        "attributes": [{"name": "t", "type": "enum", "values": ["x"], "required": True,
                                        "classes": ["a"]}],
                        "class_guidelines": {"a": {"description": "d", "guidelines": "g", "examples": ["e.jpg"]}}}
BAD_VALUES = [({}, "classes"), (None, "classes"), ("a", "classes"), (0, "version"), ("2", "version"),
              ([], "tasks"), (["x"], "tasks[0]"), (3, "guidelines"), (3, "attributes"), ([3], "attributes[0]"),
              ([{"name": 1}], "classes[0].name"), ([{"name": ""}], "classes[0].name"), ([{}], "classes[0].name")]
PATHS = [("classes", 0, "kind", "stuff"), ("classes", 0, "label_types", ["cube"]), ("classes", 0, "keypoints", 3),
         ("classes", 0, "keypoints", ["p", "p"]), ("classes", 0, "skeleton", [[0, 2]]),
         ("classes", 0, "skeleton", [[0, True]]), ("classes", 0, "id", "1"),
         ("classes", 0, "color", 5), ("classes", 0, "supercategory", ["x"]), ("classes", 0, "nam", "a"),
         ("attributes", 0, "type", "colour"), ("attributes", 0, "values", ["x", "y", "x"]),
         ("attributes", 0, "values", "x"), ("attributes", 0, "required", "yes"),
         ("attributes", 0, "classes", ["b"]), ("attributes", 0, "name", None), ("attributes", 0, "extra", 1)]


@pytest.mark.parametrize(("value", "where"), [pytest.param(v, w, id=f"{w}={v!r}") for v, w in BAD_VALUES])
def test_a_bad_top_level_value_is_named(tmp_path: Path, value: Any, where: str) -> None:
    key = where.split("[")[0].split(".")[0]
    data = {**GOOD, key: value}
    assert f", {where}:" in str(_bad(tmp_path, data))


@pytest.mark.parametrize(("table", "row", "key", "value"), PATHS, ids=[f"{t}.{k}={v!r}" for t, _, k, v in PATHS])
def test_a_bad_value_in_a_class_or_attribute_is_named(tmp_path: Path, table: str, row: int, key: str,
                                                      value: Any) -> None:
    data = {**GOOD, table: [dict(GOOD[table][0], **{key: value})]}
    e = str(_bad(tmp_path, data))
    assert f", {table}[{row}].{key}" in e, e
