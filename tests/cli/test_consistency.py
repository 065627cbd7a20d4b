"""One CLI, spelt one way: the same concept has the same option in every command (old spellings kept as hidden
aliases), ranks a person reads start at 1, a format is named by the option that gave it before any work, --json
output is JSON only, outputs are written together or not at all, and tables fit 80 columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.io.coco import read_coco
from maslow.io.coco_results import write_coco_results
from maslow.sample import write_shapes
from tests.helpers import flat_text as _flat
from tests.helpers import run_cli_streams as _run
from tests.metrics.simulated import simulate


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("consistency")
    truth = write_shapes(d / "shapes", 24, seed=2)
    io.write(truth, d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=2), d / "dets.json")
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "pred": d / "dets.json", "root": d / "shapes"}


# -- one spelling per concept; the old one still works, hidden ----------------------------------------------------
ALIASES = [  # (command, old flag, the flag every other command spells it with)
    (["qa"], "--gt-format", "--from"), (["eval"], "--gt-format", "--from"), (["select"], "--output", "--out"),
    (["embed"], "--output", "--out"), (["schema", "infer"], "--output", "--out"),
    (["schema", "migrate"], "--output", "--out"), (["schema", "validate"], "--limit", "--top"),
    (["diversity", "duplicates"], "--limit", "--top"), (["runs"], "--limit", "--top"),
]


@pytest.mark.parametrize(("command", "old", "new"), ALIASES, ids=[" ".join(a[0]) + a[1] for a in ALIASES])
def test_old_spellings_are_hidden_aliases(command: list[str], old: str, new: str) -> None:
    import typer

    from maslow.cli.main import app

    cmd: Any = typer.main.get_command(app)
    for name in command:
        cmd = cmd.commands[name]
    flags = {o: p.hidden for p in cmd.params for o in getattr(p, "opts", [])}
    assert flags[old] is True and flags[new] is False


def test_qa_reads_the_truth_format_from_from_and_gt_format(files: dict[str, Path]) -> None:
    d = files["dir"]
    outs = []
    for flag in ("--from", "-f", "--gt-format"):
        out = d / f"issues{flag}.json"
        code, _, err = _run(["qa", "--gt", str(files["gt"]), flag, "coco", "--pred", str(files["pred"]),
                             "--out", str(out), "--json"])
        assert code == 0, err
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1] == outs[2] and outs[0]
    code, _, err = _run(["qa", "--gt", str(files["gt"]), "--from", "nope", "--pred", str(files["pred"]),
                         "--out", str(d / "x.json")])
    assert code == 2 and "--from must be one of" in err  # was "format must be one of": which option?
    code, _, err = _run(["qa", "--gt", str(files["gt"]), "--from", "coco", "--gt-format", "voc", "--pred",
                         str(files["pred"]), "--out", str(d / "x.json")])
    assert code == 2 and "--from and --gt-format" in _flat(err)


def test_qa_pred_format_is_named_as_eval_and_maslow_formats_name_it(files: dict[str, Path]) -> None:
    d = files["dir"]
    results = []
    for fmt in ("coco-results", "coco_predictions", "COCO_RESULTS"):  # the new default, the old one, any case
        code, out, err = _run(["qa", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--pred-format", fmt,
                               "--out", str(d / "p.json"), "--json"])
        assert code == 0, err
        results.append(json.loads(out)["counts"])
    assert results[0] == results[1] == results[2]
    code, _, err = _run(["qa", "--gt", str(d / "missing.json"), "--pred", str(files["pred"]), "--pred-format", "nope",
                         "--out", str(d / "p.json")])
    assert code == 2 and "--pred-format must be one of" in err  # named before the truth is read


def test_eval_reads_the_truth_format_from_from_and_gt_format(files: dict[str, Path]) -> None:
    d = files["dir"]
    docs = []
    for flag in ("--from", "--gt-format"):
        out = d / f"eval{flag}.json"
        code, _, err = _run(["eval", "--gt", str(files["gt"]), flag, "coco", "--pred", str(files["pred"]),
                             "--json", str(out)])
        assert code == 0, err
        docs.append(json.loads(out.read_text()))
    assert docs[0]["map"]["stats"] == docs[1]["map"]["stats"] and docs[0]["gt_format"] == "coco"
    code, _, err = _run(["eval", "--gt", str(files["gt"]), "--from", "nope", "--pred", str(files["pred"])])
    assert code == 2 and "--from must be one of" in err


def test_eval_json_dash_prints_only_json_on_stdout(files: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ref = tmp_path / "ref.json"
    assert _run(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", str(ref)])[0] == 0
    code, out, err = _run(["eval", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--json", "-",
                           "--plot", str(tmp_path / "plots")])
    assert code == 0, err
    doc = json.loads(out)  # the tables and "Wrote ..." lines stay out of it
    assert doc["map"] == json.loads(ref.read_text())["map"]
    assert not (tmp_path / "-").exists()  # it wrote a file named "-"
    assert all(Path(p).is_file() for p in doc["plots"].values()) and doc["plots"]
    # import issues (a prediction on an unknown image here) are said on stderr, tables included: stdout stays JSON
    records = json.loads(files["pred"].read_text())
    records[0]["image_id"] = 10**9
    shifted = tmp_path / "shifted.json"
    shifted.write_text(json.dumps(records))
    code, out, err = _run(["eval", "--gt", str(files["gt"]), "--pred", str(shifted), "--json", "-"])
    assert code == 0, err
    assert "coco_unknown_image" in json.loads(out)["import_issues"]["pred"]["counts"] and "import issues" in err


def test_eval_refuses_predictions_of_which_none_is_left(files: dict[str, Path], tmp_path: Path) -> None:
    records = json.loads(files["pred"].read_text())
    for r in records:
        r["image_id"] += 10_000  # predictions of another dataset: every one points at no image of the truth
    other = tmp_path / "other.json"
    other.write_text(json.dumps(records))
    code, out, err = _run(["eval", "--gt", str(files["gt"]), "--pred", str(other), "--json", str(tmp_path / "e.json")])
    assert code == 2, out  # was 0, with every number "-"
    assert "other.json, [0], field 'image_id'" in _flat(err) and not (tmp_path / "e.json").exists()


def test_qa_writes_issues_and_html_together_or_neither(files: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "page.html").mkdir()  # the HTML can't be written
    out = tmp_path / "issues.json"
    code, _, err = _run(["qa", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(out),
                         "--html", str(tmp_path / "page.html")])
    assert code == 2 and "page.html" in err
    assert not out.exists()  # it was written before the HTML failed
    (tmp_path / "issues_dir").mkdir()
    code, _, err = _run(["qa", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out",
                         str(tmp_path / "issues_dir"), "--html", str(tmp_path / "page2.html")])
    assert code == 2 and "issues_dir" in err and not (tmp_path / "page2.html").exists()
    code, _, err = _run(["qa", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(out),
                         "--html", str(tmp_path / "ok.html")])
    assert code == 0 and out.is_file() and (tmp_path / "ok.html").is_file(), err


@pytest.mark.parametrize("command", [["qa", "--pred", "PRED", "--out", "OUT"], ["check", "--from", "coco"],
                                     ["select", "--from", "coco", "--embedder", "light"],
                                     ["outliers", "--from", "coco", "--embedder", "light"]])
def test_a_negative_top_is_refused(files: dict[str, Path], command: list[str]) -> None:
    # qa --top -1 listed all issues but the last (records[:-1]), select all picks but the last
    args = [{"PRED": str(files["pred"]), "OUT": str(files["dir"] / "neg.json")}.get(a, a) for a in command]
    gt = ["--gt", str(files["gt"])] if command[0] == "qa" else [str(files["gt"])]
    code, _, err = _run([args[0], *gt, *args[1:], "--top", "-1"])
    assert code == 2 and "--top" in err


# -- ranks from 1 in tables ---------------------------------------------------------------------------------------
def _first_column(out: str) -> list[str]:
    return [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│") and
            line.split("│")[1].strip()]


def test_select_ranks_from_1_and_writes_with_out_or_output(files: dict[str, Path], tmp_path: Path) -> None:
    base = ["select", str(files["gt"]), "--from", "coco", "--budget", "4", "--embedder", "light", "--cache-dir",
            str(tmp_path / "cache")]
    code, out, err = _run([*base, "--out", str(tmp_path / "a.txt")])
    assert code == 0, err
    assert _first_column(out)[:4] == ["1", "2", "3", "4"]  # was 0, 1, 2, 3 (qa's ISSUES.json ranks from 1)
    code, out, err = _run([*base, "--output", str(tmp_path / "b.txt"), "--json"])
    assert code == 0, err
    assert [p["rank"] for p in json.loads(out)["picks"]] == [1, 2, 3, 4]  # JSON ranks from 1, as the table
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text() != ""


def test_outliers_rank_from_1_and_show_the_image_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "f").mkdir()
    for k in range(16):
        grey = np.full((32, 32, 3), 120, np.uint8) + rng.integers(0, 8, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(grey).save(tmp_path / "f" / f"img_{k:02d}.png")
    odd = np.zeros((32, 32, 3), np.uint8)
    odd[:, :16] = 255
    Image.fromarray(odd).save(tmp_path / "f" / "odd_one.png")
    code, out, err = _run(["outliers", str(tmp_path / "f"), "--embedder", "light", "--cache-dir",
                           str(tmp_path / "cache")])
    assert code == 0, err
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    assert rows[0][:2] == ["1", "odd_one.png"]  # was the 0-based image row under "image", the path beside it


# -- --out, --top: the new spellings, the old ones -------------------------------------------------------------------
def test_embed_and_schema_write_with_out_or_output(files: dict[str, Path], tmp_path: Path) -> None:
    for flag in ("--out", "--output"):
        code, _, err = _run(["embed", str(files["gt"]), "--from", "coco", "--embedder", "light", "--no-cache", flag,
                             str(tmp_path / f"f{flag}.npy"), "--json"])
        assert code == 0, err
        code, _, err = _run(["schema", "infer", str(files["gt"]), "--from", "coco", flag, str(tmp_path / f"s{flag}.yaml")])
        assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "f--out.npy"), np.load(tmp_path / "f--output.npy"))
    assert (tmp_path / "s--out.yaml").read_text() == (tmp_path / "s--output.yaml").read_text()
    for flag in ("--out", "--output"):
        code, out, err = _run(["schema", "migrate", str(files["gt"]), "--from", "coco", "--to",
                               str(tmp_path / "s--out.yaml"), flag, str(tmp_path / f"m{flag}.json"), "--to-format",
                               "coco", "--json"])
        assert code == 0, err
        assert json.loads(out)["export"]["n_annotations"] > 0
    code, _, err = _run(["schema", "migrate", str(files["gt"]), "--from", "coco", "--to", str(tmp_path / "s--out.yaml"),
                         "--out", str(tmp_path / "m.json"), "--to-format", "nope"])
    assert code == 2 and "--to-format must be one of" in err


def test_validate_and_duplicates_show_top_or_limit_rows(files: dict[str, Path], tmp_path: Path) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text("classes:\n  - name: circle\n")  # square and triangle are unknown: one violation each
    counts = []
    for flag in ("--top", "--limit", "-n"):
        code, out, err = _run(["schema", "validate", str(files["gt"]), "--from", "coco", "--schema", str(strict),
                               flag, "2"])
        assert code == 0, err
        counts.append(_flat(out).count("│ error") + _flat(out).count(" error "))
        assert "First 2 issues" in _flat(out)
    for flag in ("--top", "--limit"):
        code, _, err = _run(["diversity", "duplicates", str(files["gt"]), "--from", "coco", flag, "1"])
        assert code == 0, err
    code, _, err = _run(["diversity", "duplicates", str(files["gt"]), "--from", "coco", "--top", "1", "--limit", "2"])
    assert code == 2 and "--top and --limit" in _flat(err)


# -- formats named by their option, before the work -----------------------------------------------------------------
def test_an_unknown_output_format_is_named_by_its_option(files: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = _run(["convert", str(files["gt"]), str(tmp_path / "o"), "--from", "coco", "--to", "nope"])
    assert code == 2 and "--to must be one of" in err


def test_crossval_and_predict_name_a_bad_to_before_the_work(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"data: {tmp_path / 'missing.parquet'}\nformat: parquet\nbackbone: light\n")
    # the config's data is missing: a --to checked first is named, not the data (read before training)
    code, _, err = _run(["crossval", str(cfg), "--out", str(tmp_path / "oof"), "--to", "nope"])
    assert code == 2 and "--to must be one of" in err
    code, _, err = _run(["predict", str(tmp_path / "no_model"), str(tmp_path), "--out", str(tmp_path / "p"), "--to",
                         "nope"])
    assert code == 2 and "--to must be one of" in err  # before the model is loaded


# -- DATASET: a file with --from, else a workspace version; stats as the others ---------------------------------------
def test_stats_takes_a_workspace_dataset_as_the_other_commands(files: dict[str, Path], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(["init", str(tmp_path / "ws")])[0] == 0
    monkeypatch.chdir(tmp_path / "ws")
    assert _run(["import", str(files["gt"]), "--from", "coco", "--name", "shapes", "--no-check-files"])[0] == 0
    code, out, err = _run(["stats", "shapes", "--json"])  # was "stats: --from FORMAT is required with SRC"
    assert code == 0, err
    assert json.loads(out) == json.loads(_run(["stats", "--version", "shapes", "--json"])[1])
    code, _, err = _run(["stats", "shapes", "--version", "shapes"])
    assert code == 2 and "not both" in err


def test_a_dataset_outside_a_workspace_is_named(files: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["select", "nope"])  # was only "not inside a maslow workspace"
    assert code == 2 and "nope: no such file or folder, nor a workspace version or dataset" in _flat(err)
    code, _, err = _run(["check", str(files["gt"])])  # a file without --from
    assert code == 2 and "is read with --from FORMAT" in _flat(err)


def test_stats_per_class_table_fits_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from maslow.core.types import obj_array
    from maslow.sample import shapes

    monkeypatch.setenv("COLUMNS", "80")
    ds = shapes(24, seed=1)
    split = np.asarray(["train", "val", "test"])[np.arange(ds.n_images) % 3]
    ds = ds.replace(images=dataclasses.replace(ds.images, split=obj_array(split)))
    io.write(ds, tmp_path / "ds", "parquet")
    code, out, err = _run(["stats", str(tmp_path / "ds"), "--from", "parquet"])
    assert code == 0, err
    assert "…" not in out  # three splits and the size buckets cut "annotations" and "medium" to "anno…", "medi…"
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "annotations" in out and "medium" in out and "in test" in out


def test_issue_tables_fold_long_types_and_places_instead_of_cutting_them(files: dict[str, Path], tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    monkeypatch.setenv("COLUMNS", "80")
    assert _run(["schema", "infer", str(files["gt"]), "--from", "coco", "-o", str(tmp_path / "s.yaml")])[0] == 0
    d = yaml.safe_load((tmp_path / "s.yaml").read_text())
    for c in d["classes"]:
        c["label_types"] = ["box"]  # polygons and keypoints become violations: label_type_not_allowed
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    code, out, err = _run(["schema", "validate", str(files["gt"]), "--from", "coco", "--schema",
                           str(tmp_path / "strict.yaml"), "--top", "3"])
    assert code == 0, err
    assert "label_type_not_allo" in out and "…" not in out  # was "label_type_not_allo…", "images/shape_0001.p…"


def test_help_texts_print_brackets_as_written() -> None:
    # typer reads help as rich markup: "classes=[a,b]" printed as "classes=," (an unknown style, dropped)
    import re

    import typer

    from maslow.cli.main import app

    tag = re.compile(r"(?<!\\)\[[a-z#/@][^\[]*?\]")  # what rich takes for a style

    def texts(cmd: Any) -> list[str]:
        out = [cmd.help or "", *[getattr(p, "help", None) or "" for p in cmd.params]]
        return out + [t for sub in getattr(cmd, "commands", {}).values() for t in texts(sub)]

    assert [t for t in texts(typer.main.get_command(app)) if tag.search(t)] == []
    code, out, _ = _run(["convert", "--help"])
    assert code == 0 and "classes=[a,b]" in "".join(out.split())


def test_runs_shows_top_or_limit_runs(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    for flag in ("--top", "--limit", "-n"):
        code, out, err = _run(["runs", "--tracking", str(tmp_path / "mlruns"), flag, "3", "--json"])
        assert code == 0 and json.loads(out) == [], err


@pytest.mark.parametrize("command", [["select"], ["embed"], ["outliers"]])
def test_a_cache_dir_that_is_a_file_exits_2_naming_it(files: dict[str, Path], tmp_path: Path,
                                                      command: list[str]) -> None:
    (tmp_path / "cache.txt").write_text("not a folder")
    code, out, err = _run([command[0], str(files["gt"]), "--from", "coco", "--embedder", "light", "--cache-dir",
                           str(tmp_path / "cache.txt"), "-o" if command[0] == "embed" else "--json",
                           *([str(tmp_path / "f.npy")] if command[0] == "embed" else []), *command[1:]])
    assert code == 2, out  # was a NotADirectoryError traceback, exit code 1
    assert "cache.txt" in err and "--cache-dir must be a folder" in _flat(err)
