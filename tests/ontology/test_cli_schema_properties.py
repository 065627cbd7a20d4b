"""`maslow schema ...` on random schemas and datasets: --json is the Python API's result, the files written beside
a migrated dataset are what happened, bad files exit 2 naming the file and the field, outputs all or nothing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from maslow import io
from maslow.cli.render import json_text
from maslow.core import ClassDef
from maslow.ontology import (
    compare_strategies,
    diff_schemas,
    infer_schema,
    load_migration,
    load_schema,
    migrate,
    plan_migration,
    read_schema_document,
    save_schema,
    validate,
)
from maslow.ontology.schema_file import ClassNotes, schema_to_dict
from maslow.sample import shapes
from tests.helpers import run_cli
from tests.ontology.randomdata import random_dataset, random_schema
from tests.ontology.test_migrate_properties import assert_same_dataset
from tests.ontology.test_plan_properties import derive

FEW = settings(max_examples=5, deadline=None)


def _json(obj: Any) -> Any:
    """What --json prints for ``obj``, parsed."""
    return json.loads(json_text(obj))


def _cli(args: list[str]) -> Any:
    code, out = run_cli(args)
    assert code == 0, out
    return json.loads(out)


@FEW
@given(st.integers(0, 2**32 - 1))
def test_json_output_is_the_python_api(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = random_schema(rng, n_classes=int(rng.integers(1, 5)))
    ds = random_dataset(rng, a, valid=True)
    b, renames = derive(rng, a)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        io.write(ds, d / "data.parquet", "parquet")
        data = io.read_parquet(d / "data.parquet")
        save_schema(a, d / "a.yaml")
        save_schema(b, d / "b.yaml", class_notes={n: ClassNotes(guidelines=f"notes on {n}") for n in b.names})
        src = [str(d / "data.parquet"), "--from", "parquet"]
        hints = [f"--rename={o}={n}" for o, n in renames.items()]
        assert _cli(["schema", "infer", *src, "--json"]) == _json(schema_to_dict(infer_schema(data)))
        assert _cli(["schema", "validate", *src, "--schema", str(d / "a.yaml"), "--json"]) == _json(validate(data, a))
        assert _cli(["schema", "validate", *src, "--schema", str(d / "b.yaml"), "--json"]) == _json(validate(data, b))
        plan = plan_migration(a, b, renames=renames)
        assert _cli(["schema", "diff", str(d / "a.yaml"), str(d / "b.yaml"), *hints, "--json"]) == \
            _json({"diff": diff_schemas(read_schema_document(d / "a.yaml"), read_schema_document(d / "b.yaml")),
                   "migration": plan})  # the documents: b's class notes are a change too
        want = migrate(data, plan, allow_lossy=True)
        got = _cli(["schema", "migrate", *src, "--to", str(d / "b.yaml"), *hints, "--allow-lossy",
                    "-o", str(d / "out" / "v.parquet"), "--to-format", "parquet", "--json"])
        assert got["result"] == _json(want)
        # the files beside the output: what happened
        assert json.loads((d / "out" / "v.changes.json").read_text("utf-8")) == _json(want)
        assert load_migration(d / "out" / "v.migration.yaml") == plan
        doc = read_schema_document(d / "out" / "v.schema.yaml")
        assert doc.schema == want.dataset.schema and doc.class_notes == read_schema_document(d / "b.yaml").class_notes
        out = io.read_parquet(d / "out" / "v.parquet")
        assert_same_dataset(out, want.dataset)
        assert out.schema == want.dataset.schema
        # replaying the migration file gives the same
        again = _cli(["schema", "migrate", *src, "--migration", str(d / "out" / "v.migration.yaml"), "--allow-lossy",
                      "-o", str(d / "r.parquet"), "--to-format", "parquet", "--json"])
        assert again["result"] == got["result"]
        cost = _cli(["schema", "cost", *src, "--strategy", "boxes=box", "--json"])
        assert cost["strategies"] == _json(compare_strategies(data, {"as annotated": None, "boxes": ["box"]}))


def test_current_schema_is_the_datas_schema(tmp_path: Path) -> None:
    """COCO carries no attribute definitions or label types: with --current the migrated schema is the target."""
    io.write(shapes(8, seed=2), tmp_path / "s.json", "coco")
    v1 = infer_schema(io.read_coco(tmp_path / "s.json"))
    save_schema(v1, tmp_path / "v1.yaml")
    text = (tmp_path / "v1.yaml").read_text("utf-8").replace("name: circle", "name: disc")
    (tmp_path / "v2.yaml").write_text(text + "guidelines: New rules.\n", "utf-8")
    res = _cli(["schema", "migrate", str(tmp_path / "s.json"), "--from", "coco", "--current", str(tmp_path / "v1.yaml"),
                "--to", str(tmp_path / "v2.yaml"), "--rename", "circle=disc", "-o", str(tmp_path / "o.json"),
                "--to-format", "coco", "--json"])
    assert res["result"]["version"] == v1.version + 1
    got = load_schema(tmp_path / "o.schema.yaml")
    v2 = load_schema(tmp_path / "v2.yaml")
    assert diff_schemas(got, v2).empty, diff_schemas(got, v2).to_dict()  # were: no label types, colour a text
    assert got.version == v1.version + 1


def test_current_must_name_every_class_of_the_data(tmp_path: Path) -> None:
    io.write(shapes(8, seed=2), tmp_path / "s.json", "coco")
    (tmp_path / "cur.yaml").write_text("classes: [{name: circle}, {name: square}]\n")
    code, out = run_cli(["schema", "migrate", str(tmp_path / "s.json"), "--from", "coco", "--current",
                         str(tmp_path / "cur.yaml"), "--to", str(tmp_path / "cur.yaml"), "-o", str(tmp_path / "o.json"),
                         "--to-format", "coco"])
    assert code == 2 and "cur.yaml" in out and "'triangle'" in " ".join(out.split())
    assert not (tmp_path / "o.json").exists()


def _dataset(tmp_path: Path) -> list[str]:
    io.write(shapes(6, seed=1), tmp_path / "s.parquet", "parquet")
    save_schema(shapes(6, seed=1).schema, tmp_path / "good.yaml")
    return [str(tmp_path / "s.parquet"), "--from", "parquet"]


BAD_SCHEMAS = [("classes: [{name: a, kind: blob}]\n", "classes[0].kind"),
               ("classes: [{name: a}]\nattributes: [{name: x, type: enum}]\n", "attributes[0].values"),
               ("version: -1\nclasses: []\n", "version"), ("classes: [{name: a, skeleton: [[0, 1]]}]\n",
                                                           "classes[0].skeleton[0]")]


@pytest.mark.parametrize(("text", "field"), BAD_SCHEMAS, ids=[f for _, f in BAD_SCHEMAS])
@pytest.mark.parametrize("command", ["validate", "diff-old", "diff-new", "migrate-to", "migrate-current"])
def test_bad_schema_files_exit_2_naming_file_and_field(tmp_path: Path, command: str, text: str, field: str) -> None:
    src = _dataset(tmp_path)
    bad, good = tmp_path / "bad.yaml", str(tmp_path / "good.yaml")
    bad.write_text(text)
    out_args = ["-o", str(tmp_path / "o.parquet"), "--to-format", "parquet"]
    args = {"validate": ["schema", "validate", *src, "--schema", str(bad)],
            "diff-old": ["schema", "diff", str(bad), good], "diff-new": ["schema", "diff", good, str(bad)],
            "migrate-to": ["schema", "migrate", *src, "--to", str(bad), *out_args],
            "migrate-current": ["schema", "migrate", *src, "--current", str(bad), "--to", good, *out_args]}[command]
    code, out = run_cli(args)
    assert code == 2, out
    assert f"{bad}, {field}:" in "".join(out.split("\n")), out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "good.yaml", "s.parquet"]


def test_bad_migration_file_exits_2_naming_file_and_step(tmp_path: Path) -> None:
    src = _dataset(tmp_path)
    (tmp_path / "m.yaml").write_text("steps:\n  - {op: rename_class, old: circle, nwe: disc}\n")
    code, out = run_cli(["schema", "migrate", *src, "--migration", str(tmp_path / "m.yaml"), "-o",
                         str(tmp_path / "o.parquet"), "--to-format", "parquet"])
    assert code == 2 and f"{tmp_path / 'm.yaml'}, steps[0].nwe" in "".join(out.split("\n"))


def test_migrate_writes_all_its_files_or_none(tmp_path: Path) -> None:
    src = _dataset(tmp_path)
    target = tmp_path / "t.yaml"
    save_schema(shapes(6, seed=1).schema.with_classes(shapes(6, seed=1).schema.classes[:2]), target)
    out = ["-o", str(tmp_path / "o" / "v.parquet"), "--to-format", "parquet"]
    code, _ = run_cli(["schema", "migrate", *src, "--to", str(target), *out])  # drops triangles: lossy, refused
    assert code == 2 and not (tmp_path / "o").exists()
    (tmp_path / "o" / "v.schema.yaml").mkdir(parents=True)  # a folder in the way of the last file
    code, msg = run_cli(["schema", "migrate", *src, "--to", str(target), *out, "--allow-lossy"])
    assert code == 2 and "v.schema.yaml" in msg
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["v.schema.yaml"]  # was: the dataset and 2 files
    (tmp_path / "o" / "v.schema.yaml").rmdir()
    code, _ = run_cli(["schema", "migrate", *src, "--to", str(target), *out, "--allow-lossy"])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "v.changes.json", "v.migration.yaml", "v.parquet", "v.schema.yaml"]


def test_migrate_keeps_the_targets_class_notes_and_replays_with_current(tmp_path: Path) -> None:
    io.write(shapes(6, seed=1), tmp_path / "s.json", "coco")
    v1 = infer_schema(io.read_coco(tmp_path / "s.json"))
    save_schema(v1, tmp_path / "v1.yaml")
    notes = {"circle": ClassNotes("A disc.", "Box the whole disc.", ("ex/1.jpg",))}
    save_schema(v1.with_classes(v1.classes[:2]), tmp_path / "v2.yaml", class_notes=notes)
    src = [str(tmp_path / "s.json"), "--from", "coco", "--current", str(tmp_path / "v1.yaml")]
    _cli(["schema", "migrate", *src, "--to", str(tmp_path / "v2.yaml"), "--allow-lossy", "-o", str(tmp_path / "o.json"),
          "--to-format", "coco", "--json"])
    assert read_schema_document(tmp_path / "o.schema.yaml").class_notes == notes  # were dropped
    # --current with --migration: the data follows v1 (was ignored: the attribute definitions the COCO file lacks)
    res = _cli(["schema", "migrate", *src, "--migration", str(tmp_path / "o.migration.yaml"), "--allow-lossy",
                "-o", str(tmp_path / "r.json"), "--to-format", "coco", "--json"])
    assert res["result"]["changes"] == json.loads((tmp_path / "o.changes.json").read_text("utf-8"))["changes"]
    assert load_schema(tmp_path / "r.schema.yaml") == load_schema(tmp_path / "o.schema.yaml")
    assert diff_schemas(load_schema(tmp_path / "r.schema.yaml"), load_schema(tmp_path / "v2.yaml")).empty


def test_yaml_text_written_by_infer_without_output_reads_back(tmp_path: Path) -> None:
    ds = shapes(6, seed=1)
    ds = ds.replace(schema=ds.schema.with_classes([ClassDef("猫 \"it's\"\x85"), *ds.schema.classes[1:]]))
    io.write(ds, tmp_path / "s.parquet", "parquet")
    code, out = run_cli(["schema", "infer", str(tmp_path / "s.parquet"), "--from", "parquet"])
    assert code == 0
    assert yaml.safe_load(out) == _json(schema_to_dict(infer_schema(io.read_parquet(tmp_path / "s.parquet"))))
