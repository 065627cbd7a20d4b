"""``maslow train`` and the model folder already there: a new run refuses to replace a model (or anything else) in
``--out`` without ``--overwrite``; the per-epoch checkpoint goes to ``<out>.partial``, so an interrupted run leaves
the previous model folder byte for byte as it was, and ``--resume`` finds the interrupted run there. Also refused
before anything is read: a ``device`` this machine lacks (naming the config file and the field) and a setting given
twice in the config file (YAML's last-one-wins). Before, the checkpoint was written straight into ``--out``, a second
run replaced the first silently, ``device: cuda`` failed only once training had started, and a duplicate key won
silently."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from maslow.errors import FormatError
from maslow.models.base import TrainConfig, read_config
from tests.helpers import run_cli_streams as _run
from tests.models.tiny_data import write_tiny_classification


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_classification(tmp_path_factory.mktemp("out_safety") / "data", n_train=3, n_val=1)


def _light(data: Path, tmp_path: Path) -> Path:
    """An embed-logreg config on the light (numpy) embedder: trains in a second without torch."""
    path = tmp_path / "light.yaml"
    path.write_text(f"data: {data}\nformat: imagefolder\nmodel: embed-logreg\nbackbone: light\ntracking: 'off'\n"
                    f"params: {{cache_dir: {tmp_path / 'cache'}}}\n", encoding="utf-8")
    return path


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_a_second_run_into_a_model_folder_is_refused_without_overwrite(data: Path, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    config, out = _light(data, tmp_path), tmp_path / "m"
    code, _, err = _run(["train", str(config), "--out", str(out), "--json"])
    assert code == 0, err
    before = _digests(out)
    code, _, err = _run(["train", str(config), "--out", str(out), "--set", "params.C=0.5"])
    assert code == 2 and f"--out {out}: holds a model (embed-logreg" in err and "--overwrite" in err
    assert _digests(out) == before  # refused before anything was written
    code, _, err = _run(["train", str(config), "--out", str(out), "--set", "params.C=0.5", "--overwrite",
                         "--json"])
    assert code == 0, err
    saved = json.loads((out / "model.json").read_text())
    assert saved["config"]["params"]["C"] == 0.5 and not (tmp_path / "m.partial").exists()


def test_the_config_out_is_checked_too_and_a_file_or_other_files_are_refused(data: Path, tmp_path: Path) -> None:
    config = _light(data, tmp_path)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    config.write_text(config.read_text() + f"out: {full}\n")
    code, _, err = _run(["train", str(config)])
    assert code == 2 and "config field 'out'" in err and "not empty" in err and config.name in err
    assert (full / "notes.txt").read_text() == "mine"
    (tmp_path / "f").write_text("x")
    code, _, err = _run(["train", str(config), "--out", str(tmp_path / "f"), "--overwrite"])
    assert code == 2 and "is a file" in err


def test_an_interrupted_runs_checkpoint_is_not_overwritten_by_a_new_run_unasked(data: Path, tmp_path: Path) -> None:
    """The check needs no torch: a ``last.pt`` in ``<out>.partial`` is the mark of an interrupted run."""
    config, out = _light(data, tmp_path), tmp_path / "m"
    (tmp_path / "m.partial").mkdir()
    (tmp_path / "m.partial" / "last.pt").write_bytes(b"an interrupted run")
    code, _, err = _run(["train", str(config), "--out", str(out)])
    assert code == 2 and "m.partial/last.pt" in err and f"--resume {out}" in err and "--overwrite" in err
    out.mkdir()
    (out / "last.pt").write_bytes(b"a finished run")
    code, _, err = _run(["train", str(config), "--resume", str(out / "last.pt")])  # the other checkpoint
    assert code == 2 and "holds the checkpoint of an interrupted run" in err
    assert (tmp_path / "m.partial" / "last.pt").read_bytes() == b"an interrupted run"


def test_where_resume_finds_the_checkpoint(tmp_path: Path) -> None:
    from maslow.models.checkpoint import checkpoint_file, partial_folder, run_folder

    run = tmp_path / "runs" / "m"
    assert partial_folder(run) == tmp_path / "runs" / "m.partial"
    assert checkpoint_file(run) == run / "last.pt"  # a finished run's, kept with its model
    (tmp_path / "runs" / "m.partial").mkdir(parents=True)
    (tmp_path / "runs" / "m.partial" / "last.pt").write_bytes(b"")
    assert checkpoint_file(run) == tmp_path / "runs" / "m.partial" / "last.pt"  # the interrupted run's first
    assert checkpoint_file(run / "last.pt") == run / "last.pt"  # a file named is that file
    for named in (run, run / "last.pt", partial_folder(run), partial_folder(run) / "last.pt"):
        assert run_folder(named) == run


class Stop(Exception):
    """Stands for Ctrl+C after an epoch's checkpoint was written."""


