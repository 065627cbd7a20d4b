"""The label schema: task, classes and attributes.

A label id is its position in ``LabelSchema.names``. Classes and attributes are frozen dataclasses so a
schema can be hashed, diffed and serialised (``to_dict``/``from_dict``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from maslow.errors import SchemaError, UnknownLabelError


def _strs(where: str, value: Any) -> tuple[Any, ...]:
    """A tuple of names: a list or tuple is kept in order; a bare str is refused (not split into letters)."""
    if isinstance(value, str):
        raise SchemaError(f"{where}: must be a list of names, got the str {value!r}")
    try:
        return tuple(value)
    except TypeError:
        raise SchemaError(f"{where}: must be a list of names, got {type(value).__name__}") from None


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _repeat(where: str, what: str, values: tuple[Any, ...]) -> None:
    """Refuse a repeated entry of a list whose entries name things (enum values, keypoint names)."""
    for i, v in enumerate(values):
        j = values.index(v)
        if j < i:
            raise SchemaError(f"{where}: {what}[{i}] must be unique, {v!r} repeats {what}[{j}]")


#: text that reads as a bool (case and surrounding spaces ignored); the VOC and CVAT readers turn the first six
#: into bools
BOOL_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False,
             "t": True, "y": True, "f": False, "n": False}


def attribute_value_ok(attr: AttributeDef, value: Any) -> bool:
    """Whether a set value (not None or NaN) fits attribute ``attr``: the one rule of ``maslow schema validate``
    (``value_not_allowed``) and ``maslow check`` (``attribute_invalid``).

    Files that hold only text (VOC and CVAT XML, CSV) write every value as a string, so a value may be of the
    attribute's type or text that reads as it:

    - ``bool``: a bool, the numbers 0 and 1, or text in ``BOOL_TEXT`` (``true``/``false``, ``1``/``0``,
      ``yes``/``no``, ``t``/``f``, ``y``/``n``, any case);
    - ``number``: a number (not a bool), or text that reads as one (``"3.5"``, ``" 2 "``; not ``"nan"``);
    - ``enum``: a string or integer whose text is one of ``values`` (never a bool or a float);
    - ``text``: any value (a number or bool is text too, as a text-only format would write it); its text must be
      one of ``values`` when the attribute lists them.

    Example:
        >>> a = AttributeDef("occluded", type="bool")
        >>> attribute_value_ok(a, "Yes"), attribute_value_ok(a, 1), attribute_value_ok(a, "maybe")
        (True, True, False)
    """
    is_bool = isinstance(value, bool | np.bool_)
    real = isinstance(value, int | float | np.integer | np.floating) and not is_bool
    if attr.type == "bool":
        if isinstance(value, str):
            return value.strip().lower() in BOOL_TEXT
        return is_bool or (real and float(value) in (0.0, 1.0))
    if attr.type == "number":
        if isinstance(value, str):
            try:
                x = float(value)
            except ValueError:
                return False
            return x == x  # "nan" is no number
        return real
    if attr.type == "enum":
        return isinstance(value, str | int | np.integer) and not is_bool and str(value) in attr.values
    return not attr.values or str(value) in attr.values


class Task(enum.StrEnum):
    """What the annotations of a dataset are for."""

    DETECTION = "detection"
    INSTANCE_SEGMENTATION = "instance_segmentation"
    SEMANTIC_SEGMENTATION = "semantic_segmentation"
    KEYPOINTS = "keypoints"
    CLASSIFICATION = "classification"
    MULTILABEL = "multilabel"


class LabelType(enum.StrEnum):
    """The geometry an annotation carries."""

    BOX = "box"
    MASK = "mask"
    POLYGON = "polygon"
    KEYPOINTS = "keypoints"
    TAG = "tag"  # no geometry: a classification or tagging label


@dataclass(frozen=True)
class ClassDef:
    """One class of the schema.

    Attributes:
        name: unique class name.
        kind: ``"object"`` (countable instances) or ``"semantic"`` (stuff, one region per image).
        label_types: allowed label types; empty means any.
        supercategory: optional parent name (COCO's supercategory).
        keypoints: keypoint names, in order, for pose classes.
        skeleton: pairs of 0-based keypoint indices.
        color: display colour, ``#rrggbb``.
        id: the id a source format gave the class (COCO category id, label-map value), kept for round trips.
    """

    name: str
    kind: str = "object"
    label_types: tuple[str, ...] = ()
    supercategory: str = ""
    keypoints: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()
    color: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchemaError(f"class name must be a non-empty str, got {self.name!r}")
        if self.kind not in ("object", "semantic"):
            raise SchemaError(f"class {self.name!r}: kind must be 'object' or 'semantic', got {self.kind!r}")
        where = f"class {self.name!r}"
        object.__setattr__(self, "label_types", _strs(f"{where}: label_types", self.label_types))
        object.__setattr__(self, "keypoints", _strs(f"{where}: keypoints", self.keypoints))
        _repeat(where, "keypoints", self.keypoints)
        if self.id is not None:
            if not _is_int(self.id):
                raise SchemaError(f"{where}: id must be an int or None, got {self.id!r}")
            object.__setattr__(self, "id", int(self.id))
        bad = [t for t in self.label_types if t not in {lt.value for lt in LabelType}]
        if bad:
            raise SchemaError(f"class {self.name!r}: unknown label type {bad[0]!r}")
        k = len(self.keypoints)
        for pair in _strs(f"{where}: skeleton", self.skeleton):
            if isinstance(pair, str) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise SchemaError(f"class {self.name!r}: skeleton entries must be pairs, got {pair!r}")
            a, b = pair
            if not (_is_int(a) and _is_int(b)):
                raise SchemaError(f"class {self.name!r}: skeleton pair ({a!r}, {b!r}) must be two ints")
            if not (0 <= a < k and 0 <= b < k):
                raise SchemaError(
                    f"class {self.name!r}: skeleton pair ({a}, {b}) must index keypoints 0..{k - 1}"
                )
        object.__setattr__(self, "skeleton", tuple((int(a), int(b)) for a, b in self.skeleton))


@dataclass(frozen=True)
class AttributeDef:
    """One attribute: a property of an annotation (e.g. ``occluded``, ``crack_type``)."""

    name: str
    type: str = "text"  # bool | enum | number | text
    values: tuple[str, ...] = ()
    required: bool = False
    classes: tuple[str, ...] = ()  # empty: applies to every class
    default: Any = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchemaError(f"attribute name must be a non-empty str, got {self.name!r}")
        if self.type not in ("bool", "enum", "number", "text"):
            raise SchemaError(
                f"attribute {self.name!r}: type must be bool|enum|number|text, got {self.type!r}"
            )
        object.__setattr__(self, "values", _strs(f"attribute {self.name!r}: values", self.values))
        if self.type in ("enum", "text"):  # the allowed values (a CVAT number's values are min, max, step)
            _repeat(f"attribute {self.name!r}", "values", self.values)
        object.__setattr__(self, "classes", _strs(f"attribute {self.name!r}: classes", self.classes))
        if not isinstance(self.required, bool | np.bool_):
            raise SchemaError(f"attribute {self.name!r}: required must be true or false, got {self.required!r}")
        object.__setattr__(self, "required", bool(self.required))
        if isinstance(self.default, float) and self.default != self.default:  # NaN: no default (and NaN != NaN
            object.__setattr__(self, "default", None)  # would make two equal schemas differ)


@dataclass(frozen=True)
class LabelSchema:
    """Task, classes and attributes of a dataset."""

    classes: tuple[ClassDef, ...]
    tasks: tuple[Task, ...] = (Task.DETECTION,)
    attributes: tuple[AttributeDef, ...] = ()
    guidelines: str = ""
    version: int = 1
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        classes = tuple(self.classes)
        object.__setattr__(self, "classes", classes)
        if isinstance(self.tasks, str):  # a bare str would be read letter by letter
            raise SchemaError(f"schema.tasks: must be a list of tasks, got the str {self.tasks!r}")
        if not _is_int(self.version):
            raise SchemaError(f"schema.version: must be an int, got {self.version!r}")
        object.__setattr__(self, "version", int(self.version))
        known = [t.value for t in Task]
        bad_tasks = [t for t in self.tasks if t not in known]  # Task members compare equal to their values
        if bad_tasks:
            raise SchemaError(f"schema.tasks: each must be one of {', '.join(known)}, got {bad_tasks[0]!r}")
        object.__setattr__(self, "tasks", tuple(Task(t) for t in self.tasks))
        object.__setattr__(self, "attributes", tuple(self.attributes))
        index: dict[str, int] = {}
        for i, c in enumerate(classes):
            if not isinstance(c, ClassDef):
                raise SchemaError(f"schema.classes[{i}]: must be a ClassDef, got {type(c).__name__}")
            if c.name in index:
                raise SchemaError(f"schema.classes[{i}]: name {c.name!r} must be unique, it repeats class {index[c.name]}")
            index[c.name] = i
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_names", tuple(index))  # class order: `names` is read in per-class loops
        names = [a.name for a in self.attributes]
        if len(set(names)) != len(names):
            raise SchemaError(f"schema.attributes: names must be unique, got {names}")
        if not self.tasks:
            raise SchemaError("schema.tasks: must name at least one task")

    @classmethod
    def from_names(
        cls, names: Iterable[str], *, task: Task | str = Task.DETECTION, ids: Iterable[int] | None = None
    ) -> LabelSchema:
        """A schema of plain object classes."""
        idl = list(ids) if ids is not None else None
        names = list(names)
        return cls(
            classes=tuple(
                ClassDef(name=n, id=None if idl is None else int(idl[i])) for i, n in enumerate(names)
            ),
            tasks=(Task(task),),
        )

    @property
    def task(self) -> Task:
        """The primary task."""
        return self.tasks[0]

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def index(self, name: str) -> int:
        """The label id of a class name."""
        try:
            return self._index[name]
        except KeyError:
            raise UnknownLabelError(
                f"class {name!r} is not in the schema; known: {', '.join(self.names[:20])}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def attribute(self, name: str) -> AttributeDef:
        for a in self.attributes:
            if a.name == name:
                return a
        raise UnknownLabelError(f"attribute {name!r} is not in the schema")

    def with_classes(self, classes: Iterable[ClassDef]) -> LabelSchema:
        return replace(self, classes=tuple(classes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, the inverse of ``from_dict``."""
        return {
            "version": self.version,
            "tasks": [t.value for t in self.tasks],
            "classes": [_class_to_dict(c) for c in self.classes],
            "attributes": [_attr_to_dict(a) for a in self.attributes],
            "guidelines": self.guidelines,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelSchema:
        try:
            return cls(
                classes=tuple(
                    ClassDef(
                        name=c["name"],
                        kind=c.get("kind", "object"),
                        label_types=c.get("label_types", ()),  # checked by ClassDef
                        supercategory=c.get("supercategory", "") or "",
                        keypoints=c.get("keypoints", ()),
                        skeleton=tuple((a, b) for a, b in c.get("skeleton", ())),
                        color=c.get("color", "") or "",
                        id=None if c.get("id") is None else int(c["id"]),
                    )
                    for c in d["classes"]
                ),
                tasks=tuple(d.get("tasks", ["detection"])),  # validated by __post_init__
                attributes=tuple(
                    AttributeDef(
                        name=a["name"],
                        type=a.get("type", "text"),
                        values=a.get("values", ()),
                        required=a.get("required", False),
                        classes=a.get("classes", ()),
                        default=a.get("default"),
                    )
                    for a in d.get("attributes", ())
                ),
                guidelines=d.get("guidelines", ""),
                version=int(d.get("version", 1)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            if isinstance(e, SchemaError):
                raise
            raise SchemaError(f"schema: malformed ({type(e).__name__}: {e})") from None


def _class_to_dict(c: ClassDef) -> dict[str, Any]:
    d: dict[str, Any] = {"name": c.name}
    if c.kind != "object":
        d["kind"] = c.kind
    if c.label_types:
        d["label_types"] = list(c.label_types)
    if c.supercategory:
        d["supercategory"] = c.supercategory
    if c.keypoints:
        d["keypoints"] = list(c.keypoints)
    if c.skeleton:
        d["skeleton"] = [list(p) for p in c.skeleton]
    if c.color:
        d["color"] = c.color
    if c.id is not None:
        d["id"] = c.id
    return d


def _attr_to_dict(a: AttributeDef) -> dict[str, Any]:
    d: dict[str, Any] = {"name": a.name, "type": a.type}
    if a.values:
        d["values"] = list(a.values)
    if a.required:
        d["required"] = True
    if a.classes:
        d["classes"] = list(a.classes)
    if a.default is not None:
        d["default"] = a.default
    return d
