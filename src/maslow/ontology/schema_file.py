"""The schema file, ``schema.yaml``: a versioned, human-edited label schema.

Layout (every key but ``classes`` is optional)::

    version: 3                       # bumped by each migration
    tasks: [detection]               # detection | instance_segmentation | semantic_segmentation | keypoints |
                                     # classification | multilabel
    guidelines: |                    # free text for annotators
      Box every visible cell.
    classes:
      - name: crack
        kind: object                 # object (countable) | semantic (stuff: one region per image)
        label_types: [box, polygon]  # box | mask | polygon | keypoints | tag; empty = any
        supercategory: defect
        keypoints: [start, end]      # names, in order, each once
        skeleton: [[0, 1]]           # 0-based pairs of keypoint indexes
        color: "#ff0000"
        id: 3                        # the id a source format gave the class
    attributes:
      - name: crack_type
        type: enum                   # bool | enum | number | text
        values: [longitudinal, transverse]   # enum and text: the allowed values, each once
        required: true
        classes: [crack]             # empty = every class
    class_guidelines:                # per-class notes for annotators (kept beside the schema, not in it)
      crack:
        description: A visible fracture line.
        guidelines: Draw one polygon per connected crack.
        examples: [examples/crack_01.jpg]

Errors name the file and the YAML path of the offending value (``classes[3].kind``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maslow.core.atomic import write_text as write_text_atomic
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, LabelType, Task, attribute_value_ok
from maslow.core.yamlfile import read_yaml
from maslow.errors import FormatError, SchemaError
from maslow.ontology._step import dump_yaml, plain

_CLASS_KEYS = {"name", "kind", "label_types", "supercategory", "keypoints", "skeleton", "color", "id"}
_ATTR_KEYS = {"name", "type", "values", "required", "classes", "default"}
_TOP_KEYS = {"version", "tasks", "guidelines", "classes", "attributes", "class_guidelines"}
_NOTE_KEYS = {"description", "guidelines", "examples"}


@dataclass(frozen=True)
class ClassNotes:
    """Guidance for annotators about one class: a description, guidelines and example image paths."""

    description: str = ""
    guidelines: str = ""
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.description:
            d["description"] = self.description
        if self.guidelines:
            d["guidelines"] = self.guidelines
        if self.examples:
            d["examples"] = list(self.examples)
        return d


@dataclass(frozen=True)
class SchemaDocument:
    """A schema file's content: the ``LabelSchema`` plus per-class notes (``class_guidelines``)."""

    schema: LabelSchema
    class_notes: Mapping[str, ClassNotes] = field(default_factory=dict)


