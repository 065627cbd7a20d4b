from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity._graph import clusters_of
from maslow.diversity.duplicates import (
    DuplicateReport,
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
    assert t.hashes.shape == (3, 26) and t.valid.tolist() == [True, True, False]  # 8 flips + 2 x 9 crops
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


def _texture(rng: np.random.Generator, w: int, h: int, blur: float) -> Image.Image:
    """Smooth random grey texture, stretched to 0..255."""
    a = np.asarray(Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(blur)),
                   float)
    return Image.fromarray(((a - a.min()) / (np.ptp(a) or 1) * 255).astype(np.uint8))


def _folder_dataset(root: Path, files: list[Path], sizes: list[tuple[int, int]] | None = None) -> Dataset:
    if sizes is None:
        sizes = []
        for f in files:
            with Image.open(f) as im:
                sizes.append(im.size)
    images = Images(path=[f.relative_to(root).as_posix() for f in files], width=[s[0] for s in sizes],
                    height=[s[1] for s in sizes])
    return Dataset(LabelSchema.from_names(["x"]), images, Annotations(image=[], label=[]), root=root)


@pytest.fixture
def tiny_and_larger(tmp_path: Path) -> Dataset:
    """For sides 24 and 48: an image, a byte-identical copy, and a copy with one pixel changed (rows 0-2, 3-5)."""
    rng = np.random.default_rng(7)
    files = []
    for side in (24, 48):
        base = _texture(rng, side, side, side / 8)
        a = np.asarray(base).copy()
        a[side // 2, side // 2] = a[side // 2, side // 2] // 2 + 64
        base.save(tmp_path / f"{side}_a.png")
        shutil.copy(tmp_path / f"{side}_a.png", tmp_path / f"{side}_copy.png")
        Image.fromarray(a).save(tmp_path / f"{side}_pixel.png")
        files += [tmp_path / f"{side}_a.png", tmp_path / f"{side}_copy.png", tmp_path / f"{side}_pixel.png"]
    return _folder_dataset(tmp_path, files)


def test_images_under_min_side_get_exact_duplicates_only(tiny_and_larger: Dataset) -> None:
    ds = tiny_and_larger
    every = find_duplicates(ds, min_side=0)  # all hashed: a one-pixel change is a near duplicate at both sizes
    assert {(0, 1), (0, 2), (1, 2), (3, 4), (3, 5), (4, 5)} <= {tuple(p) for p in every.pairs.tolist()}
    assert every.small.tolist() == [] and every.min_side == 0
    r = find_duplicates(ds)  # default: 32 pixels a side
    got = dict(zip(map(tuple, r.pairs.tolist()), r.kind, strict=True))
    assert got[(0, 1)] == "exact" and got[(3, 4)] == "exact" and got[(3, 5)] == "near"
    assert (0, 2) not in got and (1, 2) not in got  # the 24-pixel images were not hashed
    assert r.small.tolist() == [0, 1, 2] and r.min_side == 32
    assert [(c.images, c.kind) for c in r.clusters] == [((3, 4, 5), "near"), ((0, 1), "exact")]
    d = r.to_dict()
    assert d["min_side"] == 32 and d["n_small"] == 3
    assert find_duplicates(ds, near=False).small.tolist() == []  # nothing is hashed without near
    with pytest.raises(MaslowError, match="min_side must be >= 0"):
        find_duplicates(ds, min_side=-1)


def test_min_side_uses_the_decoded_size_when_the_table_has_none(tiny_and_larger: Dataset) -> None:
    unknown = tiny_and_larger.replace(images=Images(path=tiny_and_larger.images.path, width=[0] * 6,
                                                    height=[0] * 6))
    r = find_duplicates(unknown)
    assert r.small.tolist() == [0, 1, 2]
    assert {(0, 1), (3, 4), (3, 5), (4, 5)} <= {tuple(p) for p in r.pairs.tolist()}
    assert (0, 2) not in {tuple(p) for p in r.pairs.tolist()}


def test_min_side_is_the_shorter_side(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    strip = _texture(rng, 200, 20, 3)
    strip.save(tmp_path / "a.png")
    a = np.asarray(strip).copy()
    a[10, 100] = a[10, 100] // 2 + 64
    Image.fromarray(a).save(tmp_path / "b.png")
    ds = _folder_dataset(tmp_path, [tmp_path / "a.png", tmp_path / "b.png"])
    assert find_duplicates(ds).small.tolist() == [0, 1] and len(find_duplicates(ds).pairs) == 0
    assert find_duplicates(ds, min_side=20).pairs.tolist() == [[0, 1]]


def _check_stars(r: DuplicateReport) -> None:
    """Every dropped image is a duplicate (a pair) of its cluster's kept image; clusters are disjoint."""
    pairs = {tuple(p) for p in r.pairs.tolist()}
    seen: set[int] = set()
    for c in r.clusters:
        assert c.keep in c.images and not seen & set(c.images)
        seen |= set(c.images)
        for i in c.drop:
            assert (min(i, c.keep), max(i, c.keep)) in pairs, (c, i)


def test_a_chain_of_shifted_frames_is_not_one_cluster(tmp_path: Path) -> None:
    """24 windows of one smooth texture, each 4 pixels right of the previous: a pan of a video camera."""
    wide = _texture(np.random.default_rng(0), 1000, 240, 25)
    files = []
    for k in range(24):
        files.append(tmp_path / f"{k:02d}.png")
        wide.crop((4 * k, 0, 4 * k + 320, 240)).save(files[-1])
    ds = _folder_dataset(tmp_path, files)
    r = find_duplicates(ds)
    pairs = {tuple(p) for p in r.pairs.tolist()}
    # the construction: neighbours are near duplicates, the ends are not, and no frame is near both ends
    assert all((k, k + 1) in pairs for k in range(23))
    assert not any((0, k) in pairs and (k, 23) in pairs for k in range(1, 23)) and (0, 23) not in pairs
    assert len(clusters_of(24, r.pairs)) == 1  # connected components chain all 24 frames together
    _check_stars(r)
    assert len(r.clusters) > 1 and not any({0, 23} <= set(c.images) for c in r.clusters)
    assert len(r.to_drop) == sum(len(c.images) - 1 for c in r.clusters) < 23


def test_a_chain_of_embeddings_keeps_each_drop_near_its_kept_image(tmp_path: Path) -> None:
    """Unit vectors 10 degrees apart at cosine >= cos(15 degrees): each is a duplicate of its two neighbours only."""
    rng = np.random.default_rng(1)
    files = []
    for k in range(9):
        files.append(tmp_path / f"{k}.png")
        _draw(rng).save(files[-1])
    ds = _folder_dataset(tmp_path, files)
    angle = np.radians(10 * np.arange(9))
    f = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    r = find_duplicates(ds, near=False, features=f, cosine=float(np.cos(np.radians(15))))
    assert r.pairs.tolist() == [[k, k + 1] for k in range(8)]
    # same size and file order decide the keep order: the largest file first; each takes its free neighbours
    _check_stars(r)
    assert all(len(c.images) <= 3 and c.kind == "semantic" for c in r.clusters)
    assert len(r.to_drop) <= 6  # at least 3 kept images are needed to cover a path of 9 with stars of 3


def test_identical_files_stay_together(tmp_path: Path) -> None:
    """k (largest) ~ n ~ e = e2 (same bytes), k not ~ e: k takes n; e and e2 still form an exact cluster."""
    rng = np.random.default_rng(2)
    for name in ("k", "n", "e"):
        _draw(rng).save(tmp_path / f"{name}.png")
    shutil.copy(tmp_path / "e.png", tmp_path / "e2.png")
    files = [tmp_path / f"{n}.png" for n in ("k", "n", "e", "e2")]
    ds = _folder_dataset(tmp_path, files, sizes=[(640, 480), (320, 240), (320, 240), (320, 240)])
    angle = np.radians([0, 20, 40, 40])
    f = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    r = find_duplicates(ds, near=False, features=f, cosine=float(np.cos(np.radians(25))))
    assert [(c.images, c.keep, c.kind) for c in r.clusters] == [((0, 1), 0, "semantic"), ((2, 3), 2, "exact")]
    # the same with e and e2 linked to k: the identical pair joins k's cluster whole
    f2 = np.stack([np.cos(np.radians([0, 20, 20, 20])), np.sin(np.radians([0, 20, 20, 20]))], axis=1)
    r2 = find_duplicates(ds, near=False, features=f2, cosine=float(np.cos(np.radians(25))))
    assert [(c.images, c.keep) for c in r2.clusters] == [((0, 1, 2, 3), 0)]


def test_cross_split_pairs_are_flagged_whatever_the_clusters(tmp_path: Path) -> None:
    """k (train) takes n (train); e (test) is near n only: a leak no cluster shows, flagged on the pair."""
    rng = np.random.default_rng(3)
    for name in ("k", "n", "e"):
        _draw(rng).save(tmp_path / f"{name}.png")
    images = Images(path=["k.png", "n.png", "e.png"], width=[640, 320, 320], height=[480, 240, 240],
                    split=["train", "train", "test"])
    ds = Dataset(LabelSchema.from_names(["x"]), images, Annotations(image=[], label=[]), root=tmp_path)
    angle = np.radians([0, 20, 40])
    f = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    r = find_duplicates(ds, near=False, features=f, cosine=float(np.cos(np.radians(25))))
    assert r.pairs.tolist() == [[0, 1], [1, 2]] and r.cross_split.tolist() == [False, True]
    assert [c.images for c in r.clusters] == [(0, 1)] and r.leaks == ()
    d = r.to_dict()
    assert d["n_cross_split_pairs"] == 1 and [p["cross_split"] for p in d["pairs"]] == [False, True]


@pytest.mark.shared
def test_mnist_digits_are_too_small_to_hash() -> None:
    from maslow import io
    from tests.conftest import shared_path

    ds = io.read_mnist(shared_path("mnist_test"))
    r = find_duplicates(ds)
    assert len(r.small) == ds.n_images == 10_000  # 28 x 28 < 32: no perceptual hash
    assert set(r.kind) <= {"exact"} and all(c.kind == "exact" for c in r.clusters)
    assert len(r.to_drop) == sum(len(c.images) - 1 for c in r.clusters)


@pytest.mark.shared
def test_camvid_frames_are_clustered_around_kept_frames() -> None:
    from maslow import io
    from tests.conftest import shared_path

    ds = io.read_semantic(shared_path("camvid_val", "annotations"))
    r = find_duplicates(ds)
    frame = ds.images.extra["frame"]
    first, last = int(np.argmin(frame)), int(np.argmax(frame))
    pairs = {tuple(p) for p in r.pairs.tolist()}
    assert (min(first, last), max(first, last)) not in pairs  # 200 frames apart: not near
    assert len(clusters_of(ds.n_images, r.pairs)) == 1  # and yet one chain of near pairs joins them
    _check_stars(r)
    assert not any({first, last} <= set(c.images) for c in r.clusters)
    assert len(r.clusters) > 1
