"""The merge rule (union of label types, kind, keypoints, required attributes) and the label types and losses of
``BoxesFromMasks``: each test was a case where the migrated data failed its own new schema, or a loss went
unreported."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from maslow.core import Annotations, AttributeDef, ClassDef, Dataset, Images, LabelSchema
from maslow.core import masks as M
from maslow.core.types import obj_array
from maslow.errors import MigrationError
from maslow.ontology import (
    AttributeToClass,
    BoxesFromMasks,
    ClassesToAttribute,
    MergeClasses,
    migrate,
    plan_migration,
    validate,
)

IMAGES = Images(path=["a.png", "b.png"], width=[30, 30], height=[20, 20])


def _mask() -> dict[str, object]:
    m = np.zeros((20, 30), bool)
    m[2:6, 3:9] = True
    return M.encode(m)


def pets(*classes: ClassDef, attributes: tuple[AttributeDef, ...] = (), image: tuple[int, ...] = (0, 1, 1),
         keypoints: bool = False, values: dict[str, list[object]] | None = None) -> Dataset:
    """One annotation per class (a box on the first, a mask on the second, no geometry on the third); keypoints
    on the first with ``keypoints``; attribute ``values`` per class."""
    n = len(classes)
    box = np.full((n, 4), np.nan)
    box[0] = [1, 1, 5, 5]
    kp = None
    if keypoints:
        kp = np.full((n, 2, 3), np.nan)
        kp[0] = [[1, 1, 2], [2, 2, 2]]
    ann = Annotations(image=list(image[:n]), label=list(range(n)), box=box, mask=obj_array([None, _mask(), None][:n]),
                      keypoints=kp, attributes={k: obj_array(v) for k, v in (values or {}).items()})
    schema = LabelSchema(classes=classes, attributes=attributes)
    return Dataset(schema=schema, images=IMAGES, annotations=ann)


def clean(ds: Dataset) -> bool:
    return validate(ds, ds.schema).counts() == {}


@pytest.mark.parametrize(("into", "types"), [("pet", ("box", "mask", "tag")), ("cat", ("box", "mask", "tag")),
                                             ("dog", ("mask", "box", "tag"))])  # into's (or the first's) first
def test_merged_class_allows_the_union_of_label_types(into: str, types: tuple[str, ...]) -> None:
    ds = pets(ClassDef("cat", label_types=("box",)), ClassDef("dog", label_types=("mask",)),
              ClassDef("eel", label_types=("tag",)))
    assert clean(ds)
    out = migrate(ds, [MergeClasses(("cat", "dog", "eel"), into)], allow_lossy=True).dataset
    # was the label types of `into` (or the first class): the others' boxes, masks or tags were not allowed
    assert out.schema.classes[0].label_types == types and clean(out)


def test_merged_class_allows_any_label_type_when_one_did() -> None:
    ds = pets(ClassDef("cat", label_types=("box",)), ClassDef("dog"))
    out = migrate(ds, [ClassesToAttribute(("cat", "dog"), "pet", "was")]).dataset
    assert out.schema.classes[0].label_types == () and clean(out)


def test_merged_class_is_semantic_only_when_all_were() -> None:
    ds = pets(ClassDef("road", kind="semantic"), ClassDef("car"))
    ds = ds.replace(annotations=ds.annotations.with_columns(box=np.full((2, 4), np.nan),
                                                            mask=obj_array([_mask(), _mask()])))
    out = migrate(ds, [ClassesToAttribute(("road", "car"), "thing", "was")]).dataset
    assert out.schema.classes[0].kind == "object" and clean(out)  # was semantic: two regions in one image
    both = replace(ds.schema, classes=(ClassDef("road", kind="semantic"), ClassDef("car", kind="semantic")))
    apart = Dataset(schema=both, images=IMAGES, annotations=ds.annotations.with_columns(image=[0, 1]))
    out = migrate(apart, [ClassesToAttribute(("road", "car"), "paved", "was")]).dataset
    assert out.schema.classes[0].kind == "semantic" and clean(out)


def test_merging_semantic_classes_with_regions_in_one_image_is_refused() -> None:
    ds = pets(ClassDef("road", kind="semantic"), ClassDef("walk", kind="semantic"), image=(1, 1))
    ds = ds.replace(annotations=ds.annotations.with_columns(box=np.full((2, 4), np.nan),
                                                            mask=obj_array([_mask(), _mask()])))
    assert clean(ds)
    with pytest.raises(MigrationError, match=r"'road' and 'walk' are semantic \(one region per image\).*'b.png'"):
        migrate(ds, [MergeClasses(("road", "walk"), "paved")], allow_lossy=True)


def test_merged_class_keeps_keypoints_that_agree_and_refuses_others() -> None:
    person = ClassDef("person", keypoints=("head", "hand"), skeleton=((0, 1),))
    ds = pets(ClassDef("blob"), person, keypoints=True)
    ds = ds.replace(annotations=ds.annotations.with_columns(label=[1, 0]))  # the person has the keypoints
    assert clean(ds)
    out = migrate(ds, [ClassesToAttribute(("blob", "person"), "thing", "was")]).dataset
    merged = out.schema.classes[0]
    assert (merged.keypoints, merged.skeleton) == (person.keypoints, person.skeleton)  # were blob's: none
    assert clean(out)
    other = ClassDef("robot", keypoints=("head", "hand"), skeleton=((1, 0),))
    two = pets(person, other, keypoints=True)
    with pytest.raises(MigrationError, match=r"'person' and 'robot' must have the same keypoints and skeleton"):
        migrate(two, [MergeClasses(("person", "robot"), "agent")], allow_lossy=True)


def test_a_required_attribute_of_some_merged_classes_is_no_longer_required() -> None:
    whiskers = AttributeDef("whiskers", type="number", required=True, classes=("cat",))
    tame = AttributeDef("tame", type="bool", required=True, classes=("cat", "dog"))
    ds = pets(ClassDef("cat"), ClassDef("dog"), ClassDef("eel"), attributes=(whiskers, tame),
              values={"whiskers": [12, None, None], "tame": [True, False, None]})
    assert clean(ds)
    out = migrate(ds, [MergeClasses(("cat", "dog"), "pet", keep_as="was")]).dataset
    got = {a.name: a for a in out.schema.attributes}
    assert not got["whiskers"].required and got["whiskers"].classes == ("pet",)  # was required on the dog too
    assert got["tame"].required  # it applied to both
    assert clean(out)
    out = migrate(ds, [MergeClasses(("cat", "eel"), "pet", keep_as="was")]).dataset
    assert not {a.name: a for a in out.schema.attributes}["tame"].required and clean(out)


def test_attribute_to_class_into_an_existing_class_merges_the_two() -> None:
    species = AttributeDef("species", type="enum", values=("dog", "eel"), required=True)  # on every class
    size = AttributeDef("size", type="number", required=True, classes=("pet",))
    ds = pets(ClassDef("pet", label_types=("box",)), ClassDef("dog", label_types=("mask",)), ClassDef("eel"),
              attributes=(species, size), values={"species": ["dog", "dog", "eel"], "size": [3, None, None]})
    assert clean(ds)
    r = migrate(ds, [AttributeToClass("pet", "species")], allow_lossy=True)
    out = r.dataset
    assert out.schema.names == ("dog", "eel") and r.changes[0]["lost"] == 2  # the pet dog joins the dog
    got = {a.name: a for a in out.schema.attributes}
    assert set(out.schema.classes[0].label_types) == {"box", "mask"}  # was ("mask",): the pet's box
    assert not got["species"].required  # kept for the eel, but the moved pet has no value any more
    # the enum's values name both classes; the dog that was a dog (and the eel) have no size
    assert not got["size"].required and got["size"].classes == ("dog", "eel")
    assert clean(out)


def test_boxes_from_masks_adds_box_to_the_label_types_of_the_classes_it_applies_to() -> None:
    ds = pets(ClassDef("cat", label_types=("box", "tag")), ClassDef("dog", label_types=("mask",)),
              ClassDef("eel", label_types=("tag",)))
    assert clean(ds)
    out = migrate(ds, [BoxesFromMasks()]).dataset
    # was ("mask",) with a box on the dog
    assert [c.label_types for c in out.schema.classes] == [("box", "tag"), ("mask", "box"), ("tag",)]
    assert out.annotations.has_box.tolist() == [True, True, False] and clean(out)
    only_cat = migrate(ds, [BoxesFromMasks(classes=("cat",))]).dataset
    assert only_cat.schema == replace(ds.schema, version=2) and clean(only_cat)  # not the classes it leaves
    lossy = migrate(ds, [BoxesFromMasks(keep_geometry=False)], allow_lossy=True).dataset
    assert lossy.annotations.mask is None and clean(lossy)


def test_boxes_from_masks_leaves_semantic_classes_alone() -> None:
    ds = pets(ClassDef("cat"), ClassDef("road", kind="semantic", label_types=("mask",)))
    r = migrate(ds, [BoxesFromMasks(keep_geometry=False)], allow_lossy=True)
    out = r.dataset
    assert not out.annotations.has_box[1] and out.annotations.mask[1] is not None  # was a box and no mask
    assert out.schema.classes[1].label_types == ("mask",) and not r.lossy and clean(out)


def test_boxes_from_masks_overwriting_a_box_that_changes_is_lossy() -> None:
    ds = pets(ClassDef("cat"), ClassDef("dog"))
    ds = ds.replace(annotations=ds.annotations.with_columns(mask=obj_array([_mask(), _mask()])))
    with pytest.raises(MigrationError, match=r"boxes_from_masks.*would lose 1 "):  # was lossless
        migrate(ds, [BoxesFromMasks(overwrite=True)])
    r = migrate(ds, [BoxesFromMasks(overwrite=True)], allow_lossy=True)
    assert r.changes[0]["touched"] == 2 and r.changes[0]["lost"] == 1
    same = migrate(r.dataset, [BoxesFromMasks(overwrite=True)])  # boxes equal to the masks' lose nothing
    assert not same.lossy


def test_plan_folds_classes_whose_keypoints_or_kinds_differ() -> None:
    a = ClassDef("a", keypoints=("x", "y"), label_types=("keypoints", "box"))
    b = ClassDef("b", kind="semantic", keypoints=("x",), label_types=("mask",))
    old = LabelSchema(classes=(a, b, ClassDef("c")))
    was = AttributeDef("was", type="enum", values=("a", "b"), required=True, classes=("ab",))
    new = LabelSchema(classes=(ClassDef("ab", keypoints=("x", "y"), label_types=("box", "mask", "keypoints")),
                               ClassDef("c")), attributes=(was,))
    ds = pets(a, b, ClassDef("c"), keypoints=True)
    ds = ds.replace(schema=old)
    assert clean(ds)
    plan = plan_migration(old, new)  # was refused by the merge: the keypoints of a and b differ
    assert [s.op for s in plan.steps][:3] == ["update_class", "change_kind", "classes_to_attribute"]
    r = migrate(ds, plan)
    assert not r.lossy and replace(r.dataset.schema, version=1) == new and clean(r.dataset)
