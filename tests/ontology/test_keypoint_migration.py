"""A change of a class's keypoint names moves the points by name (planned, hand-written YAML and folded classes).

Before, ``UpdateClass(keypoints=...)`` replaced the names and left every point where it was: a reorder, an insert or
a removal silently gave each point another name (touched 0, lost 0, and ``validate`` found nothing).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from maslow.core import Annotations, AttributeDef, ClassDef, Dataset, Images, LabelSchema
from maslow.errors import MigrationError
from maslow.ontology import (
    RenameKeypoints,
    UpdateClass,
    load_migration,
    migrate,
    plan_migration,
    save_migration,
    validate,
)
from maslow.sample import shapes


def _points(ds: Dataset, cls: str = "triangle") -> list[dict[str, list[float]]]:
    """Per annotation of ``cls`` with keypoints: keypoint name -> (x, y, v), by the schema's names."""
    names = ds.schema.classes[ds.schema.index(cls)].keypoints
    kp = ds.annotations.keypoints
    assert kp is not None
    rows = np.flatnonzero((ds.annotations.label == ds.schema.index(cls)) & ~np.isnan(kp[:, :, 0]).all(1))
    return [{n: kp[r, j].tolist() for j, n in enumerate(names) if j < kp.shape[1]} for r in rows]


def _with_triangle(ds: Dataset, **changes: object) -> LabelSchema:
    tri = ds.schema.classes[ds.schema.index("triangle")]
    return replace(ds.schema, classes=tuple(replace(tri, **changes) if c is tri else c for c in ds.schema.classes))


def test_a_reorder_moves_each_point_with_its_name_and_the_skeleton_with_it() -> None:
    ds = shapes(24, seed=0)
    before = _points(ds)
    new = _with_triangle(ds, keypoints=("left", "top", "right"), skeleton=((1, 0), (0, 2), (2, 1)))
    r = migrate(ds, plan_migration(ds.schema, new))
    assert _points(r.dataset) == before  # was: the apex (top) called 'left' in every triangle
    assert r.dataset.annotations.keypoints[:, 0].tolist() != ds.annotations.keypoints[:, 0].tolist()
    assert not r.lossy and r.changes[0]["touched"] == len(before) == 11 and r.changes[0]["lost"] == 0
    assert r.dataset.schema == replace(new, version=2)
    assert validate(r.dataset, r.dataset.schema).counts() == {}


def test_an_inserted_keypoint_is_unlabelled_and_a_removed_one_is_lost() -> None:
    ds = shapes(24, seed=0)
    before = _points(ds)
    grown = migrate(ds, plan_migration(ds.schema, _with_triangle(ds, keypoints=("top", "centre", "left", "right"),
                                                                  skeleton=((0, 2), (2, 3), (3, 0)))))
    after = _points(grown.dataset)
    assert [{k: v for k, v in p.items() if k != "centre"} for p in after] == before
    assert all(p["centre"] == [0.0, 0.0, 0.0] for p in after)  # unlabelled (v = 0), as COCO's v = 0 reads
    assert not grown.lossy and grown.changes[0]["touched"] == 11
    kp = grown.dataset.annotations.keypoints
    no_points = np.isnan(ds.annotations.keypoints[:, :, 0]).all(1)
    assert kp.shape[1] == 4 and np.isnan(kp[no_points]).all()  # rows without keypoints stay without
    assert validate(grown.dataset, grown.dataset.schema).counts() == {}

    shrunk = _with_triangle(ds, keypoints=("top", "right"), skeleton=((0, 1),))
    plan = plan_migration(ds.schema, shrunk)
    with pytest.raises(MigrationError, match=r"would lose 11 annotations"):  # was: lost 0, 'left' called 'right'
        migrate(ds, plan)
    r = migrate(ds, plan, allow_lossy=True)
    assert r.lossy and r.changes[0]["lost"] == 11
    assert _points(r.dataset) == [{"top": p["top"], "right": p["right"]} for p in before]
    assert np.isnan(r.dataset.annotations.keypoints[ds.annotations.label == 2, 2]).all()  # the dropped column
    assert validate(r.dataset, r.dataset.schema).counts() == {}


