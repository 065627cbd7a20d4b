"""Migrations: each step's counts, lossy steps refused, inverses restore the data, files replay identically."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.core import Annotations, ClassDef, Dataset, Images, LabelSchema
from maslow.core import masks as M
from maslow.core.types import obj_array
from maslow.errors import FormatError, MigrationError
from maslow.ontology import (
    AddClass,
    AttributeToClass,
    BoxesFromMasks,
    ChangeKind,
    ClassesToAttribute,
    DropAttribute,
    DropClass,
    MergeClasses,
    Migration,
    RenameAttribute,
    RenameClass,
    RenameKeypoints,
    ReorderClasses,
    SetAttribute,
    SetLabelTypes,
    UpdateClass,
    UpdateSchema,
    diff_schemas,
    load_migration,
    migrate,
    plan_migration,
    save_migration,
    validate,
)
from maslow.sample import shapes
from tests.conftest import shared_path
from tests.helpers import assert_datasets_equal

ALL = ("path", "size", "label", "box", "mask", "polygon", "keypoints", "iscrowd")


def hand() -> Dataset:
    """4 annotations on 2 images: cat (box), dog (mask, no box), cat (polygon, no box), bird (box)."""
    m = np.zeros((20, 30), bool)
    m[2:6, 3:9] = True
    ann = Annotations(
        image=[0, 0, 1, 1], label=[0, 1, 0, 2],
        box=[[1, 1, 5, 5], [np.nan] * 4, [np.nan] * 4, [2, 2, 8, 9]],
        mask=obj_array([None, M.encode(m), None, None]),
        polygon=obj_array([None, None, [np.array([10.0, 10, 20, 10, 20, 15])], None]),
        attributes={"pose": obj_array(["up", "down", None, "up"])},
    )
    schema = LabelSchema(classes=(ClassDef("cat"), ClassDef("dog"), ClassDef("bird")))
    return Dataset(schema=schema, images=Images(path=["a.png", "b.png"], width=[30, 30], height=[20, 20]),
                   annotations=ann)


def names_of(ds: Dataset) -> list[str]:
    return [ds.schema.names[i] for i in ds.annotations.label]


def test_rename_class() -> None:
    r = migrate(hand(), [RenameClass("cat", "kitty")])
    assert r.dataset.schema.names == ("kitty", "dog", "bird")
    assert names_of(r.dataset) == ["kitty", "dog", "kitty", "bird"]
    assert r.changes[0]["touched"] == 2 and not r.lossy
    assert r.dataset.schema.version == 2
    with pytest.raises(MigrationError, match="exists already"):
        migrate(hand(), [RenameClass("cat", "dog")])
    with pytest.raises(MigrationError, match="'lion' must be in the schema"):
        migrate(hand(), [RenameClass("lion", "x")])


def test_merge_is_lossy_without_keep_as() -> None:
    with pytest.raises(MigrationError, match="would lose 3"):
        migrate(hand(), [MergeClasses(("cat", "dog"), "pet")])
    r = migrate(hand(), [MergeClasses(("cat", "dog"), "pet")], allow_lossy=True)
    assert r.lossy and names_of(r.dataset) == ["pet", "pet", "pet", "bird"]
    kept = migrate(hand(), [MergeClasses(("cat", "dog"), "pet", keep_as="species")])
    assert not kept.lossy
    assert kept.dataset.annotations.attributes["species"].tolist() == ["cat", "dog", "cat", None]


def test_merge_into_existing_class() -> None:
    r = migrate(hand(), [MergeClasses(("dog",), "cat", keep_as="was")])
    assert r.dataset.schema.names == ("cat", "bird")
    assert names_of(r.dataset) == ["cat", "cat", "cat", "bird"]
    assert r.dataset.annotations.attributes["was"].tolist() == ["cat", "dog", "cat", None]


def test_classes_to_attribute_and_back_restore_the_original() -> None:
    ds = hand()
    fwd = migrate(ds, [ClassesToAttribute(("cat", "dog"), "pet", "species")])
    assert fwd.dataset.schema.names == ("pet", "bird")
    assert fwd.changes[0]["touched"] == 3
    assert validate(fwd.dataset, fwd.dataset.schema).counts() == {"unknown_attribute": 3}  # pose: not declared
    back = migrate(fwd.dataset, [AttributeToClass("pet", "species")])
    assert back.dataset.schema.names == ds.schema.names
    assert_datasets_equal(ds, back.dataset, fields=ALL, attributes=("pose",))
    assert "species" not in back.dataset.annotations.attributes
    assert back.dataset.schema.version == 3


def test_attribute_to_class_and_back() -> None:
    ds = hand()
    split = migrate(ds, [AttributeToClass("cat", "pose", names={"up": "cat_up"})])
    # the cat without a pose stays a cat; "up" cats become cat_up
    assert names_of(split.dataset) == ["cat_up", "dog", "cat", "bird"]
    assert split.dataset.annotations.attributes["pose"].tolist() == [None, "down", None, "up"]
    assert split.changes[0]["touched"] == 1
    with pytest.raises(MigrationError, match="must not map to the class being split"):
        migrate(ds, [AttributeToClass("cat", "pose", names={"up": "cat"})])


def test_drop_class_and_attribute_are_lossy() -> None:
    with pytest.raises(MigrationError, match="drop_class"):
        migrate(hand(), [DropClass("cat")])
    r = migrate(hand(), [DropClass("cat")], allow_lossy=True)
    assert r.dataset.n_annotations == 2 and names_of(r.dataset) == ["dog", "bird"]
    assert r.changes[0]["lost"] == 2
    empty = migrate(hand(), [AddClass("fish"), DropClass("fish")])  # nothing to lose: allowed
    assert not empty.lossy and empty.dataset.schema.names == hand().schema.names
    with pytest.raises(MigrationError, match="lose 3"):
        migrate(hand(), [DropAttribute("pose")])
    r = migrate(hand(), [DropAttribute("pose")], allow_lossy=True)
    assert "pose" not in r.dataset.annotations.attributes


def test_rename_attribute_round_trip() -> None:
    ds = hand()
    r = migrate(migrate(ds, [RenameAttribute("pose", "stance")]).dataset, [RenameAttribute("stance", "pose")])
    assert_datasets_equal(ds, r.dataset, fields=ALL, attributes=("pose",))
    with pytest.raises(MigrationError, match="must be in the dataset"):
        migrate(ds, [RenameAttribute("nope", "x")])


def test_change_kind_update_class_reorder() -> None:
    r = migrate(hand(), [ChangeKind("dog", "semantic"), UpdateClass("cat", {"color": "#00ff00", "id": 7}),
                         ReorderClasses(("bird", "cat", "dog"))])
    s = r.dataset.schema
    assert s.names == ("bird", "cat", "dog")
    assert s.classes[2].kind == "semantic" and s.classes[1].color == "#00ff00" and s.classes[1].id == 7
    assert names_of(r.dataset) == names_of(hand())
    assert [c["touched"] for c in r.changes] == [1, 0, 4]


def test_boxes_from_masks_and_polygons() -> None:
    r = migrate(hand(), [BoxesFromMasks()])
    box = r.dataset.annotations.box
    assert r.changes[0]["touched"] == 2 and not r.lossy
    np.testing.assert_allclose(box[1], [3, 2, 9, 6])  # mask columns 3..8, rows 2..5
    np.testing.assert_allclose(box[2], [10, 10, 20, 15])
    np.testing.assert_allclose(box[[0, 3]], hand().annotations.box[[0, 3]])
    with pytest.raises(MigrationError, match="lose"):
        migrate(hand(), [BoxesFromMasks(keep_geometry=False)])
    boxes_only = migrate(hand(), [BoxesFromMasks(keep_geometry=False)], allow_lossy=True).dataset
    assert boxes_only.annotations.mask is None and boxes_only.annotations.polygon is None
    assert boxes_only.annotations.has_box.all()


def test_set_label_types_box_only_target_is_lossy() -> None:
    ds = shapes(12, seed=0)
    with pytest.raises(MigrationError, match="set_label_types"):
        migrate(ds, [SetLabelTypes("triangle", ("box",))])
    r = migrate(ds, [SetLabelTypes("triangle", ("box",))], allow_lossy=True)
    n_tri = int((ds.annotations.label == 2).sum())
    assert r.changes[0]["lost"] == n_tri
    assert validate(r.dataset, r.dataset.schema).counts() == {}


def test_shapes_split_merge_inverse() -> None:
    ds = shapes(24, seed=0)
    fwd = migrate(ds, [ClassesToAttribute(("circle", "square"), "shape", "shape_type")])
    n = np.bincount(ds.annotations.label, minlength=3)
    assert np.bincount(fwd.dataset.annotations.label).tolist() == [n[0] + n[1], n[2]]
    back = migrate(fwd.dataset, [AttributeToClass("shape", "shape_type")])
    assert_datasets_equal(ds, back.dataset, fields=ALL, attributes=("colour", "occluded"))
    assert [c.name for c in back.dataset.schema.attributes] == ["colour", "occluded"]


def test_migration_file_replays_identically(tmp_path: Path) -> None:
    ds = shapes(24, seed=0)
    mig = Migration((RenameClass("circle", "disc"), ClassesToAttribute(("disc", "square"), "shape", "kind"),
                     SetAttribute({"name": "occluded", "type": "bool", "required": False}),
                     AttributeToClass("shape", "kind", names={"disc": "round"}), BoxesFromMasks(),
                     ChangeKind("triangle", "object")), from_version=1, to_version=2)
    direct = migrate(ds, mig)
    save_migration(mig, tmp_path / "m.yaml")
    loaded = load_migration(tmp_path / "m.yaml")
    assert loaded == mig
    replayed = migrate(ds, loaded)
    assert replayed.changes == direct.changes
    assert replayed.dataset.schema == direct.dataset.schema
    assert_datasets_equal(direct.dataset, replayed.dataset, fields=ALL, attributes=("colour", "occluded"))
    nested = Migration((UpdateClass("triangle", {"skeleton": ((0, 1),), "keypoints": ("left", "top", "right")}),))
    save_migration(nested, tmp_path / "n.yaml")
    assert migrate(ds, load_migration(tmp_path / "n.yaml")).dataset.schema.classes[2].skeleton == ((0, 1),)
    # on new data from the same schema version
    other = shapes(10, seed=5)
    assert set(migrate(other, loaded).dataset.schema.names) == {"round", "square", "triangle"}
    with pytest.raises(MigrationError, match="version must be 1"):
        migrate(direct.dataset, loaded)
    assert migrate(shapes(6, seed=1), loaded).dataset.schema.version == 2
    later = shapes(6, seed=1)
    later = later.replace(schema=replace(later.schema, version=5))
    assert migrate(later, loaded, check_version=False).dataset.schema.version == 6


def test_boxes_from_polygons_restore_removed_boxes() -> None:
    ds = shapes(24, seed=0)
    poly_rows = np.fromiter((p is not None for p in ds.annotations.polygon), bool)
    box = ds.annotations.box.copy()
    box[:] = np.nan
    no_boxes = ds.replace(annotations=ds.annotations.with_columns(box=box, mask=None))
    r = migrate(no_boxes, [BoxesFromMasks()])
    assert r.changes[0]["touched"] == int(poly_rows.sum())
    np.testing.assert_allclose(r.dataset.annotations.box[poly_rows], ds.annotations.box[poly_rows])
    with_masks = migrate(ds.replace(annotations=ds.annotations.with_columns(box=box)), [BoxesFromMasks()])
    assert with_masks.changes[0]["touched"] == ds.n_annotations  # every row has a mask
    np.testing.assert_allclose(with_masks.dataset.annotations.box, ds.annotations.box, atol=1.0)


@pytest.mark.parametrize(("text", "match"), [
    ("steps: [{op: explode}]", r"steps\[0\].*op must be one of"),
    ("steps: [{op: rename_class, old: a, neww: b}]", r"steps\[0\]\.neww"),
    ("steps: [{op: rename_class, old: a}]", r"steps\[0\].*bad arguments"),
    ("from_version: one\nsteps: []", "from_version"),
    ("steps: 3", "steps"),
])
def test_bad_migration_files(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(FormatError, match=match):
        load_migration(tmp_path / "m.yaml")


def test_plan_migration_reaches_the_new_schema() -> None:
    ds = shapes(24, seed=0)
    target = migrate(ds, [ClassesToAttribute(("circle", "square"), "shape", "shape_type"),
                          RenameClass("triangle", "tri")]).dataset.schema
    plan = plan_migration(ds.schema, target, renames={"triangle": "tri"})
    assert [s.op for s in plan.steps][:2] == ["rename_class", "classes_to_attribute"]
    out = migrate(ds, plan)
    assert not out.lossy
    d = diff_schemas(out.dataset.schema, target)
    assert d.empty, d.to_dict()
    back = migrate(out.dataset, plan_migration(target, ds.schema, renames={"tri": "triangle"}))
    assert diff_schemas(back.dataset.schema, ds.schema).empty
    assert_datasets_equal(ds, back.dataset, fields=ALL, attributes=("colour", "occluded"))


def test_plan_reports_added_and_removed_without_guessing_renames() -> None:
    old, new = LabelSchema.from_names(["a", "b"]), LabelSchema.from_names(["a", "c"])
    d = diff_schemas(old, new)
    assert (d.added_classes, d.removed_classes) == (("c",), ("b",))
    assert [s.op for s in plan_migration(old, new).steps] == ["drop_class", "add_class"]
    assert [s.op for s in plan_migration(old, new, renames={"b": "c"}).steps] == ["rename_class"]
    with pytest.raises(MigrationError, match="rename"):
        plan_migration(old, new, renames={"x": "c"})


# -- real data -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bccd() -> Dataset:
    return io.read_voc(shared_path("bccd", "annotations"))


def test_bccd_rename_and_back(bccd: Dataset) -> None:
    r = migrate(bccd, [RenameClass("RBC", "red_cell")])
    assert r.changes[0]["touched"] == 4155
    back = migrate(r.dataset, [RenameClass("red_cell", "RBC")])
    assert_datasets_equal(bccd, back.dataset, attributes=("truncated", "difficult", "pose"))


def test_bccd_cells_to_attribute_and_back(bccd: Dataset) -> None:
    fwd = migrate(bccd, [ClassesToAttribute(("RBC", "WBC"), "blood_cell", "cell_type")])
    counts = dict(zip(fwd.dataset.schema.names, np.bincount(fwd.dataset.annotations.label).tolist(), strict=True))
    assert counts == {"Platelets": 361, "blood_cell": 4155 + 372}
    assert fwd.changes[0]["touched"] == 4527
    back = migrate(fwd.dataset, [AttributeToClass("blood_cell", "cell_type")])
    assert_datasets_equal(bccd, back.dataset, attributes=("truncated", "difficult", "pose"))
    assert set(back.dataset.schema.names) == set(bccd.schema.names)


def test_bccd_drop_and_merge_counts(bccd: Dataset) -> None:
    r = migrate(bccd, [DropClass("Platelets"), DropAttribute("pose")], allow_lossy=True)
    assert r.dataset.n_annotations == 4888 - 361
    assert [c["lost"] for c in r.changes] == [361, 4888 - 361]
    m = migrate(bccd, [MergeClasses(("RBC", "WBC", "Platelets"), "cell")], allow_lossy=True)
    assert m.dataset.schema.names == ("cell",) and m.changes[0]["lost"] == 4888
    kinds = migrate(bccd, [ChangeKind("RBC", "semantic")]).dataset
    assert validate(kinds, kinds.schema).counts()["wrong_kind"] > 4000


EXAMPLES = [RenameClass("cat", "kitty"), MergeClasses(("cat", "dog"), "pet", keep_as="was"),
            ClassesToAttribute(("cat", "dog"), "pet", "was"), AttributeToClass("cat", "pose", names={"up": "u"}),
            DropClass("bird"), DropAttribute("pose"), RenameAttribute("pose", "stance"), ChangeKind("dog", "semantic"),
            UpdateClass("cat", {"color": "#ffffff"}), UpdateSchema({"tasks": ["keypoints"], "guidelines": "Box it."}),
            AddClass("fish", label_types=("box",)),
            SetAttribute({"name": "pose", "type": "enum", "values": ["up", "down"]}),
            ReorderClasses(("dog", "cat", "bird")), SetLabelTypes("cat", ("box", "polygon")), BoxesFromMasks(),
            RenameKeypoints("cat", {})]


def test_examples_cover_every_step() -> None:
    from maslow.ontology import STEPS

    assert {s.op for s in EXAMPLES} == set(STEPS)


@pytest.mark.parametrize("step", EXAMPLES, ids=lambda s: s.op)
def test_every_step_serialises_and_leaves_its_input_alone(tmp_path: Path, step: object) -> None:
    ds = hand()
    before = [names_of(ds), ds.annotations.box.copy(), ds.annotations.attributes["pose"].copy(), ds.schema]
    mig = Migration((step,))  # type: ignore[arg-type]
    save_migration(mig, tmp_path / "m.yaml")
    assert load_migration(tmp_path / "m.yaml") == mig
    r = migrate(ds, mig, allow_lossy=True)
    assert r.dataset.schema.version == ds.schema.version + 1
    assert names_of(ds) == before[0] and ds.schema == before[3]
    np.testing.assert_array_equal(ds.annotations.box, before[1])
    assert ds.annotations.attributes["pose"].tolist() == before[2].tolist()
