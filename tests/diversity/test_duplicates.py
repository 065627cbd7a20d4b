from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity.duplicates import (
    find_duplicates,
    hamming,
    image_hashes,
    search_hashes,
    semantic_pairs,
)
from maslow.errors import MaslowError

TRANSFORMS = ("jpeg", "resize", "bright", "crop", "mirror")


def _draw(rng: np.random.Generator, w: int = 320, h: int = 240) -> Image.Image:
    im = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        x1, y1 = x0 + int(rng.integers(40, w // 2)), y0 + int(rng.integers(40, h // 2))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)([x0, y0, x1, y1], fill=fill)
    return im


def _transform(im: Image.Image, name: str, rng: np.random.Generator) -> Image.Image:
    w, h = im.size
    if name == "resize":
        return im.resize((w // 2, h // 2), Image.Resampling.BILINEAR)
    if name == "bright":
        return ImageEnhance.Brightness(im).enhance(1.3)
    if name == "crop":
        x0, y0 = int(rng.integers(0, w // 10 + 1)), int(rng.integers(0, h // 10 + 1))
        return im.crop((x0, y0, x0 + int(0.9 * w), y0 + int(0.9 * h)))
    if name == "mirror":
        return ImageOps.mirror(im)
    return im


def _dataset(root: Path, n: int = 8, seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """n originals (train) + 5 transformed copies each (val); returns the dataset and each row's original."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True)
    paths, sizes, group, split = [], [], [], []
    for g in range(n):
        im = _draw(rng)
        for name in ("orig", *TRANSFORMS):
            out = _transform(im, name, rng) if name != "orig" else im
            rel = f"img/{g:02d}_{name}.jpg"
            out.save(root / rel, quality=40 if name == "jpeg" else 92)
            paths.append(rel), sizes.append(out.size), group.append(g)
            split.append("train" if name == "orig" else "val")
    images = Images(path=paths, width=[s[0] for s in sizes], height=[s[1] for s in sizes], split=split)
    ds = Dataset(LabelSchema.from_names(["x"]), images, Annotations(image=[], label=[]), root=root)
    return ds, np.asarray(group)


def test_every_transformation_found_and_distinct_images_apart(tmp_path: Path) -> None:
    ds, group = _dataset(tmp_path)
    r = find_duplicates(ds)
    pairs = r.pairs
    assert len(pairs) > 0
    # no false pair: every pair joins copies of one original
    assert (group[pairs[:, 0]] == group[pairs[:, 1]]).all()
    # every copy is in its original's cluster (a 10% crop may match through another copy)
    assert len(r.clusters) == group.max() + 1
    for c in r.clusters:
        assert len(c.images) == 6 and c.kind == "near"
        assert c.keep == c.images[0] or ds.images.width[c.keep] * ds.images.height[c.keep] >= 320 * 240
        assert c.leak and c.splits == ("train", "val")
    assert len(r.leaks) == len(r.clusters)
    assert len(r.to_drop) == 5 * (group.max() + 1)


def test_exact_duplicates_and_keep_rule(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    (tmp_path / "a").mkdir()
    for i in range(3):
        _draw(rng).save(tmp_path / "a" / f"{i}.png")
    shutil.copy(tmp_path / "a" / "1.png", tmp_path / "a" / "1_copy.png")
    images = Images(path=["a/0.png", "a/1.png", "a/2.png", "a/1_copy.png"], width=[320] * 4, height=[240] * 4,
                    split=["train", "train", "train", "train"])
    ds = Dataset(LabelSchema.from_names(["x"]), images, Annotations(image=[], label=[]), root=tmp_path)
    for near in (True, False):
        r = find_duplicates(ds, near=near)
        assert r.pairs.tolist() == [[1, 3]] and r.kind == ("exact",) and r.distance.tolist() == [0.0]
        (c,) = r.clusters
        assert c.kind == "exact" and c.keep == 1 and c.drop == (3,)  # same size: the first row is kept
        assert not c.leak and r.leaks == ()


def test_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    images = Images(path=["missing.jpg", "also_missing.jpg"], width=[10, 10], height=[10, 10])
    ds = Dataset(LabelSchema.from_names(["x"]), images, Annotations(image=[], label=[]), root=tmp_path)
    r = find_duplicates(ds)
    assert [i for i, _ in r.unreadable] == [0, 1] and len(r.pairs) == 0
    assert r.to_dict()["unreadable"][0]["image"] == "missing.jpg"


def test_hash_table_variants(tmp_path: Path) -> None:
    im = _draw(np.random.default_rng(5))
    im.save(tmp_path / "a.jpg")
    ImageOps.mirror(im).save(tmp_path / "b.jpg")
    t = image_hashes([tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "nope.jpg"])
    assert t.hashes.shape == (3, 11) and t.valid.tolist() == [True, True, False]
    assert t.pixels[0] == 320 * 240 and t.errors[0][0] == 2
    # the stored mirror hash of one is (nearly) the full hash of the other
    assert hamming(t.hashes[0, 1], t.hashes[1, 0]) <= 4


def test_multi_index_search_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**62, size=3000, dtype=np.int64).astype(np.uint64)
    flips = rng.integers(0, 64, size=(3000, 6))
    near = base.copy()
    for k in range(6):  # planted pairs at distance <= 6
        near[::3] ^= np.uint64(1) << flips[::3, k].astype(np.uint64)
    stored = np.concatenate([base, near])
    for threshold in (0, 3, 8):
        qi, si, d = search_hashes(base, stored, threshold)  # 18M pairs: multi-index path
        full = hamming(base[:, None], stored[None, :])
        bq, bs = np.nonzero(full <= threshold)
        assert sorted(zip(qi.tolist(), si.tolist(), strict=True)) == sorted(zip(bq.tolist(), bs.tolist(),
                                                                                strict=True))
        assert (d == full[qi, si]).all()
    with pytest.raises(MaslowError, match="threshold must be in"):
        search_hashes(base, stored, 40)


def test_semantic_pairs() -> None:
    f = np.array([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.0, 0.0]])
    pairs, sim = semantic_pairs(f, threshold=0.95)
    assert pairs.tolist() == [[0, 1]] and sim[0] == pytest.approx(0.99 / np.hypot(0.99, 0.05))
    with pytest.raises(MaslowError, match=r"must be \(m, d\)"):
        semantic_pairs(np.zeros(3))


def test_semantic_duplicates_in_report(tmp_path: Path) -> None:
    ds, _ = _dataset(tmp_path, n=2)
    f = np.eye(ds.n_images)
    f[1] = f[0]  # rows 0 and 1 are already near; rows 2 and 8 only semantic
    f[8] = f[2]
    r = find_duplicates(ds, near=False, features=f, cosine=0.99)
    assert r.pairs.tolist() == [[0, 1], [2, 8]] and r.kind == ("semantic", "semantic")
    with pytest.raises(MaslowError, match="one row per image"):
        find_duplicates(ds, near=False, features=f[:3])


def test_idx_members_are_hashed_by_pixels() -> None:
    from maslow.diversity.duplicates import file_digest
    from tests.conftest import shared_path

    f = shared_path("mnist_test", "images", "t10k-images-idx3-ubyte.gz")
    a, b = f.with_name(f.name + "#0"), f.with_name(f.name + "#1")
    assert file_digest(a) == file_digest(a) != file_digest(b)
    t = image_hashes([a, b])
    assert t.valid.all() and t.pixels.tolist() == [784, 784]
