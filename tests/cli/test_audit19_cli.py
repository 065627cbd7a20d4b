"""Audit 19 of the CLI: bad inputs that slipped past the exit-2 rule (an empty --features file, tune --storage,
review db with a missing ISSUES.json, empty YAML configs, import --name), notes that were missing (runs --json,
predict on an empty folder) and messages that named a Python parameter instead of the flag."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from maslow.cli.main import app

runner = CliRunner()


def _run(args: list[str]) -> tuple[int, str, str]:
    res = runner.invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("audit19") / "s"
    code, out, err = _run(["sample", str(d), "-n", "4"])
    assert code == 0, out + err
    return d / "annotations.json"


def _refused(args: list[str], *needles: str) -> str:
    """Exit 2 with an ``error:`` naming every needle, nothing on stdout, no "Aborted"."""
    code, out, err = _run(args)
    assert code == 2, (code, out, err)
    assert out == "" and "Aborted" not in err, (out, err)
    for n in needles:
        assert n in err, (n, err)
    return err


# F1: numpy raises EOFError for an empty .npy; click turned it into "Aborted!" and exit code 1

def test_empty_features_file_is_refused_naming_it(tmp_path: Path, sample: Path) -> None:
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    _refused(["diversity", "duplicates", str(sample), "--from", "coco", "--features", str(empty), "--json"],
             "empty.npy", "features must be a .npy (m, d) array")


# F2: tune --storage went to Optuna unchecked (SQLAlchemy traceback, exit 1)

@pytest.fixture
def tune_config(tmp_path: Path) -> Path:
    from PIL import Image

    for c, col in (("a", (255, 0, 0)), ("b", (0, 0, 255))):
        (tmp_path / "cls" / c).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (16, 16), col).save(tmp_path / "cls" / c / f"{i}.png")
    cfg = tmp_path / "t.yaml"
    cfg.write_text(f"data: {tmp_path / 'cls'}\nformat: imagefolder\nmodel: embed-logreg\nbackbone: light\n"
                   f"out: {tmp_path / 'runs'}\ntracking: 'off'\nval_fraction: 0.5\n")
    return cfg


@pytest.mark.parametrize("kind", ["bogus", "folder", "not-a-database"])
def test_tune_storage_is_checked_up_front(tmp_path: Path, tune_config: Path, kind: str) -> None:
    pytest.importorskip("optuna")
    (tmp_path / "adir").mkdir()
    url = {"bogus": "bogus://x", "folder": f"sqlite:///{tmp_path / 'adir'}",
           "not-a-database": f"sqlite:///{tune_config}"}[kind]
    err = _refused(["tune", str(tune_config), "-n", "1", "--storage", url, "--json"], "--storage")
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before any trial


def test_tune_storage_check_passes_a_database_and_a_new_file(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    from maslow.cli.train import check_storage

    db = tmp_path / "ok.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x)").connection.close()
    check_storage(f"sqlite:///{db}")
    check_storage(f"sqlite:///{tmp_path / 'new' / 'x.db'}")  # made by the study, with its folder
    assert not (tmp_path / "new").exists()  # the check creates nothing


# F3: review db current/upgrade with a missing ISSUES.json made <stem>.review.db (exit 0); the argument was
# ignored in a workspace

def test_review_db_refuses_a_missing_or_folder_issues_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("alembic")
    monkeypatch.chdir(tmp_path)
    _refused(["review", "db", "upgrade", "typo.json", "--json"], "typo.json", "readable ISSUES.json")
    assert not (tmp_path / "typo.review.db").exists()
    _refused(["review", "db", "current", "nope.json", "--json"], "nope.json")
    (tmp_path / "dir.json").mkdir()
    _refused(["review", "db", "current", "dir.json"], "dir.json")


def test_review_db_says_when_the_issues_file_does_not_choose_the_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("alembic")
    issues = tmp_path / "issues.json"
    issues.write_text("[]")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["review", "db", "current", str(issues), "--json"])  # outside a workspace: beside it
    assert code == 0 and err == "" and json.loads(out)["state"] == "missing"
    assert "issues.review.db" in json.loads(out)["database"]
    assert _run(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    code, out, err = _run(["review", "db", "current", str(issues), "--json"])
    assert code == 0, err
    assert "does not choose the database here" in err and "the workspace" in err
    assert "maslow.db" in json.loads(out)["database"]
    code, out, err = _run(["review", "db", "current", str(issues), "--db", "sqlite://", "--json"])
    assert code == 0 and "--db does" in err


# F4: runs --json printed [] with nothing on stderr, whatever the reason

def test_runs_json_tells_a_missing_store_from_no_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["runs", "--tracking", str(tmp_path / "nodir"), "--json"])
    assert code == 0 and json.loads(out) == []
    assert "no tracking store at" in err and "the folder does not exist" in err
    (tmp_path / "f.yaml").write_text("x: 1\n")
    code, out, err = _run(["runs", "--tracking", str(tmp_path / "f.yaml"), "--json"])
    assert code == 0 and json.loads(out) == [] and "it is a file, not a folder" in err
    code, table_out, _ = _run(["runs", "--tracking", str(tmp_path / "f.yaml")])  # the table says the same
    assert code == 0 and "it is a file, not a folder" in " ".join(table_out.split())  # wrapped at 80 columns


# F5: an empty YAML file passed as "no settings" for --config and --rates, where --schema refuses it

@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_config_and_rates_files_are_refused(tmp_path: Path, sample: Path, text: str) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(text)
    _refused(["check", str(sample), "--from", "coco", "--config", str(empty), "--json"], "empty.yaml", "--config",
             "empty document")
    _refused(["schema", "cost", str(sample), "--from", "coco", "--rates", str(empty), "--json"], "empty.yaml",
             "--rates", "empty document")
    _refused(["check", str(sample), "--from", "coco", "--schema", str(empty), "--json"], "empty.yaml")  # as before


def test_a_config_with_settings_still_reads(tmp_path: Path, sample: Path) -> None:
    cfg = tmp_path / "rules.yaml"
    cfg.write_text("families: [geometry]\n")
    code, out, err = _run(["check", str(sample), "--from", "coco", "--config", str(cfg), "--json"])
    assert code == 0, err
    json.loads(out)


# F10: predict on an empty image folder wrote an empty dataset without a word

def test_predict_on_an_empty_folder_says_no_images(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    from maslow import io
    from tests.models.tiny_data import colour_squares

    ds = colour_squares(tmp_path / "data", 12, seed=1)
    io.write(ds, tmp_path / "data" / "ds.parquet", "parquet")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: {tmp_path / 'data' / 'ds.parquet'}\nformat: parquet\nbackbone: light\n"
                   f"out: {tmp_path / 'model'}\ntracking: 'off'\nparams:\n  cache_dir: {tmp_path / 'cache'}\n")
    code, out, err = _run(["train", str(cfg), "--json"])
    assert code == 0, out + err
    (tmp_path / "empty").mkdir()
    code, out, err = _run(["predict", str(tmp_path / "model"), str(tmp_path / "empty"), "--out",
                           str(tmp_path / "p.parquet"), "--json"])
    assert code == 0, err
    assert json.loads(out)["n_images"] == 0
    assert "no images found in" in err and "empty" in err


# F7: messages named the library's parameter (min_ratio, IssueRules.size_factor, slice_metrics: by, ...)

@pytest.mark.parametrize(("args", "flag", "param"), [
    (["diversity", "balance", "{s}", "--from", "coco", "--rare-share", "2"], "--rare-share", "rare_share"),
    (["diversity", "balance", "{s}", "--from", "coco", "--split", "nope"], "--split", "balance: split"),
    (["diversity", "coverage", "{s}", "--from", "coco", "--rel-share", "-1"], "--rel-share", "rel_share"),
    (["diversity", "issues", "{s}", "--from", "coco", "--size-factor", "0"], "--size-factor", "IssueRules"),
    (["diversity", "issues", "{s}", "--from", "coco", "--dark", "2"], "--dark", "IssueRules"),
    (["diversity", "duplicates", "{s}", "--from", "coco", "--threshold", "100"], "--threshold", "find_duplicates"),
    (["schema", "cost", "{s}", "--from", "coco", "--strategy", "boxes=bogus"], "--strategy", "estimate_cost"),
    (["sample", "{d}/new", "-n", "-3"], "--n-images", "shapes:"),
    (["qa", "--gt", "{s}", "--model", "{s}", "--folds", "1"], "--folds", "crossval:"),
])
def test_messages_name_the_flag(sample: Path, args: list[str], flag: str, param: str) -> None:
    args = [a.format(s=sample, d=sample.parent) for a in args]
    code, out, err = _run([*args, "--json"] if args[0] != "sample" else args)
    assert code == 2, (code, out, err)
    assert flag in err and param not in err, err


def test_outliers_min_ratio_names_the_flag(tmp_path: Path, sample: Path) -> None:
    err = _refused(["outliers", str(sample.parent / "images"), "-e", "light", "--min-ratio", "-1", "--json"],
                   "--min-ratio")
    assert "min_ratio" not in err


def test_schema_diff_rename_names_the_flag(tmp_path: Path, sample: Path) -> None:
    schema = tmp_path / "a.yaml"
    assert _run(["schema", "infer", str(sample), "--from", "coco", "-o", str(schema)])[0] == 0
    err = _refused(["schema", "diff", str(schema), str(schema), "--rename", "nope=disc"], "schema diff: --rename")
    assert "plan_migration" not in err


def test_eval_slice_by_names_the_flag(tmp_path: Path, sample: Path) -> None:
    doc = json.loads(sample.read_text())
    for a in doc["annotations"]:
        a["score"] = 0.9
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(doc))
    err = _refused(["eval", "--gt", str(sample), "--pred", str(pred), "--from", "coco", "--slice-by", "bogus",
                    "--json", "-"], "eval: --slice-by")
    assert "slice_metrics" not in err


# F6: import --name was rewritten without a word, and names with nothing usable all became "dataset"

def test_import_name_changed_is_said_and_an_unusable_one_refused(tmp_path: Path, sample: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    code, out, err = _run(["import", str(sample), "--from", "coco", "--name", "my set", "--json"])
    assert code == 0, err
    assert json.loads(out)["version"]["dataset"] == "my-set"
    assert "--name 'my set'" in err and "'my-set'" in err
    for bad in ("@@", "##"):
        _refused(["import", str(sample), "--from", "coco", "--name", bad, "--json"], f"--name {bad!r}")
    code, out, _ = _run(["log", "--json"])
    assert code == 0 and {v["dataset"] for v in json.loads(out)} == {"my-set"}  # nothing became "dataset"
    code, out, err = _run(["import", str(sample), "--from", "coco", "--name", "ok_name.v2", "--json"])
    assert code == 0 and err == "" and json.loads(out)["version"]["dataset"] == "ok_name.v2"


def test_features_still_read(tmp_path: Path, sample: Path) -> None:
    f = tmp_path / "f.npy"
    np.save(f, np.eye(4))
    code, out, err = _run(["diversity", "duplicates", str(sample), "--from", "coco", "--features", str(f), "--json"])
    assert code == 0, err
    json.loads(out)
