"""`maslow schema ...` through CliRunner: exit codes and --json output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from maslow import io
from maslow.ontology import load_migration, load_schema
from maslow.sample import shapes
from tests.helpers import run_cli as run


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    io.write(shapes(16, seed=2), tmp_path / "shapes.json", "coco")
    return tmp_path / "shapes.json"


def test_infer_validate_strict(tmp_path: Path, coco: Path) -> None:
    schema = tmp_path / "schema.yaml"
    code, out = run(["schema", "infer", str(coco), "--from", "coco", "-o", str(schema), "--json"])
    assert code == 0, out
    assert json.loads(out)["classes"][0]["name"] == "circle"
    assert load_schema(schema).names == ("circle", "square", "triangle")
    code, out = run(["schema", "validate", str(coco), "--from", "coco", "--schema", str(schema), "--json", "--strict"])
    assert code == 0 and json.loads(out)["n_issues"] == 0
    d = yaml.safe_load(schema.read_text())
    d["attributes"][0]["values"] = ["red"]
    schema.write_text(yaml.safe_dump(d))
    code, out = run(["schema", "validate", str(coco), "--from", "coco", "--schema", str(schema), "--json"])
    assert code == 0
    rep = json.loads(out)
    assert set(rep["counts"]) == {"value_not_allowed"}
    # the COCO file and the annotation's id, as the import checks name them (was the image file and a row number)
    first = rep["issues"][0]
    ann_id = json.loads(coco.read_text())["annotations"][first["annotation"]]["id"]
    assert first["file"] == str(coco) and first["record"].startswith(f"annotation id={ann_id} (image images/")
    code, _ = run(["schema", "validate", str(coco), "--from", "coco", "--schema", str(schema), "--strict"])
    assert code == 2


def test_bad_schema_file_exits_2(tmp_path: Path, coco: Path) -> None:
    (tmp_path / "bad.yaml").write_text("classes: [{name: a, kind: blob}]")
    code, out = run(["schema", "validate", str(coco), "--from", "coco", "--schema", str(tmp_path / "bad.yaml")])
    assert code == 2
    assert "classes[0].kind" in out


def _v2(tmp_path: Path, coco: Path) -> Path:
    run(["schema", "infer", str(coco), "--from", "coco", "-o", str(tmp_path / "v1.yaml")])
    d = yaml.safe_load((tmp_path / "v1.yaml").read_text())
    d["classes"][0]["name"] = "disc"
    d["classes"] = [c for c in d["classes"] if c["name"] != "triangle"]
    (tmp_path / "v2.yaml").write_text(yaml.safe_dump(d))
    return tmp_path / "v2.yaml"


def test_diff_and_migrate(tmp_path: Path, coco: Path) -> None:
    v2 = _v2(tmp_path, coco)
    code, out = run(["schema", "diff", str(tmp_path / "v1.yaml"), str(v2), "--rename", "circle=disc", "--json"])
    assert code == 0, out
    d = json.loads(out)
    assert d["diff"]["removed_classes"] == ["circle", "triangle"]
    assert [s["op"] for s in d["migration"]["steps"]][:2] == ["rename_class", "drop_class"]
    args = ["schema", "migrate", str(coco), "--from", "coco", "--to", str(v2), "--rename", "circle=disc",
            "-o", str(tmp_path / "out" / "v2.json"), "--to-format", "coco", "--json"]
    code, out = run(args)
    assert code == 2  # dropping triangles is lossy
    code, out = run([*args, "--allow-lossy"])
    assert code == 0, out
    res = json.loads(out)
    assert res["result"]["lossy"] and res["result"]["version"] == 2
    before = io.read_coco(coco)
    n_tri = int((before.annotations.label == 2).sum())
    after = io.read_coco(tmp_path / "out" / "v2.json")
    assert after.n_annotations == before.n_annotations - n_tri
    assert after.schema.names == ("disc", "square")
    log = json.loads((tmp_path / "out" / "v2.changes.json").read_text())
    assert log["changes"][0]["touched"] == int((before.annotations.label == 0).sum())
    mig = load_migration(tmp_path / "out" / "v2.migration.yaml")
    assert mig.steps[0].op == "rename_class"
    # replay the migration file on the same data: same result
    code, out = run(["schema", "migrate", str(coco), "--from", "coco", "--migration",
                     str(tmp_path / "out" / "v2.migration.yaml"), "--allow-lossy", "-o", str(tmp_path / "r.json"),
                     "--to-format", "coco", "--json"])
    assert code == 0, out
    assert json.loads(out)["result"]["changes"] == res["result"]["changes"]
    assert io.read_coco(tmp_path / "r.json").n_annotations == after.n_annotations


def test_migrate_needs_one_target(tmp_path: Path, coco: Path) -> None:
    code, _ = run(["schema", "migrate", str(coco), "--from", "coco", "-o", str(tmp_path / "x"), "--to-format", "coco"])
    assert code == 2


def test_workspace_migrate_commit(tmp_path: Path, coco: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v2 = _v2(tmp_path, coco)
    assert run(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    code, out = run(["import", str(coco), "--from", "coco", "--name", "shapes", "--no-check-files"])
    assert code == 0, out
    code, out = run(["schema", "validate", "--schema", str(tmp_path / "v1.yaml"), "--json"])
    assert code == 0 and json.loads(out)["n_issues"] == 0
    code, out = run(["schema", "migrate", "--to", str(v2), "--rename", "circle=disc", "--allow-lossy", "--commit",
                     "--json"])
    assert code == 0, out
    v = json.loads(out)["version"]
    assert v["parent"] is not None and v["changes"][0]["op"] == "rename_class"
    code, out = run(["log", "--json"])
    assert json.loads(out)[0]["id"] == v["id"]


def test_migrating_an_old_version_does_not_drop_the_newer_ones(tmp_path: Path, coco: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    v2 = _v2(tmp_path, coco)
    assert run(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    first = json.loads(run(["import", str(coco), "--from", "coco", "--name", "shapes", "--no-check-files",
                            "--json"])[1])["version"]["id"]
    more = json.loads(coco.read_text())
    more["annotations"] = more["annotations"][:-3]  # another version of the data: the head moves on
    (tmp_path / "more.json").write_text(json.dumps(more))
    (tmp_path / "images").symlink_to(coco.parent / "images")
    code, out = run(["import", str(tmp_path / "more.json"), "--from", "coco", "--name", "shapes", "--no-check-files"])
    assert code == 0, out
    head = json.loads(run(["log", "--json"])[1])[0]["id"]
    code, out = run(["schema", "migrate", f"shapes@{first}", "--to", str(v2), "--rename", "circle=disc",
                     "--allow-lossy", "--commit"])
    flat = " ".join(out.split())
    assert code == 2 and f"made from version {first}" in flat  # it committed v1's data on top of the head
    assert json.loads(run(["log", "--json"])[1])[0]["id"] == head


def test_cost_and_json_schema(tmp_path: Path, coco: Path) -> None:
    (tmp_path / "rates.yaml").write_text("box: 34.5\n")
    code, out = run(["schema", "cost", str(coco), "--from", "coco", "--rates", str(tmp_path / "rates.yaml"),
                     "--strategy", "boxes=box", "--strategy", "seg=polygon+box", "--json"])
    assert code == 0, out
    d = json.loads(out)["strategies"]
    assert list(d) == ["as annotated", "boxes", "seg"]
    assert d["boxes"]["rates"]["box"] == 34.5
    assert d["boxes"]["total_seconds"] < d["seg"]["total_seconds"]
    code, out = run(["schema", "cost", str(coco), "--from", "coco"])
    assert code == 0 and "as annotated" in out
    code, out = run(["schema", "json-schema"])
    assert code == 0 and json.loads(out)["required"] == ["classes"]


@pytest.mark.parametrize(("rates", "message"), [
    pytest.param("box: -5\n", "rates.yaml: cost rates: box must be a number >= 0, got -5", id="negative"),
    pytest.param("box: .nan\n", "rates.yaml: cost rates: box must be a number >= 0, got nan", id="nan"),
    pytest.param("- box\n", "rates.yaml: must be a mapping of label type: seconds, got list", id="list"),
])
def test_bad_rates_file_exits_2_naming_it(tmp_path: Path, coco: Path, rates: str, message: str) -> None:
    (tmp_path / "rates.yaml").write_text(rates)
    code, out = run(["schema", "cost", str(coco), "--from", "coco", "--rates", str(tmp_path / "rates.yaml")])
    assert code == 2 and message in " ".join(out.split())
    code, out = run(["schema", "cost", str(coco), "--from", "coco", "--strategy", "boxes"])
    assert code == 2 and "--strategy: must be NAME=TYPE[+TYPE...], got 'boxes'" in out


def _v1_and_v2(tmp_path: Path, coco: Path) -> None:
    """v1.yaml (the sample's schema) and v2.yaml (circle and square as one class ``shape`` with ``shape_type``)."""
    run(["schema", "infer", str(coco), "--from", "coco", "-o", str(tmp_path / "v1.yaml")])
    d = yaml.safe_load((tmp_path / "v1.yaml").read_text())
    d["classes"] = [dict(d["classes"][0], name="shape", label_types=["box", "mask", "polygon"]), d["classes"][2]]
    d["attributes"].append({"name": "shape_type", "type": "enum", "values": ["circle", "square"], "required": True,
                            "classes": ["shape"]})
    d["version"] = 2
    (tmp_path / "v2.yaml").write_text(yaml.safe_dump(d))


def test_migrate_to_attribute_and_back_through_coco(tmp_path: Path, coco: Path) -> None:
    _v1_and_v2(tmp_path, coco)
    code, out = run(["schema", "migrate", str(coco), "--from", "coco", "--to", str(tmp_path / "v2.yaml"),
                     "-o", str(tmp_path / "v2" / "a.json"), "--to-format", "coco", "--json"])
    assert code == 0, out
    assert json.loads(out)["result"]["changes"][0]["op"] == "classes_to_attribute"
    code, out = run(["schema", "migrate", str(tmp_path / "v2" / "a.json"), "--from", "coco", "--current",
                     str(tmp_path / "v2.yaml"), "--to", str(tmp_path / "v1.yaml"), "-o", str(tmp_path / "back.json"),
                     "--to-format", "coco", "--json"])
    assert code == 0, out
    res = json.loads(out)["result"]
    assert res["changes"][0]["op"] == "attribute_to_class" and not res["lossy"] and res["version"] == 3
    a, b = io.read_coco(coco), io.read_coco(tmp_path / "back.json")
    assert b.schema.names == a.schema.names
    assert b.annotations.label.tolist() == a.annotations.label.tolist()
    code, out = run(["schema", "validate", str(tmp_path / "back.json"), "--from", "coco", "--schema",
                     str(tmp_path / "v1.yaml"), "--json"])
    assert code == 0 and json.loads(out)["n_issues"] == 0


def test_migrate_back_refuses_a_value_outside_the_enum(tmp_path: Path, coco: Path) -> None:
    """A value the target schema has no class for is a data error: exit 2, nothing written (a class was made)."""
    _v1_and_v2(tmp_path, coco)
    code, out = run(["schema", "migrate", str(coco), "--from", "coco", "--to", str(tmp_path / "v2.yaml"),
                     "-o", str(tmp_path / "v2" / "a.json"), "--to-format", "coco"])
    assert code == 0, out
    doc = json.loads((tmp_path / "v2" / "a.json").read_text())
    typo = next(a for a in doc["annotations"] if a.get("attributes", {}).get("shape_type") == "square")
    typo["attributes"]["shape_type"] = "sqaure"
    (tmp_path / "typo.json").write_text(json.dumps(doc))
    code, out = run(["schema", "migrate", str(tmp_path / "typo.json"), "--from", "coco", "--current",
                     str(tmp_path / "v2.yaml"), "--to", str(tmp_path / "v1.yaml"), "-o", str(tmp_path / "back.json"),
                     "--to-format", "coco"])
    assert code == 2, out
    assert "sqaure" in out and "must be one of the attribute's values" in " ".join(out.split())
    assert not (tmp_path / "back.json").exists() and not (tmp_path / "back.schema.yaml").exists()
