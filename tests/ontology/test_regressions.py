"""Regressions found by checking the ontology tools against direct computations on random data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from maslow.core import Annotations, AttributeDef, ClassDef, Dataset, Images, LabelSchema, Polygons
from maslow.core import masks as M
from maslow.core.types import obj_array
from maslow.errors import FormatError, MigrationError
from maslow.ontology import (
    AddClass,
    AttributeToClass,
    BoxesFromMasks,
    ClassesToAttribute,
    DropClass,
    Migration,
    RenameClass,
    SetAttribute,
    SetLabelTypes,
    diff_schemas,
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


# -- found by the property tests (test_*_properties.py) ----------------------------------------------------------
def _kp_dataset(k_columns: int, visibility: float = 2.0, label: int = 0) -> Dataset:
    kp = np.full((1, k_columns, 3), np.nan)
    kp[0, 0] = [1.0, 1.0, visibility]
    schema = LabelSchema(classes=(ClassDef("person", keypoints=("a", "b", "c")), ClassDef("other")))
    ann = Annotations(image=[0], label=[label], keypoints=kp)
    return Dataset(schema=schema, images=Images(path=["a.png"], width=[9], height=[9]), annotations=ann)


def test_a_keypoints_array_narrower_than_the_names_is_valid() -> None:
    narrow, padded = _kp_dataset(1), _kp_dataset(3)
    assert validate(padded, padded.schema).counts() == {}
    assert validate(narrow, narrow.schema).counts() == {}  # was "fewer keypoints than the schema names"


def test_a_bad_visibility_is_reported_on_a_class_the_schema_lacks() -> None:
    ds = _kp_dataset(3, visibility=3.0)
    only_other = LabelSchema(classes=(ClassDef("other"),))
    rep = validate(ds, only_other)
    assert rep.counts() == {"unknown_class": 1, "keypoints_mismatch": 1}  # the visibility was not checked
    assert "visibility" in rep.of_type("keypoints_mismatch")[0].message


def _pets() -> Dataset:
    """3 pets with a species value (cat, dog, cat) and 1 existing dog."""
    schema = LabelSchema(classes=(ClassDef("pet"), ClassDef("dog")),
                         attributes=(AttributeDef("species", type="enum", values=("cat", "dog"), classes=("pet",)),))
    ann = Annotations(image=[0, 0, 0, 0], label=[0, 0, 0, 1], box=np.tile([1.0, 1, 4, 4], (4, 1)),
                      attributes={"species": obj_array(["cat", "dog", "cat", None])})
    return Dataset(schema=schema, images=Images(path=["a.png"], width=[9], height=[9]), annotations=ann)


def test_attribute_to_class_merging_values_is_lossy() -> None:
    ds = _pets()
    with pytest.raises(MigrationError, match="would lose 3"):  # both values become "animal": was lossless
        migrate(ds, [AttributeToClass("pet", "species", names={"cat": "animal", "dog": "animal"})])
    r = migrate(ds, [AttributeToClass("pet", "species")], allow_lossy=True)  # pet dogs join the existing dogs
    assert r.changes[0]["lost"] == 2 and r.changes[0]["touched"] == 3
    clean = ds.replace(annotations=ds.annotations.take(np.arange(3)))
    assert not migrate(clean, [DropClass("dog"), AttributeToClass("pet", "species")]).lossy


def test_attribute_to_class_refuses_an_empty_class_name() -> None:
    ds = _pets()
    col = ds.annotations.attributes["species"].copy()
    col[1] = ""
    blank = ds.replace(annotations=ds.annotations.with_columns(attributes={"species": col}))
    with pytest.raises(MigrationError, match=r"attribute_to_class.*must not be empty.*names="):  # was a SchemaError
        migrate(blank, [AttributeToClass("pet", "species")])


def test_attribute_to_class_of_a_defined_attribute_without_a_column() -> None:
    ds = _pets()
    pets = Dataset(schema=replace(ds.schema, classes=ds.schema.classes[:1]), images=ds.images,
                   annotations=Annotations(image=[0], label=[0]))  # no annotation has a species: no column
    target = replace(pets.schema, classes=(ClassDef("cat"), ClassDef("dog")), attributes=())
    plan = plan_migration(pets.schema, target)
    assert plan.steps[0].op == "attribute_to_class"
    # was "must be a column of the annotations"; now the value classes are made and the pet without one is dropped
    out = migrate(pets, plan, allow_lossy=True).dataset
    assert replace(out.schema, version=1) == target and out.n_annotations == 0


def test_drop_class_does_not_widen_an_attribute_to_every_class() -> None:
    schema = LabelSchema(classes=(ClassDef("cat"), ClassDef("dog")),
                         attributes=(AttributeDef("whiskers", type="number", required=True, classes=("cat",)),))
    ann = Annotations(image=[0, 0], label=[0, 1], attributes={"whiskers": obj_array([12, None])})
    ds = Dataset(schema=schema, images=Images(path=["a.png"], width=[9], height=[9]), annotations=ann)
    assert validate(ds, schema).counts() == {}
    out = migrate(ds, [DropClass("cat")], allow_lossy=True).dataset
    assert out.schema.attributes == ()  # was AttributeDef(classes=()): required on every class, dogs included
    assert validate(out, out.schema).counts() == {}


def test_plan_sets_tasks_guidelines_and_the_fields_of_a_folded_class() -> None:
    old = LabelSchema(classes=(ClassDef("circle", color="#ff0000"), ClassDef("square", color="#00ff00")),
                      guidelines="Old.")
    new = LabelSchema(classes=(ClassDef("shape", color="#00ff00"),), tasks=("keypoints",), guidelines="New.",
                      attributes=(AttributeDef("kind", type="enum", values=("circle", "square"), required=True,
                                               classes=("shape",)),))
    d = diff_schemas(old, new)
    assert d.guidelines == ("Old.", "New.") and d.tasks == (("detection",), ("keypoints",))
    assert not diff_schemas(old, replace(old, guidelines="x")).empty  # guidelines were not compared
    ann = Annotations(image=[0, 0], label=[0, 1])
    ds = Dataset(schema=old, images=Images(path=["a.png"], width=[9], height=[9]), annotations=ann)
    out = migrate(ds, plan_migration(old, new)).dataset
    # were: the old tasks and guidelines, and the last folded class's colour kept (its fields were compared)
    assert replace(out.schema, version=new.version) == new


def test_set_label_types_gives_a_semantic_region_no_box() -> None:
    ds = _geometry_rows()
    semantic = ds.replace(schema=replace(ds.schema, classes=(ClassDef("cat", kind="semantic"),)))
    ds1 = semantic.select([1])  # one region, a polygon only
    out = migrate(ds1, [SetLabelTypes("cat", ("box", "mask", "tag"))], allow_lossy=True).dataset
    assert not out.annotations.has_box.any()  # was the polygon's box: instance geometry on a semantic class
    assert validate(out, out.schema).counts() == {}


@pytest.mark.parametrize(("step", "where", "expected"), [
    pytest.param("{op: boxes_from_masks, overwrite: 'no'}", "steps[0].overwrite", "true or false", id="bool"),
    pytest.param("{op: merge_classes, classes: circle, into: x}", "steps[0].classes", "a list of strings", id="list"),
    pytest.param("{op: rename_class, old: 1, new: b}", "steps[0].old", "a string", id="str"),
    pytest.param("{op: attribute_to_class, class_: a, attribute: b, names: [a]}", "steps[0].names", "a mapping",
                 id="mapping"),
    pytest.param("{op: set_attribute, definition: {type: enum}}", "steps[0].definition.name", "a non-empty string",
                 id="definition"),
    pytest.param("{op: set_attribute, definition: {name: x, required: 'false'}}", "steps[0].definition.required",
                 "true or false", id="definition-required"),
])
def test_migration_files_check_argument_types(tmp_path: Path, step: str, where: str, expected: str) -> None:
    (tmp_path / "m.yaml").write_text(f"steps:\n  - {step}\n")
    with pytest.raises(FormatError) as e:  # were: accepted (a string as true, names split into letters) or crashed
        load_migration(tmp_path / "m.yaml")
    assert f"m.yaml, {where}: must be {expected}" in str(e.value)


def test_a_definition_a_step_makes_is_refused_naming_the_step() -> None:
    with pytest.raises(MigrationError, match=r"migration step 1 add_class\(.*kind must be"):  # was a SchemaError
        migrate(shapes(4, seed=0), [RenameClass("circle", "disc"), AddClass("z", kind="blob")])
    with pytest.raises(MigrationError, match=r"set_attribute.*definition.classes\[0\]: must name a class"):
        migrate(shapes(4, seed=0), [SetAttribute({"name": "x", "classes": ["nope"]})])


def test_attribute_to_class_refuses_a_value_outside_the_enum() -> None:
    ds = _pets()
    col = ds.annotations.attributes["species"].copy()
    col[2] = "Neutrophil"  # a typo in the data: validate reports value_not_allowed
    typo = ds.replace(annotations=ds.annotations.with_columns(attributes={"species": col}))
    assert "value_not_allowed" in validate(typo, typo.schema).counts()
    with pytest.raises(MigrationError, match=r"must be one of the attribute's values.*'Neutrophil' \(1 annotations"):
        migrate(typo, [AttributeToClass("pet", "species")], allow_lossy=True)  # was: a class 'Neutrophil' made
    named = migrate(typo, [AttributeToClass("pet", "species", names={"Neutrophil": "cat"})], allow_lossy=True)
    assert "Neutrophil" not in named.dataset.schema and "cat" in named.dataset.schema


def test_boxes_from_masks_leaves_a_polygon_without_rings_alone() -> None:
    ann = Annotations(image=[0, 0], label=[0, 0], box=np.array([[np.nan] * 4, [1.0, 2, 3, 4]]),
                      polygon=Polygons.from_rows([[], []]))  # present, without a ring
    ds = Dataset(schema=LabelSchema(classes=(ClassDef("cat", label_types=("polygon",)),)),
                 images=Images(path=["a.png"], width=[30], height=[20]), annotations=ann)
    r = migrate(ds, [BoxesFromMasks(keep_geometry=False, overwrite=True)], allow_lossy=True)
    out = r.dataset.annotations
    # row 0 keeps its polygon (was cleared: no geometry left); row 1 keeps its box (was overwritten with NaN)
    assert out.polygon is not None and (~out.polygon.null).tolist() == [True, False]
    assert np.isnan(out.box[0]).all() and out.box[1].tolist() == [1.0, 2, 3, 4]
    assert r.changes[0]["touched"] == 0
    assert not validate(r.dataset, r.dataset.schema).counts().get("label_type_not_allowed")
