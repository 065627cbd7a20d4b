"""Hash variants: flipped and rotated copies, 95% crops, the numpy DCT (against scipy's), no scipy needed, and a
search index sized to the data."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity.duplicates import (
    FLIPS,
    _flipped,
    _low_dct,
    find_duplicates,
    image_hashes,
    search_hashes,
    variant_names,
)

# numpy's own flips and turns of an (h, w) array, named as FLIPS
TURNS = {
    "full": lambda a: a, "mirror": lambda a: a[:, ::-1], "flip": lambda a: a[::-1], "rot180": lambda a: a[::-1, ::-1],
    "transpose": lambda a: a.T, "rot90": np.rot90, "rot270": lambda a: np.rot90(a, 3),
    "transverse": lambda a: a[::-1, ::-1].T,
}


def _picture(rng: np.random.Generator, w: int = 320, h: int = 240) -> Image.Image:
    """A textured colour picture with shapes (no symmetry: every flip or turn of it looks different)."""
    noise = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    im = Image.fromarray(noise).resize((w, h), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(3))
    d = ImageDraw.Draw(im)
    for _ in range(5):
        x0, y0 = int(rng.integers(0, w - 80)), int(rng.integers(0, h - 80))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = [x0, y0, x0 + int(rng.integers(30, 80)), y0 + int(rng.integers(30, 80))]
        (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=fill)
    return im


def _dataset(root: Path, files: list[str]) -> Dataset:
    sizes = []
    for f in files:
        with Image.open(root / f) as im:
            sizes.append(im.size)
    images = Images(path=files, width=[s[0] for s in sizes], height=[s[1] for s in sizes])
    return Dataset(LabelSchema.from_names(["x"]), images, Annotations(image=[], label=[]), root=root)


def test_numpy_dct_equals_scipy_dctn() -> None:
    fft = pytest.importorskip("scipy.fft")
    g = np.random.default_rng(0).random((7, 3, 32, 32)) * 255
    ref = fft.dctn(g, type=2, axes=(-2, -1), norm="ortho")[..., :8, :8]
    np.testing.assert_allclose(_low_dct(g), ref, rtol=0, atol=1e-9)


def test_flip_variants_are_the_dct_of_numpys_flips_and_turns() -> None:
    x = np.random.default_rng(1).random((32, 32))
    got = dict(zip(FLIPS, _flipped(_low_dct(x)), strict=True))
    assert set(TURNS) == set(FLIPS)
    for name, turn in TURNS.items():
        np.testing.assert_allclose(got[name], _low_dct(np.ascontiguousarray(turn(x))), atol=1e-9, err_msg=name)


def test_flipped_and_rotated_copies_are_near_duplicates(tmp_path: Path) -> None:
    """Augmentation exports hold vertical flips and quarter turns: each is found, and no two originals pair."""
    rng = np.random.default_rng(3)
    files, group = [], []
    for g in range(4):
        im = _picture(rng)
        for k, (name, op) in enumerate([("orig", None), ("flip", Image.Transpose.FLIP_TOP_BOTTOM),
                                        ("rot90", Image.Transpose.ROTATE_90), ("rot180", Image.Transpose.ROTATE_180),
                                        ("rot270", Image.Transpose.ROTATE_270), ("transpose", Image.Transpose.TRANSPOSE)]):
            out = im if op is None else im.transpose(op)
            out.save(tmp_path / f"{g}_{k}_{name}.jpg", quality=85)
            files.append(f"{g}_{k}_{name}.jpg")
            group.append(g)
    r = find_duplicates(_dataset(tmp_path, files))
    pairs = {tuple(p) for p in r.pairs.tolist()}
    grp = np.asarray(group)
    for g in range(4):
        orig = 6 * g
        assert {(orig, orig + k) for k in range(1, 6)} <= pairs, (g, sorted(pairs))
    assert all(grp[a] == grp[b] for a, b in pairs)  # nothing across originals
    assert sorted(len(c.images) for c in r.clusters) == [6, 6, 6, 6]


def test_crops_keeping_95_percent_at_the_corners_are_found(tmp_path: Path) -> None:
    """The 90% crop grid alone missed crops between 90% and 100% (11-13% of 90-96% crops in the benchmark)."""
    rng = np.random.default_rng(4)
    files, n = [], 6
    for g in range(n):
        im = _picture(rng)
        im.save(tmp_path / f"{g}_orig.jpg", quality=90)
        files.append(f"{g}_orig.jpg")
        w, h = im.size
        cw, ch = round(0.95 * w), round(0.95 * h)
        for k, (x, y) in enumerate([(0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch)]):
            im.crop((x, y, x + cw, y + ch)).save(tmp_path / f"{g}_crop{k}.jpg", quality=90)
            files.append(f"{g}_crop{k}.jpg")
    r = find_duplicates(_dataset(tmp_path, files))
    pairs = {tuple(p) for p in r.pairs.tolist()}
    missed = [(5 * g, 5 * g + k) for g in range(n) for k in range(1, 5) if (5 * g, 5 * g + k) not in pairs]
    assert missed == []
    assert all(a // 5 == b // 5 for a, b in pairs)


def test_hash_table_columns_are_the_variant_names(tmp_path: Path) -> None:
    _picture(np.random.default_rng(5)).save(tmp_path / "a.png")
    t = image_hashes([tmp_path / "a.png"])
    names = variant_names()
    assert t.hashes.shape == (1, len(names)) == (1, 26)
    assert names[:8] == FLIPS and names[8] == "crop_0_0" and names[17] == "crop95_0_0"
    assert len(set(t.hashes[0].tolist())) > 20  # the variants are different hashes


def test_hashing_needs_no_scipy(tmp_path: Path) -> None:
    """scipy is not one of maslow's dependencies: ``maslow diversity duplicates`` failed without it."""
    _picture(np.random.default_rng(6)).save(tmp_path / "a.png")
    code = ("import sys; sys.modules['scipy'] = None\n"  # any 'import scipy...' now raises ImportError
            "from maslow.diversity.duplicates import image_hashes\n"
            f"t = image_hashes([{str(tmp_path / 'a.png')!r}])\n"
            "assert t.valid.all(), t.errors\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_search_index_is_sized_to_the_data() -> None:
    """Tables of 2^22 slots (70 MB) were built for every search, however few the hashes."""
    rng = np.random.default_rng(7)
    stored = rng.integers(0, 2**63, size=26_000, dtype=np.int64).astype(np.uint64)
    queries = stored[::26].copy()
    queries[::2] ^= np.uint64(0b10110)  # 3 bits off
    tracemalloc.start()
    try:
        qi, si, d = search_hashes(queries, stored, 8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000, peak
    assert sorted(zip(qi.tolist(), si.tolist(), strict=True)) == [(i, 26 * i) for i in range(len(queries))]
    assert d.tolist() == [3 if i % 2 == 0 else 0 for i in range(len(queries))]
