"""Compare two label schemas and plan the migration between them.

``diff_schemas(old, new)`` lists added, removed and changed classes and attributes (by name), and, given the
schema files' documents (``read_schema_document``), the changed per-class notes (``class_guidelines``).
``plan_migration(old, new, renames=...)`` turns the differences into migration steps: renames only come from
the hints you give (a removed class and an added class are never guessed to be the same), then removed classes
and attributes are dropped (lossy steps), added ones are added, changed kinds, label types and class fields are
set, the schema's tasks and guidelines are set, and the classes are put in the new order (a step only where the
order differs). Several classes renamed into one are merged (``MergeClasses``, lossy). Classes folded into a
new class plus an enum attribute (``ClassesToAttribute``), or merged, are first given that class's keypoints (their
points moved by name) and skeleton, and its kind when it is an object class, so that the merge rule accepts them.
A changed keypoint list moves the points by name (``UpdateClass``); a keypoint rename is never guessed either
(``keypoint_renames``), and a class that loses some keypoint names and gains others without one is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.errors import MigrationError, SchemaError
from maslow.ontology._class_steps import merged_class
from maslow.ontology.migrate import (
    AddClass,
    AttributeToClass,
    ChangeKind,
    ClassesToAttribute,
    DropAttribute,
    DropClass,
    MergeClasses,
    Migration,
    RenameAttribute,
    RenameClass,
    RenameKeypoints,
    ReorderClasses,
    SetAttribute,
    SetLabelTypes,
    Step,
    UpdateClass,
    UpdateSchema,
    migrate,
)
from maslow.ontology.schema_file import ClassNotes, SchemaDocument


def _fields_changed(a: Any, b: Any, skip: set[str]) -> dict[str, tuple[Any, Any]]:
    return {f.name: (getattr(a, f.name), getattr(b, f.name)) for f in fields(a)
            if f.name not in skip and getattr(a, f.name) != getattr(b, f.name)}


@dataclass(frozen=True)
class SchemaDiff:
    """What differs between two schemas, by name.

    Attributes:
        added_classes, removed_classes: class names only in the new / the old schema.
        changed_classes: class name -> {field: (old, new)}.
        added_attributes, removed_attributes, changed_attributes: the same for attributes.
        order_changed: the common classes come in another order (label ids differ).
        tasks: (old, new) when the tasks differ, else None.
        versions: (old, new) schema versions.
        guidelines: (old, new) when the schema's guidelines differ, else None.
        class_guidelines: class name -> {note field: (old, new)} for the classes both schemas have whose
            ``class_guidelines`` (description, guidelines, examples) differ; empty unless both sides are
            ``SchemaDocument``s (a ``LabelSchema`` holds no per-class notes).
    """

    added_classes: tuple[str, ...]
    removed_classes: tuple[str, ...]
    changed_classes: Mapping[str, Mapping[str, tuple[Any, Any]]]
    added_attributes: tuple[str, ...]
    removed_attributes: tuple[str, ...]
    changed_attributes: Mapping[str, Mapping[str, tuple[Any, Any]]]
    order_changed: bool
    tasks: tuple[tuple[str, ...], tuple[str, ...]] | None
    versions: tuple[int, int]
    guidelines: tuple[str, str] | None = None
    class_guidelines: Mapping[str, Mapping[str, tuple[Any, Any]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added_classes or self.removed_classes or self.changed_classes or self.added_attributes
                    or self.removed_attributes or self.changed_attributes or self.order_changed or self.tasks
                    or self.guidelines or self.class_guidelines)

    def to_dict(self) -> dict[str, Any]:
        def ch(m: Mapping[str, Mapping[str, tuple[Any, Any]]]) -> dict[str, Any]:
            return {k: {f: {"old": _plain(o), "new": _plain(n)} for f, (o, n) in v.items()} for k, v in m.items()}
        return {"added_classes": list(self.added_classes), "removed_classes": list(self.removed_classes),
                "changed_classes": ch(self.changed_classes), "added_attributes": list(self.added_attributes),
                "removed_attributes": list(self.removed_attributes),
                "changed_attributes": ch(self.changed_attributes), "order_changed": self.order_changed,
                "tasks": None if self.tasks is None else [list(t) for t in self.tasks],
                "guidelines": None if self.guidelines is None else list(self.guidelines),
                "class_guidelines": ch(self.class_guidelines), "versions": list(self.versions), "empty": self.empty}


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def diff_schemas(old: LabelSchema | SchemaDocument, new: LabelSchema | SchemaDocument) -> SchemaDiff:
    """The differences between two schemas (classes and attributes matched by name).

    Given two ``SchemaDocument``s (``read_schema_document``), the per-class notes (``class_guidelines``) of the
    classes both have are compared too: what annotators read, which ``maslow schema migrate --to`` carries.

    Example:
        >>> from maslow.core import LabelSchema
        >>> d = diff_schemas(LabelSchema.from_names(["a", "b"]), LabelSchema.from_names(["a", "c"]))
        >>> d.added_classes, d.removed_classes
        (('c',), ('b',))
    """
    notes = _class_notes_changed(old, new)
    if isinstance(old, SchemaDocument):
        old = old.schema
    if isinstance(new, SchemaDocument):
        new = new.schema
    on, nn = old.names, new.names
    common = [n for n in on if n in new]
    changed = {n: c for n in common if (c := _fields_changed(old.classes[old.index(n)], new.classes[new.index(n)],
                                                                {"name"}))}
    oa = {a.name: a for a in old.attributes}
    na = {a.name: a for a in new.attributes}
    achanged = {n: c for n in oa if n in na and (c := _fields_changed(oa[n], na[n], {"name"}))}
    tasks = None if old.tasks == new.tasks else (tuple(t.value for t in old.tasks), tuple(t.value for t in new.tasks))
    return SchemaDiff(
        added_classes=tuple(n for n in nn if n not in old), removed_classes=tuple(n for n in on if n not in new),
        changed_classes=changed, added_attributes=tuple(n for n in na if n not in oa),
        removed_attributes=tuple(n for n in oa if n not in na), changed_attributes=achanged,
        order_changed=common != [n for n in nn if n in old], tasks=tasks, versions=(old.version, new.version),
        guidelines=None if old.guidelines == new.guidelines else (old.guidelines, new.guidelines),
        class_guidelines=notes)


def _class_notes_changed(old: LabelSchema | SchemaDocument, new: LabelSchema | SchemaDocument
                         ) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Class name -> {note field: (old, new)} where the notes of a class both documents have differ (a missing
    entry is empty notes); nothing unless both are documents."""
    if not (isinstance(old, SchemaDocument) and isinstance(new, SchemaDocument)):
        return {}
    empty = ClassNotes()
    return {n: c for n in old.schema.names if n in new.schema
            and (c := _fields_changed(old.class_notes.get(n, empty), new.class_notes.get(n, empty), set()))}


