"""A run stopped by an unreadable image (or interrupted) keeps the vectors it computed before: the cache was written
per 2,048-image chunk, only after the whole chunk, so a folder of 48 images and a bad 49th cached nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.embed import EmbeddingCache, LightEmbedder, embed
from maslow.errors import FormatError
from tests.helpers import run_cli_streams


def _images(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    paths = []
    for i in range(n):
        p = folder / f"im{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


def _cached(cache: Path) -> int:
    return len(EmbeddingCache(cache, LightEmbedder().name))


@pytest.mark.parametrize(("bad", "batch_size"), [(9, 64), (6, 4), (4, 4), (0, 4)])
def test_the_vectors_before_an_unreadable_image_stay_in_the_cache(tmp_path: Path, bad: int, batch_size: int) -> None:
    paths = _images(tmp_path / "img", 10)
    good = paths[bad].read_bytes()
    paths[bad].write_bytes(b"not an image")
    with pytest.raises(FormatError, match=paths[bad].name):
        embed(paths, embedder="light", cache_dir=tmp_path / "c", batch_size=batch_size)
    assert _cached(tmp_path / "c") == bad  # every image before the bad one, whatever batch it was in
    paths[bad].write_bytes(good)
    computed: list[int] = []
    again = embed(paths, embedder="light", cache_dir=tmp_path / "c", batch_size=batch_size,
                  progress=lambda done, total: computed.append(total))
    assert set(computed) == {10 - bad}  # the rerun embeds only the bad image and those after it
    np.testing.assert_allclose(again, embed(paths, embedder="light", use_cache=False), atol=1e-6)


class _Interrupted(LightEmbedder):
    """The light embedder, interrupted (Ctrl-C) at its third call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def embed(self, paths: Sequence[str | Path], *, batch_size: int = 64,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        self.calls += 1
        if self.calls == 3:
            raise KeyboardInterrupt
        return super().embed(paths, batch_size=batch_size, progress=progress)


def test_an_interrupted_run_keeps_its_finished_batches(tmp_path: Path) -> None:
    paths = _images(tmp_path / "img", 10)
    with pytest.raises(KeyboardInterrupt):
        embed(paths, embedder=_Interrupted(), cache_dir=tmp_path / "c", batch_size=3)
    cache = EmbeddingCache(tmp_path / "c", LightEmbedder().name)
    assert len(cache) == 6
    from maslow.embed import content_hash

    rows, found = cache.get([content_hash(p) for p in paths], 256)
    assert found.tolist() == [True] * 6 + [False] * 4
    np.testing.assert_allclose(rows[:6], LightEmbedder().embed(paths[:6]), atol=1e-6)


def test_maslow_embed_keeps_the_vectors_before_a_bad_file(tmp_path: Path) -> None:
    """The audit's run: 48 good images, a bad one sorted last; exit 2 naming it, and the 48 vectors cached."""
    _images(tmp_path / "img", 48)
    (tmp_path / "img" / "zzz_bad.jpg").write_bytes(b"hello")
    args = ["embed", str(tmp_path / "img"), "--embedder", "light", "--cache-dir", str(tmp_path / "c"), "-o",
            str(tmp_path / "f.npy")]
    code, _, err = run_cli_streams(args)
    assert code == 2 and "zzz_bad.jpg" in err and not (tmp_path / "f.npy").exists()
    assert _cached(tmp_path / "c") == 48
    (tmp_path / "img" / "zzz_bad.jpg").unlink()
    code, out, err = run_cli_streams([*args, "--json"])
    assert code == 0, err
    assert json.loads(out)["n_images"] == 48 and _cached(tmp_path / "c") == 48
