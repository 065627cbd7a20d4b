"""maslow train / tune / runs / export --onnx: exit codes and parsed --json output."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli_streams as _run
from tests.models.tiny_data import write_tiny_classification


def _json(args: list[str]) -> Any:
    code, out, err = _run([*args, "--json"])
    assert code == 0, out + err
    return json.loads(out)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_tiny_classification(root / "data", n_train=4, n_val=2)
    (root / "train.yaml").write_text(
        "data: data\nformat: imagefolder\nmodel: torchvision-classifier\nbackbone: mobilenet_v3_small\n"
        f"pretrained: 'no'\nepochs: 3\nimage_size: 32\nthreads: 1\nout: {root / 'model'}\ntracking: 'off'\n"
        "search:\n  lr: {low: 1.0e-4, high: 1.0e-2, log: true}\n")
    return root / "train.yaml"


def test_bad_config_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("data: d\nformat: coco\nepochs: many\n")
    code, _, err = _run(["train", str(tmp_path / "bad.yaml")])
    assert code == 2 and "bad.yaml" in err and "'epochs'" in err
    (tmp_path / "typo.yaml").write_text("data: d\nformat: coco\nepocs: 3\n")
    code, _, err = _run(["train", str(tmp_path / "typo.yaml")])
    assert code == 2 and "typo.yaml" in err and "'epocs'" in err


def test_an_unknown_format_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text("data: d\nformat: nosuch\n")
    code, _, err = _run(["train", str(tmp_path / "f.yaml")])  # used to name neither the file nor the field
    flat = " ".join(err.split())
    assert code == 2 and "f.yaml" in flat and "config field 'format' must be one of" in flat and "'nosuch'" in flat


def test_bad_adapter_params_exit_2_naming_file_and_field(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    (tmp_path / "c.yaml").write_text("data: d\nformat: imagefolder\nmodel: embed-logreg\nbackbone: light\n"
                                     "params: {C: -1}\n")
    code, _, err = _run(["train", str(tmp_path / "c.yaml")])  # used to end in scikit-learn's traceback
    assert code == 2 and "c.yaml" in err and "'params.C' must be a number > 0, got -1" in err
    (tmp_path / "p.yaml").write_text("data: d\nformat: imagefolder\nparams: 5\n")
    code, _, err = _run(["train", str(tmp_path / "p.yaml")])  # used to say "'int' object is not iterable"
    assert code == 2 and "p.yaml" in err and "'params' must be a mapping" in err


def test_bad_set_exits_2(config: Path) -> None:
    code, _, err = _run(["train", str(config), "--set", "nonsense=1"])
    assert code == 2 and "'nonsense'" in err
    code, _, err = _run(["train", str(config), "--set", "epochs"])
    assert code == 2 and "KEY=VALUE" in err


def test_train_runs_export_flow(config: Path, tmp_path: Path) -> None:
    pytest.importorskip("torchvision")
    store = tmp_path / "store"
    d = _json(["train", str(config), "--set", "epochs=2", "--set", f"tracking={store}", "--set", "params.hflip=false",
               "--out", str(tmp_path / "m")])
    assert d["path"] == str(tmp_path / "m") and (tmp_path / "m" / "model.json").is_file()
    assert len(d["history"]["epochs"]) == 2 and "accuracy" in d["metrics"]
    assert d["weights"].startswith("from scratch")
    saved = json.loads((tmp_path / "m" / "model.json").read_text())
    assert saved["config"]["epochs"] == 2 and saved["config"]["params"] == {"hflip": False}
    code, out, _ = _run(["train", str(config), "--set", "epochs=1", "--set", f"tracking={store}",
                         "--out", str(tmp_path / "m2")])
    assert code == 0 and "weights: from scratch" in out and "MLflow run" in out
    if importlib.util.find_spec("mlflow") is not None:
        runs = _json(["runs", "--tracking", str(store)])
        assert len(runs) == 2 and runs[1]["run_id"] == d["run_id"]  # newest first
        assert {r["params"]["epochs"] for r in runs} == {"1", "2"}
        code, out, _ = _run(["runs", "--tracking", str(store)])
        assert code == 0 and d["run_id"][:8] in out
    pytest.importorskip("onnxruntime")
    rep = _json(["export", str(tmp_path / "m"), "--onnx"])
    assert rep["path"] == str(tmp_path / "m" / "model.onnx") and rep["max_abs_diff"] <= rep["tolerance"]
    code, _, err = _run(["export", str(tmp_path / "m"), "a", "b", "--onnx"])
    assert code == 2 and "MODEL [DST]" in err


def test_export_needs_to_or_onnx(tmp_path: Path) -> None:
    code, _, err = _run(["export", str(tmp_path / "x")])
    assert code == 2 and "--to FORMAT is required" in err


def test_tune_command(config: Path, tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    pytest.importorskip("torchvision")
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    args = ["tune", str(config), "--trials", "1", "--storage", storage, "--study", "cli", "--set", "epochs=1",
            "--set", f"out={tmp_path / 'trials'}"]
    d = _json(args)
    assert len(d["trials"]) == d["n_trials"] == 1
    assert d["study_name"] == "cli" and d["metric"] == "accuracy" and set(d["best_params"]) == {"lr"}
    code, out, _ = _run(args)
    assert code == 0 and "Study cli (2 trials" in out


def test_runs_of_a_bad_or_missing_store(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    code, _, err = _run(["runs", "--tracking", "bogus://x"])  # used to end in MLflow's traceback
    assert code == 2 and "tracking 'bogus://x'" in err
    missing = tmp_path / "no" / "such"
    code, out, _ = _run(["runs", "--tracking", str(missing)])  # reading creates nothing
    flat = " ".join(out.split())  # used to say "no runs in experiment 'maslow' in sqlite:///...", as for an empty one
    assert code == 0 and f"no tracking store at {missing} (the folder does not exist)" in flat
    assert "nothing has been tracked there yet" in flat and "no runs in experiment" not in flat
    assert _json(["runs", "--tracking", str(missing)]) == []
    assert not (tmp_path / "no").exists()
    import warnings

    from mlflow.tracking import MlflowClient

    store = tmp_path / "store"  # a store that exists, without the experiment asked for: listing nothing, exit 0
    store.mkdir()
    with warnings.catch_warnings():  # MLflow's SQL store warns about its own dependencies
        warnings.simplefilter("ignore")
        MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}").create_experiment("other")
    code, out, _ = _run(["runs", "--tracking", str(store)])
    flat = " ".join(out.split())
    assert code == 0 and "no runs in experiment 'maslow' in sqlite:///" in flat and "no tracking store" not in flat


def test_a_train_split_no_image_has_exits_2_naming_file_and_field(config: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    (tmp_path / "s.yaml").write_text(f"data: {config.parent / 'data'}\nformat: imagefolder\nbackbone: light\n"
                                     f"train_split: nosuch\ntracking: 'off'\nout: {tmp_path / 'm'}\n")
    code, _, err = _run(["train", str(tmp_path / "s.yaml")])  # used to train on every image outside val
    flat = " ".join(err.split())
    assert code == 2 and "s.yaml" in flat and "'train_split'" in flat and "'nosuch'" in flat
    assert "the splits are 'train', 'val'" in flat and not (tmp_path / "m").exists()


def test_a_val_split_of_test_exits_2_naming_file_and_field(config: Path, tmp_path: Path) -> None:
    """val_split: test used to early-stop on the test images (and report them as both val and test)."""
    (tmp_path / "v.yaml").write_text(f"data: {config.parent / 'data'}\nformat: imagefolder\nbackbone: light\n"
                                     f"val_split: test\ntracking: 'off'\nout: {tmp_path / 'm'}\n")
    code, _, err = _run(["train", str(tmp_path / "v.yaml")])
    flat = " ".join(err.split())
    assert code == 2 and "v.yaml" in flat and "config field 'val_split' must name a split other than 'test'" in flat
    assert not (tmp_path / "m").exists()


def test_tune_refuses_an_unknown_search_key_before_reading_data(tmp_path: Path) -> None:
    pytest.importorskip("optuna")
    pytest.importorskip("sklearn")
    (tmp_path / "t.yaml").write_text("data: nosuch\nformat: imagefolder\nmodel: embed-logreg\nbackbone: light\n"
                                     f"out: {tmp_path / 'trials'}\ntracking: 'off'\n"
                                     "search:\n  params.max_iters: [100, 200]\n")
    code, _, err = _run(["tune", str(tmp_path / "t.yaml"), "--trials", "1", "--storage",
                         f"sqlite:///{tmp_path / 'o.db'}"])
    flat = " ".join(err.split())
    assert code == 2 and "search.params.max_iters: config field 'params.max_iters' is not a setting" in flat
    assert "known: C, max_iter" in flat and not (tmp_path / "trials").exists()
