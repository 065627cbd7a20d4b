"""Migration steps that merge classes or split one (``MergeClasses``, ``ClassesToAttribute``,
``AttributeToClass``), and the rule for the definition of a class that others are merged into.

The merge rule (``merged_class``): the merged class allows the union of the label types of the classes merged
(any, when one of them allows any), is ``semantic`` only when all of them are, and names the keypoints and
skeleton of those that name keypoints, which must agree. An attribute that applied to some of the merged classes
and not to others is no longer required (the others' annotations have no value for it). So every annotation that
was valid under the old schema is valid under the new one. Merging semantic classes that both have a region in one
image is refused: the merged class would have two there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef, ClassDef
from maslow.core.types import BoolArray, IntArray
from maslow.errors import MigrationError
from maslow.ontology._geometry import attribute_present
from maslow.ontology._step import Step, StepResult, narrowed, need_class, remap_classes


def merged_class(where: str, classes: Sequence[ClassDef], name: str) -> ClassDef:
    """The definition of class ``name`` that ``classes`` are merged into; ``classes[0]`` gives the other fields
    (supercategory, colour, id).

    Raises:
        MigrationError: two of the classes name different keypoints or skeletons.
    """
    base = classes[0]
    any_type = any(not c.label_types for c in classes)
    types = () if any_type else tuple(dict.fromkeys(t for c in classes for t in c.label_types))
    named = [c for c in classes if c.keypoints]
    for c in named[1:]:
        a = named[0]
        if (c.keypoints, c.skeleton) != (a.keypoints, a.skeleton):
            raise MigrationError(
                f"{where}: classes {a.name!r} and {c.name!r} must have the same keypoints and skeleton to be merged, "
                f"got {list(a.keypoints)} {list(a.skeleton)} and {list(c.keypoints)} {list(c.skeleton)}; give them "
                f"the same ones first (update_class), or clear one's (set_label_types, then update_class)")
    keypoints, skeleton = (named[0].keypoints, named[0].skeleton) if named else ((), ())
    kind = "semantic" if all(c.kind == "semantic" for c in classes) else "object"
    return replace(base, name=name, label_types=types, kind=kind, keypoints=keypoints, skeleton=skeleton)


def keeps_required(a: AttributeDef, groups: Iterable[Iterable[str]]) -> bool:
    """Whether ``a`` stays required when each group of classes becomes one class: only when it applied to all of
    each group or to none of it."""
    on = set(a.classes)
    return a.required and (not on or all(set(g) <= on or not set(g) & on for g in groups))


def check_one_region(where: str, ds: Dataset, rows: BoolArray, origin: IntArray) -> None:
    """Refuse to put ``rows`` in one semantic class when an image has rows of two ``origin`` classes."""
    image = ds.annotations.image[rows]
    pairs = np.unique(np.column_stack([image, origin[rows]]), axis=0) if rows.any() else np.zeros((0, 2), np.int64)
    images, count = np.unique(pairs[:, 0], return_counts=True)
    bad = images[count > 1]
    if bad.size:
        a, b = (ds.schema.names[int(o)] for o in pairs[pairs[:, 0] == bad[0], 1][:2])
        raise MigrationError(
            f"{where}: classes {a!r} and {b!r} are semantic (one region per image) and must not both have a region "
            f"in an image, got both in {str(ds.images.path[bad[0]])!r} ({bad.size} images); change one to kind "
            f"object first (change_kind)")


@dataclass(frozen=True)
class MergeClasses(Step):
    """Merge classes into one (``into`` may be one of them or a new name, placed where the first one was).

    Lossy (which class each annotation had is forgotten) unless ``keep_as`` names an enum attribute to hold it.
    The merged class is ``into``'s definition (the first class's for a new name) that allows the union of the
    merged classes' label types (any, when one allows any), is ``semantic`` only when all of them are, and keeps
    the keypoints and skeleton of those that name keypoints; a required attribute that applied to some of the
    merged classes only is no longer required. So every annotation valid before is valid after.

    Raises:
        MigrationError: two of the classes name different keypoints or skeletons, or they are semantic and both
            have a region in one image.
    """

    classes: tuple[str, ...]
    into: str
    keep_as: str | None = None
    op: ClassVar[str] = "merge_classes"

    def apply(self, ds: Dataset) -> StepResult:
        where = self.describe()
        merged = [n for n in ds.schema.names if n in set(self.classes) or n == self.into]
        for n in self.classes:
            need_class(ds, n, where)
        idx = [ds.schema.index(n) for n in merged]
        first = min(idx)
        base = ds.schema.index(self.into) if self.into in ds.schema else first
        merged_def = merged_class(where, [ds.schema.classes[i] for i in [base, *(i for i in idx if i != base)]],
                                  self.into)
        classes: list[ClassDef] = []
        old_to_new = np.zeros(len(ds.schema.classes), np.int64)
        for i, c in enumerate(ds.schema.classes):
            if i in idx and i != first:
                continue
            old_to_new[i] = len(classes)
            classes.append(merged_def if i == first else c)
        old_to_new[idx] = old_to_new[first]
        ann = ds.annotations
        rows = np.isin(ann.label, idx)
        if merged_def.kind == "semantic":
            check_one_region(where, ds, rows, ann.label)
        attrs = tuple(replace(a, classes=tuple(dict.fromkeys(self.into if c in merged else c for c in a.classes)),
                              required=keeps_required(a, [merged])) for a in ds.schema.attributes)
        lost = 0
        if self.keep_as is not None:
            if self.keep_as in ann.attributes and attribute_present(ann.attributes[self.keep_as]).any():
                raise MigrationError(f"{where}: attribute {self.keep_as!r} must be new, it already holds values")
            col = np.full(len(ann), None, dtype=object)
            col[rows] = np.asarray(ds.schema.names, dtype=object)[ann.label[rows]]
            ann = ann.with_columns(attributes={**ann.attributes, self.keep_as: col})
            attrs = (*tuple(a for a in attrs if a.name != self.keep_as), AttributeDef(self.keep_as, type="enum", values=tuple(merged), required=True, classes=(self.into,)))
        elif len(np.unique(ann.label[rows])) > 1:
            lost = int(rows.sum())
        out = remap_classes(ds.replace(annotations=ann), classes, old_to_new, attributes=attrs)
        return StepResult(out, int(rows.sum()), lost)


@dataclass(frozen=True)
class ClassesToAttribute(Step):
    """Several classes become one class plus an enum attribute holding the old class name (lossless).

    The inverse is ``AttributeToClass(class_=into, attribute=attribute)``.
    """

    classes: tuple[str, ...]
    into: str
    attribute: str
    op: ClassVar[str] = "classes_to_attribute"

    def apply(self, ds: Dataset) -> StepResult:
        return MergeClasses(self.classes, self.into, keep_as=self.attribute).apply(ds)


@dataclass(frozen=True)
class AttributeToClass(Step):
    """Split a class by an attribute: annotations of ``class_`` with value v become class v (or ``names[v]``).

    The attribute is cleared on those rows (and dropped from the schema when no value is left; kept, it is no
    longer required on the classes the values went to). Annotations without a value stay in ``class_``; ``class_``
    is removed when none stays. A value may name ``class_`` itself (its rows stay) only when every annotation of
    ``class_`` has a value. The inverse of ``ClassesToAttribute`` (also when its ``into`` was one of the merged
    classes). A new class is a copy of ``class_``; an existing class a value names is merged with ``class_`` (the
    merge rule of ``MergeClasses``). Lossy when two values (through ``names``), or a value and an existing class's
    annotations, end up in one class: the annotations of that class are counted lost. When the schema gives the
    attribute's values (an enum), a value outside them that ``names`` does not name is refused (the data is wrong,
    ``validate`` lists it; a class is not made for it).
    """

    class_: str
    attribute: str
    names: Mapping[str, str] = field(default_factory=dict)
    op: ClassVar[str] = "attribute_to_class"

    def apply(self, ds: Dataset) -> StepResult:
        where = self.describe()
        src = need_class(ds, self.class_, where)
        ann = ds.annotations
        defined = any(a.name == self.attribute for a in ds.schema.attributes)
        if self.attribute not in ann.attributes and not defined:
            raise MigrationError(f"{where}: attribute {self.attribute!r} must be in the schema or the annotations")
        # a defined attribute without a column has no values (as for validate): its classes are still made
        col = ann.attributes.get(self.attribute, np.full(len(ann), None, dtype=object))
        rows = (ann.label == src) & attribute_present(col)
        values = [str(v) for v in col[rows]]
        adef = next((a for a in ds.schema.attributes if a.name == self.attribute), None)
        order = list(adef.values) if adef is not None and adef.values else []
        order += sorted(set(values) - set(order))
        order = [v for v in order if v in set(values)] if not (adef and adef.values) else order
        targets = [self.names.get(v, v) for v in order]
        if "" in targets:
            v = order[targets.index("")]
            raise MigrationError(f"{where}: a class name must not be empty, got '' for the value {v!r} "
                                 f"({values.count(v)} annotations); name its class with names={{{v!r}: ...}}")
        if adef is not None and adef.values:  # a value outside the enum is a data error, not a class to make
            outside = sorted(set(values) - set(map(str, adef.values)) - set(self.names))
            if outside:
                v = outside[0]
                raise MigrationError(
                    f"{where}: every value must be one of the attribute's values {list(adef.values)}, got {v!r} "
                    f"({values.count(v)} annotations; {len(outside)} values outside: {outside[:5]}); correct the "
                    f"data (`maslow schema validate` lists the annotations) or name its class with "
                    f"names={{{v!r}: ...}}")
        without = bool(((ann.label == src) & ~rows).any())
        if self.class_ in targets and without:
            raise MigrationError(f"{where}: a value must not map to the class being split, {self.class_!r}, while "
                                 f"some of its annotations have no value (the two could not be told apart)")
        # the class stays for rows without a value, and in the values' order where a value names it
        stays = without or self.class_ in targets
        base = ds.schema.classes[src]
        existing = [t for t in dict.fromkeys(targets) if t in ds.schema and t != self.class_]
        classes: list[ClassDef] = []
        old_to_new = np.zeros(len(ds.schema.classes), np.int64)
        new_index: dict[str, int] = {}
        for i, c in enumerate(ds.schema.classes):
            if i == src:
                for t in ([] if self.class_ in targets or not stays else [self.class_]) + targets:
                    if t == self.class_ and t not in new_index:
                        old_to_new[i] = new_index[t] = len(classes)
                        classes.append(c)
                    elif t not in new_index and t not in ds.schema:
                        new_index[t] = len(classes)
                        classes.append(replace(base, name=t, id=None))
                continue
            old_to_new[i] = len(classes)
            classes.append(merged_class(where, [c, base], c.name) if c.name in existing else c)
        for i, c in enumerate(ds.schema.classes):
            if c.name in set(targets) and i != src:
                new_index[c.name] = int(old_to_new[i])
        label = old_to_new[ann.label].copy() if len(ann) else ann.label.copy()
        if rows.any():
            per_value = np.array([new_index[self.names.get(v, v)] for v in values], np.int64)
            label[rows] = per_value
        for t in existing:
            if classes[new_index[t]].kind == "semantic":
                check_one_region(where, ds, label == new_index[t], ann.label)
        new_col = col.copy()
        new_col[rows] = None
        attrs_cols = {**ann.attributes, self.attribute: new_col}
        keep_attr = attribute_present(new_col).any()
        if not keep_attr:
            del attrs_cols[self.attribute]
        new_ann = ann.with_columns(label=label, attributes=attrs_cols)
        lost = self._merged_rows(ds, values, src)
        attrs = narrowed([self._required(a, stays, targets, existing) for a in ds.schema.attributes
                          if a.name != self.attribute or keep_attr], lambda a: [
            x for c in a.classes for x in ([c] if c != self.class_ or stays else [])]
            + (targets if self.class_ in a.classes and a.name != self.attribute else []))
        schema = replace(ds.schema, classes=tuple(classes), attributes=attrs)
        return StepResult(ds.replace(schema=schema, annotations=new_ann),
                          int(rows.sum()), lost)

    def _required(self, a: AttributeDef, stays: bool, targets: list[str], existing: list[str]) -> AttributeDef:
        """``a`` no longer required where the split leaves annotations without a value: the split attribute on
        the classes its values went to, another one on an existing class merged with ``class_``."""
        if a.name == self.attribute:
            after = {c for c in a.classes if c != self.class_ or stays}
            return replace(a, required=a.required and bool(a.classes) and not after & set(targets))
        return replace(a, required=keeps_required(a, [(t, self.class_) for t in existing]))

    def _merged_rows(self, ds: Dataset, values: list[str], src: int) -> int:
        """Annotations of the classes that several values (or a value and a class of that name) end up in: which
        of them each annotation was is forgotten, as by a plain ``MergeClasses``."""
        origins: dict[str, set[str]] = {}
        for v in values:
            origins.setdefault(self.names.get(v, v), set()).add(v)
        lost = 0
        for t, vs in origins.items():
            had = int((ds.annotations.label == ds.schema.index(t)).sum()) if t in ds.schema and t != self.class_ else 0
            if len(vs) + (had > 0) > 1:
                lost += sum(v in vs for v in values) + had
        return lost
