"""validate(): a clean dataset passes; each planted violation is found, located and counted."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core import AttributeDef, ClassDef, Dataset, LabelSchema
from maslow.core.types import obj_array
from maslow.ontology import RULES, infer_schema, validate
from maslow.sample import shapes
from tests.conftest import shared_path


def _attrs(ds: Dataset, **cols: Any) -> Dataset:
    return ds.replace(annotations=ds.annotations.with_columns(attributes={**ds.annotations.attributes, **cols}))


def _set(col: np.ndarray, row: int, value: object) -> np.ndarray:
    out = col.copy()
    out[row] = value
    return out


def _schema_with(ds: Dataset, cls: str, **changes: Any) -> LabelSchema:
    classes = tuple(replace(c, **changes) if c.name == cls else c for c in ds.schema.classes)
    return replace(ds.schema, classes=classes)


@pytest.fixture
def ds() -> Dataset:
    return shapes(24, seed=0)


def _row(ds: Dataset, cls: str, crowd: bool = False) -> int:
    a = ds.annotations
    return int(np.flatnonzero((a.label == ds.schema.index(cls)) & (a.iscrowd == crowd))[0])


def test_clean(ds: Dataset) -> None:
    assert len(validate(ds, ds.schema)) == 0
    assert len(validate(ds, infer_schema(ds))) == 0


def test_unknown_class(ds: Dataset) -> None:
    schema = replace(ds.schema, classes=ds.schema.classes[:2],
                     attributes=ds.schema.attributes)
    rep = validate(ds, schema)
    n_tri = int((ds.annotations.label == 2).sum())
    assert rep.counts() == {"unknown_class": n_tri}
    i = rep.issues[0]
    assert i.annotation == _row(ds, "triangle") and i.field == "label"
    assert i.file == ds.images.path[ds.annotations.image[i.annotation]]
    assert i.record == f"annotations[{i.annotation}]"


def test_label_type_not_allowed(ds: Dataset) -> None:
    rep = validate(ds, _schema_with(ds, "triangle", label_types=("box", "polygon", "mask")))
    n_tri = int((ds.annotations.label == 2).sum())
    assert rep.counts() == {"label_type_not_allowed": n_tri}
    assert {i.field for i in rep} == {"keypoints"}


def test_tag_not_allowed(ds: Dataset) -> None:
    a = ds.annotations
    r = _row(ds, "circle")
    box, poly, mask = a.box.copy(), a.polygon.tolist(), a.mask.copy()
    box[r], poly[r], mask[r] = np.nan, None, None
    planted = ds.replace(annotations=a.with_columns(box=box, polygon=poly, mask=mask))
    rep = validate(planted, planted.schema)
    assert rep.counts() == {"label_type_not_allowed": 1}
    assert rep.issues[0].annotation == r and "tag" in rep.issues[0].message


def test_wrong_kind(ds: Dataset) -> None:
    rep = validate(ds, _schema_with(ds, "square", kind="semantic"))
    a = ds.annotations
    sq = a.label == 1
    key = a.image[sq]
    _, cnt = np.unique(key, return_counts=True)
    assert rep.counts() == {"wrong_kind": int(cnt[cnt > 1].sum())}


def test_missing_required_attribute(ds: Dataset) -> None:
    r = _row(ds, "square")
    planted = _attrs(ds, colour=_set(ds.annotations.attributes["colour"], r, None))
    rep = validate(planted, planted.schema)
    assert rep.counts() == {"missing_required_attribute": 1}
    assert (rep.issues[0].annotation, rep.issues[0].field) == (r, "attributes.colour")


@pytest.mark.parametrize(("attr", "value"), [("colour", "purple"), ("colour", 3), ("occluded", "maybe"),
                                            ("occluded", 2), ("occluded", "")])
def test_value_not_allowed(ds: Dataset, attr: str, value: object) -> None:
    r = _row(ds, "circle")
    planted = _attrs(ds, **{attr: _set(ds.annotations.attributes[attr], r, value)})
    rep = validate(planted, planted.schema)
    assert rep.counts() == {"value_not_allowed": 1}
    assert rep.issues[0].annotation == r and repr(value) in rep.issues[0].message


def test_number_and_text_values(ds: Dataset) -> None:
    n = ds.n_annotations
    planted = _attrs(ds, size=obj_array([1.5] * (n - 2) + ["2.5", "big"]),
                     note=obj_array(["ok"] * (n - 2) + [2, "other"]))
    schema = replace(ds.schema, attributes=(*ds.schema.attributes, AttributeDef("size", type="number"),
                                            AttributeDef("note", type="text", values=("ok", "2"))))
    rep = validate(planted, schema)  # text that reads as a number is one; a number is text
    assert rep.counts() == {"value_not_allowed": 2}
    assert {(i.annotation, i.field) for i in rep} == {(n - 1, "attributes.size"), (n - 1, "attributes.note")}


def test_attribute_not_for_class(ds: Dataset) -> None:
    schema = replace(ds.schema, attributes=(ds.schema.attributes[0], AttributeDef("occluded", type="bool",
                                                                                 classes=("circle",))))
    occl = ds.annotations.attributes["occluded"]
    expected = int(sum(v is not None for v in occl[ds.annotations.label != 0]))
    rep = validate(ds, schema)
    assert rep.counts() == {"attribute_not_for_class": expected}


def test_unknown_attribute(ds: Dataset) -> None:
    planted = _attrs(ds, extra_flag=obj_array([None] * (ds.n_annotations - 2) + [True, False]))
    rep = validate(planted, planted.schema)
    assert rep.counts() == {"unknown_attribute": 2}
    assert {i.severity for i in rep} == {"warning"}


def test_keypoints_mismatch(ds: Dataset) -> None:
    a = ds.annotations
    r = _row(ds, "circle")
    kp = a.keypoints.copy()
    kp[r] = [[1, 1, 2], [2, 2, 2], [np.nan, np.nan, np.nan]]
    t = _row(ds, "triangle")
    kp[t, 0, 2] = 5  # bad visibility
    planted = ds.replace(annotations=a.with_columns(keypoints=kp))
    schema = _schema_with(planted, "circle", label_types=())  # keypoints allowed, but no names
    rep = validate(planted, schema)
    assert rep.counts() == {"keypoints_mismatch": 2}
    assert {i.annotation for i in rep} == {r, t}
    two = _schema_with(ds, "triangle", keypoints=("top", "left"), skeleton=((0, 1),))
    rep = validate(ds, two)
    assert rep.counts() == {"keypoints_mismatch": int((a.label == 2).sum())}


def test_every_rule_planted_at_once(ds: Dataset) -> None:
    """One dataset with one violation of each rule: each found at its row, nothing else."""
    a = ds.annotations
    rows = np.flatnonzero(~a.iscrowd)
    r_unknown, r_req, r_val, r_attr, r_kp, r_unk_attr = (int(x) for x in rows[:6])
    colour = _set(_set(a.attributes["colour"], r_req, None), r_val, "purple")
    flag = obj_array([None] * len(a))
    flag[r_attr] = True
    other = obj_array([None] * len(a))
    other[r_unk_attr] = "x"
    kp = a.keypoints.copy()
    kp[r_kp, 0, 2] = 7
    label = a.label.copy()
    label[r_unknown] = 3
    schema = replace(ds.schema, classes=(*ds.schema.classes, ClassDef("ghost")),
                     attributes=(*ds.schema.attributes, AttributeDef("flag", type="bool", classes=("ghost",))))
    planted = Dataset(schema=schema, images=ds.images, root=None, annotations=a.with_columns(
        label=label, keypoints=kp, attributes={**a.attributes, "colour": colour, "flag": flag, "other": other}))
    target = replace(ds.schema, attributes=(*ds.schema.attributes, AttributeDef("flag", type="bool",
                                                                                 classes=("square",))))
    rep = validate(planted, target)
    found = {(i.type, i.annotation) for i in rep}
    assert ("unknown_class", r_unknown) in found
    assert ("missing_required_attribute", r_req) in found
    assert ("value_not_allowed", r_val) in found
    assert ("keypoints_mismatch", r_kp) in found
    assert ("unknown_attribute", r_unk_attr) in found
    if planted.schema.names[label[r_attr]] != "square":
        assert ("attribute_not_for_class", r_attr) in found
    assert set(rep.counts()) <= set(RULES)


def test_bccd_against_inferred_and_stricter_schema() -> None:
    ds = io.read_voc(shared_path("bccd", "annotations"))
    schema = infer_schema(ds)
    assert len(validate(ds, schema)) == 0
    strict = replace(schema, classes=tuple(replace(c, label_types=("mask",)) for c in schema.classes))
    assert validate(strict_ds := ds, strict).counts() == {"label_type_not_allowed": 4888}
    no_wbc = replace(schema, classes=tuple(c for c in schema.classes if c.name != "WBC"))
    assert validate(strict_ds, no_wbc).counts() == {"unknown_class": 372}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_planted_values_are_all_found_and_nothing_else(seed: int) -> None:
    ds = shapes(48, seed=seed)
    rng = np.random.default_rng(seed)
    n = ds.n_annotations
    bad = np.sort(rng.choice(n, size=7, replace=False))
    colour = ds.annotations.attributes["colour"].copy()
    colour[bad] = "purple"
    rep = validate(_attrs(ds, colour=colour), ds.schema)
    assert sorted(i.annotation for i in rep) == bad.tolist()
    assert rep.counts() == {"value_not_allowed": 7}
