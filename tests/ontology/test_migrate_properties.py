"""Migration steps on random schemas and datasets, against brute-force references written from the docstrings.

Each step's effect on the annotations (row by row, classes by name), its touched and lost counts, its refusal
without ``allow_lossy``, and, for the steps the docs call invertible, that the inverse gives back the dataset
column by column and the schema.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow.core import Dataset
from maslow.core import masks as M
from maslow.errors import MigrationError
from maslow.ontology import (
    AddClass,
    AttributeToClass,
    BoxesFromMasks,
    ChangeKind,
    ClassesToAttribute,
    DropAttribute,
    DropClass,
    MergeClasses,
    RenameAttribute,
    RenameClass,
    ReorderClasses,
    SetAttribute,
    SetLabelTypes,
    Step,
    UpdateClass,
    migrate,
)
from tests.ontology.randomdata import GEOMETRY, LABEL_TYPES, random_dataset, random_schema, records

SEEDS = st.integers(0, 2**32 - 1)
FEW = settings(max_examples=80, deadline=None)
Rec = dict[str, Any]
# refusals the docstrings name: a name clash, an ambiguous split, classes that cannot be merged into one
REFUSALS = ("exists already", "must be new", "told apart", "must not be empty", "must be one of the attribute's values",
            "same keypoints and skeleton", "one region per image")  # the last two: classes that can't be merged


# -- references: one record at a time, from the step's docstring ------------------------------------------------
def _box_of(rec: Rec) -> list[float] | None:
    """pycocotools' toBbox of the mask, else the vertex extent of the polygon, else None."""
    if rec["mask"] is not None:
        return M.to_box([rec["mask"]])[0].tolist()
    pts = np.concatenate([np.asarray(r).reshape(-1, 2) for r in rec["polygon"] or []] or [np.zeros((0, 2))])
    return None if not len(pts) else [*pts.min(0).tolist(), *pts.max(0).tolist()]


def reference(step: Step, ds: Dataset) -> tuple[list[Rec], int, int]:
    """(records after the step, touched, lost)."""
    recs = [dict(r, attrs=dict(r["attrs"])) for r in records(ds)]
    if isinstance(step, RenameClass):
        hit = [r for r in recs if r["class"] == step.old]
        for r in hit:
            r["class"] = step.new
        return recs, len(hit), 0
    if isinstance(step, MergeClasses | ClassesToAttribute):
        keep_as = step.keep_as if isinstance(step, MergeClasses) else step.attribute
        merged = set(step.classes) | ({step.into} & set(ds.schema.names))
        hit = [r for r in recs if r["class"] in merged]
        distinct = {r["class"] for r in hit}
        for r in hit:
            if keep_as is not None:
                r["attrs"][keep_as] = r["class"]
            r["class"] = step.into
        return recs, len(hit), len(hit) if keep_as is None and len(distinct) > 1 else 0
    if isinstance(step, AttributeToClass):  # lossy where two values, or a value and a class, share a class
        hit = [r for r in recs if r["class"] == step.class_ and step.attribute in r["attrs"]]
        origin: dict[int, str] = {id(r): f"class {r['class']}" for r in recs}
        for r in hit:
            v = str(r["attrs"].pop(step.attribute))
            r["class"], origin[id(r)] = step.names.get(v, v), f"value {v}"
        moved = {r["class"] for r in hit}
        lost = sum(len({origin[id(x)] for x in recs if x["class"] == r["class"]}) > 1 for r in recs
                   if r["class"] in moved)
        return recs, len(hit), lost
    if isinstance(step, DropClass) and step.name not in ds.schema:  # missing_ok
        return recs, 0, 0
    if isinstance(step, DropClass):
        kept = [r for r in recs if r["class"] != step.name]
        return kept, len(recs) - len(kept), len(recs) - len(kept)
    if isinstance(step, DropAttribute | RenameAttribute):
        old = step.name if isinstance(step, DropAttribute) else step.old
        hit = [r for r in recs if old in r["attrs"]]
        for r in hit:
            v = r["attrs"].pop(old)
            if isinstance(step, RenameAttribute):
                r["attrs"][step.new] = v
        return recs, len(hit), len(hit) if isinstance(step, DropAttribute) else 0
    if isinstance(step, ChangeKind):
        return recs, sum(r["class"] == step.class_ for r in recs), 0
    if isinstance(step, UpdateClass | AddClass | SetAttribute):
        return recs, 0, 0
    if isinstance(step, ReorderClasses):
        moved = {n for i, n in enumerate(ds.schema.names) if step.names.index(n) != i}
        return recs, sum(r["class"] in moved for r in recs), 0
    if isinstance(step, SetLabelTypes):
        allowed = set(step.label_types) or set(LABEL_TYPES)
        boxes = "box" in allowed and ds.schema.classes[ds.schema.index(step.class_)].kind == "object"
        lost = 0
        for r in recs:
            if r["class"] != step.class_:
                continue
            before = {t for t in GEOMETRY if r[t] is not None}
            box = _box_of(r)
            for t in before - allowed:
                r[t] = None
            if boxes and not any(r[t] is not None for t in GEOMETRY) and before & {"mask", "polygon"}:
                r["box"] = box  # a row left with no geometry keeps the extent of what was cleared
            lost += bool(before - allowed)
        return recs, lost, lost
    if isinstance(step, BoxesFromMasks):  # semantic classes are left alone; a changed box is lost
        touched = lost = 0
        semantic = {c.name for c in ds.schema.classes if c.kind == "semantic"}
        for r in recs:
            if (step.classes and r["class"] not in step.classes) or r["class"] in semantic:
                continue
            had, changed = r["box"], False
            if (step.overwrite or r["box"] is None) and (box := _box_of(r)) is not None:
                r["box"], touched = box, touched + 1
                changed = had is not None and had != box
            if not step.keep_geometry and r["box"] is not None:  # a row left without a box keeps its geometry
                changed |= r["mask"] is not None or r["polygon"] is not None
                r["mask"] = r["polygon"] = None
            lost += changed
        return recs, touched, lost
    raise AssertionError(f"no reference for {step.op}")


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, dict) and "counts" in a:
        return bool(np.array_equal(M.decode(a), M.decode(b)))  # type: ignore[arg-type]
    if isinstance(a, list) and a and isinstance(a[0], np.ndarray):  # polygon rings
        return isinstance(b, list) and len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray | list):
        return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), equal_nan=True))
    return type(a) is type(b) and a == b


