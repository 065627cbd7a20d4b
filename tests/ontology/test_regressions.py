"""Regressions found by checking the ontology tools against direct computations on random data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from maslow.core import Annotations, ClassDef, Dataset, Images, LabelSchema
from maslow.core import masks as M
from maslow.core.types import obj_array
from maslow.errors import FormatError, MigrationError
from maslow.ontology import (
    AttributeToClass,
    BoxesFromMasks,
    ClassesToAttribute,
    Migration,
    RenameClass,
    SetAttribute,
    SetLabelTypes,
    infer_schema,
    load_migration,
    load_schema,
    migrate,
    plan_migration,
    save_migration,
    save_schema,
    validate,
)
from maslow.sample import shapes


def _geometry_rows() -> Dataset:
    """3 cats without boxes: mask only, polygon only, mask and polygon."""
    m = np.zeros((20, 30), bool)
    m[2:6, 3:9] = True
    tri = [np.array([10.0, 10, 20, 10, 20, 15])]
    ann = Annotations(image=[0, 0, 0], label=[0, 0, 0], box=np.full((3, 4), np.nan),
                      mask=obj_array([M.encode(m), None, M.encode(m)]), polygon=obj_array([None, tri, tri]))
    schema = LabelSchema(classes=(ClassDef("cat", label_types=("mask", "polygon")),))
    return Dataset(schema=schema, images=Images(path=["a.png"], width=[30], height=[20]), annotations=ann)


def test_validate_against_a_schema_without_classes() -> None:
    ds = shapes(6, seed=0)
    rep = validate(ds, LabelSchema(classes=(), attributes=ds.schema.attributes))
    assert rep.counts() == {"unknown_class": ds.n_annotations}  # was an IndexError
    assert [i.annotation for i in rep.issues] == list(range(ds.n_annotations))


def test_boxes_from_masks_counts_each_row_that_loses_geometry_once() -> None:
    r = migrate(_geometry_rows(), [BoxesFromMasks(keep_geometry=False)], allow_lossy=True)
    assert r.changes[0]["lost"] == 3  # was 2: the larger of the mask and polygon counts, not their union
    assert r.changes[0]["touched"] == 3


def test_set_label_types_box_only_keeps_each_objects_extent() -> None:
    ds = _geometry_rows()
    r = migrate(ds, [SetLabelTypes("cat", ("box",))], allow_lossy=True)
    box = r.dataset.annotations.box
    np.testing.assert_array_equal(box[0], M.to_box([ds.annotations.mask[0]])[0])  # pycocotools, from the mask
    np.testing.assert_array_equal(box[1], [10, 10, 20, 15])                       # vertex extent of the polygon
    np.testing.assert_array_equal(box[2], box[0])                                 # the mask first
    assert r.changes[0]["lost"] == 3 and r.dataset.n_annotations == 3
    assert validate(r.dataset, r.dataset.schema).counts() == {}  # rows were left as geometry-less tags
    # the planned migration to a box-only schema reaches valid data too
    target = replace(ds.schema, classes=(ClassDef("cat", label_types=("box",)),), version=2)
    out = migrate(ds, plan_migration(ds.schema, target), allow_lossy=True).dataset
    assert validate(out, target).counts() == {}


def test_classes_to_attribute_into_one_of_them_is_inverted() -> None:
    ds = shapes(16, seed=3)
    fwd = migrate(ds, [ClassesToAttribute(("square", "circle"), "square", "shape")])
    assert fwd.dataset.schema.names == ("square", "triangle") and not fwd.lossy
    back = migrate(fwd.dataset, [AttributeToClass("square", "shape")]).dataset
    assert back.schema.names == ds.schema.names  # circle back before square: the values' order
    assert [back.schema.names[i] for i in back.annotations.label] == [ds.schema.names[i] for i in ds.annotations.label]
    assert "shape" not in back.annotations.attributes


def test_attribute_to_class_naming_the_split_class_is_refused_when_ambiguous() -> None:
    ds = shapes(16, seed=3)
    fwd = migrate(ds, [ClassesToAttribute(("square", "circle"), "square", "shape")]).dataset
    col = fwd.annotations.attributes["shape"].copy()
    col[int(np.flatnonzero(fwd.annotations.label == 0)[0])] = None  # a square without a value
    ambiguous = fwd.replace(annotations=fwd.annotations.with_columns(attributes={
        **fwd.annotations.attributes, "shape": col}))
    with pytest.raises(MigrationError, match="could not be told apart"):
        migrate(ambiguous, [AttributeToClass("square", "shape")])


def test_set_attribute_replaces_a_definition_in_place() -> None:
    ds = shapes(4, seed=0)
    r = migrate(ds, [SetAttribute({"name": "colour", "type": "text"})])
    assert [a.name for a in r.dataset.schema.attributes] == ["colour", "occluded"]
    assert r.dataset.schema.attributes[0].type == "text"


def test_files_keep_nel_and_numpy_strings(tmp_path: Path) -> None:
    names = list(np.array(["猫", "dog"]))  # numpy strings, e.g. names read from an array
    schema = replace(LabelSchema.from_names(names), guidelines="\x85ellipsis\u2028mid\x85dle\n")
    save_schema(schema, tmp_path / "s.yaml")  # was a RepresenterError; NEL was folded to a space
    back = load_schema(tmp_path / "s.yaml")
    assert back == schema and back.guidelines == "\x85ellipsis\u2028mid\x85dle\n"
    mig = Migration((RenameClass(names[0], "cat\x85"),))
    save_migration(mig, tmp_path / "m.yaml")
    assert load_migration(tmp_path / "m.yaml") == mig


def test_infer_keeps_keypoint_names_when_trailing_points_are_unlabelled() -> None:
    ds = shapes(12, seed=0)
    kp = ds.annotations.keypoints.copy()
    kp[:, 2] = np.nan
    ds = ds.replace(annotations=ds.annotations.with_columns(keypoints=kp))
    tri = infer_schema(ds).classes[2]
    assert tri.keypoints == ("top", "left", "right") and tri.skeleton == ds.schema.classes[2].skeleton
    kp4 = np.concatenate([ds.annotations.keypoints, np.full((ds.n_annotations, 1, 3), np.nan)], 1)
    kp4[np.flatnonzero(ds.annotations.label == 2)[0], 3] = [1, 1, 2]
    more = ds.replace(annotations=ds.annotations.with_columns(keypoints=kp4))
    assert infer_schema(more).classes[2].keypoints == ("top", "left", "right", "kp3")
    assert validate(more, infer_schema(more)).counts() == {}


def test_infer_then_validate_is_clean_on_random_datasets() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        ds = shapes(int(rng.integers(0, 12)), seed=rng)
        keep = rng.random(ds.n_annotations) < 0.7
        a = ds.annotations
        box = a.box.copy()
        box[~keep] = np.nan
        ds = ds.replace(annotations=a.with_columns(box=box, attributes={
            **a.attributes, "score": obj_array([float(x) if x < 0.5 else None for x in rng.random(len(a))])}))
        assert validate(ds, infer_schema(ds)).counts() == {}


@pytest.mark.parametrize(("text", "where", "message"), [
    ("classes: [{name: a, skeleton: [[0, 0]]}]", "classes[0].skeleton[0]", "the class names no keypoints"),
    ("classes: [{name: a, keypoints: [x], skeleton: ab}]", "classes[0].skeleton", "must be a list of pairs"),
    ("classes: [{name: a}]\nattributes: [{name: x, classes: [b]}]", "attributes[0].classes[0]", "'b'"),
])
def test_bad_schema_files_name_file_and_field(tmp_path: Path, text: str, where: str, message: str) -> None:
    p = tmp_path / "schema.yaml"
    p.write_text(text)
    with pytest.raises(FormatError) as e:
        load_schema(p)
    assert f"schema.yaml, {where}:" in str(e.value) and message in str(e.value)
