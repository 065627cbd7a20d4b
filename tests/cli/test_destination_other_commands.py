"""The other commands that write a dataset to ``--out`` follow ``convert``'s rule (tests/cli/test_destination_safety.py):
``review apply``, ``schema migrate``, ``predict`` and ``crossval`` replaced an existing OUT folder silently (a folder of
notes, the ground truth's own folder, the model folder). Now a folder that is not empty needs ``--overwrite``, and the
data read, a workspace and the current folder are refused even with it (exit 2, a message naming --out)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from maslow import io
from maslow.sample import write_shapes
from tests.cli.test_destination_safety import _files, _refused
from tests.helpers import count_workspace_walks
from tests.helpers import run_cli_streams as _run


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the current folder, with the sample (6 images, COCO) in ``shapes/``."""
    monkeypatch.chdir(tmp_path)
    io.write_coco(write_shapes(tmp_path / "shapes", 6, seed=0), tmp_path / "shapes" / "annotations.json")
    return tmp_path




def _ok(args: list[str]) -> Any:
    code, out, err = _run([*args, "--json"])
    assert code == 0, (out, err)
    return json.loads(out)


def _notes(folder: Path) -> Path:
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    return folder


# -- the refusals every command makes before anything is read (the inputs need not even exist)

COMMANDS = {
    "review-apply": ["review", "apply", "issues.json", "--gt", "shapes/annotations.json", "--out", "{dst}",
                     "--to", "yolo"],
    "schema-migrate": ["schema", "migrate", "shapes/annotations.json", "--from", "coco", "--to", "s.yaml", "-o",
                       "{dst}", "--to-format", "yolo"],
    "predict": ["predict", "model", "shapes/images", "--out", "{dst}"],
    "crossval": ["crossval", "cfg.yaml", "--out", "{dst}"],
}


def _command(name: str, dst: str, here: Path) -> list[str]:
    if name == "review-apply":
        pytest.importorskip("sqlalchemy")
    if name == "crossval":  # its config is read first: the data it names is the data read
        (here / "cfg.yaml").write_text("data: shapes/annotations.json\nformat: coco\n")
    return [a.replace("{dst}", dst) for a in COMMANDS[name]]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_folder_that_is_not_empty_needs_overwrite(here: Path, command: str) -> None:
    _notes(here / "out")
    _refused(_command(command, "out", here), "--out out", "not empty", "--overwrite")
    assert _files(here / "out") == ["notes.txt"]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("dst", [".", ".."])
def test_the_current_folder_and_its_parent_are_refused_even_with_overwrite(here: Path, command: str,
                                                                          dst: str) -> None:
    args = _command(command, dst, here)
    before = _files(here)
    _refused([*args, "--overwrite"], f"--out {dst}", "must not be the current folder")
    assert _files(here) == before


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_data_folder_is_refused_even_with_overwrite(here: Path, command: str) -> None:
    before = _files(here / "shapes")
    _refused([*_command(command, "shapes", here), "--overwrite"], "--out shapes", "must not hold the data read")
    assert _files(here / "shapes") == before


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_workspace_is_refused_even_with_overwrite(here: Path, command: str) -> None:
    assert _run(["init", "ws"])[0] == 0
    before = _files(here / "ws")
    _refused([*_command(command, "ws", here), "--overwrite"], "--out ws", "maslow workspace")
    assert _files(here / "ws") == before


# -- review apply


@pytest.fixture
def reviewed(here: Path) -> list[str]:
    """A noisy COCO truth (a class swapped), `maslow qa`'s ISSUES.json and every finding accepted; gives the
    arguments of ``review apply`` up to --out."""
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("alembic")
    from maslow.store.reviews import ReviewStore, database_url

    coco = json.loads((here / "shapes" / "annotations.json").read_text())
    anns = [a for a in coco["annotations"] if not a.get("iscrowd")]
    (here / "pred.json").write_text(json.dumps([{"image_id": a["image_id"], "category_id": a["category_id"],
                                                 "bbox": a["bbox"], "score": 0.9} for a in anns]))
    anns[0]["category_id"] = anns[0]["category_id"] % 3 + 1
    (here / "shapes" / "noisy.json").write_text(json.dumps(coco))
    code, out, err = _run(["qa", "--gt", "shapes/noisy.json", "--pred", "pred.json", "--out", "issues.json"])
    assert code == 0, (out, err)
    findings = json.loads((here / "issues.json").read_text())
    assert findings
    with ReviewStore(database_url(here / "issues.json")) as store:
        session = store.open_session(here / "issues.json", truth="noisy", n_findings=len(findings))
        for f in findings:
            store.decide(session.id, f["rank"], "accepted")
    return ["review", "apply", "issues.json", "--gt", "shapes/noisy.json"]


