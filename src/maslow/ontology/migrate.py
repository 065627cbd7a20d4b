"""Schema migrations: frozen, serialisable steps that change the schema and carry the annotations along.

A ``Migration`` is a list of steps plus the schema versions it goes from and to. ``migrate(ds, migration)``
applies the steps in order and returns the new dataset (schema version + 1), a change log (annotations each step
touched and lost) and whether anything was lost. Steps that lose information (dropping a class or an attribute,
merging classes without keeping the original class, clearing geometry for a box-only target) raise
``MigrationError`` unless ``allow_lossy=True``; lossiness is measured on the data, so dropping a class that has
no annotations is not lossy.

Inverses: ``RenameClass(a, b)`` / ``RenameClass(b, a)``; ``ClassesToAttribute`` (several classes become one class
plus an enum attribute holding the old class name: lossless) / ``AttributeToClass`` (each value of the attribute
becomes a class again). ``MergeClasses`` without ``keep_as`` forgets which class an annotation had (lossy); with
``keep_as="attr"`` it is ``ClassesToAttribute`` and can be undone. Class metadata of merged classes (ids,
colours, kinds, label types) is not restored by the inverse: the class of every annotation is.

Every step keeps an annotation that was valid under the old schema valid under the new one, except the steps that
tighten a rule on request (``ChangeKind`` to semantic, ``SetLabelTypes``, ``UpdateClass`` of keypoints,
``SetAttribute``), which break only that rule. So a merged class allows what each of its classes allowed (see
``MergeClasses``), and ``BoxesFromMasks`` adds ``box`` to the label types of the classes it gives boxes. A change
of a class's keypoint names moves each annotation's points by name (``UpdateClass``; ``RenameKeypoints`` renames
them where they are), so no point changes its meaning. ``migrate`` checks the result against its new schema and
counts what does not fit (``MigrationResult.violations``).

The migration file (YAML)::

    from_version: 1
    to_version: 2
    steps:
      - {op: rename_class, old: RBC, new: red_cell}
      - {op: classes_to_attribute, classes: [circle, square], into: shape, attribute: shape_type}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from maslow.core.atomic import write_text as write_text_atomic
from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema
from maslow.core.yamlfile import read_yaml
from maslow.errors import FormatError, MigrationError, SchemaError
from maslow.ontology._class_steps import AttributeToClass, ClassesToAttribute, MergeClasses
from maslow.ontology._geometry import attribute_present
from maslow.ontology._geometry_steps import BoxesFromMasks, SetLabelTypes
from maslow.ontology._keypoints import RenameKeypoints, relabel_keypoints, remap_skeleton
from maslow.ontology._step import Step, StepResult, attr_defs, dump_yaml, narrowed, need_class, remap_classes
from maslow.ontology.validate import count_violations


@dataclass(frozen=True)
class RenameClass(Step):
    """Rename a class; annotations keep their rows (touched: the class's annotations)."""

    old: str
    new: str
    op: ClassVar[str] = "rename_class"

    def apply(self, ds: Dataset) -> StepResult:
        i = need_class(ds, self.old, self.describe())
        if self.new in ds.schema and self.new != self.old:
            raise MigrationError(f"{self.describe()}: class {self.new!r} exists already; use merge_classes")
        classes = list(ds.schema.classes)
        classes[i] = replace(classes[i], name=self.new)
        attrs = tuple(replace(a, classes=tuple(self.new if c == self.old else c for c in a.classes))
                      for a in ds.schema.attributes)
        out = remap_classes(ds, classes, np.arange(len(classes)), attributes=attrs)
        return StepResult(out, int((ds.annotations.label == i).sum()))


@dataclass(frozen=True)
class DropClass(Step):
    """Remove a class and its annotations (lossy when it has any).

    An attribute that applied to this class only is removed from the schema too (its ``classes`` would be empty,
    which means every class). ``missing_ok``: a class that is not there is nothing to do (planned after an
    ``AttributeToClass``, which removes the class it splits only when every annotation of it has a value).
    """

    name: str
    missing_ok: bool = False
    op: ClassVar[str] = "drop_class"

    def apply(self, ds: Dataset) -> StepResult:
        if self.missing_ok and self.name not in ds.schema:
            return StepResult(ds, 0)
        i = need_class(ds, self.name, self.describe())
        classes = [c for j, c in enumerate(ds.schema.classes) if j != i]
        old_to_new = np.arange(len(ds.schema.classes)) - (np.arange(len(ds.schema.classes)) > i)
        keep = ds.annotations.label != i
        attrs = narrowed(ds.schema.attributes, lambda a: [c for c in a.classes if c != self.name])
        n = int((~keep).sum())
        return StepResult(remap_classes(ds, classes, old_to_new, keep, attributes=attrs), n, n)


@dataclass(frozen=True)
class DropAttribute(Step):
    """Remove an attribute column and its definition (lossy when it holds values)."""

    name: str
    op: ClassVar[str] = "drop_attribute"

    def apply(self, ds: Dataset) -> StepResult:
        ann = ds.annotations
        col = ann.attributes.get(self.name)
        n = int(attribute_present(col).sum()) if col is not None else 0
        cols = {k: v for k, v in ann.attributes.items() if k != self.name}
        schema = replace(ds.schema, attributes=attr_defs(ds.schema, drop=self.name))
        return StepResult(ds.replace(schema=schema, annotations=ann.with_columns(attributes=cols)), n, n)


@dataclass(frozen=True)
class RenameAttribute(Step):
    """Rename an attribute column and its definition."""

    old: str
    new: str
    op: ClassVar[str] = "rename_attribute"

    def apply(self, ds: Dataset) -> StepResult:
        ann = ds.annotations
        if self.old not in ann.attributes and all(a.name != self.old for a in ds.schema.attributes):
            raise MigrationError(f"{self.describe()}: attribute {self.old!r} must be in the dataset")
        if self.new in ann.attributes or any(a.name == self.new for a in ds.schema.attributes):
            raise MigrationError(f"{self.describe()}: attribute {self.new!r} exists already")
        cols = {(self.new if k == self.old else k): v for k, v in ann.attributes.items()}
        attrs = tuple(replace(a, name=self.new) if a.name == self.old else a for a in ds.schema.attributes)
        col = ann.attributes.get(self.old)
        n = int(attribute_present(col).sum()) if col is not None else 0
        return StepResult(ds.replace(schema=replace(ds.schema, attributes=attrs),
                                     annotations=ann.with_columns(attributes=cols)), n)


@dataclass(frozen=True)
class ChangeKind(Step):
    """Set a class's kind (``object`` or ``semantic``); annotations are unchanged (touched: the class's)."""

    class_: str
    kind: str
    op: ClassVar[str] = "change_kind"

    def apply(self, ds: Dataset) -> StepResult:
        i = need_class(ds, self.class_, self.describe())
        if self.kind not in ("object", "semantic"):
            raise MigrationError(f"{self.describe()}: kind must be 'object' or 'semantic', got {self.kind!r}")
        classes = list(ds.schema.classes)
        classes[i] = replace(classes[i], kind=self.kind)
        return StepResult(ds.replace(schema=replace(ds.schema, classes=tuple(classes))),
                          int((ds.annotations.label == i).sum()))


@dataclass(frozen=True)
class UpdateClass(Step):
    """Set fields of a class definition (``supercategory``, ``color``, ``keypoints``, ``skeleton``, ``id``).

    New ``keypoints`` move each annotation's points by name (``maslow.ontology._keypoints``): a reorder permutes
    them, a new name is an unlabelled point, a removed name drops its point (lossy where it held one; touched: the
    annotations whose points moved). Without ``skeleton``, the edges follow their keypoints by name. A keypoint
    renamed is ``RenameKeypoints``: here it would be a name removed and another added.
    """

    class_: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    op: ClassVar[str] = "update_class"

    def apply(self, ds: Dataset) -> StepResult:
        i = need_class(ds, self.class_, self.describe())
        allowed = {"supercategory", "color", "keypoints", "skeleton", "id"}
        bad = set(self.changes) - allowed
        if bad:
            raise MigrationError(f"{self.describe()}: changes must be among {sorted(allowed)}, got {sorted(bad)}")
        ch = dict(self.changes)
        c = ds.schema.classes[i]
        touched = lost = 0
        if "keypoints" in ch:
            ch["keypoints"] = tuple(ch["keypoints"])
            if "skeleton" not in ch and c.keypoints:
                ch["skeleton"] = remap_skeleton(c.skeleton, c.keypoints, ch["keypoints"])
        if "skeleton" in ch:
            ch["skeleton"] = tuple(tuple(p) for p in ch["skeleton"])
        classes = list(ds.schema.classes)
        classes[i] = replace(c, **ch)  # a bad definition (repeated names, a skeleton index) is refused first
        if "keypoints" in ch:
            ds, touched, lost = relabel_keypoints(ds, i, ch["keypoints"])
        return StepResult(ds.replace(schema=replace(ds.schema, classes=tuple(classes))), touched, lost)


@dataclass(frozen=True)
class UpdateSchema(Step):
    """Set the schema's ``tasks`` (a list of task names) or ``guidelines`` (text); annotations are unchanged."""

    changes: Mapping[str, Any] = field(default_factory=dict)
    op: ClassVar[str] = "update_schema"

    def apply(self, ds: Dataset) -> StepResult:
        allowed = {"tasks", "guidelines"}
        bad = set(self.changes) - allowed
        if bad:
            raise MigrationError(f"{self.describe()}: changes must be among {sorted(allowed)}, got {sorted(bad)}")
        ch = dict(self.changes)
        if "guidelines" in ch and not isinstance(ch["guidelines"], str):
            raise MigrationError(f"{self.describe()}: guidelines must be a string, got {ch['guidelines']!r}")
        try:
            schema = replace(ds.schema, **({**ch, "tasks": tuple(ch["tasks"])} if "tasks" in ch else ch))
        except (SchemaError, TypeError) as e:
            raise MigrationError(f"{self.describe()}: {e}") from None
        return StepResult(ds.replace(schema=schema), 0)


@dataclass(frozen=True)
class AddClass(Step):
    """Append a class (no annotation changes)."""

    name: str
    kind: str = "object"
    label_types: tuple[str, ...] = ()
    op: ClassVar[str] = "add_class"

    def apply(self, ds: Dataset) -> StepResult:
        if self.name in ds.schema:
            raise MigrationError(f"{self.describe()}: class {self.name!r} exists already")
        c = ClassDef(self.name, kind=self.kind, label_types=tuple(self.label_types))
        return StepResult(ds.replace(schema=replace(ds.schema, classes=(*ds.schema.classes, c))), 0)


@dataclass(frozen=True)
class SetAttribute(Step):
    """Add or replace an attribute definition (``definition`` as in schema.yaml); values are not changed."""

    definition: Mapping[str, Any]
    op: ClassVar[str] = "set_attribute"

    def apply(self, ds: Dataset) -> StepResult:
        from maslow.ontology.schema_file import parse_attribute

        try:
            a = parse_attribute(dict(self.definition), where="definition", class_names=set(ds.schema.names))
        except FormatError as e:
            raise MigrationError(f"{self.describe()}: {e}") from None
        return StepResult(ds.replace(schema=replace(ds.schema, attributes=attr_defs(ds.schema, add=a))), 0)


@dataclass(frozen=True)
class ReorderClasses(Step):
    """Put the classes in the given order (every class named once)."""

    names: tuple[str, ...]
    op: ClassVar[str] = "reorder_classes"

    def apply(self, ds: Dataset) -> StepResult:
        if sorted(self.names) != sorted(ds.schema.names):
            raise MigrationError(f"{self.describe()}: must name each class once, got {list(self.names)} for "
                                 f"{list(ds.schema.names)}")
        old_to_new = np.array([self.names.index(n) for n in ds.schema.names], np.int64)
        classes = [ds.schema.classes[ds.schema.index(n)] for n in self.names]
        return StepResult(remap_classes(ds, classes, old_to_new), int((old_to_new != np.arange(len(classes)))[
            ds.annotations.label].sum()) if len(ds.annotations) else 0)


__all__ = [
    "STEPS", "AddClass", "AttributeToClass", "BoxesFromMasks", "ChangeKind", "ClassesToAttribute", "DropAttribute",
    "DropClass", "MergeClasses", "Migration", "MigrationResult", "RenameAttribute", "RenameClass", "RenameKeypoints",
    "ReorderClasses", "SetAttribute", "SetLabelTypes", "Step", "StepResult", "UpdateClass", "UpdateSchema",
    "adopt_schema", "load_migration", "migrate", "save_migration",
]

STEPS: dict[str, type[Step]] = {s.op: s for s in (
    RenameClass, MergeClasses, ClassesToAttribute, AttributeToClass, DropClass, DropAttribute, RenameAttribute,
    ChangeKind, UpdateClass, RenameKeypoints, UpdateSchema, AddClass, SetAttribute, ReorderClasses, SetLabelTypes,
    BoxesFromMasks)}


@dataclass(frozen=True)
class Migration:
    """Steps to apply in order, from one schema version to the next."""

    steps: tuple[Step, ...]
    from_version: int | None = None
    to_version: int | None = None
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"from_version": self.from_version, "to_version": self.to_version, "description": self.description,
                "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, path: str | Path = "<migration>") -> Migration:
        if not isinstance(d, Mapping) or not isinstance(d.get("steps"), list):
            raise FormatError("must be a mapping with a list of steps", path=path, record="steps")
        steps = []
        for i, s in enumerate(d["steps"]):
            where = f"steps[{i}]"
            if not isinstance(s, Mapping) or s.get("op") not in STEPS:
                op = s.get("op") if isinstance(s, Mapping) else s
                raise FormatError(f"op must be one of {', '.join(STEPS)}, got {op!r}", path=path, record=where)
            kind = STEPS[s["op"]]
            names = {f.name for f in fields(kind)}
            args = {k: v for k, v in s.items() if k != "op"}
            bad = sorted(set(args) - names)
            if bad:
                raise FormatError(f"unknown field; {s['op']} takes {', '.join(sorted(names))}", path=path,
                                  record=f"{where}.{bad[0]}")
            for f in fields(kind):
                if f.name in args:
                    expected = _bad_arg(str(f.type), args[f.name])
                    if expected:
                        raise FormatError(f"must be {expected}, got {args[f.name]!r}", path=path,
                                          record=f"{where}.{f.name}")
                if f.name in args and isinstance(args[f.name], list):
                    args[f.name] = tuple(args[f.name])
            if kind is SetAttribute and "definition" in args:
                from maslow.ontology.schema_file import parse_attribute

                parse_attribute(args["definition"], path=path, where=f"{where}.definition")
            try:
                steps.append(kind(**args))
            except TypeError as e:
                raise FormatError(f"bad arguments: {e}", path=path, record=where) from None
        def version(key: str) -> int | None:
            v = d.get(key)
            if v is not None and type(v) is not int:
                raise FormatError(f"must be an integer, got {v!r}", path=path, record=key)
            return v
        return cls(steps=tuple(steps), from_version=version("from_version"), to_version=version("to_version"),
                   description=str(d.get("description") or ""))


def _bad_arg(annotation: str, v: Any) -> str:
    """What a step argument of this type annotation must be when ``v`` is not that ("" when it is)."""
    if annotation == "str":
        return "" if isinstance(v, str) else "a string (quote names YAML reads as numbers or booleans)"
    if annotation == "str | None":
        return "" if v is None or isinstance(v, str) else "a string or null"
    if annotation == "bool":
        return "" if isinstance(v, bool) else "true or false"
    if annotation == "tuple[str, ...]":
        ok = isinstance(v, list | tuple) and all(isinstance(x, str) for x in v)
        return "" if ok else "a list of strings"
    if annotation == "Mapping[str, str]":
        ok = isinstance(v, Mapping) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items())
        return "" if ok else "a mapping of strings to strings"
    if annotation == "Mapping[str, Any]":
        return "" if isinstance(v, Mapping) and all(isinstance(k, str) for k in v) else "a mapping"
    return ""


