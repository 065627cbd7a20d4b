"""Level-1 audit findings on ``select``: JSON ranks from 1, unreadable images held back (not fatal), and an outlier
gate that holds back isolated images, not a sparser genuine group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.diversity.select import folder_dataset, select
from maslow.errors import FormatError
from tests.helpers import run_cli


def _folder(tmp_path: Path, n: int = 8, *, garbage: int = 1) -> Path:
    """``n`` distinct textured images plus ``garbage`` files that only look like images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir(parents=True)
    for i in range(n):
        base = rng.uniform(0, 255, 3)
        arr = np.clip(base + rng.normal(0, 40, (64, 80, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"img_{i:02d}.png")
    for j in range(garbage):
        (folder / f"zz_broken_{j}.jpg").write_bytes(b"not an image at all" * 10)
    return folder


def test_json_ranks_count_from_1_like_the_table(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 6))
    sel = select(x, budget=5, rng=0)
    picks = sel.to_dict()["picks"]
    assert [p["rank"] for p in picks] == [1, 2, 3, 4, 5]
    assert [p["image"] for p in picks] == [int(sel.order[p["rank"] - 1]) for p in picks]

    folder = _folder(tmp_path, garbage=0)
    code, out = run_cli(["select", str(folder), "--budget", "4", "--embedder", "light", "--cache-dir",
                         str(tmp_path / "cache"), "--json"])
    assert code == 0, out
    assert [p["rank"] for p in json.loads(out)["picks"]] == [1, 2, 3, 4]


def test_unreadable_images_are_held_back_not_fatal(tmp_path: Path) -> None:
    ds = folder_dataset(_folder(tmp_path, garbage=2))
    broken = [i for i, p in enumerate(ds.images.path.tolist()) if "broken" in p]
    sel = select(ds, budget=ds.n_images, embedder="light", cache_dir=tmp_path / "cache", rng=0)
    assert sorted(sel.order.tolist()) == list(range(ds.n_images))
    assert sorted(sel.order[-2:].tolist()) == broken  # behind every readable image
    reasons = dict(zip(sel.gated.tolist(), sel.gate_reason.tolist(), strict=True))
    assert all(reasons[i].startswith("unreadable") and "zz_broken" in reasons[i] for i in broken)
    # the readable images are ordered as if the broken files were not there
    readable = ds.select_images(np.array([i not in broken for i in range(ds.n_images)]))
    alone = select(readable, budget=readable.n_images, embedder="light", cache_dir=tmp_path / "cache", rng=0)
    assert [ds.images.path[i] for i in sel.order[:-2]] == [readable.images.path[i] for i in alone.order]


def test_unreadable_images_without_the_gate_or_all_unreadable_name_the_file(tmp_path: Path) -> None:
    ds = folder_dataset(_folder(tmp_path, n=3, garbage=1))
    with pytest.raises(FormatError, match=r"zz_broken_0\.jpg"):
        select(ds, budget=2, embedder="light", cache_dir=tmp_path / "cache", quality_gate=False)
    only = folder_dataset(_folder(tmp_path / "b", n=0, garbage=2))
    with pytest.raises(FormatError, match="none of the 2 images can be read"):
        select(only, budget=2, embedder="light", cache_dir=tmp_path / "cache")


def two_cameras_and_glitches() -> np.ndarray:
    """(48, 16) features: 30 near-identical images (one camera), 16 spread ones (another, genuine), then 2 isolated
    glitches (rows 46 and 47)."""
    rng = np.random.default_rng(3)
    d = 16
    dense = rng.normal(0, 0.01, (30, d))
    sparse = rng.normal(0, 0.3, (16, d)) + np.r_[3.0, np.zeros(d - 1)]
    glitch = np.r_[np.zeros(d - 1), 12.0] + rng.normal(0, 1.0, (2, d)) * np.r_[np.ones(d - 1), 0.0]
    return np.vstack([dense, sparse, glitch])


def test_gate_holds_back_isolated_images_not_a_sparser_group() -> None:
    """30 near-identical images (one camera), 16 spread ones (another, genuine) and 2 isolated glitches: the old
    gate (global MAD only) held back most of the second camera, since its images are far from each other."""
    x = two_cameras_and_glitches()
    sel = select(x, budget=len(x), rng=0)
    assert sorted(sel.gated.tolist()) == [46, 47]
    assert sorted(sel.order[-2:].tolist()) == [46, 47]
    assert len(set(sel.order[:10].tolist()) & set(range(30, 46))) >= 3  # the second camera among the first picks
    # the global test alone (gate_ratio 0) is the old gate: it held back the sparse group
    old = select(x, budget=len(x), rng=0, gate_ratio=0.0)
    assert len(set(old.gated.tolist()) & set(range(30, 46))) >= 8


def test_a_short_clip_unlike_every_other_video_is_not_held_back() -> None:
    """Eight videos, each its own scene (200, 5, 5, 40, 3, 60, 10 and 2 frames): the outlier gate held back the
    3- and 2-frame clips whole, so they came last (ranks 321-325 of 325) and the first picks missed two videos. A
    glitch among its own video's frames, and an isolated still, are still held back."""
    rng = np.random.default_rng(0)
    sizes = [200, 5, 5, 40, 3, 60, 10, 2]
    centres = rng.normal(size=(len(sizes), 16)) * 3
    x = np.concatenate([c + rng.normal(size=(n, 16)) * 0.3 for c, n in zip(centres, sizes, strict=True)])
    seq = np.repeat(np.array([f"v{k}" for k in range(len(sizes))], dtype=object), sizes)
    glitch = np.array([0, 50])  # two frames of the long video, far from everything
    x[glitch] += rng.normal(size=(2, 16)) * 25
    still = np.concatenate([x, rng.normal(size=(1, 16)) * 3 + 40])  # an image without a video, far away
    seq_still = np.concatenate([seq, np.array([None], dtype=object)])
    sel = select(still, budget=len(still), sequence=seq_still, rng=0)
    assert sorted(sel.gated.tolist()) == [0, 50, len(x)]  # the glitches and the still, not the clips
    assert set(seq_still[sel.order[:len(sizes)]].tolist()) == set(seq.tolist())  # every video among the first picks
    alone = select(x[:200], budget=200, sequence=seq[:200], rng=0)  # one video: its glitches are held back too
    assert sorted(alone.gated.tolist()) == [0, 50]
    assert not set(sel.order[:len(sizes)].tolist()) & {0, 50, len(x)}