def _attr_dict(a: AttributeDef) -> dict[str, Any]:
    return {"name": a.name, "type": a.type, "values": list(a.values), "required": a.required,
            "classes": list(a.classes), "default": a.default}


def _structural_steps(old: LabelSchema, new: LabelSchema, renames: Mapping[str, str]) -> list[Step]:
    """Merges into an attribute and splits out of one, recognised from the attribute's enum values."""
    steps: list[Step] = []
    oa = {a.name: a for a in old.attributes}
    na = {a.name: a for a in new.attributes}
    for a in new.attributes:  # classes -> one class + attribute
        if a.name in oa or a.type != "enum" or len(a.classes) != 1 or a.classes[0] in old:
            continue
        if a.values and all(v in old and v not in new and v not in renames for v in a.values):
            steps.append(ClassesToAttribute(tuple(a.values), a.classes[0], a.name))
    for a in old.attributes:  # one class + attribute -> classes
        if a.name in na or a.type != "enum" or len(a.classes) != 1 or a.classes[0] in new:
            continue
        if a.values and all(v in new and v not in old for v in a.values):
            steps.append(AttributeToClass(a.classes[0], a.name))
    return steps


def _keypoint_rule(name: str, old: tuple[str, ...], new: tuple[str, ...]) -> None:
    """Refuse to plan a keypoint change that could be a rename: class ``name`` (the old schema's) loses some
    keypoint names and gains others. A reorder, a name added or a name removed is planned (by name)."""
    lost = [k for k in old if k not in new]
    gained = [k for k in new if k not in old]
    if old and lost and gained:
        raise MigrationError(
            f"plan_migration: class {name!r} must keep or rename its keypoints, got {lost} removed and {gained} "
            f"added: a rename or a replacement? name the renames, keypoint_renames={{{name!r}: {{{lost[0]!r}: "
            f"{gained[0]!r}}}}} (CLI --rename-keypoint {name}:{lost[0]}={gained[0]}); to drop points and add others, "
            f"migrate twice (first to a schema without {lost})")


