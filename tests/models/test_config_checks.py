"""Training configs as a user writes them: YAML booleans for yes/no settings, wrong types and unknown metrics are
refused before anything trains, with the file and the field named and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from maslow.cli.main import app
from maslow.core.schema import Task
from maslow.errors import FormatError, MaslowError
from maslow.models import TrainConfig, read_config
from tests.models.tiny_data import write_tiny_classification

runner = CliRunner()


@pytest.mark.parametrize(("text", "want"), [("yes", "yes"), ("no", "no"), ("true", "yes"), ("'no'", "no")])
def test_pretrained_yes_no_as_the_docs_write_them(tmp_path: Path, text: str, want: str) -> None:
    # YAML 1.1 reads a bare yes/no as a boolean: `pretrained: no` was refused ("got False")
    (tmp_path / "c.yaml").write_text(f"data: d\nformat: imagefolder\npretrained: {text}\n")
    assert read_config(tmp_path / "c.yaml").pretrained == want


@pytest.mark.parametrize(("line", "field"), [
    pytest.param("data: 5", "data", id="data-int"),
    pytest.param("backbone: 5", "backbone", id="backbone-int"),
    pytest.param("experiment: [1]", "experiment", id="experiment-list"),
    pytest.param("threads: two", "threads", id="threads-str"),
    pytest.param("threads: -3", "threads", id="threads-negative"),
    pytest.param("threads: 0", "threads", id="threads-zero"),
    pytest.param("device: tpu", "device", id="device-unknown"),
    pytest.param("image_size: 8", "image_size", id="image-size-small"),
    pytest.param("batch_size: 0", "batch_size", id="batch-size-zero"),
])
def test_wrong_value_names_the_file_and_the_field(tmp_path: Path, line: str, field: str) -> None:
    (tmp_path / "c.yaml").write_text(f"data: d\nformat: imagefolder\n{line}\n")
    with pytest.raises(FormatError, match=f"config field '{field}' must be") as e:
        read_config(tmp_path / "c.yaml")
    assert str(e.value.path) == str(tmp_path / "c.yaml")


def test_unknown_metric_is_refused_for_the_task() -> None:
    cfg = TrainConfig(data="d", metric="accurcy")
    with pytest.raises(MaslowError, match=r"config field 'metric' must be one of accuracy, .* got 'accurcy'"):
        cfg.key_metric(Task.CLASSIFICATION)
    with pytest.raises(MaslowError, match="got 'miou'"):
        TrainConfig(data="d", metric="miou").key_metric(Task.DETECTION)
    assert TrainConfig(data="d", metric="mar_20").key_metric(Task.KEYPOINTS) == "mar_20"
    assert TrainConfig(data="d").key_metric(Task.SEMANTIC_SEGMENTATION) == "miou"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audit")
    write_tiny_classification(root / "data", n_train=3, n_val=0)  # no val split: the metric was never checked
    return root


def test_cli_train_refuses_a_misspelt_metric_before_training(data: Path) -> None:
    pytest.importorskip("sklearn")
    (data / "m.yaml").write_text("data: data\nformat: imagefolder\nbackbone: light\nmetric: accurcy\n"
                                 f"tracking: 'off'\nout: {data / 'model'}\nparams: {{cache_dir: {data / 'cache'}}}\n")
    res = runner.invoke(app, ["train", str(data / "m.yaml")])
    assert res.exit_code == 2, res.output
    assert "m.yaml" in res.stderr and "config field 'metric'" in res.stderr
    assert not (data / "model").exists()  # nothing trained, nothing written


def test_cli_set_names_the_override(data: Path) -> None:
    (data / "s.yaml").write_text("data: data\nformat: imagefolder\n")
    res = runner.invoke(app, ["train", str(data / "s.yaml"), "--set", "threads=-1"])
    assert res.exit_code == 2
    assert "--set: config field 'threads' must be" in res.stderr


def test_a_device_this_machine_lacks_is_a_model_error() -> None:
    torch = pytest.importorskip("torch")
    from maslow.errors import ModelError
    from maslow.models._torchdata import torch_device

    assert torch_device(torch, "cpu").type == "cpu"
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ModelError, match=f"config field 'device' must be a device of this machine, got 'cuda:{n}'"):
        torch_device(torch, f"cuda:{n}")


def test_tune_refuses_a_misspelt_metric_before_creating_the_study(data: Path) -> None:
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("sklearn")
    from maslow.models.tune import tune

    write_tiny_classification(data / "tv", n_train=3, n_val=1)
    cfg = TrainConfig(data=str(data / "tv"), format="imagefolder", backbone="light", tracking="off",
                      out=str(data / "tune"), params={"cache_dir": str(data / "cache")})
    storage = f"sqlite:///{data / 'optuna.db'}"
    with pytest.raises(MaslowError, match=r"metric \(--metric\) must be one of"):
        tune(cfg, trials=1, metric="accurcy", storage=storage, study_name="s")
    assert "s" not in optuna.get_all_study_names(storage)  # before: a study holding one failed trial