class _Reader:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def fail(self, where: str, msg: str) -> FormatError:
        return FormatError(msg, path=self.path, record=where)

    def mapping(self, v: Any, where: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(where, f"must be a mapping, got {type(v).__name__}")
        unknown = sorted(set(map(str, v)) - keys)
        if unknown:
            raise self.fail(f"{where}.{unknown[0]}" if where else unknown[0],
                            f"unknown key; expected one of {', '.join(sorted(keys))}")
        return v

    def str_(self, v: Any, where: str, *, empty: bool = True) -> str:
        if v is None and empty:
            return ""
        if not isinstance(v, str) or (not empty and not v):
            raise self.fail(where, f"must be a {'non-empty ' if not empty else ''}string, got {v!r}")
        return v

    def str_list(self, v: Any, where: str, choices: tuple[str, ...] = (), *, unique: bool = False
                 ) -> tuple[str, ...]:
        if v is None:
            return ()
        if not isinstance(v, list):
            raise self.fail(where, f"must be a list, got {type(v).__name__}")
        out: list[str] = []
        for i, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, str | int | float):
                hint = " (quote it: YAML reads yes/no/on/off/true/false as booleans)" if isinstance(x, bool) else ""
                raise self.fail(f"{where}[{i}]", f"must be a string, got {x!r}{hint}")
            s = str(x)
            if choices and s not in choices:
                raise self.fail(f"{where}[{i}]", f"must be one of {', '.join(choices)}, got {s!r}")
            if unique and s in out:
                raise self.fail(f"{where}[{i}]", f"must be unique, {s!r} repeats {where}[{out.index(s)}]")
            out.append(s)
        return tuple(out)

    def class_(self, c: Any, where: str) -> ClassDef:
        c = self.mapping(c, where, _CLASS_KEYS)
        name = self.str_(c.get("name"), f"{where}.name", empty=False)
        kind = c.get("kind", "object")
        if kind not in ("object", "semantic"):
            raise self.fail(f"{where}.kind", f"must be 'object' or 'semantic', got {kind!r}")
        keypoints = self.str_list(c.get("keypoints"), f"{where}.keypoints", unique=True)
        skeleton = []
        raw_skeleton = c.get("skeleton") or []
        if not isinstance(raw_skeleton, list):
            raise self.fail(f"{where}.skeleton", f"must be a list of pairs, got {type(raw_skeleton).__name__}")
        for i, pair in enumerate(raw_skeleton):
            ok = isinstance(pair, list) and len(pair) == 2 and all(type(x) is int for x in pair)
            if not ok or not all(0 <= x < len(keypoints) for x in pair):
                expected = (f"a pair of keypoint indexes 0..{len(keypoints) - 1}" if keypoints
                            else "absent: the class names no keypoints")
                raise self.fail(f"{where}.skeleton[{i}]", f"must be {expected}, got {pair!r}")
            if pair[0] == pair[1]:
                raise self.fail(f"{where}.skeleton[{i}]", f"must join two different keypoints, got {pair!r}")
            skeleton.append((pair[0], pair[1]))
        cid = c.get("id")
        if cid is not None and type(cid) is not int:
            raise self.fail(f"{where}.id", f"must be an integer, got {cid!r}")
        label_types = self.str_list(c.get("label_types"), f"{where}.label_types", tuple(t.value for t in LabelType),
                                    unique=True)
        if kind == "semantic" and label_types and not {"mask", "polygon"} & set(label_types):
            raise self.fail(f"{where}.label_types", f"must allow mask (or polygon) for a semantic class (one region "
                                                    f"per image), or be empty (any), got {list(label_types)}")
        try:
            return ClassDef(
                name=name, kind=kind,
                label_types=label_types,
                supercategory=self.str_(c.get("supercategory"), f"{where}.supercategory"),
                keypoints=keypoints, skeleton=tuple(skeleton),
                color=self.str_(c.get("color"), f"{where}.color"), id=cid,
            )
        except SchemaError as e:
            raise self.fail(where, str(e)) from None

    def attribute(self, a: Any, where: str, names: set[str] | None) -> AttributeDef:
        a = self.mapping(a, where, _ATTR_KEYS)
        name = self.str_(a.get("name"), f"{where}.name", empty=False)
        type_ = a.get("type", "text")
        if type_ not in ("bool", "enum", "number", "text"):
            raise self.fail(f"{where}.type", f"must be bool|enum|number|text, got {type_!r}")
        values = self.str_list(a.get("values"), f"{where}.values", unique=type_ in ("enum", "text"))
        if type_ == "enum" and not values:
            raise self.fail(f"{where}.values", "an enum attribute must list its values")
        classes = self.str_list(a.get("classes"), f"{where}.classes")
        for i, c in enumerate(classes):
            if names is not None and c not in names:
                raise self.fail(f"{where}.classes[{i}]", f"must name a class of the schema, got {c!r}")
        required = a.get("required", False)
        if not isinstance(required, bool):
            raise self.fail(f"{where}.required", f"must be true or false, got {required!r}")
        try:
            out = AttributeDef(name=name, type=type_, values=values, required=required, classes=classes,
                               default=a.get("default"))
        except SchemaError as e:
            raise self.fail(where, str(e)) from None
        default = out.default  # None or NaN: no default
        unset = default is None or (isinstance(default, float) and default != default)
        if not unset and (not isinstance(default, str | int | float) or not attribute_value_ok(out, default)):
            expected = (f"one of {', '.join(values)}" if type_ == "enum" or (type_ == "text" and values)
                        else {"bool": "true or false", "number": "a number", "text": "a string"}[type_])
            raise self.fail(f"{where}.default", f"must be {expected} (a value the attribute allows) or absent, "
                                                f"got {default!r}")
        return out


def parse_schema(data: Any, *, path: str | Path = "<schema>") -> SchemaDocument:
    """A ``SchemaDocument`` from the parsed YAML/JSON of a schema file.

    Raises:
        FormatError: naming the file and the YAML path of the first bad value.
    """
    r = _Reader(Path(path))
    data = r.mapping(data, "", _TOP_KEYS)
    version = data.get("version", 1)
    if type(version) is not int or version < 1:
        raise r.fail("version", f"must be a positive integer, got {version!r}")
    tasks = r.str_list(data.get("tasks", ["detection"]), "tasks", tuple(t.value for t in Task))
    if not tasks:
        raise r.fail("tasks", "must name at least one task")
    raw_classes = data.get("classes")
    if not isinstance(raw_classes, list):
        raise r.fail("classes", f"must be a list of classes, got {type(raw_classes).__name__}")
    classes = [r.class_(c, f"classes[{i}]") for i, c in enumerate(raw_classes)]
    seen: dict[str, int] = {}
    for i, c in enumerate(classes):
        if c.name in seen:
            raise r.fail(f"classes[{i}].name", f"must be unique, {c.name!r} repeats classes[{seen[c.name]}]")
        seen[c.name] = i
    raw_attrs = data.get("attributes") or []
    if not isinstance(raw_attrs, list):
        raise r.fail("attributes", f"must be a list, got {type(raw_attrs).__name__}")
    attrs = [r.attribute(a, f"attributes[{i}]", set(seen)) for i, a in enumerate(raw_attrs)]
    anames: dict[str, int] = {}
    for i, a in enumerate(attrs):
        if a.name in anames:
            raise r.fail(f"attributes[{i}].name", f"must be unique, {a.name!r} repeats attributes[{anames[a.name]}]")
        anames[a.name] = i
    notes: dict[str, ClassNotes] = {}
    raw_notes = data.get("class_guidelines") or {}
    if not isinstance(raw_notes, dict):
        raise r.fail("class_guidelines", f"must be a mapping of class name to notes, got {type(raw_notes).__name__}")
    for name, note in raw_notes.items():
        where = f"class_guidelines.{name}"
        if name not in seen:
            raise r.fail(where, f"must name a class of the schema, got {name!r}")
        note = r.mapping(note, where, _NOTE_KEYS)
        notes[name] = ClassNotes(description=r.str_(note.get("description"), f"{where}.description"),
                                 guidelines=r.str_(note.get("guidelines"), f"{where}.guidelines"),
                                 examples=r.str_list(note.get("examples"), f"{where}.examples"))
    schema = LabelSchema(classes=tuple(classes), tasks=tuple(Task(t) for t in tasks), attributes=tuple(attrs),
                         guidelines=r.str_(data.get("guidelines"), "guidelines"), version=version)
    return SchemaDocument(schema=schema, class_notes=notes)


