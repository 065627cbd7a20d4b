"""validate() against a brute-force, row-by-row reading of the docs' rule table, on random schemas and datasets.

Every reported violation must be one the reference finds and every one the reference finds must be reported,
with the image path, ``annotations[row]`` and the field.
"""

from __future__ import annotations

import re
from dataclasses import replace
from numbers import Real
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow.core import AttributeDef, Dataset, LabelSchema
from maslow.ontology import RULES, infer_schema, validate
from tests.ontology.randomdata import random_dataset, random_schema, records

SEEDS = st.integers(0, 2**32 - 1)
FEW = settings(max_examples=60, deadline=None)


def _value_ok(a: AttributeDef, v: object) -> bool:
    """docs/ontology.md's rule, value by value: the type itself, or text that reads as it (XML holds only text)."""
    is_bool = isinstance(v, bool | np.bool_)
    text = v.strip().lower() if isinstance(v, str) else None
    if a.type == "bool":
        return is_bool or text in ("true", "false", "1", "0", "yes", "no", "t", "f", "y", "n") or (
            isinstance(v, Real) and not is_bool and v in (0, 1))
    if a.type == "number":
        if text is not None:
            return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?|[+-]?(inf|infinity)", text) is not None
        return isinstance(v, Real) and not is_bool
    if a.type == "enum":  # a value as the schema file spells it: strings and integers, never bools or floats
        return isinstance(v, str | int | np.integer) and not is_bool and str(v) in a.values
    return not a.values or str(v) in a.values  # text: any value, as a text-only format would write it


def brute_validate(ds: Dataset, schema: LabelSchema) -> set[tuple[str, int, str]]:
    """(rule, annotation row, field) of every violation, one row and one rule at a time."""
    out: set[tuple[str, int, str]] = set()
    recs = records(ds)
    defs = {a.name: a for a in schema.attributes}
    for r, rec in enumerate(recs):
        name = rec["class"]
        for attr, v in rec["attrs"].items():
            if attr not in defs:
                out.add(("unknown_attribute", r, f"attributes.{attr}"))
            elif not _value_ok(defs[attr], v):
                out.add(("value_not_allowed", r, f"attributes.{attr}"))
        kp = rec["keypoints"]
        if kp is not None and any(v not in (0, 1, 2) for v in kp[:, 2] if not np.isnan(v)):
            out.add(("keypoints_mismatch", r, "keypoints"))
        if name not in schema:
            out.add(("unknown_class", r, "label"))
            continue
        c = schema.classes[schema.index(name)]
        carried = [t for t in ("box", "mask", "polygon", "keypoints") if rec[t] is not None] or ["tag"]
        for t in carried:
            if c.label_types and t not in c.label_types:
                out.add(("label_type_not_allowed", r, "label" if t == "tag" else t))
        if c.kind == "semantic":
            if sum(x["image"] == rec["image"] and x["class"] == name for x in recs) > 1:
                out.add(("wrong_kind", r, "label"))
            region = rec["mask"] is not None or (rec["polygon"] is not None and (
                not c.label_types or "polygon" in c.label_types))
            if not region and (rec["box"] is not None or kp is not None):
                out.add(("wrong_kind", r, "mask"))
        for a in schema.attributes:
            applies = not a.classes or name in a.classes
            if a.required and applies and a.name not in rec["attrs"] and not rec["iscrowd"]:
                out.add(("missing_required_attribute", r, f"attributes.{a.name}"))
            if not applies and a.name in rec["attrs"]:
                out.add(("attribute_not_for_class", r, f"attributes.{a.name}"))
        if kp is not None:
            labelled = np.flatnonzero(~np.isnan(kp[:, 0]))
            if not c.keypoints or labelled.max() >= len(c.keypoints):
                out.add(("keypoints_mismatch", r, "keypoints"))
        elif c.keypoints and set(c.label_types) == {"keypoints"}:
            out.add(("keypoints_mismatch", r, "keypoints"))
    return out


def _found(ds: Dataset, schema: LabelSchema) -> set[tuple[str, int, str]]:
    rep = validate(ds, schema)
    a = ds.annotations
    for i in rep.issues:  # each located: the image's file, the annotation record, the field
        assert i.annotation is not None and i.image == int(a.image[i.annotation])
        assert i.file == str(ds.images.path[i.image]) and i.record == f"annotations[{i.annotation}]"
        assert i.severity == ("warning" if i.type == "unknown_attribute" else "error")
    return {(i.type, i.annotation, i.field) for i in rep.issues if i.annotation is not None and i.field is not None}


@FEW
@given(SEEDS)
def test_validate_reports_exactly_the_brute_force_violations(seed: int) -> None:
    rng = np.random.default_rng(seed)
    schema = random_schema(rng)
    ds = random_dataset(rng, random_schema(rng) if rng.random() < 0.3 else schema)
    assert _found(ds, schema) == brute_validate(ds, schema)


@FEW
@given(SEEDS)
def test_each_rule_alone_reports_its_share(seed: int) -> None:
    rng = np.random.default_rng(seed)
    schema = random_schema(rng)
    ds = random_dataset(rng, schema)
    every = validate(ds, schema).issues
    for rule in RULES:
        assert list(validate(ds, schema, rules=[rule]).issues) == [i for i in every if i.type == rule]


@FEW
@given(SEEDS)
def test_data_drawn_valid_is_valid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    schema = random_schema(rng)
    ds = random_dataset(rng, schema, valid=True)
    assert brute_validate(ds, schema) == set()
    assert validate(ds, schema).counts() == {}


@FEW
@given(SEEDS)
def test_infer_then_validate_is_clean(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ds = random_dataset(rng, random_schema(rng), valid=True)  # one type per column: a mixed one fits no type
    objects = tuple(replace(c, kind="object") for c in ds.schema.classes)  # infer keeps a class semantic
    ds = ds.replace(schema=replace(ds.schema, classes=objects),
                    annotations=ds.annotations.with_columns(keypoints=_known_visibility(ds)))
    assert validate(ds, infer_schema(ds)).counts() == {}


def _known_visibility(ds: Dataset) -> Any:
    kp = ds.annotations.keypoints
    if kp is None:
        return None
    kp = kp.copy()
    kp[:, :, 2] = np.where(kp[:, :, 2] > 2, 2, kp[:, :, 2])  # infer can't make a visibility of 3 valid
    return kp
