"""``maslow train`` and where the model goes, and the ``device`` of a config with ``--set``.

The model folder replaces ``--out`` (or the config's ``out``) as a whole when the run ends: even with
``--overwrite`` it must not be a folder holding the data read (the config, the annotation file, the image folders),
a workspace or the current folder, refused before any data is read (the images' folders once the data is read,
before anything trains), as ``export`` and ``crossval`` refuse their ``--out``. Before, ``--overwrite`` skipped
every check: ``--out DATA --overwrite`` trained and then deleted the training data, and ``--out . --overwrite``
trained fully and failed only when saving.

``--set device=cpu`` overrides a config's ``device: cuda`` (train, tune, crossval): the device is checked once the
overrides are applied. Before, the config's device was checked when the file was read, before ``--set``, so a
machine without CUDA could not run such a config at all. ``qa --model`` (no ``--set``) still names the config file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maslow.errors import MaslowError
from tests.helpers import count_workspace_walks
from tests.helpers import run_cli_streams as _run
from tests.models.tiny_data import write_tiny_classification

pytest.importorskip("sklearn")


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _config(tmp_path: Path, data: Path, extra: str = "", name: str = "light.yaml") -> Path:
    """An embed-logreg config on the light (numpy) embedder: trains in a second without torch; its embedding cache
    (``cache``) appears only once images were read."""
    path = tmp_path / name
    path.write_text(f"data: {data}\nformat: imagefolder\nmodel: embed-logreg\nbackbone: light\ntracking: 'off'\n"
                    f"params: {{cache_dir: {tmp_path / 'cache'}}}\n{extra}", encoding="utf-8")
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_tiny_classification(tmp_path / "shapes", n_train=3, n_val=1)


def test_the_data_read_is_refused_as_out_even_with_overwrite(data: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, data)
    before = _files(data)
    code, _, err = _run(["train", str(config), "--out", str(data), "--overwrite"])
    assert code == 2 and f"--out {data}: must not hold the data read" in err
    assert _files(data) == before and not (tmp_path / "cache").exists()  # nothing read, nothing trained
    # the config's own out: the message names the config file and its field
    config = _config(tmp_path, data, f"out: {data}\n")
    code, _, err = _run(["train", str(config), "--overwrite"])
    assert code == 2 and config.name in err and "config field 'out'" in err and "must not hold the data read" in err
    assert _files(data) == before


def test_a_folder_holding_the_config_is_refused(data: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    config = _config(runs, data)
    code, _, err = _run(["train", str(config), "--out", str(runs), "--overwrite"])
    assert code == 2 and "must not hold the data read" in err and config.name in err
    assert config.is_file() and not (runs / "cache").exists()


def test_a_folder_holding_the_training_images_is_refused_once_the_data_is_read(data: Path, tmp_path: Path) -> None:
    """``--out shapes/train``: not the folder named by ``data`` but where its images are."""
    config = _config(tmp_path, data)
    before = _files(data)
    code, _, err = _run(["train", str(config), "--out", str(data / "train"), "--overwrite"])
    assert code == 2 and "must not hold the data read, got its images in" in err
    assert _files(data) == before and not (data / "train" / "model.json").exists()


def test_the_current_folder_and_a_workspace_are_refused_before_training(data: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path, data)
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    code, _, err = _run(["train", str(config), "--out", ".", "--overwrite"])
    assert code == 2 and "must not be the current folder" in err
    assert not (tmp_path / "cache").exists()  # refused before the images were read (before: after training)
    code, _, err = _run(["init", str(tmp_path / "ws")])
    assert code == 0, err
    code, _, err = _run(["train", str(config), "--out", str(tmp_path / "ws"), "--overwrite"])
    assert code == 2 and "must not hold a maslow workspace" in err
    assert (tmp_path / "ws" / "maslow.yaml").is_file() and (work / "notes.txt").read_text() == "mine"


def test_other_folders_still_need_overwrite_and_a_model_is_named(data: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, data)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    code, _, err = _run(["train", str(config), "--out", str(other)])
    assert code == 2 and "not empty" in err and "--overwrite" in err
    out = tmp_path / "m"
    code, _, err = _run(["train", str(config), "--out", str(out), "--json"])
    assert code == 0, err
    code, _, err = _run(["train", str(config), "--out", str(out)])
    assert code == 2 and f"--out {out}: holds a model (embed-logreg" in err
    code, out_text, err = _run(["train", str(config), "--out", str(other), "--overwrite", "--json"])
    assert code == 0, err
    assert json.loads(out_text)["path"] == str(other) and not (other / "notes.txt").exists()


def _fake_check_device(device: str | None) -> None:
    """A machine without CUDA, for CI without torch: as ``check_device`` refuses ``cuda`` there."""
    if device not in (None, "cpu"):
        raise MaslowError(f"config field 'device' must be a device of this machine, got {device!r} (0 cuda devices "
                          "available)")


def test_set_device_overrides_the_config_without_torch(data: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("maslow.models.base.check_device", _fake_check_device)
    config = _config(tmp_path, data, "device: cuda\n")
    code, _, err = _run(["train", str(config), "--set", "device=cpu", "--out", str(tmp_path / "m"), "--json"])
    assert code == 0, err
    assert json.loads((tmp_path / "m" / "model.json").read_text())["config"]["device"] == "cpu"
    code, _, err = _run(["train", str(config), "--out", str(tmp_path / "m2")])
    assert code == 2 and "light.yaml: config field 'device' must be a device of this machine" in err
    code, _, err = _run(["train", str(_config(tmp_path, data, name="plain.yaml")), "--set", "device=cuda:1",
                         "--out", str(tmp_path / "m3")])
    assert code == 2 and "--set: config field 'device' must be a device of this machine" in err
    assert not (tmp_path / "m2").exists() and not (tmp_path / "m3").exists()
    code, _, err = _run(["crossval", str(config), "--set", "device=cpu", "--folds", "2", "--out",
                         str(tmp_path / "oof.parquet"), "--json"])
    assert code == 0, err


def test_set_device_cpu_runs_a_cuda_config_on_a_machine_without_cuda(data: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = _config(tmp_path, data, "device: cuda\n")
    for args in (["train", str(config), "--out", str(tmp_path / "m")],
                 ["crossval", str(config), "--folds", "2", "--out", str(tmp_path / "oof.parquet")]):
        code, _, err = _run([*args, "--set", "device=cpu", "--json"])
        assert code == 0, err
    code, _, err = _run(["train", str(config), "--out", str(tmp_path / "m2")])
    assert code == 2 and "light.yaml: config field 'device'" in err and not (tmp_path / "m2").exists()
    code, _, err = _run(["qa", "--gt", str(data), "--from", "imagefolder", "--model", str(config),
                         "--out", str(tmp_path / "issues.json")])
    assert code == 2 and "light.yaml: config field 'device'" in err


def test_set_device_cpu_reaches_tune(data: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("optuna")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = _config(tmp_path, data, f"device: cuda\nout: {tmp_path / 'study'}\nsearch:\n  C: [1.0]\n")
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    code, _, err = _run(["tune", str(config), "--trials", "1", "--storage", storage, "--json"])
    assert code == 2 and "light.yaml: config field 'device'" in err
    code, _, err = _run(["tune", str(config), "--trials", "1", "--storage", storage, "--set", "device=cpu",
                         "--json"])
    assert code == 0, err


def test_overwrite_walks_the_model_folder_once(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check looks through the model folder for a workspace before any data is read; saving the model
    (``atomic_dir``) used to walk it again."""

    config = _config(tmp_path, data)
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "sub" / "notes.txt").write_text("mine")
    calls = count_workspace_walks(monkeypatch)
    code, _, err = _run(["train", str(config), "--out", str(other), "--overwrite", "--json"])
    assert code == 0, err
    assert calls == [other.resolve()] and (other / "model.json").is_file() and not (other / "sub").exists()