def test_removing_a_point_no_annotation_labelled_loses_nothing() -> None:
    ds = shapes(24, seed=0)
    kp = ds.annotations.keypoints.copy()
    kp[ds.annotations.label == 2, 1] = 0.0  # every 'left' unlabelled: (0, 0, 0)
    ds = ds.replace(annotations=ds.annotations.with_columns(keypoints=kp))
    r = migrate(ds, [UpdateClass("triangle", {"keypoints": ["top", "right"]})])
    assert not r.lossy and r.dataset.schema.classes[2].skeleton == ((1, 0),)  # right-top kept, by name


def test_a_hand_written_migration_file_moves_points_by_name_too(tmp_path: Path) -> None:
    ds = shapes(24, seed=0)
    before = _points(ds)
    (tmp_path / "m.yaml").write_text(
        "steps:\n"
        "  - {op: update_class, class_: triangle, changes: {keypoints: [right, top, left]}}\n"
        "  - {op: rename_keypoints, class_: triangle, names: {top: apex}}\n")
    r = migrate(ds, load_migration(tmp_path / "m.yaml"))
    tri = r.dataset.schema.classes[2]
    assert tri.keypoints == ("right", "apex", "left")
    assert tri.skeleton == ((1, 2), (2, 0), (0, 1))  # top-left, left-right, right-top, by name
    assert _points(r.dataset) == [{"right": p["right"], "apex": p["top"], "left": p["left"]} for p in before]
    assert [(c["op"], c["touched"], c["lost"]) for c in r.changes] == [("update_class", 11, 0),
                                                                       ("rename_keypoints", 11, 0)]
    save_migration(load_migration(tmp_path / "m.yaml"), tmp_path / "again.yaml")
    assert load_migration(tmp_path / "again.yaml") == load_migration(tmp_path / "m.yaml")


def test_rename_keypoints_refuses_unknown_or_clashing_names() -> None:
    ds = shapes(8, seed=0)
    with pytest.raises(MigrationError, match=r"keypoint 'nose' must be a keypoint of class 'triangle'"):
        migrate(ds, [RenameKeypoints("triangle", {"nose": "tip"})])
    with pytest.raises(MigrationError, match=r"must be non-empty and unique, got \['left', 'left', 'right'\]"):
        migrate(ds, [RenameKeypoints("triangle", {"top": "left"})])
    swapped = migrate(ds, [RenameKeypoints("triangle", {"left": "right", "right": "left"})])
    assert swapped.dataset.schema.classes[2].keypoints == ("top", "right", "left")
    np.testing.assert_array_equal(swapped.dataset.annotations.keypoints, ds.annotations.keypoints)  # names only


def test_a_plan_never_guesses_a_keypoint_rename() -> None:
    ds = shapes(24, seed=0)
    before = _points(ds)
    new = _with_triangle(ds, keypoints=("apex", "left", "right"))
    with pytest.raises(MigrationError, match=r"class 'triangle' must keep or rename its keypoints, got \['top'\] "
                                             r"removed and \['apex'\] added.*--rename-keypoint triangle:top=apex"):
        plan_migration(ds.schema, new)
    plan = plan_migration(ds.schema, new, keypoint_renames={"triangle": {"top": "apex"}})
    assert [s.op for s in plan.steps] == ["rename_keypoints"]
    r = migrate(ds, plan)
    assert _points(r.dataset) == [{"apex": p["top"], "left": p["left"], "right": p["right"]} for p in before]
    with pytest.raises(MigrationError, match=r"keypoint rename triangle:nose=apex must map a keypoint"):
        plan_migration(ds.schema, new, keypoint_renames={"triangle": {"nose": "apex"}})
    # a renamed class: the hint names it as the old schema does
    renamed = replace(new, classes=tuple(replace(c, name="tri") if c.name == "triangle" else c for c in new.classes))
    plan = plan_migration(ds.schema, renamed, renames={"triangle": "tri"},
                          keypoint_renames={"triangle": {"top": "apex"}})
    assert [s.describe() for s in plan.steps][1] == "rename_keypoints(class_='tri', names={'top': 'apex'})"
    assert migrate(ds, plan).dataset.schema.classes[2].keypoints == ("apex", "left", "right")