def test_review_apply_replaces_a_folder_only_with_overwrite(here: Path, reviewed: list[str]) -> None:
    _notes(here / "fixed")
    _refused([*reviewed, "--out", "fixed", "--to", "yolo"], "--out fixed", "not empty", "--overwrite")
    assert _files(here / "fixed") == ["notes.txt"]
    d = _ok([*reviewed, "--out", "fixed", "--to", "yolo", "--overwrite"])
    assert d["export"]["format"] == "yolo" and d["result"]["counts"]["applied"] >= 1
    assert (here / "fixed" / "data.yaml").is_file() and not (here / "fixed" / "notes.txt").exists()
    assert _ok([*reviewed, "--out", "new", "--to", "yolo"])["export"]["format"] == "yolo"  # a new folder: as before


def test_review_apply_never_replaces_what_it_reads(here: Path, reviewed: list[str]) -> None:
    before = _files(here)
    noisy = (here / "shapes" / "noisy.json").read_bytes()
    _refused([*reviewed, "--out", "shapes/noisy.json", "--to", "coco"], "--out shapes/noisy.json", "the file read")
    _refused([*reviewed, "--out", "issues.json", "--to", "coco"], "--out issues.json", "the file read")
    _refused([*reviewed, "--out", "shapes", "--to", "yolo", "--overwrite"], "--out shapes",
             "must not hold the data read", "shapes/noisy.json")
    assert _files(here) == before and (here / "shapes" / "noisy.json").read_bytes() == noisy


def test_review_apply_keeps_the_images_of_the_truth(here: Path, reviewed: list[str]) -> None:
    """The folder holding the truth's images (beside it in no file read: found once the truth is read) is refused
    too."""
    before = _files(here / "shapes")
    _refused([*reviewed, "--images-root", "shapes", "--out", "shapes/images", "--to", "yolo", "--overwrite"],
             "--out shapes/images", "must not hold the data read")
    assert _files(here / "shapes") == before


# -- schema migrate


@pytest.fixture
def migrate(here: Path) -> list[str]:
    """``schema migrate`` of the sample to its own inferred schema, up to -o."""
    code, _, err = _run(["schema", "infer", "shapes/annotations.json", "--from", "coco", "-o", "s.yaml"])
    assert code == 0, err
    return ["schema", "migrate", "shapes/annotations.json", "--from", "coco", "--to", "s.yaml"]


def test_schema_migrate_replaces_a_folder_only_with_overwrite(here: Path, migrate: list[str]) -> None:
    _notes(here / "v2")
    _refused([*migrate, "-o", "v2", "--to-format", "yolo"], "--out v2", "not empty", "--overwrite")
    assert _files(here / "v2") == ["notes.txt"] and not (here / "v2.changes.json").exists()
    d = _ok([*migrate, "-o", "v2", "--to-format", "yolo", "--overwrite"])
    assert d["export"]["format"] == "yolo" and (here / "v2" / "data.yaml").is_file()
    assert not (here / "v2" / "notes.txt").exists() and (here / "v2.migration.yaml").is_file()
    (here / "empty").mkdir()
    assert _ok([*migrate, "-o", "empty", "--to-format", "yolo"])["export"]["format"] == "yolo"  # as before


def test_schema_migrate_never_replaces_what_it_reads(here: Path, migrate: list[str]) -> None:
    before = _files(here / "shapes")
    _refused([*migrate, "-o", "shapes", "--to-format", "yolo", "--overwrite"], "--out shapes",
             "must not hold the data read", "shapes/annotations.json")
    assert _files(here / "shapes") == before
    # the schema written beside OUT (OUT's stem + .schema.yaml) would replace the --to schema read
    (here / "s.yaml").rename(here / "v.schema.yaml")
    schema = (here / "v.schema.yaml").read_bytes()
    args = [*migrate[:-1], "v.schema.yaml", "-o", "v.json", "--to-format", "coco"]
    _refused(args, "--out v.json", "v.schema.yaml", "file read")
    assert (here / "v.schema.yaml").read_bytes() == schema and not (here / "v.json").exists()


# -- predict and crossval (the light embedder and a logistic regression: scikit-learn)


@pytest.fixture
def squares(here: Path) -> dict[str, Path]:
    """Coloured squares (9 images, parquet) in ``data/``, a config of them, and a model fitted on them."""
    pytest.importorskip("sklearn")
    from maslow.models import TrainConfig
    from maslow.models.base import build_model
    from tests.models.tiny_data import colour_squares

    ds = colour_squares(here / "data", 9, seed=1)
    io.write(ds, here / "data" / "ds.parquet", "parquet")
    (here / "cfg.yaml").write_text(f"data: data/ds.parquet\nformat: parquet\nbackbone: light\n"
                                   f"params:\n  cache_dir: {here / 'cache'}\n")
    cfg = TrainConfig(data="unused", backbone="light", params={"cache_dir": str(here / "cache")})
    model = build_model(cfg).fit(io.read(here / "data" / "ds.parquet", "parquet")).save(here / "model")
    return {"model": model, "data": here / "data"}


