"""plan_migration and diff_schemas on random schema pairs: the planned migration takes data valid under the old
schema to data valid under the new one, with the new schema (tasks and guidelines included), a version above the
old one, and a lossless plan is undone by the plan back.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow.core import AttributeDef, ClassDef, Dataset, LabelSchema
from maslow.errors import MigrationError
from maslow.ontology import diff_schemas, migrate, plan_migration, validate
from tests.ontology.randomdata import LABEL_TYPES, TASKS, random_class, random_dataset, random_schema
from tests.ontology.test_migrate_properties import assert_same_dataset

SEEDS = st.integers(0, 2**32 - 1)
FEW = settings(max_examples=60, deadline=None)


def _fold(rng: np.random.Generator, classes: list[ClassDef], attrs: list[AttributeDef],
          renames: dict[str, str]) -> tuple[list[ClassDef], list[AttributeDef]]:
    """Fold some classes into a new class plus an enum attribute naming them (what ClassesToAttribute makes)."""
    pool = [c for c in classes if c.name not in renames.values()]
    if not pool or "was" in {a.name for a in attrs}:
        return classes, attrs
    fold = [pool[i] for i in rng.choice(len(pool), int(rng.integers(1, len(pool) + 1)), replace=False)]
    names = {c.name for c in fold}
    keypoints = max((c.keypoints for c in fold), key=len)  # names for every folded class's points
    merged = replace(fold[0], name="merged", label_types=(), keypoints=keypoints, skeleton=(), kind="object")
    classes = [merged if c is fold[0] else c for c in classes if c is fold[0] or c.name not in names]
    attrs = [replace(a, classes=tuple(dict.fromkeys("merged" if c in names else c for c in a.classes)),
                     required=a.required and (not a.classes or set(a.classes) >= names or not names & set(a.classes)))
             for a in attrs]
    return classes, [*attrs, AttributeDef("was", type="enum", values=tuple(c.name for c in fold), required=True,
                                          classes=("merged",))]


def derive(rng: np.random.Generator, a: LabelSchema, *, lossless: bool = False) -> tuple[LabelSchema, dict[str, str]]:
    """A new schema from ``a`` and the rename hints: renamed, dropped and added classes, classes folded into an
    attribute, looser label types and kinds, attributes dropped, added or no longer required, new tasks and
    guidelines, a new order. Every change leaves data valid under ``a`` something a plan can make valid."""
    slots: list[ClassDef | None] = list(a.classes)
    attrs = list(a.attributes)
    renames: dict[str, str] = {}
    for i, c in enumerate(a.classes):
        r = rng.random()
        if r < 0.2:
            new = f"{c.name}_v2"
            renames[c.name] = new
            slots[i] = replace(c, name=new)
            attrs = [replace(x, classes=tuple(new if y == c.name else y for y in x.classes)) for x in attrs]
        elif lossless:
            continue
        elif r < 0.3:
            slots[i] = None  # dropped
        elif r < 0.45:  # loser label types: what is cleared leaves a tag, semantic regions keep masks
            extra = ["tag", *(["mask"] if c.kind == "semantic" else [])]
            picked = rng.choice(LABEL_TYPES, int(rng.integers(0, 3)), replace=False).tolist()
            slots[i] = replace(c, label_types=tuple(dict.fromkeys([*picked, *extra])))
        elif r < 0.55:
            slots[i] = replace(c, kind="object", supercategory="changed")
    gone = {c.name for c, d in zip(a.classes, slots, strict=True) if d is None}
    classes = [c for c in slots if c is not None]
    attrs = [replace(x, classes=tuple(y for y in x.classes if y not in gone)) for x in attrs
             if not x.classes or set(x.classes) - gone]
    if rng.random() < 0.4:
        classes, attrs = _fold(rng, classes, attrs, renames)
    if not lossless:
        if rng.random() < 0.3:
            classes.append(random_class(rng, "added"))
        attrs = [replace(x, required=False) if rng.random() < 0.3 else x for x in attrs if rng.random() < 0.8
                 or x.name == "was"]
        if rng.random() < 0.3:
            attrs.append(AttributeDef("extra", type="text"))
    classes = [classes[i] for i in rng.permutation(len(classes))]
    tasks = tuple(rng.choice(TASKS, int(rng.integers(1, 3)), replace=False).tolist()) if rng.random() < 0.4 \
        else a.tasks
    guidelines = str(rng.choice([a.guidelines, "", "New: 'quoted' \"text\"\n猫"]))
    return replace(a, classes=tuple(classes), attributes=tuple(attrs), tasks=tasks, guidelines=guidelines,
                   version=a.version + int(rng.integers(0, 3))), renames


def _valid(seed: int) -> tuple[np.random.Generator, Dataset]:
    rng = np.random.default_rng(seed)
    a = random_schema(rng, n_classes=int(rng.integers(1, 5)))
    return rng, random_dataset(rng, a, valid=True)


@FEW
@given(SEEDS)
def test_the_planned_migration_reaches_the_new_schema(seed: int) -> None:
    rng, ds = _valid(seed)
    a = ds.schema
    b, renames = derive(rng, a)
    plan = plan_migration(a, b, renames=renames)
    assert (plan.from_version, plan.to_version) == (a.version, a.version + 1)
    res = migrate(ds, plan, allow_lossy=True)
    out = res.dataset
    assert out.schema.version == a.version + 1  # versions only go up, whatever the target file says
    assert replace(out.schema, version=b.version) == b, diff_schemas(out.schema, b).to_dict()
    assert diff_schemas(out.schema, b).empty
    assert validate(out, b).counts() == {}
    assert [c["step"] for c in res.changes] == list(range(len(plan.steps)))
    if res.lossy:  # the plan is refused without allow_lossy exactly when it loses something on this data
        try:
            migrate(ds, plan)
        except MigrationError as e:
            assert "would lose" in str(e)
        else:
            raise AssertionError("a lossy plan ran without allow_lossy")
    else:
        assert_same_dataset(migrate(ds, plan).dataset, out)


@FEW
@given(SEEDS)
def test_a_lossless_plan_is_undone_by_the_plan_back(seed: int) -> None:
    rng, ds = _valid(seed)
    a = ds.schema
    b, renames = derive(rng, a, lossless=True)
    fwd = migrate(ds, plan_migration(a, b, renames=renames))
    assert not fwd.lossy
    back_plan = plan_migration(fwd.dataset.schema, a, renames={v: k for k, v in renames.items()})
    back = migrate(fwd.dataset, back_plan)
    assert not back.lossy
    assert_same_dataset(back.dataset, ds)
    assert replace(back.dataset.schema, version=a.version) == a, diff_schemas(back.dataset.schema, a).to_dict()
    assert back.dataset.schema.version == a.version + 2


@FEW
@given(SEEDS)
def test_the_plan_back_drops_folded_annotations_without_a_value(seed: int) -> None:
    rng, ds = _valid(seed)
    a = ds.schema
    b, renames = derive(rng, a, lossless=True)
    fwd = migrate(ds, plan_migration(a, b, renames=renames)).dataset
    if "was" not in fwd.annotations.attributes:
        return
    col = fwd.annotations.attributes["was"].copy()
    blank = np.flatnonzero(np.not_equal(col, None) & (rng.random(len(col)) < 0.5))
    col[blank] = None
    fwd = fwd.replace(annotations=fwd.annotations.with_columns(attributes={**fwd.annotations.attributes, "was": col}))
    back = migrate(fwd, plan_migration(fwd.schema, a, renames={v: k for k, v in renames.items()}), allow_lossy=True)
    assert sum(c["lost"] for c in back.changes) == len(blank)  # the merged class is dropped with them
    assert replace(back.dataset.schema, version=a.version) == a
    assert_same_dataset(back.dataset, ds.select(np.setdiff1d(np.arange(ds.n_annotations), blank)))


@FEW
@given(SEEDS, SEEDS)
def test_diff_lists_exactly_what_differs(seed_a: int, seed_b: int) -> None:
    a, b = random_schema(np.random.default_rng(seed_a)), random_schema(np.random.default_rng(seed_b))
    d = diff_schemas(a, b)
    assert set(d.added_classes) == set(b.names) - set(a.names)
    assert set(d.removed_classes) == set(a.names) - set(b.names)
    for n in set(a.names) & set(b.names):
        ca, cb = a.classes[a.index(n)], b.classes[b.index(n)]
        assert (n in d.changed_classes) == (ca != cb)
        if ca != cb:  # the changed fields, old and new values, and nothing else
            assert all(getattr(ca, f) == o != v == getattr(cb, f) for f, (o, v) in d.changed_classes[n].items())
            assert replace(ca, **{f: new for f, (_, new) in d.changed_classes[n].items()}) == cb
    aa, ab = {x.name: x for x in a.attributes}, {x.name: x for x in b.attributes}
    assert set(d.added_attributes) == ab.keys() - aa.keys() and set(d.removed_attributes) == aa.keys() - ab.keys()
    for n in aa.keys() & ab.keys():
        assert (n in d.changed_attributes) == (aa[n] != ab[n])
    assert d.order_changed == ([n for n in a.names if n in b] != [n for n in b.names if n in a])
    assert (d.tasks is None) == (a.tasks == b.tasks) and (d.guidelines is None) == (a.guidelines == b.guidelines)
    assert d.empty == (replace(a, version=b.version) == b)
    assert diff_schemas(a, a).empty