def assert_records_equal(got: list[Rec], want: list[Rec]) -> None:
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        for key in w:
            if key == "attrs":
                assert g[key].keys() == w[key].keys(), (i, g[key], w[key])
                assert all(_same(g[key][k], w[key][k]) for k in w[key]), (i, g[key], w[key])
            else:
                assert _same(g[key], w[key]), (i, key, g[key], w[key])


# -- random steps ---------------------------------------------------------------------------------------------
NEW = ("fresh", "nouveau ü", "it's new")


def _attr_names(ds: Dataset) -> list[str]:
    return list(dict.fromkeys([*ds.annotations.attributes, *(a.name for a in ds.schema.attributes)]))


def random_step(rng: np.random.Generator, ds: Dataset) -> Step:
    names = list(ds.schema.names)
    attrs = _attr_names(ds)
    one = str(rng.choice(names))
    some = tuple(str(x) for x in rng.choice(names, int(rng.integers(1, len(names) + 1)), replace=False))
    new_attr = str(rng.choice([a for a in ("was", "kind2", "sp", "old_class", "was 2") if a not in attrs]))
    fresh = str(rng.choice(NEW))
    into = str(rng.choice([fresh, *some]))
    choices: list[Step] = [
        RenameClass(one, fresh), MergeClasses(some, into), MergeClasses(some, into, keep_as=new_attr),
        ClassesToAttribute(some, into, new_attr), DropClass(one), DropClass(fresh, missing_ok=True),
        ChangeKind(one, str(rng.choice(["object", "semantic"]))),
        UpdateClass(one, {"color": "#123456", "supercategory": "s"}), AddClass(fresh, label_types=("box",)),
        ReorderClasses(tuple(str(x) for x in rng.permutation(names))),
        SetLabelTypes(one, tuple(str(t) for t in rng.choice(LABEL_TYPES, int(rng.integers(0, 4)), replace=False))),
        BoxesFromMasks(classes=some if rng.random() < 0.5 else (), overwrite=bool(rng.random() < 0.5),
                       keep_geometry=bool(rng.random() < 0.5)),
        SetAttribute({"name": new_attr, "type": "text"}),
    ]
    if attrs:
        a = str(rng.choice(attrs))
        values = sorted({str(v) for r in records(ds) for k, v in r["attrs"].items() if k == a})
        choices += [DropAttribute(a), RenameAttribute(a, new_attr),
                    AttributeToClass(one, a, names={v: str(rng.choice([f"{v}_{one}", "shared", *names]))
                                                    for v in values if rng.random() < 0.5})]
    return choices[int(rng.integers(0, len(choices)))]