def _renamed_keypoints(c: ClassDef, names: Mapping[str, str], current: str) -> tuple[ClassDef, list[Step]]:
    """``c`` with its keypoints renamed by the hints ``names``, and the step that does it (on class ``current``)."""
    if not names:
        return c, []
    return replace(c, keypoints=tuple(names.get(k, k) for k in c.keypoints)), [RenameKeypoints(current, dict(names))]


def _aligned(c: ClassDef, target: ClassDef, kp_renames: Mapping[str, str]) -> tuple[ClassDef, list[Step]]:
    """A class about to be folded into ``target``, and the steps that give it the target's keypoints and skeleton
    (when it names keypoints: its points move by name) and kind (when the target is an object class): classes
    whose keypoints disagree cannot be merged, and semantic classes merge into a semantic class."""
    c, steps = _renamed_keypoints(c, kp_renames, c.name)
    if c.keypoints and (c.keypoints, c.skeleton) != (target.keypoints, target.skeleton):
        _keypoint_rule(c.name, c.keypoints, target.keypoints)
        steps.append(UpdateClass(c.name, {"keypoints": list(target.keypoints),
                                          "skeleton": [list(p) for p in target.skeleton]}))
        c = replace(c, keypoints=target.keypoints, skeleton=target.skeleton)
    if c.kind != target.kind and target.kind == "object":
        steps.append(ChangeKind(c.name, "object"))
        c = replace(c, kind="object")
    return c, steps


def _after_splits(old: LabelSchema, new: LabelSchema, splits: Mapping[str, AttributeToClass]) -> LabelSchema:
    """The old schema as it is after the AttributeToClass steps (so the split classes are not re-added)."""
    if not splits:
        return old
    classes: list[ClassDef] = []
    for c in old.classes:
        st = splits.get(c.name)
        if st is None:
            classes.append(c)
            continue
        values = old.attribute(st.attribute).values
        classes += [replace(c, name=v, id=None) for v in values]
    attrs = tuple(a for a in old.attributes if all(a.name != st.attribute for st in splits.values()))
    return replace(old, classes=tuple(classes), attributes=attrs)


def _names_after(schema: LabelSchema, steps: list[Step]) -> tuple[str, ...]:
    """The class names, in order, that ``steps`` leave on a dataset of ``schema`` without images.

    Raises:
        MigrationError: a step does not apply (a rename hint asks for what the steps cannot do).
    """
    ds = Dataset(schema=schema, images=Images.empty(), annotations=Annotations.empty(), root=None)
    try:
        return migrate(ds, steps, allow_lossy=True, check_version=False).dataset.schema.names
    except SchemaError as e:
        raise MigrationError(f"plan_migration: every planned step must apply, got one that does not (the rename "
                             f"hints ask for it?): {e}") from None


