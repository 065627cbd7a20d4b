"""MLflow tracking: where runs go, and what a training run logs (params, per-epoch metrics, tags, the model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow.errors import MaslowError
from maslow.models.base import TrainConfig
from maslow.models.tracking import flatten, list_runs, tracking_uri
from tests.models.tiny_data import write_tiny_classification


def test_tracking_uri_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri("off") is None and tracking_uri("OFF") is None and tracking_uri(False) is None
    assert tracking_uri("http://mlflow:5000") == "http://mlflow:5000"
    assert tracking_uri(str(tmp_path / "runs")) == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "off")
    assert tracking_uri() is None
    assert tracking_uri(str(tmp_path / "x")) is not None  # the config wins over the environment


def test_default_store_is_in_the_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow.store import init_workspace

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    init_workspace(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve() / '.maslow' / 'mlruns' / 'mlflow.db'}"


def test_flatten_nests_params() -> None:
    assert flatten({"lr": 0.1, "params": {"C": 2, "x": {"y": None}}}) == {"lr": "0.1", "params.C": "2",
                                                                            "params.x.y": "None"}


def test_runs_need_tracking_on() -> None:
    with pytest.raises(MaslowError, match="tracking is off"):
        list_runs(tracking="off")


def test_training_run_is_tracked(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    pytest.importorskip("torchvision")
    from mlflow.tracking import MlflowClient

    from maslow.models.train import train

    data = write_tiny_classification(tmp_path / "data", n_train=4, n_val=2)
    store = tmp_path / "store"
    cfg = TrainConfig(data=str(data), format="imagefolder", model="torchvision-classifier",
                      backbone="mobilenet_v3_small", pretrained="no", epochs=2, image_size=32, threads=1,
                      out=str(tmp_path / "model"), tracking=str(store), experiment="tiny", params={"hflip": False})
    result = train(cfg, run_name="first")
    assert result.run_id is not None and result.tracking_uri == tracking_uri(str(store))
    runs = list_runs(experiment="tiny", tracking=str(store))
    assert [r.run_id for r in runs] == [result.run_id]
    run = runs[0]
    assert run.name == "first" and run.status == "FINISHED"
    assert run.params["model"] == "torchvision-classifier" and run.params["params.hflip"] == "False"
    assert run.params["epochs"] == "2" and run.tags["maslow.weights"] == result.weights
    assert run.metrics["final_val_accuracy"] == pytest.approx(result.metrics["accuracy"])
    client = MlflowClient(tracking_uri=result.tracking_uri)
    history = client.get_metric_history(result.run_id, "loss")
    assert [m.step for m in history] == [0, 1]
    assert [m.value for m in history] == pytest.approx([e.loss for e in result.history.epochs])
    assert len(client.get_metric_history(result.run_id, "val_accuracy")) == 2
    files = {f.path for f in client.list_artifacts(result.run_id, "model")}
    assert {"model/model.json", "model/weights.pt"} <= files
    assert list_runs(experiment="nothing-here", tracking=str(store)) == []


def _cfg(store: Path) -> TrainConfig:
    return TrainConfig(data="unused", model="fcos", tracking=str(store), experiment="e", params={"flip": 0.25})


def test_logged_params_and_metrics_come_back_as_given(tmp_path: Path) -> None:
    """Params are the flattened config; NaN and +-inf metrics come back as NaN and +-inf (MLflow's SQL store keeps
    infinities as +-float max)."""
    pytest.importorskip("mlflow")
    import math

    from maslow.models.base import EpochResult
    from maslow.models.tracking import start_run

    cfg = _cfg(tmp_path / "store")
    run = start_run(cfg, run_name="r")
    run.log_epoch(EpochResult(epoch=0, loss=float("nan"), metrics={"map": float("inf")}, seconds=1.0))
    given = {"a": float("-inf"), "b": 0.25, "c": -1e300, "d": 1.7e308}
    run.log_metrics(given, prefix="test_")
    run.end()
    (info,) = list_runs(experiment="e", tracking=str(tmp_path / "store"))
    assert dict(info.params) == flatten(cfg.to_dict())
    assert math.isnan(info.metrics["loss"]) and info.metrics["val_map"] == math.inf
    assert {k: info.metrics[f"test_{k}"] for k in given} == given


@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_a_store_folder_that_cannot_be_made_is_named(where: str, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from maslow.models.tracking import start_run

    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(MaslowError, match="a-file"):
        start_run(_cfg(tmp_path / where))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_corrupt_store_is_named(tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from maslow.models.tracking import start_run

    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "mlflow.db").write_bytes(b"not a database")
    with pytest.raises(MaslowError, match=r"mlflow\.db.*not a database"):
        start_run(_cfg(tmp_path / "store"))
    with pytest.raises(MaslowError, match=r"mlflow\.db.*not a database"):
        list_runs(experiment="e", tracking=str(tmp_path / "store"))
    assert (tmp_path / "store" / "mlflow.db").read_bytes() == b"not a database"


def test_a_store_that_is_not_there_is_said_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``maslow runs --tracking <no such folder>`` said only "no runs in experiment ...", as for an empty store."""
    from maslow.models.tracking import missing_store

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    default = f"by default {tmp_path.resolve() / 'mlruns'}"
    why = missing_store(str(tmp_path / "no" / "such"))
    assert why is not None and why.startswith(f"no tracking store at {tmp_path / 'no' / 'such'} (the folder does "
                                              "not exist): nothing has been tracked there yet") and default in why
    (tmp_path / "empty").mkdir()
    assert f"at {tmp_path / 'empty'} (the folder holds no mlflow.db)" in (missing_store(str(tmp_path / "empty")) or "")
    (tmp_path / "file").write_text("x")
    assert "(it is a file, not a folder)" in (missing_store(str(tmp_path / "file")) or "")
    assert f"at {tmp_path / 'x.db'} (the database file does not exist)" in (
        missing_store(f"sqlite:///{tmp_path / 'x.db'}") or "")
    assert missing_store() is not None and "mlruns" in (missing_store() or "")  # the default store, not made yet
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "mlflow.db").write_bytes(b"")
    assert missing_store(str(tmp_path / "store")) is None  # there (what it holds is list_runs's to read)
    assert missing_store("off") is None and missing_store("http://mlflow:5000") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "file", "store"]  # reading made nothing
