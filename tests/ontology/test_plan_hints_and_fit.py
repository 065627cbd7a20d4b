"""Rename hints (classes, attributes, keypoints) in ``plan_migration`` and ``maslow schema diff|migrate``, and the
check of migrated data against its new schema.

Before: several renames into one class planned two ``rename_class`` steps that ``migrate`` refused; the CLI could
not rename an attribute or a keypoint; a migration whose data no longer fit the new schema said nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from maslow import io
from maslow.core import AttributeDef, LabelSchema
from maslow.errors import MigrationError
from maslow.ontology import MergeClasses, migrate, plan_migration, validate
from maslow.ontology.validate import count_violations
from maslow.sample import shapes
from tests.helpers import run_cli as run
from tests.ontology.randomdata import random_dataset, random_schema


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    io.write(shapes(16, seed=2), tmp_path / "shapes.json", "coco")
    return tmp_path / "shapes.json"


def _schema(tmp_path: Path, coco: Path) -> dict:
    run(["schema", "infer", str(coco), "--from", "coco", "-o", str(tmp_path / "v1.yaml")])
    return yaml.safe_load((tmp_path / "v1.yaml").read_text())


def test_several_renames_into_one_class_plan_a_merge() -> None:
    old = LabelSchema.from_names(["RBC", "WBC", "Platelets"])
    new = LabelSchema.from_names(["cell", "Platelets"])
    plan = plan_migration(old, new, renames={"RBC": "cell", "WBC": "cell"})
    assert plan.steps == (MergeClasses(("RBC", "WBC"), "cell"),)  # was: two rename_class steps migrate refused
    # a rename into a class that stays merges with it
    plan = plan_migration(old, LabelSchema.from_names(["RBC", "Platelets"]), renames={"WBC": "RBC"})
    assert plan.steps == (MergeClasses(("RBC", "WBC"), "RBC"),)
    ds = shapes(12, seed=0)
    plan = plan_migration(ds.schema, replace(ds.schema, classes=(
        replace(ds.schema.classes[0], name="round"), ds.schema.classes[2])), renames={"circle": "round",
                                                                                      "square": "round"})
    n = int((ds.annotations.label < 2).sum())
    with pytest.raises(MigrationError, match=rf"merge_classes.*would lose {n} annotations"):
        migrate(ds, plan)
    r = migrate(ds, plan, allow_lossy=True)
    assert r.dataset.schema.names == ("round", "triangle") and r.changes[0]["lost"] == n


def test_renames_are_ordered_and_a_swap_goes_through_a_free_name() -> None:
    old = LabelSchema.from_names(["a", "b"])
    plan = plan_migration(old, LabelSchema.from_names(["b", "c"]), renames={"a": "b", "b": "c"})
    assert [s.describe() for s in plan.steps][:2] == ["rename_class(old='b', new='c')",
                                                      "rename_class(old='a', new='b')"]
    plan = plan_migration(old, LabelSchema.from_names(["b", "a"]), renames={"a": "b", "b": "a"})
    assert [s.describe() for s in plan.steps][:3] == ["rename_class(old='a', new='a~0')",
                                                      "rename_class(old='b', new='a')",
                                                      "rename_class(old='a~0', new='b')"]
    ds = shapes(12, seed=0)  # circle, square, triangle: circles and squares swap names, every object kept
    swapped = replace(ds.schema, classes=(replace(ds.schema.classes[0], name="square"),
                                          replace(ds.schema.classes[1], name="circle"), ds.schema.classes[2]))
    r = migrate(ds, plan_migration(ds.schema, swapped, renames={"circle": "square", "square": "circle"}))
    names = [r.dataset.schema.names[k] for k in r.dataset.annotations.label]
    assert names == [{"circle": "square", "square": "circle"}.get(ds.schema.names[k], ds.schema.names[k])
                     for k in ds.annotations.label]
    a3 = LabelSchema.from_names(["a", "b", "c"])  # a round of three
    plan = plan_migration(a3, LabelSchema.from_names(["b", "c", "a"]), renames={"a": "b", "b": "c", "c": "a"})
    assert migrate(ds.replace(schema=a3), plan).dataset.schema.names == ("b", "c", "a")


def test_hints_that_make_no_applicable_step_are_refused_by_the_plan() -> None:
    old = replace(LabelSchema.from_names(["a"]), attributes=(AttributeDef("x"), AttributeDef("y")))
    new = replace(old, attributes=(AttributeDef("y"),))
    with pytest.raises(MigrationError, match=r"every planned step must apply.*'y' exists already"):
        plan_migration(old, new, attribute_renames={"x": "y"})


def test_migrate_counts_what_does_not_fit_the_new_schema() -> None:
    ds = shapes(12, seed=0)
    new = replace(ds.schema, attributes=(
        *(replace(a, type="enum", values=("yes", "no")) if a.name == "occluded" else a for a in ds.schema.attributes),
        AttributeDef("size", type="number", required=True)))
    r = migrate(ds, plan_migration(ds.schema, new))
    want = validate(r.dataset, r.dataset.schema)
    assert r.violations == want.counts() and set(r.violations) == {"value_not_allowed",
                                                                   "missing_required_attribute"}
    n = int((~ds.annotations.iscrowd).sum())  # crowd regions need no required attribute (nor hold occluded)
    assert r.violations["missing_required_attribute"] == n == r.n_violating
    assert r.to_dict()["violations"] == r.violations and r.to_dict()["n_violating"] == n
    fine = migrate(ds, plan_migration(ds.schema, ds.schema))
    assert fine.violations == {} and fine.n_violating == 0


@pytest.mark.parametrize("seed", range(40))
def test_the_counts_migrate_gives_are_validates(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ds = random_dataset(rng, random_schema(rng, n_classes=int(rng.integers(1, 5))))
    other = random_schema(rng, n_classes=3)  # classes, attributes and rules the data was not made for
    for schema in (ds.schema, other):
        report = validate(ds, schema)
        counts, n = count_violations(ds, schema)
        assert counts == report.counts()
        assert n == len({i.annotation for i in report.issues})


def test_cli_diff_prints_a_merge_and_refuses_a_cycle(tmp_path: Path, coco: Path) -> None:
    d = _schema(tmp_path, coco)
    d["classes"] = [{**d["classes"][0], "name": "shape"}, d["classes"][2]]
    (tmp_path / "v2.yaml").write_text(yaml.safe_dump(d))
    code, out = run(["schema", "diff", str(tmp_path / "v1.yaml"), str(tmp_path / "v2.yaml"),
                     "--rename", "circle=shape", "--rename", "square=shape"])
    flat = " ".join(out.split())
    assert code == 0 and "merge_classes(classes=('circle', 'square'), into='shape'" in flat
    assert "--allow-lossy" in flat
    code, out = run(["schema", "migrate", str(coco), "--from", "coco", "--to", str(tmp_path / "v2.yaml"),
                     "--rename", "circle=shape", "--rename", "square=shape", "-o", str(tmp_path / "o.json"),
                     "--to-format", "coco"])
    assert code == 2 and "would lose" in out
    code, out = run(["schema", "migrate", str(coco), "--from", "coco", "--to", str(tmp_path / "v2.yaml"),
                     "--rename", "circle=shape", "--rename", "square=shape", "-o", str(tmp_path / "o.json"),
                     "--to-format", "coco", "--allow-lossy", "--json"])
    assert code == 0, out
    assert io.read_coco(tmp_path / "o.json").schema.names == ("shape", "triangle")
    d["classes"] = [{**c, "name": {"circle": "square", "square": "circle"}.get(c["name"], c["name"])}
                    for c in _schema(tmp_path, coco)["classes"]]
    (tmp_path / "swap.yaml").write_text(yaml.safe_dump(d))
    code, out = run(["schema", "diff", str(tmp_path / "v1.yaml"), str(tmp_path / "swap.yaml"),
                     "--rename", "circle=square", "--rename", "square=circle"])
    assert code == 0 and "circle~0" in out, out  # a swap: through a free name
    code, out = run(["schema", "diff", str(tmp_path / "v1.yaml"), str(tmp_path / "v2.yaml"),
                     "--rename", "circle=shape", "--rename", "circle=square"])
    assert code == 2 and "must name 'circle' once" in " ".join(out.split())


def test_cli_renames_an_attribute_and_a_keypoint(tmp_path: Path, coco: Path) -> None:
    d = _schema(tmp_path, coco)
    for a in d["attributes"]:
        if a["name"] == "colour":
            a["name"] = "color"
    tri = next(c for c in d["classes"] if c["name"] == "triangle")
    tri["keypoints"] = ["apex", "right", "left"]
    tri["skeleton"] = [[0, 2], [2, 1], [1, 0]]
    (tmp_path / "v2.yaml").write_text(yaml.safe_dump(d))
    code, out = run(["schema", "diff", str(tmp_path / "v1.yaml"), str(tmp_path / "v2.yaml")])
    assert code == 2 and "--rename-keypoint triangle:top=apex" in " ".join(out.split())
    hints = ["--rename-attribute", "colour=color", "--rename-keypoint", "triangle:top=apex"]
    code, out = run(["schema", "diff", str(tmp_path / "v1.yaml"), str(tmp_path / "v2.yaml"), *hints, "--json"])
    assert code == 0, out
    assert [s["op"] for s in json.loads(out)["migration"]["steps"]] == ["rename_attribute", "rename_keypoints",
                                                                         "update_class"]
    code, out = run(["schema", "migrate", str(coco), "--from", "coco", "--to", str(tmp_path / "v2.yaml"), *hints,
                     "-o", str(tmp_path / "o.json"), "--to-format", "coco", "--json"])
    assert code == 0, out  # was: '--rename colour=color' refused ('must map a class'), no keypoint hint
    res = json.loads(out)["result"]
    assert not res["lossy"] and res["violations"] == {}
    before, after = io.read_coco(coco), io.read_coco(tmp_path / "o.json")
    assert after.annotations.attributes["color"].tolist() == before.annotations.attributes["colour"].tolist()
    rows = before.annotations.label == 2
    np.testing.assert_array_equal(after.annotations.keypoints[rows], before.annotations.keypoints[rows][:, [0, 2, 1]])
    code, out = run(["schema", "diff", str(tmp_path / "v1.yaml"), str(tmp_path / "v2.yaml"),
                     "--rename-keypoint", "top=apex"])
    assert code == 2 and "must be CLASS:OLD=NEW" in out


def test_cli_migrate_notes_annotations_that_no_longer_fit(tmp_path: Path, coco: Path) -> None:
    d = _schema(tmp_path, coco)
    for a in d["attributes"]:
        if a["name"] == "occluded":
            a.update(type="enum", values=["yes", "no"])  # a bool retyped: values are kept as they are
    d["attributes"].append({"name": "size", "type": "number", "required": True})
    (tmp_path / "v2.yaml").write_text(yaml.safe_dump(d))
    args = ["schema", "migrate", str(coco), "--from", "coco", "--to", str(tmp_path / "v2.yaml"), "--to-format", "coco"]
    code, out = run([*args, "-o", str(tmp_path / "o.json")])
    n = int((~io.read_coco(coco).annotations.iscrowd).sum())  # crowd regions need no required attribute
    flat = " ".join(out.split())
    assert code == 0 and f"Note: {n} annotations do not fit the new schema" in flat
    assert f"missing_required_attribute {n}" in flat and "value_not_allowed" in flat
    code, out = run([*args, "-o", str(tmp_path / "j.json"), "--json"])
    res = json.loads(out)["result"]
    assert res["n_violating"] == n and res["violations"]["missing_required_attribute"] == n
    log = json.loads((tmp_path / "j.changes.json").read_text())
    assert log["violations"] == res["violations"]  # the change log file says it too
