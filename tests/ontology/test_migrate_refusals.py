"""Audit: a refused lossy migration names every step that would lose information, with the counts that
``allow_lossy=True`` then reports; ``schema migrate --to FORMAT`` says that --to takes a schema file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maslow import io
from maslow.cli.main import app
from maslow.errors import MigrationError
from maslow.ontology import DropAttribute, DropClass, RenameClass, SetLabelTypes, migrate
from maslow.sample import shapes


def test_refusal_names_every_lossy_step_with_its_count() -> None:
    ds = shapes(24, seed=0)
    steps = [RenameClass("circle", "round"), DropClass("triangle"), SetLabelTypes("square", ("box",)),
             DropAttribute("occluded")]
    done = migrate(ds, steps, allow_lossy=True)
    lost = [(c["step"], c["lost"]) for c in done.changes if c["lost"]]
    assert [s for s, _ in lost] == [1, 2, 3]
    with pytest.raises(MigrationError) as e:
        migrate(ds, steps)
    msg = str(e.value)
    assert msg.startswith(f"migration step 1 {steps[1].describe()}: would lose {lost[0][1]} ")
    named = [(int(s), int(n)) for s, n in re.findall(r"step (\d+) .*? would lose (\d+)", msg)]
    assert named == lost
    assert msg.endswith("pass allow_lossy=True (CLI --allow-lossy) to apply them")


def test_refusal_after_a_failing_step_still_names_the_losses_before_it() -> None:
    ds = shapes(24, seed=0)
    with pytest.raises(MigrationError, match=r"^migration step 0 drop_class.*would lose \d+ annotations' "
                                             r"information; pass allow_lossy=True"):
        migrate(ds, [DropClass("triangle"), RenameClass("triangle", "tri")])
    with pytest.raises(MigrationError, match=r"must be in the schema|no class|not in"):  # the failure itself
        migrate(ds, [DropClass("triangle"), RenameClass("triangle", "tri")], allow_lossy=True)


@pytest.mark.parametrize("to", ["coco", "YOLO"])
def test_migrate_to_a_format_name_points_at_to_format(tmp_path: Path, to: str) -> None:
    io.write(shapes(8, seed=2), tmp_path / "shapes.json", "coco")
    res = CliRunner().invoke(app, ["schema", "migrate", str(tmp_path / "shapes.json"), "--from", "coco",
                                   "--to", to, "-o", str(tmp_path / "out.json")])
    assert res.exit_code == 2
    assert "--to must be the target schema.yaml" in res.output and "--to-format" in res.output
    assert not (tmp_path / "out.json").exists()