def test_an_interrupted_run_leaves_the_previous_model_folder_untouched(data: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from maslow.models.checkpoint import read_checkpoint
    from maslow.models.train import train

    base: dict[str, Any] = {"data": str(data), "format": "imagefolder", "model": "torchvision-classifier",
                            "backbone": "mobilenet_v3_small", "pretrained": "no", "epochs": 1, "image_size": 32,
                            "batch_size": 4, "threads": 1, "tracking": "off", "patience": 0}
    out = tmp_path / "m"
    first = train(TrainConfig.from_dict(base), out=out)
    assert sorted(_digests(out)) == ["last.pt", "model.json", "weights.pt"]
    before = _digests(out)

    def stop(e: Any) -> None:
        if e.epoch == 1:  # epoch 0's checkpoint is written; epoch 1 trained, its checkpoint not yet
            raise Stop

    again = TrainConfig.from_dict({**base, "epochs": 3, "lr": 0.003})
    with pytest.raises(Stop):
        train(again, out=out, on_epoch=stop)
    assert _digests(out) == before  # model.json, weights.pt and the finished run's last.pt as they were
    ckpt = read_checkpoint(out)  # --resume finds the interrupted run
    assert ckpt.path == tmp_path / "m.partial" / "last.pt" and ckpt.epochs_done == 1 and ckpt.config.lr == 0.003
    assert read_checkpoint(out / "last.pt").config.lr == first.model.config.lr  # the old run can still go on
    resumed = train(again, resume=out)
    assert resumed.resumed_from == 1 and len(resumed.history.epochs) == 3 and resumed.path == out
    assert not (tmp_path / "m.partial").exists()  # done: the model folder keeps the checkpoint
    assert read_checkpoint(out).epochs_done == 3 and read_checkpoint(out).path == out / "last.pt"


def test_a_device_this_machine_lacks_is_refused_before_the_data_is_read(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = tmp_path / "dev.yaml"
    config.write_text("data: nothere\nformat: imagefolder\nmodel: torchvision-classifier\ndevice: cuda\n"
                      "tracking: 'off'\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"dev\.yaml: config field 'device' must be a device of this machine, got "
                                          r"'cuda' \(0 cuda devices available\)"):
        read_config(config)
    code, _, err = _run(["train", str(config), "--out", str(tmp_path / "m")])
    assert code == 2 and "dev.yaml: config field 'device'" in err and "nothere" not in err
    config.write_text("data: nothere\nformat: imagefolder\ntracking: 'off'\n", encoding="utf-8")
    code, _, err = _run(["train", str(config), "--set", "device=cuda:0", "--out", str(tmp_path / "m")])
    assert code == 2 and "--set: config field 'device' must be a device of this machine" in err
    assert read_config(config, device="cpu").device == "cpu"


@pytest.mark.parametrize(("text", "key", "lines"), [
    pytest.param("data: d\nformat: imagefolder\nepochs: 1\nepochs: 0\n", "epochs", (3, 4), id="top-level"),
    pytest.param("data: d\nformat: imagefolder\nparams:\n  C: 1\n  C: 2\n", "params.C", (4, 5), id="nested"),
])
def test_a_setting_given_twice_is_refused_naming_file_key_and_lines(tmp_path: Path, text: str, key: str,
                                                                   lines: tuple[int, int]) -> None:
    (tmp_path / "dup.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(FormatError, match=rf"dup\.yaml, line {lines[1]}: setting '{key}' must be given once, got it "
                                          rf"on lines {lines[0]} and {lines[1]}"):
        read_config(tmp_path / "dup.yaml")
    code, _, err = _run(["train", str(tmp_path / "dup.yaml")])
    assert code == 2 and f"setting '{key}' must be given once" in err
