"""Resume: a run stopped after k epochs and resumed from its checkpoint (``last.pt``) ends as the run that went
through (same weights, optimiser state, history); more epochs train on; a finished run is left alone; a missing
or damaged checkpoint, or another config, classes or data, is refused naming the file and the field. Before, an
interrupted run could only start over."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from maslow.models.base import TrainConfig

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")


class Stop(Exception):
    """Stands for an interruption (Ctrl+C, a killed job): ``stop_at(k)`` raises it once epoch k has trained, before
    its checkpoint is written, so the run is left with epochs 0..k-1 saved and epoch k to train again."""


def stop_at(epoch: int) -> Any:
    def on_epoch(e: Any) -> None:
        if e.epoch == epoch:
            raise Stop

    return on_epoch


def _state(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


def _same_tensors(a: Any, b: Any) -> bool:
    """Every tensor (nested in dicts and lists) equal, bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_tensors(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same_tensors(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# --- the classifier through train() and the CLI ---------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.models.tiny_data import write_tiny_classification

    return write_tiny_classification(tmp_path_factory.mktemp("resume") / "data", n_train=4, n_val=2)


def _cfg(data: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = {"data": str(data), "format": "imagefolder", "model": "torchvision-classifier",
                            "backbone": "mobilenet_v3_small", "pretrained": "no", "epochs": 3, "image_size": 32,
                            "batch_size": 4, "threads": 1, "tracking": "off", "patience": 0}
    return TrainConfig.from_dict({**base, **kw})


@pytest.fixture(scope="module")
def through(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The run that was not interrupted: 3 epochs."""
    from maslow.models.train import train

    return train(_cfg(data), out=tmp_path_factory.mktemp("through") / "run")


def test_an_interrupted_run_resumes_to_the_same_end(data: Path, through: Any, tmp_path: Path) -> None:
    from maslow.models.checkpoint import read_checkpoint
    from maslow.models.train import train

    run = tmp_path / "run"
    with pytest.raises(Stop):
        train(_cfg(data), out=run, on_epoch=stop_at(2))
    ckpt = read_checkpoint(run)
    assert ckpt.epochs_done == 2 and not (run / "model.json").exists()  # only the checkpoint was written
    resumed = train(_cfg(data), resume=run)
    assert resumed.resumed_from == 2 and resumed.path == run
    assert [e.loss for e in resumed.history.epochs] == [e.loss for e in through.history.epochs]
    assert [e.metrics for e in resumed.history.epochs] == [e.metrics for e in through.history.epochs]
    assert resumed.history.best_epoch == through.history.best_epoch
    assert _same_tensors(_state(run / "weights.pt"), _state(through.path / "weights.pt"))  # the best epoch's
    mine, theirs = _state(run / "last.pt"), _state(through.path / "last.pt")
    assert _same_tensors(mine["net"], theirs["net"]) and _same_tensors(mine["optimizer"], theirs["optimizer"])
    assert mine["optimizer"]["state"]  # AdamW's moments were saved, and restored (else they would differ)
    assert resumed.metrics == through.metrics


def test_more_epochs_train_on_as_a_longer_run_would(data: Path, through: Any, tmp_path: Path) -> None:
    """The classifier's learning rate is constant, so 2 epochs and then 1 more are exactly a 3-epoch run."""
    from maslow.models.train import train

    run = tmp_path / "run"
    short = train(_cfg(data, epochs=2), out=run)
    assert len(short.history.epochs) == 2
    longer = train(_cfg(data, epochs=3), resume=run)
    assert longer.resumed_from == 2 and len(longer.history.epochs) == 3
    assert _same_tensors(_state(run / "last.pt")["net"], _state(through.path / "last.pt")["net"])


def test_a_finished_run_is_left_alone(data: Path, through: Any) -> None:
    from maslow.models.train import train

    before = {p.name: p.stat().st_mtime_ns for p in through.path.iterdir()}
    again = train(_cfg(data), resume=through.path)
    assert again.already_finished == "trained 3 of 3 epochs" and again.resumed_from == 3 and not again.metrics
    assert {p.name: p.stat().st_mtime_ns for p in through.path.iterdir()} == before  # nothing written


def test_a_run_stopped_before_its_model_was_saved_is_saved_not_skipped(data: Path, through: Any,
                                                                      tmp_path: Path) -> None:
    """Every epoch checkpointed, the process killed before ``save``; the folder still holds an earlier run's model.
    Resuming saves and evaluates this run's model (it would have kept the stale one as "finished")."""
    from maslow.models.base import build_model, load_data, read_model_json
    from maslow.models.train import split_for_training, train

    run = tmp_path / "run"
    shutil.copytree(through.path, run)  # an earlier 3-epoch run's model
    (run / "last.pt").unlink()
    cfg = _cfg(data, epochs=2)
    train_part, val, _ = split_for_training(load_data(cfg), cfg)
    build_model(cfg).fit(train_part, val=val, checkpoint=run / "last.pt")  # trained, never saved
    result = train(cfg, resume=run)
    assert result.already_finished is None and result.resumed_from == 2 and result.metrics
    assert len(read_model_json(run)["history"].epochs) == 2
    assert train(cfg, resume=run).already_finished == "trained 2 of 2 epochs"  # and now it is finished


def _cli(*args: str) -> Any:
    from maslow.cli.main import app

    return CliRunner().invoke(app, list(args))


@pytest.fixture
def config(data: Path, tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {data}\nformat: imagefolder\nmodel: torchvision-classifier\nbackbone: mobilenet_v3_small\n"
                    "pretrained: no\nepochs: 2\nimage_size: 32\nbatch_size: 4\nthreads: 1\ntracking: off\n"
                    "patience: 0\n", encoding="utf-8")
    return path


def test_cli_resume_says_where_it_went_on_and_a_finished_run_exits_0(config: Path, tmp_path: Path) -> None:
    run = str(tmp_path / "runs" / "m")
    assert _cli("train", str(config), "--set", "epochs=1", "--out", run, "--json").exit_code == 0
    res = _cli("train", str(config), "--resume", run)
    assert res.exit_code == 0, res.output
    assert "resumed from epoch 1 of 2" in " ".join(res.output.split())
    res = _cli("train", str(config), "--resume", run, "--json")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert (d["resumed_from"], d["epochs"], d["already_finished"]) == (2, 2, "trained 2 of 2 epochs")
    res = _cli("train", str(config), "--resume", run)
    assert res.exit_code == 0 and "nothing to resume" in res.output


@pytest.mark.parametrize(("args", "match"), [
    pytest.param(["--set", "model=fasterrcnn"], r"last\.pt: config field 'model' must be 'torchvision-classifier'",
                 id="model-kind"),
    pytest.param(["--set", "lr=0.01"], r"last\.pt: config field 'lr' must be 0\.001 .* got 0\.01", id="lr"),
    pytest.param(["--set", "params.hflip=false"], r"last\.pt: config field 'params\.hflip' must be unset", id="param"),
    pytest.param(["--out", "elsewhere"], r"--out must be the --resume folder", id="out"),
])
def test_cli_refuses_another_config(config: Path, tmp_path: Path, args: list[str], match: str) -> None:
    run = str(tmp_path / "m")
    assert _cli("train", str(config), "--set", "epochs=1", "--out", run, "--json").exit_code == 0
    res = _cli("train", str(config), "--resume", run, *args)
    assert res.exit_code == 2, res.output
    assert re.search(match, " ".join(res.output.split())), res.output


def test_cli_refuses_other_classes_or_images(config: Path, data: Path, tmp_path: Path) -> None:
    run = str(tmp_path / "m")
    assert _cli("train", str(config), "--set", "epochs=1", "--out", run, "--json").exit_code == 0
    more = tmp_path / "more"
    shutil.copytree(data, more)
    for split in ("train", "val"):  # a fourth class
        shutil.copytree(more / split / "circle", more / split / "disc")
    res = _cli("train", str(config), "--resume", run, "--set", f"data={more}")
    assert res.exit_code == 2 and "the classes must be ['circle', 'square', 'triangle']" in " ".join(res.output.split())
    fewer = tmp_path / "fewer"
    shutil.copytree(data, fewer)
    (fewer / "train" / "circle" / "0.png").unlink()
    res = _cli("train", str(config), "--resume", run, "--set", f"data={fewer}")
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "must be the checkpoint's" in out
    assert "12 training and 6 validation images then, 11 and 6 now" in out
    res = _cli("train", str(config), "--resume", run, "--set", f"data={fewer}", "--set", "epochs=3")
    assert res.exit_code == 2  # more epochs do not make other data the same run


def test_cli_missing_or_damaged_checkpoint_exits_2_naming_the_file(config: Path, tmp_path: Path) -> None:
    res = _cli("train", str(config), "--resume", str(tmp_path / "none"))
    assert res.exit_code == 2 and "none/last.pt" in res.output and "checkpoint not found" in res.output
    run = tmp_path / "m"
    assert _cli("train", str(config), "--set", "epochs=1", "--out", str(run), "--json").exit_code == 0
    whole = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(whole[: len(whole) // 2])
    res = _cli("train", str(config), "--resume", str(run))
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "m/last.pt: must be the checkpoint that training wrote" in out
    doc = torch.load(io.BytesIO(whole), weights_only=True)
    meta = json.loads(doc["meta"])
    del meta["loop"]["rng"]
    torch.save({**doc, "meta": json.dumps(meta)}, run / "last.pt")
    res = _cli("train", str(config), "--resume", str(run))
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "last.pt, field 'meta.loop'" in out and "rng" in out


def test_embed_logreg_has_nothing_to_resume(config: Path, tmp_path: Path) -> None:
    res = _cli("train", str(config), "--resume", str(tmp_path), "--set", "model=embed-logreg",
               "--set", "backbone=light")
    assert res.exit_code == 2 and "writes no checkpoints" in res.output


# --- the detectors' and segmenters' loop (schedule, step counter, sampling) ---------------------------------------


def test_an_interrupted_detector_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """Faster R-CNN: warmup + cosine schedule (the step counter), SGD momentum, torch's sampling of proposals."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from maslow.models.base import build_model
    from maslow.models.checkpoint import read_checkpoint
    from maslow.sample import write_shapes

    ds = write_shapes(tmp_path / "shapes", 4, seed=1, width=80, height=60)
    params = {"max_detections": 20, "score_threshold": 0.0, "proposals": 50, "box_batch_size": 64}
    cfg = TrainConfig.from_dict({"data": "unused", "model": "fasterrcnn", "image_size": 64, "epochs": 3,
                                 "batch_size": 2, "lr": 0.01, "threads": 1, "patience": 0, "params": params})
    train, val = ds.select_images([0, 1, 2]), ds.select_images([3])
    whole = build_model(cfg).fit(train, val=val, checkpoint=tmp_path / "a.pt")
    with pytest.raises(Stop):
        build_model(cfg).fit(train, val=val, checkpoint=tmp_path / "b.pt", on_epoch=stop_at(1))
    ckpt = read_checkpoint(tmp_path / "b.pt")
    assert ckpt.epochs_done == 1 and ckpt.loop["step"] == 2  # 2 batches of 2 (3 images) per epoch
    resumed = build_model(cfg).fit(train, val=val, checkpoint=tmp_path / "b.pt", resume=ckpt)
    assert [e.loss for e in resumed.history.epochs] == [e.loss for e in whole.history.epochs]
    assert _same_tensors(resumed._net.state_dict(), whole._net.state_dict())  # type: ignore[attr-defined]
    a, b = _state(tmp_path / "a.pt"), _state(tmp_path / "b.pt")
    assert _same_tensors(a["optimizer"], b["optimizer"]) and json.loads(b["meta"])["loop"]["step"] == 6


def test_a_resumed_run_is_tracked_whole_and_its_checkpoint_is_no_artifact(data: Path, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from maslow.models.train import train

    store, run = str(tmp_path / "mlruns"), tmp_path / "run"
    with pytest.raises(Stop):
        train(_cfg(data, tracking=store, epochs=2), out=run, on_epoch=stop_at(1))
    result = train(_cfg(data, tracking=store, epochs=2), resume=run)
    client = MlflowClient(tracking_uri=result.tracking_uri)
    tracked = client.get_run(result.run_id)
    assert tracked.data.tags["maslow.resumed_from_epoch"] == "1"
    assert [m.step for m in client.get_metric_history(result.run_id, "loss")] == [0, 1]  # the whole curve
    assert {a.path for a in client.list_artifacts(result.run_id, "model")} == {"model/model.json", "model/weights.pt"}
    assert (run / "last.pt").is_file()