def parse_attribute(data: Any, *, path: str | Path | None = None, where: str = "attribute",
                    class_names: set[str] | None = None) -> AttributeDef:
    """An ``AttributeDef`` from its schema-file form (a mapping), checked as ``parse_schema`` checks attributes;
    ``class_names`` (when given) are the classes its ``classes`` may name.

    Raises:
        FormatError: naming ``path`` (when given) and ``where`` plus the key of the first bad value.
    """
    return _Reader(None if path is None else Path(path)).attribute(data, where, class_names)


def read_schema_document(path: str | Path) -> SchemaDocument:
    """Read a schema file with its per-class notes (see the module docstring for the layout)."""
    path = Path(path)
    data = read_yaml(path, what="schema file")
    return parse_schema(data, path=path)


def load_schema(path: str | Path) -> LabelSchema:
    """The ``LabelSchema`` of a schema file.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "schema.yaml"
        >>> _ = p.write_text("classes: [{name: cat}, {name: dog, label_types: [box]}]")
        >>> load_schema(p).names
        ('cat', 'dog')
    """
    return read_schema_document(path).schema


def schema_to_dict(schema: LabelSchema, class_notes: Mapping[str, ClassNotes] | None = None) -> dict[str, Any]:
    """The schema file's content as plain data (the inverse of ``parse_schema``)."""
    d = schema.to_dict()
    if not d["guidelines"]:
        del d["guidelines"]
    if not d["attributes"]:
        del d["attributes"]
    notes = {k: v.to_dict() for k, v in (class_notes or {}).items() if v.to_dict()}
    if notes:
        d["class_guidelines"] = notes
    out: dict[str, Any] = plain(d)  # numpy strings (names taken from arrays) as plain str
    return out


def save_schema(schema: LabelSchema, path: str | Path, *, class_notes: Mapping[str, ClassNotes] | None = None) -> None:
    """Write ``schema`` (and optional per-class notes) as a schema file, atomically."""
    write_text_atomic(path, dump_yaml(schema_to_dict(schema, class_notes)))


def schema_json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of the schema file, for editors (YAML language servers)."""
    strings = {"type": "array", "items": {"type": "string"}}
    cls = {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "kind": {"enum": ["object", "semantic"], "default": "object"},
            "label_types": {"type": "array", "items": {"enum": [t.value for t in LabelType]}, "uniqueItems": True},
            "supercategory": {"type": "string"},
            "keypoints": {**strings, "uniqueItems": True},
            "skeleton": {"type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 0},
                                                    "minItems": 2, "maxItems": 2}},
            "color": {"type": "string", "pattern": "^(#[0-9a-fA-F]{6})?$"},
            "id": {"type": ["integer", "null"]},
        },
    }
    attr = {
        "type": "object", "required": ["name"], "additionalProperties": False,
        # the values of an enum or text attribute are the allowed ones, each once (a number's: CVAT's min, max, step)
        "if": {"required": ["type"], "properties": {"type": {"enum": ["bool", "number"]}}},
        "else": {"properties": {"values": {"uniqueItems": True}}},
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "type": {"enum": ["bool", "enum", "number", "text"], "default": "text"},
            "values": strings, "required": {"type": "boolean"}, "classes": strings, "default": {},
        },
    }
    notes = {"type": "object", "additionalProperties": False,
             "properties": {"description": {"type": "string"}, "guidelines": {"type": "string"}, "examples": strings}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "maslow label schema (schema.yaml)",
        "type": "object", "required": ["classes"], "additionalProperties": False,
        "properties": {
            "version": {"type": "integer", "minimum": 1},
            "tasks": {"type": "array", "items": {"enum": [t.value for t in Task]}, "minItems": 1},
            "guidelines": {"type": "string"},
            "classes": {"type": "array", "items": cls},
            "attributes": {"type": "array", "items": attr},
            "class_guidelines": {"type": "object", "additionalProperties": notes},
        },
    }