def save_migration(migration: Migration, path: str | Path) -> None:
    """Write the migration file (YAML), atomically."""
    write_text_atomic(path, dump_yaml(migration.to_dict()))


def load_migration(path: str | Path) -> Migration:
    """Read a migration file written by ``save_migration`` (or by hand)."""
    path = Path(path)
    return Migration.from_dict(read_yaml(path, what="migration file"), path=path)


@dataclass(frozen=True)
class MigrationResult:
    """The migrated dataset, the change log (one dict per step) and whether anything was lost.

    ``violations``: the migrated data checked against its new schema (``validate``), the number of violations
    per rule (``Report.counts()``; empty when everything fits), and ``n_violating`` the annotations with any.
    Steps change the schema on request and leave values as they are (``SetAttribute`` converts nothing), so a
    retyped or narrowed attribute, or a new required one, can leave annotations that no longer fit.
    """

    dataset: Dataset
    changes: tuple[dict[str, Any], ...]
    lossy: bool
    violations: Mapping[str, int] = field(default_factory=dict)
    n_violating: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"changes": list(self.changes), "lossy": self.lossy, "version": self.dataset.schema.version,
                "n_images": self.dataset.n_images, "n_annotations": self.dataset.n_annotations,
                "violations": dict(self.violations), "n_violating": self.n_violating}