def _class_renames(old: LabelSchema, new: LabelSchema, renames: Mapping[str, str]) -> list[tuple[list[str], str]]:
    """The rename hints as (old classes, new class) in an order that applies: several classes renamed into one
    (and the class of that name when it stays) are merged; a rename into a name another class still has waits
    for that class's rename; renames that go round (``a=b`` and ``b=a``: a swap) go through a name neither schema
    has.

    Raises:
        MigrationError: merges that go round (no single rename to break the round with).
    """
    groups: dict[str, list[str]] = {}
    for o in old.names:
        t = renames.get(o, o if o in new and any(n == o for k, n in renames.items() if k != o) else None)
        if t is not None:
            groups.setdefault(t, []).append(o)
    pending = [(olds, t) for t, olds in groups.items() if olds != [t]]
    current = set(old.names)
    out: list[tuple[list[str], str]] = []
    while pending:
        ready = [(olds, t) for olds, t in pending if t not in current or t in olds]
        if not ready:  # a round: one class steps aside to a free name, then the round unwinds
            k, (olds, t) = next(((k, p) for k, p in enumerate(pending) if len(p[0]) == 1), (-1, ([], "")))
            if k < 0:
                hint = ", ".join(f"{'+'.join(olds)}={t}" for olds, t in pending)
                raise MigrationError(f"plan_migration: class merges must not go round, got {hint}; merge through "
                                     "a name neither schema has, in two migrations")
            taken = set(old.names) | set(new.names) | current
            aside = next(f"{olds[0]}~{j}" for j in range(len(taken) + 1) if f"{olds[0]}~{j}" not in taken)
            out.append((olds, aside))
            current = (current - set(olds)) | {aside}
            pending[k] = ([aside], t)
            continue
        for olds, t in ready:
            out.append((olds, t))
            current -= set(olds)
            current.add(t)
        pending = [p for p in pending if p not in ready]
    return out