def _pets() -> tuple[Dataset, LabelSchema]:
    old = LabelSchema(classes=(ClassDef("cat", label_types=("box", "keypoints"), keypoints=("nose", "tail")),
                               ClassDef("dog", label_types=("box", "keypoints"), keypoints=("tail", "nose"))))
    new = LabelSchema(classes=(ClassDef("pet", label_types=("box", "keypoints"), keypoints=("nose", "tail")),),
                      attributes=(AttributeDef("species", type="enum", values=("cat", "dog"), required=True,
                                               classes=("pet",)),))
    kp = np.array([[[10, 10, 2], [90, 90, 2]],  # cat: nose (10, 10), tail (90, 90)
                   [[80, 80, 2], [20, 20, 2]]], float)  # dog: tail (80, 80), nose (20, 20)
    ann = Annotations(image=[0, 0], label=[0, 1], box=[[0, 0, 100, 100]] * 2, keypoints=kp)
    images = Images(path=["a.jpg"], width=[100], height=[100])
    return Dataset(schema=old, images=images, annotations=ann), new


def test_folding_classes_with_other_keypoint_orders_moves_their_points_by_name() -> None:
    ds, new = _pets()
    r = migrate(ds, plan_migration(ds.schema, new))
    a = r.dataset.annotations
    assert a.attributes["species"].tolist() == ["cat", "dog"]
    assert a.keypoints[:, :, :2].tolist() == [[[10, 10], [90, 90]], [[20, 20], [80, 80]]]  # was: dog's nose (80, 80)
    first = r.changes[0]
    assert (first["op"], first["touched"], first["lost"]) == ("update_class", 1, 0)
    assert validate(r.dataset, r.dataset.schema).counts() == {}


def test_folding_classes_whose_keypoint_names_differ_is_refused_unless_renamed() -> None:
    ds, new = _pets()
    dog = replace(ds.schema.classes[1], keypoints=("tail", "snout"))
    old = replace(ds.schema, classes=(ds.schema.classes[0], dog))
    with pytest.raises(MigrationError, match=r"class 'dog' must keep or rename its keypoints, got \['snout'\] "
                                             r"removed and \['nose'\] added"):
        plan_migration(old, new)
    plan = plan_migration(old, new, keypoint_renames={"dog": {"snout": "nose"}})
    r = migrate(ds.replace(schema=old), plan)
    assert r.dataset.annotations.keypoints[:, :, :2].tolist() == [[[10, 10], [90, 90]], [[20, 20], [80, 80]]]


def test_merging_by_renames_aligns_keypoints_by_name() -> None:
    ds, _ = _pets()
    new = LabelSchema(classes=(ClassDef("pet", label_types=("box", "keypoints"), keypoints=("nose", "tail")),))
    plan = plan_migration(ds.schema, new, renames={"cat": "pet", "dog": "pet"})
    assert [s.op for s in plan.steps] == ["update_class", "merge_classes"]
    r = migrate(ds, plan, allow_lossy=True)
    assert r.dataset.annotations.keypoints[:, :, :2].tolist() == [[[10, 10], [90, 90]], [[20, 20], [80, 80]]]


def test_a_class_without_keypoint_names_gets_them_in_order() -> None:
    ds = shapes(8, seed=0)
    tri = replace(ds.schema.classes[2], keypoints=(), skeleton=())
    ds = ds.replace(schema=replace(ds.schema, classes=(*ds.schema.classes[:2], tri)))
    r = migrate(ds, [UpdateClass("triangle", {"keypoints": ["a", "b", "c"]})])
    assert r.changes[0]["touched"] == 0 and not r.lossy  # unnamed points had no name to match: kept in place
    np.testing.assert_array_equal(r.dataset.annotations.keypoints, ds.annotations.keypoints)