def adopt_schema(ds: Dataset, schema: LabelSchema, *, where: str = "schema") -> Dataset:
    """``ds`` with ``schema`` as its schema (version included), each annotation's class matched by name: for data
    read from a format that does not carry the whole schema (COCO has no attribute definitions or versions).

    Raises:
        MigrationError: an annotation's class is not in ``schema`` (the first such class and the count named).
    """
    used = np.unique(ds.annotations.label)
    missing = [ds.schema.names[i] for i in used if ds.schema.names[i] not in schema]
    if missing:
        n = int(np.isin(ds.annotations.label, [ds.schema.index(m) for m in missing]).sum())
        raise MigrationError(f"{where}: must name every class of the data, got no class {missing[0]!r} "
                             f"({len(missing)} classes, {n} annotations)")
    old_to_new = np.array([schema.index(c) if c in schema else 0 for c in ds.schema.names], np.int64)
    label = old_to_new[ds.annotations.label] if len(ds.annotations) else ds.annotations.label
    return ds.replace(schema=schema, annotations=ds.annotations.with_columns(label=label))


def migrate(ds: Dataset, migration: Migration | Sequence[Step], *, allow_lossy: bool = False,
            check_version: bool = True) -> MigrationResult:
    """Apply a migration to a dataset.

    Args:
        ds: the dataset (not modified).
        migration: a Migration, or a list of steps.
        allow_lossy: let steps that lose annotations, attribute values, geometry or class identity run.
        check_version: require ``ds.schema.version == migration.from_version`` (when set). Turn it off for data
            read from a format that does not store schema versions (COCO, YOLO, VOC...; Parquet does).

    Returns:
        MigrationResult: the new dataset (schema version + 1), the per-step change log
        (``{"step", "op", "touched", "lost"}``), ``lossy``, and the violations of the new schema by the migrated
        data (``validate``'s counts per rule, and ``n_violating`` annotations): a note, not an error.

    Raises:
        MigrationError: a step does not apply (unknown class, name clash), the dataset's schema version is not
            ``migration.from_version``, or a step would lose information and ``allow_lossy`` is False (the
            message names every step that would, with its count, as ``allow_lossy=True`` would apply them).

    Example:
        >>> from maslow.sample import shapes
        >>> r = migrate(shapes(8, seed=0), [RenameClass("circle", "disc")])
        >>> r.dataset.schema.names, r.dataset.schema.version
        (('disc', 'square', 'triangle'), 2)
    """
    mig = migration if isinstance(migration, Migration) else Migration(tuple(migration))
    if check_version and mig.from_version is not None and ds.schema.version != mig.from_version:
        raise MigrationError(f"migration: the dataset's schema version must be {mig.from_version}, "
                             f"got {ds.schema.version}. Formats other than Parquet and workspaces do not store "
                             f"it: pass check_version=False (CLI --any-version)")
    changes: list[dict[str, Any]] = []
    lossy = False
    refused: list[tuple[int, Step, int]] = []  # lossy steps without allow_lossy: the rest is still measured
    cur = ds
    for i, step in enumerate(mig.steps):
        try:
            res = step.apply(cur)
        except SchemaError as e:  # a definition the step makes is refused (a kind, a label type, a skeleton)
            if refused:  # past a refused step: report the losses measured so far
                break
            if isinstance(e, MigrationError):
                raise
            raise MigrationError(f"migration step {i} {step.describe()}: {e}") from None
        if res.lost and not allow_lossy:
            refused.append((i, step, res.lost))
        lossy = lossy or res.lost > 0
        changes.append({"step": i, "op": step.op, "description": step.describe(), "touched": res.touched,
                        "lost": res.lost, "n_annotations": res.dataset.n_annotations})
        cur = res.dataset
    if refused:
        i, step, lost = refused[0]
        more = "".join(f"; step {j} {s.describe()} would lose {n}" for j, s, n in refused[1:])
        raise MigrationError(f"migration step {i} {step.describe()}: would lose {lost} annotations' information{more}; "
                             f"pass allow_lossy=True (CLI --allow-lossy) to apply {'them' if more else 'it'}")
    version = ds.schema.version + 1
    cur = cur.replace(schema=replace(cur.schema, version=version))
    violations, n_violating = count_violations(cur, cur.schema)
    return MigrationResult(dataset=cur, changes=tuple(changes), lossy=lossy, violations=violations,
                           n_violating=n_violating)