def plan_migration(old: LabelSchema, new: LabelSchema, *, renames: Mapping[str, str] | None = None,
                   attribute_renames: Mapping[str, str] | None = None,
                   keypoint_renames: Mapping[str, Mapping[str, str]] | None = None) -> Migration:
    """The steps that take data in schema ``old`` to schema ``new``.

    Args:
        renames: old class name -> new class name (a rename is never guessed). Several classes renamed into one
            (or into a class that stays) are merged: ``MergeClasses``, lossy where the data has more than one of
            them.
        attribute_renames: old attribute name -> new attribute name.
        keypoint_renames: old class name -> {old keypoint name -> new keypoint name}. Other keypoint changes
            move the points by name (``UpdateClass``): a reorder, a name added, a name removed (lossy).

    Returns:
        A Migration from ``old.version`` to ``old.version + 1``. Drops of removed classes/attributes are lossy
        when the data holds them; ``migrate`` then needs ``allow_lossy``.

    Raises:
        MigrationError: a rename hint names a class, attribute or keypoint that is not in ``old`` or not in
            ``new``; class renames go round; a class both loses and gains keypoint names without hints (a rename
            is never guessed); the hints make a step that does not apply.
    """
    renames = dict(renames or {})
    arenames = dict(attribute_renames or {})
    kprenames = {c: dict(m) for c, m in (keypoint_renames or {}).items()}
    old_schema = old
    for o, n in renames.items():
        if o not in old or n not in new:
            raise MigrationError(f"plan_migration: rename {o}={n} must map a class of the old schema to a class "
                                 f"of the new one")
    for cls, m in kprenames.items():
        if cls not in old:
            raise MigrationError(f"plan_migration: keypoint renames must name a class of the old schema, got "
                                 f"{cls!r}")
        names = old.classes[old.index(cls)].keypoints
        for k, v in m.items():
            if k not in names or not isinstance(v, str) or not v:
                raise MigrationError(f"plan_migration: keypoint rename {cls}:{k}={v} must map a keypoint of class "
                                     f"{cls!r} ({list(names)}) to a non-empty name")
    steps: list[Step] = []
    folded: dict[str, ClassDef] = {}  # the class each merge (or ClassesToAttribute) makes, by the merge rule
    for olds, t in _class_renames(old, new, renames):
        if len(olds) == 1:
            steps.append(RenameClass(olds[0], t))
            continue
        target = new.classes[new.index(t)]
        defs = []
        for n in olds:
            c, align = _aligned(old.classes[old.index(n)], target, kprenames.pop(n, {}))
            defs.append(c)
            steps += align
        folded[t] = merged_class("plan_migration", defs, t)
        steps.append(MergeClasses(tuple(olds), t))
        renames.update({n: t for n in olds})
    oa = {a.name for a in old.attributes}
    for o, n in arenames.items():
        if o not in oa or n not in {a.name for a in new.attributes}:
            raise MigrationError(f"plan_migration: attribute rename {o}={n} must map an old attribute to a new one")
        steps.append(RenameAttribute(o, n))
    for st in _structural_steps(old, new, renames):
        if isinstance(st, ClassesToAttribute):
            target = new.classes[new.index(st.into)]
            defs = []
            for n in (n for n in old.names if n in set(st.classes)):
                c, align = _aligned(old.classes[old.index(n)], target, kprenames.pop(n, {}))
                defs.append(c)
                steps += align
            folded[st.into] = merged_class("plan_migration", defs, st.into)
        steps.append(st)
        if isinstance(st, AttributeToClass):  # the split class stays for annotations without a value
            steps.append(DropClass(st.class_, missing_ok=True))
    for st in steps:  # classes folded into an attribute (or split out of one) are neither dropped nor added
        if isinstance(st, ClassesToAttribute):
            renames.update({c: st.into for c in st.classes})
    split_from = {st.class_: st for st in steps if isinstance(st, AttributeToClass)}
    old = _after_splits(old, new, split_from)
    renamed = [renames.get(c.name, c.name) for c in old.classes]
    steps += [DropClass(c.name) for c, r in zip(old.classes, renamed, strict=True) if r not in new]
    kept = [r for r in renamed if r in new]
    for c in new.classes:
        if c.name not in kept:
            steps.append(AddClass(c.name, kind=c.kind, label_types=c.label_types))
    for c in new.classes:
        # the definition the class has after the steps above
        base = folded.get(c.name) or next((oc for oc, r in zip(old.classes, renamed, strict=True) if r == c.name),
                                          None)
        if base is None:
            base = ClassDef(c.name, kind=c.kind, label_types=c.label_types)
        elif c.name not in folded:
            before = base.name
            base, named = _renamed_keypoints(base, kprenames.pop(before, {}), c.name)
            steps += named
            _keypoint_rule(before, base.keypoints, c.keypoints)
        if base.kind != c.kind:
            steps.append(ChangeKind(c.name, c.kind))
        if base.label_types != c.label_types:
            steps.append(SetLabelTypes(c.name, c.label_types))
        upd = {k: _plain(v[1]) for k, v in _fields_changed(base, c, {"name", "kind", "label_types"}).items()}
        if "keypoints" in upd:  # the target's skeleton, not the old one's edges followed by name
            upd["skeleton"] = _plain(c.skeleton)
        if upd:
            steps.append(UpdateClass(c.name, upd))
    if kprenames:
        raise MigrationError(f"plan_migration: keypoint renames must name a class that is kept, merged or folded, "
                             f"got {next(iter(kprenames))!r} (it is dropped)")
    oa = {a.name for a in old.attributes}
    arenamed = {arenames.get(a, a) for a in oa}
    steps += [DropAttribute(a.name) for a in old.attributes if arenames.get(a.name, a.name) not in
              {x.name for x in new.attributes}]
    olda = {arenames.get(a.name, a.name): a for a in old.attributes}
    for a in new.attributes:
        prev = olda.get(a.name)
        if a.name not in arenamed or prev is None or _fields_changed(prev, a, {"name"}):
            steps.append(SetAttribute(_attr_dict(a)))
    schema_changes: dict[str, Any] = {}
    if old.tasks != new.tasks:
        schema_changes["tasks"] = [t.value for t in new.tasks]
    if old.guidelines != new.guidelines:
        schema_changes["guidelines"] = new.guidelines
    if schema_changes:
        steps.append(UpdateSchema(schema_changes))
    if _names_after(old_schema, steps) != new.names:  # a reorder step only where the order changes
        steps.append(ReorderClasses(new.names))
        _names_after(old_schema, steps)
    return Migration(steps=tuple(steps), from_version=old.version, to_version=old.version + 1,
                     description=f"planned from schema v{old.version} to the new schema")
