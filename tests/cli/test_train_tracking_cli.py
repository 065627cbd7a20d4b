"""maslow train says why a run is not tracked: the config turned tracking off, or mlflow is missing (naming the
extra that installs it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maslow.cli.main import app
from tests.models.tiny_data import write_tiny_classification

runner = CliRunner()


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    pytest.importorskip("sklearn")
    write_tiny_classification(tmp_path / "data", n_train=2, n_val=1)
    (tmp_path / "train.yaml").write_text(
        f"data: data\nformat: imagefolder\nmodel: embed-logreg\nbackbone: light\nout: {tmp_path / 'model'}\n"
        f"tracking: {tmp_path / 'mlruns'}\nparams: {{cache_dir: {tmp_path / 'cache'}}}\n")
    return tmp_path / "train.yaml"


def _train(config: Path, *args: str) -> dict[str, object]:
    res = runner.invoke(app, ["train", str(config), *args, "--json"])
    assert res.exit_code == 0, res.stdout + res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def test_without_mlflow_training_works_and_names_the_extra(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` fails, as when it is not installed
    d = _train(config)
    assert d["run_id"] is None and Path(str(d["path"])).is_dir()
    assert d["tracking_off"] == "mlflow is not installed: pip install 'maslow[models]'"
    assert not (config.parent / "mlruns").exists()


def test_tracking_off_in_the_config_is_said(config: Path) -> None:
    d = _train(config, "--set", "tracking=off")
    assert d["run_id"] is None and d["tracking_off"] == "config tracking: off"
    pytest.importorskip("mlflow")
    d = _train(config, "--overwrite")
    assert d["run_id"] is not None and d["tracking_off"] is None