def test_predict_replaces_a_folder_only_with_overwrite(here: Path, squares: dict[str, Path]) -> None:
    predict = ["predict", "model", "data/images"]
    assert _ok([*predict, "--out", "pred"])["n_images"] == 9  # a new folder: as before
    _refused([*predict, "--out", "pred"], "--out pred", "not empty", "--overwrite")
    _notes(here / "mine")
    _refused([*predict, "--out", "mine"], "--out mine", "not empty", "--overwrite")
    assert _files(here / "mine") == ["notes.txt"]
    assert _ok([*predict, "--out", "mine", "--overwrite"])["export"]["format"] == "parquet"
    assert io.read(here / "mine", "parquet").n_images == 9 and not (here / "mine" / "notes.txt").exists()


def test_predict_never_replaces_the_model_or_the_images(here: Path, squares: dict[str, Path]) -> None:
    before = _files(here)
    _refused(["predict", "model", "data/images", "--out", "model", "--overwrite"], "--out model",
             "must not hold the data read", "model")
    _refused(["predict", "model", "data/images", "--out", "data", "--overwrite"], "--out data",
             "must not hold the data read")
    # a dataset read with --from: the folder holding its images (found once it is read) is refused too
    _refused(["predict", "model", "data/ds.parquet", "--from", "parquet", "--out", "data/images", "--overwrite"],
             "--out data/images", "must not hold the data read")
    assert _files(here) == before


def test_crossval_replaces_a_folder_only_with_overwrite(here: Path, squares: dict[str, Path]) -> None:
    crossval = ["crossval", "cfg.yaml", "--folds", "2"]
    _notes(here / "oof")
    _refused([*crossval, "--out", "oof"], "--out oof", "not empty", "--overwrite")
    assert _files(here / "oof") == ["notes.txt"] and not (here / "oof.probs.npy").exists()
    d = _ok([*crossval, "--out", "oof", "--overwrite"])
    assert d["n_images"] == 9 and d["probs"] == "oof.probs.npy"
    assert io.read(here / "oof", "parquet").n_images == 9 and not (here / "oof" / "notes.txt").exists()


def test_crossval_never_replaces_the_data_it_reads(here: Path, squares: dict[str, Path]) -> None:
    before = _files(here)
    _refused(["crossval", "cfg.yaml", "--folds", "2", "--out", "data", "--overwrite"], "--out data",
             "must not hold the data read")
    _refused(["crossval", "cfg.yaml", "--folds", "2", "--out", "data/ds.parquet", "--overwrite"],
             "--out data/ds.parquet", "must not hold the data read")
    assert _files(here) == before


# -- --overwrite walks the destination once (as convert and export do: tests/cli/test_destination_review_fixes.py)


def _count_walks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    return count_workspace_walks(monkeypatch)


def _walked_once(here: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], out: str) -> None:
    """The check looks through OUT for a workspace; the writer's ``atomic_dir`` used to walk it again."""
    _notes(here / out)
    calls = _count_walks(monkeypatch)
    _ok([*args, "--overwrite"])
    assert calls == [(here / out).resolve()]
    assert not (here / out / "notes.txt").exists()


def test_review_apply_walks_out_once(here: Path, reviewed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _walked_once(here, monkeypatch, [*reviewed, "--out", "fixed", "--to", "yolo"], "fixed")


def test_schema_migrate_walks_out_once(here: Path, migrate: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _walked_once(here, monkeypatch, [*migrate, "-o", "v2", "--to-format", "yolo"], "v2")


def test_predict_walks_out_once(here: Path, squares: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _walked_once(here, monkeypatch, ["predict", "model", "data/images", "--out", "pred"], "pred")


def test_crossval_walks_out_once(here: Path, squares: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _walked_once(here, monkeypatch, ["crossval", "cfg.yaml", "--folds", "2", "--out", "oof"], "oof")


@pytest.mark.parametrize("name", ["convert", "export", "schema-migrate"])
def test_a_file_destination_that_is_an_image_read_is_refused(here: Path, name: str) -> None:
    """``convert a.json shapes/images/x.png --to coco`` wrote the JSON over that image (exit 0): refused now, as
    ``predict`` and ``crossval`` refuse it, also with --overwrite; a new file beside the images is still written."""
    image = sorted((here / "shapes").rglob("*.png"))[1]
    before = image.read_bytes()
    rel = image.relative_to(here).as_posix()
    if name == "export":
        assert _run(["init"])[0] == 0 and _run(["import", "shapes/annotations.json", "--from", "coco"])[0] == 0
    args = {"convert": ["convert", "shapes/annotations.json", "{dst}", "--from", "coco", "--to", "coco"],
            "export": ["export", "{dst}", "--to", "coco"],
            "schema-migrate": ["schema", "migrate", "shapes/annotations.json", "--from", "coco", "--to", "s.yaml",
                               "-o", "{dst}", "--to-format", "coco"]}[name]
    if name == "schema-migrate":
        assert _run(["schema", "infer", "shapes/annotations.json", "--from", "coco", "-o", "s.yaml"])[0] == 0
    for extra in ([], ["--overwrite"]):
        _refused([a.replace("{dst}", rel) for a in args] + extra, "is the image", "of the data read")
        assert image.read_bytes() == before
    code, out, err = _run([a.replace("{dst}", "shapes/images/new.json") for a in args])
    assert code == 0, (out, err)
    assert (here / "shapes" / "images" / "new.json").is_file()
