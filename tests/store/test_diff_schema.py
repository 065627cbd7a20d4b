"""``maslow diff`` between versions whose schemas differ: not "No change", and the schema's differences shown.

Before, a version committed by ``schema migrate`` that changed only the schema (an attribute added, keypoint
names) was said to be the same as its parent (``"unchanged": true``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from maslow import io
from maslow.core import AttributeDef
from maslow.sample import shapes
from maslow.store.diff import diff_datasets
from tests.helpers import run_cli as run


def test_a_schema_change_is_a_change() -> None:
    ds = shapes(8, seed=0)
    assert diff_datasets(ds, ds).unchanged
    other = ds.replace(schema=replace(ds.schema, attributes=(*ds.schema.attributes, AttributeDef("note"))))
    d = diff_datasets(ds, other)
    assert d.schema_changed and not d.unchanged and d.to_dict()["unchanged"] is False
    assert d.to_dict()["schema_changed"] is True and d.n_added == d.n_removed == 0
    bumped = ds.replace(schema=replace(ds.schema, version=7))  # the version alone is no change
    assert not diff_datasets(ds, bumped).schema_changed and diff_datasets(ds, bumped).unchanged


def test_cli_diff_shows_a_schema_only_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    io.write(shapes(16, seed=2), tmp_path / "shapes.json", "coco")
    assert run(["schema", "infer", str(tmp_path / "shapes.json"), "--from", "coco", "-o",
                str(tmp_path / "v1.yaml")])[0] == 0
    d = yaml.safe_load((tmp_path / "v1.yaml").read_text())
    d["attributes"].append({"name": "note", "type": "text"})
    (tmp_path / "v2.yaml").write_text(yaml.safe_dump(d))
    assert run(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    code, out = run(["import", str(tmp_path / "shapes.json"), "--from", "coco", "--name", "shapes",
                     "--no-check-files"])
    assert code == 0, out
    code, out = run(["schema", "migrate", "--to", str(tmp_path / "v2.yaml"), "--commit"])
    assert code == 0, out
    code, out = run(["diff"])
    flat = " ".join(out.split())
    assert code == 0 and "No change" not in flat  # was: "No change: the same images and annotations."
    assert "attribute │ added │ note" in flat and "only the schema changed" in flat
    code, out = run(["diff", "--json"])
    res = json.loads(out)
    assert res["unchanged"] is False and res["schema_changed"] is True
    assert "note" in res["schema"]["added_attributes"] and res["n_annotations_added"] == 0
