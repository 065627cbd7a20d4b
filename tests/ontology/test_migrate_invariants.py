"""Two invariants of every migration step and of random plans, on random schemas and datasets.

1. Validity: an annotation valid under the old schema and not dropped is valid under the new one. The steps that
   tighten a rule on request (``ChangeKind`` to semantic, ``SetLabelTypes``, ``UpdateClass`` of keypoints,
   ``SetAttribute``) may break only the rule they were asked to change, on the class or attribute they name.
2. Losses: the ``lost`` count of each step equals a brute-force diff of the dataset before and after it, each
   annotation followed by a row id kept in ``annotations.extra``: dropped, a geometry (box, mask, polygon,
   keypoints) removed or changed, an attribute value removed or changed (renames followed), or its class merged
   with annotations of another origin (another class, or another value of a split attribute) with nothing that
   keeps which one it was (``keep_as``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow.core import Dataset
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
    RenameKeypoints,
    ReorderClasses,
    SetAttribute,
    SetLabelTypes,
    Step,
    UpdateClass,
    UpdateSchema,
    migrate,
    plan_migration,
    validate,
)
from tests.ontology.randomdata import random_dataset, random_schema, records
from tests.ontology.test_migrate_properties import REFUSALS, _same, random_step
from tests.ontology.test_plan_properties import derive

SEEDS = st.integers(0, 2**32 - 1)
FEW = settings(max_examples=200, deadline=None)


def _tracked(ds: Dataset) -> Dataset:
    return ds.replace(annotations=ds.annotations.with_columns(extra={"row": np.arange(ds.n_annotations)}))


def _by_row(ds: Dataset) -> dict[int, dict[str, Any]]:
    return dict(zip(ds.annotations.extra["row"].tolist(), records(ds), strict=True))


def brute_lost(before: Dataset, after: Dataset, step: Step) -> set[int]:
    """Row ids of the annotations of ``before`` whose information ``after`` no longer holds."""
    b, a = _by_row(before), _by_row(after)
    renamed = {step.old: step.new} if isinstance(step, RenameAttribute) else {}
    lost = set(b) - set(a)
    origin: dict[int, tuple[str, str] | None] = {}
    for r, new in a.items():
        old = b[r]
        if any(old[t] is not None and not _same(old[t], new[t]) for t in ("box", "mask", "polygon")):
            lost.add(r)
        if _points_lost(before, after, old, new, step):
            lost.add(r)
        consumed = None
        for k, v in old["attrs"].items():
            k2 = renamed.get(k, k)
            if k2 in new["attrs"] and _same(new["attrs"][k2], v):
                continue
            if isinstance(step, AttributeToClass) and (old["class"], k) == (step.class_, step.attribute) \
                    and k not in new["attrs"] and new["class"] == step.names.get(str(v), str(v)):
                consumed = str(v)  # the value became the class
                continue
            lost.add(r)
        kept = any(k not in old["attrs"] and v == old["class"] for k, v in new["attrs"].items())
        origin[r] = None if kept else ("value", consumed) if consumed is not None else ("class", old["class"])
    origins: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for r, o in origin.items():
        if o is not None:
            origins[a[r]["class"]].add(o)
    return lost | {r for r, o in origin.items() if o is not None and len(origins[a[r]["class"]]) > 1}


def _points_lost(before: Dataset, after: Dataset, old: dict[str, Any], new: dict[str, Any], step: Step) -> bool:
    """Whether a keypoint of ``old`` that holds anything (not NaN, not (0, 0, 0)) is not in ``new`` at its name's
    place (points past the class's names: at their own place), keypoint renames followed."""
    if old["keypoints"] is None:
        return False
    names = before.schema.classes[before.schema.index(old["class"])].keypoints
    now = after.schema.classes[after.schema.index(new["class"])].keypoints
    renamed = step.names if isinstance(step, RenameKeypoints) and step.class_ == old["class"] else {}
    for j, p in enumerate(old["keypoints"]):
        if np.isnan(p).all() or (np.nan_to_num(p) == 0).all():
            continue
        name = renamed.get(names[j], names[j]) if j < len(names) else None
        if name is not None and name not in now:
            return True
        k = j if name is None else now.index(name)
        if new["keypoints"] is None or k >= len(new["keypoints"]) or not _same(p, new["keypoints"][k]):
            return True
    return False


def bad_rows(ds: Dataset) -> dict[int, set[tuple[str, str, str]]]:
    """Row id -> (rule, class, field) of each violation of the dataset's own schema."""
    rows = ds.annotations.extra["row"]
    out: dict[int, set[tuple[str, str, str]]] = defaultdict(set)
    for i in validate(ds, ds.schema).issues:
        assert i.annotation is not None
        out[int(rows[i.annotation])].add((i.type, ds.schema.names[ds.annotations.label[i.annotation]], i.field or ""))
    return out


def allowed(step: Step, issue: tuple[str, str, str]) -> bool:
    """Whether a step that tightens a rule on request may leave this violation on a row valid before."""
    rule, cls, field = issue
    if isinstance(step, ChangeKind):
        return step.kind == "semantic" and cls == step.class_ and rule == "wrong_kind"
    if isinstance(step, SetLabelTypes):  # rows left without an allowed geometry (a tag, no keypoints)
        return cls == step.class_ and (rule, field) in {("label_type_not_allowed", "label"),
                                                        ("keypoints_mismatch", "keypoints"), ("wrong_kind", "mask")}
    if isinstance(step, UpdateClass):
        return cls == step.class_ and rule == "keypoints_mismatch"
    if isinstance(step, SetAttribute):
        return field == f"attributes.{step.definition['name']}"
    return False


def _dataset(seed: int) -> tuple[np.random.Generator, Dataset]:
    rng = np.random.default_rng(seed)
    while True:
        ds = random_dataset(rng, random_schema(rng, n_classes=int(rng.integers(1, 5))), valid=bool(rng.random() < 0.7))
        if ds.n_annotations:
            return rng, _tracked(ds)


def any_step(rng: np.random.Generator, ds: Dataset) -> Step:
    """A random step of any type (``random_step``'s, plus keypoint and schema edits)."""
    one = str(rng.choice(ds.schema.names))
    kps = list(ds.schema.classes[ds.schema.index(one)].keypoints)
    moved = [kps[i] for i in rng.permutation(len(kps))][:len(kps) - int(rng.integers(0, 2))]  # maybe one removed
    if rng.random() < 0.5:
        moved.insert(int(rng.integers(0, len(moved) + 1)), "new")
    extra: list[Step] = [UpdateClass(one, {"keypoints": ["p0", "p1"], "skeleton": [[0, 1]]}),
                         UpdateSchema({"tasks": ["keypoints"], "guidelines": "new"}),
                         UpdateClass(one, {"keypoints": moved}),  # reordered by name, the skeleton follows
                         RenameKeypoints(one, {k: f"{k}_r" for k in kps[:int(rng.integers(0, 3))]})]
    return extra[int(rng.integers(0, len(extra)))] if rng.random() < 0.25 else random_step(rng, ds)


def check_step(step: Step, before: Dataset) -> tuple[Dataset, int] | None:
    """Apply one step and check both invariants: the dataset after it and its loss (None when it is refused)."""
    try:
        res = migrate(before, [step], allow_lossy=True, check_version=False)
    except MigrationError as e:
        assert any(w in str(e) for w in REFUSALS), e
        return None
    after = res.dataset
    lost = len(brute_lost(before, after, step))
    assert res.changes[0]["lost"] == lost, step
    was_bad, now_bad = bad_rows(before), bad_rows(after)
    for r in set(_by_row(after)) - set(was_bad):
        broken = {i for i in now_bad.get(r, set()) if not allowed(step, i)}
        assert not broken, (step, r, broken)
    return after, lost


@FEW
@given(SEEDS)
def test_every_step_keeps_valid_annotations_valid_and_reports_what_it_loses(seed: int) -> None:
    rng, ds = _dataset(seed)
    check_step(any_step(rng, ds), ds)


LOOSE = (RenameClass, MergeClasses, ClassesToAttribute, AttributeToClass, DropClass, DropAttribute, RenameAttribute,
         AddClass, ReorderClasses, BoxesFromMasks, UpdateSchema)


@settings(max_examples=100, deadline=None)
@given(SEEDS)
def test_a_random_plan_keeps_valid_annotations_valid_and_reports_what_it_loses(seed: int) -> None:
    rng, ds = _dataset(seed)
    steps: list[Step] = []
    losses: list[int] = []
    cur = ds
    for _ in range(int(rng.integers(2, 5))):
        step = random_step(rng, cur)
        if isinstance(step, ChangeKind):
            step = ChangeKind(step.class_, "object")  # loosening only: a plan of steps that tighten nothing
        elif not isinstance(step, LOOSE):
            continue
        done = check_step(step, cur)
        if done is None:
            return
        cur, lost = done
        steps.append(step)
        losses.append(lost)
        if not cur.schema.names:
            break
    res = migrate(ds, steps, allow_lossy=True, check_version=False)
    assert [c["lost"] for c in res.changes] == losses and res.lossy == any(losses)
    was_bad, now_bad = bad_rows(ds), bad_rows(res.dataset)
    assert not {r for r in set(_by_row(res.dataset)) - set(was_bad) if r in now_bad}


@settings(max_examples=60, deadline=None)
@given(SEEDS)
def test_each_step_of_a_planned_migration_keeps_valid_annotations_valid_and_reports_what_it_loses(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ds = _tracked(random_dataset(rng, random_schema(rng, n_classes=int(rng.integers(1, 5))), valid=True))
    new, renames = derive(rng, ds.schema)
    cur: Dataset | None = ds
    for step in plan_migration(ds.schema, new, renames=renames).steps:
        assert cur is not None, "a planned step was refused"
        done = check_step(step, cur)
        cur = None if done is None else done[0]