def _dataset(seed: int) -> tuple[np.random.Generator, Dataset]:
    rng = np.random.default_rng(seed)
    while True:
        ds = random_dataset(rng, random_schema(rng, n_classes=int(rng.integers(1, 5))), valid=bool(rng.random() < 0.5))
        if ds.n_annotations:
            return rng, ds


@FEW
@given(SEEDS)
def test_each_step_does_what_its_docstring_says(seed: int) -> None:
    rng, ds = _dataset(seed)
    step = random_step(rng, ds)
    try:
        res = migrate(ds, [step], allow_lossy=True)
    except MigrationError as e:  # refusals are for clashes the docstrings name
        assert any(w in str(e) for w in REFUSALS), e
        return
    want, touched, lost = reference(step, ds)
    assert_records_equal(records(res.dataset), want)
    assert (res.changes[0]["touched"], res.changes[0]["lost"]) == (touched, lost), step
    assert res.lossy == (lost > 0) and res.dataset.schema.version == ds.schema.version + 1
    assert res.changes[0]["n_annotations"] == len(want) == res.dataset.n_annotations
    if lost:  # refused without allow_lossy, naming the step and what it would lose
        with pytest.raises(MigrationError, match=rf"step 0 {step.op}\(.*would lose {lost} "):
            migrate(ds, [step])
    else:
        assert_records_equal(records(migrate(ds, [step]).dataset), want)
    for a in res.dataset.schema.attributes:  # the schema names only classes it has
        assert set(a.classes) <= set(res.dataset.schema.names), (step, a)


def assert_same_dataset(got: Dataset, want: Dataset) -> None:
    """Column by column: images, then each annotation column (present in both or in neither)."""
    assert got.images is want.images or (got.images.path.tolist() == want.images.path.tolist())
    a, b = got.annotations, want.annotations
    for name in ("image", "label", "box", "iscrowd", "source"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("mask", "polygon", "keypoints", "score", "annotator"):
        assert (getattr(a, name) is None) == (getattr(b, name) is None), name
    if b.keypoints is not None:
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert list(a.attributes) == list(b.attributes)
    assert_records_equal(records(got), records(want))


def _schema_restored(before: Any, after: Any) -> None:
    assert after.names == before.names
    assert replace(after, version=before.version) == before


def _inverse_pair(rng: np.random.Generator, ds: Dataset) -> tuple[Step, Step | tuple[Step, ...], bool]:
    """(step, its inverse, whether the schema comes back equal too)."""
    names = list(ds.schema.names)
    one = str(rng.choice(names))
    fresh = str(rng.choice(NEW))
    attrs = _attr_names(ds)
    pairs: list[tuple[Step, Step | tuple[Step, ...], bool]] = [
        (RenameClass(one, fresh), RenameClass(fresh, one), True),
        (ChangeKind(one, "semantic"), ChangeKind(one, ds.schema.classes[names.index(one)].kind), True),
        (ReorderClasses(tuple(str(x) for x in rng.permutation(names))), ReorderClasses(tuple(names)), True),
        (AddClass(fresh), DropClass(fresh), True),
    ]
    some = tuple(str(x) for x in rng.choice(names, int(rng.integers(1, len(names) + 1)), replace=False))
    new_attr = str(rng.choice([a for a in ("was", "kind2", "sp") if a not in attrs]))
    into = str(rng.choice([fresh, *some]))
    # merged classes come back where the merged class was: a reorder puts them back in their places
    back = (AttributeToClass(into, new_attr), ReorderClasses(tuple(names)))
    pairs.append((ClassesToAttribute(some, into, new_attr), back, False))
    pairs.append((MergeClasses(some, into, keep_as=new_attr), back, False))
    if attrs:
        a = str(rng.choice(attrs))
        pairs.append((RenameAttribute(a, new_attr), RenameAttribute(new_attr, a), True))
    return pairs[int(rng.integers(0, len(pairs)))]


@FEW
@given(SEEDS)
def test_invertible_steps_come_back(seed: int) -> None:
    rng, ds = _dataset(seed)
    step, inverse, schema_back = _inverse_pair(rng, ds)
    try:
        fwd = migrate(ds, [step])  # invertible steps are not lossy
    except MigrationError as e:  # classes that cannot be one class (keypoints, semantic regions) are not merged
        assert any(w in str(e) for w in REFUSALS[-2:]), e
        return
    assert not fwd.lossy
    back = migrate(fwd.dataset, inverse if isinstance(inverse, tuple) else [inverse]).dataset
    assert_same_dataset(back, ds)
    assert back.schema.names == ds.schema.names
    if schema_back:
        _schema_restored(ds.schema, back.schema)
