"""Many duplicates of each other (blank frames, a static camera, near-identical embeddings): the result equals a
brute-force reference of the documented behaviour (before the 2026 fix it was built from Python dicts, with the
same answer), and the work no longer grows with the pairs found once per block and per stored variant.

The audit of 2026 measured 1,000 identical 64 x 48 PNGs at 44 s and 4.5 GB, 4,000 identical files (exact only) at
36 s and 1.24 GB, 2,000 near-identical feature rows at 31 s and 1.6 GB: ``search_hashes`` kept every (query,
stored variant) pair of every block until the end, and ``find_duplicates`` put every pair in a Python dict.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity import _search
from maslow.diversity._search import hash_pairs, search_hashes
from maslow.diversity.duplicates import find_duplicates, image_hashes, semantic_pairs

# --- reference: all pairs by brute force, clusters by the documented star rule in plain Python -----------------


def _ref_stars(m: int, edges: set[tuple[int, int]], order: list[int]) -> list[list[int]]:
    adj: dict[int, set[int]] = {}
    for a, b in edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    taken = [False] * m
    out = []
    for c in order:
        if taken[c]:
            continue
        taken[c] = True
        nb = sorted(n for n in adj.get(c, ()) if not taken[n])
        for n in nb:
            taken[n] = True
        if nb:
            out.append([c, *nb])
    return out


def _reference(ds: Dataset, threshold: int, features: np.ndarray | None, cosine: float, min_side: int = 32) -> dict:
    """Pairs (exact over near over semantic), distances and clusters, every pair compared."""
    m = ds.n_images
    paths = [Path(ds.root) / p for p in ds.images.path.tolist()]
    digests: list[str | None] = []
    for p in paths:
        try:
            digests.append(hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest())
        except OSError:
            digests.append(None)
    sizes = [p.stat().st_size if p.exists() else 0 for p in paths]
    w, h = ds.images.width.astype(np.int64), ds.images.height.astype(np.int64)
    pixels = (w * h).tolist()
    kind: dict[tuple[int, int], tuple[str, float]] = {}
    for i in range(m):
        for j in range(i + 1, m):
            if digests[i] is not None and digests[i] == digests[j]:
                kind[(i, j)] = ("exact", 0.0)
    small = (w > 0) & (h > 0) & (np.minimum(w, h) < min_side)  # from the sizes given: not decoded
    hashed = [i for i in range(m) if digests[i] is not None and not small[i]]
    table = image_hashes([paths[i] for i in hashed])
    ok = [k for k in range(len(hashed)) if table.valid[k] and table.side[k] >= min_side]
    ok = np.asarray(ok, np.int64)
    hs = table.hashes[ok]
    d = np.bitwise_count(hs[:, 0][:, None, None] ^ hs[None, :, :]).min(axis=2)  # full of x against variants of y
    d = np.minimum(d, d.T)
    for x, y in zip(*np.nonzero(d <= threshold), strict=True):
        if x < y:
            kind.setdefault((hashed[ok[x]], hashed[ok[y]]), ("near", float(d[x, y])))
    if features is not None:
        f = features / np.linalg.norm(features, axis=1, keepdims=True)
        sim = f @ f.T
        for i in range(m):
            for j in range(i + 1, m):
                if sim[i, j] >= cosine:
                    kind.setdefault((i, j), ("semantic", 1.0 - float(sim[i, j])))
    order = sorted(range(m), key=lambda i: (-pixels[i], -sizes[i], i))
    unit = list(range(m))
    first: dict[str, int] = {}
    for i in order:
        if digests[i] is not None:
            unit[i] = first.setdefault(digests[i], i)
    unit_kinds: dict[tuple[int, int], set[str]] = {}
    for (a, b), (k, _) in kind.items():
        if unit[a] != unit[b]:
            unit_kinds.setdefault((min(unit[a], unit[b]), max(unit[a], unit[b])), set()).add(k)
    members = {u: [i for i in range(m) if unit[i] == u] for u in set(unit)}
    stars = _ref_stars(m, set(unit_kinds), order)
    clustered = {u for s in stars for u in s}
    stars += [[u] for u in order if unit[u] == u and len(members[u]) > 1 and u not in clustered]
    clusters = []
    for s in stars:
        imgs = sorted(i for u in s for i in members[u])
        if len(s) == 1:
            k = "exact"
        else:
            linked = set().union(*(unit_kinds[(min(s[0], u), max(s[0], u))] for u in s[1:]))
            k = "near" if "near" in linked else "semantic"
        clusters.append((tuple(imgs), s[0], k))
    clusters.sort(key=lambda c: (-len(c[0]), c[0][0]))
    return {"kind": kind, "clusters": clusters}


def _assert_same(r, ref: dict, *, semantic_tol: float = 1e-12) -> None:
    got = {tuple(p): (k, d) for p, k, d in zip(r.pairs.tolist(), r.kind, r.distance.tolist(), strict=True)}
    assert r.pairs.tolist() == sorted(map(list, got))  # sorted by i then j, each pair once
    assert set(got) == set(ref["kind"])
    for p, (k, d) in ref["kind"].items():
        assert got[p][0] == k, p
        assert got[p][1] == pytest.approx(d, abs=semantic_tol if k == "semantic" else 0), p
    assert [(c.images, c.keep, c.kind) for c in r.clusters] == ref["clusters"]


# --- a folder of many duplicates ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """300 images: 120 byte-identical blank PNGs, 100 near-identical noisy JPEG frames of one picture (every tenth
    with 2 byte copies), 40 distinct noise images, a 20 x 20 image (not hashed), a broken file; two splits."""
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(0)
    names, sizes = [], []
    Image.new("RGB", (64, 48), (0, 0, 0)).save(root / "blank.png")
    blank = (root / "blank.png").read_bytes()
    for i in range(119):
        (root / f"blank{i:03d}.png").write_bytes(blank)
        names.append(f"blank{i:03d}.png")
        sizes.append((64, 48))
    names.append("blank.png")
    sizes.append((64, 48))
    yy, xx = np.mgrid[0:96, 0:128]
    smooth = 128 + 50 * np.sin(xx / 17.0) * np.cos(yy / 11.0) + 40 * np.cos((xx + 2 * yy) / 29.0)
    picture = np.stack([smooth, smooth[::-1], smooth[:, ::-1]], axis=2)
    for i in range(80):
        name = f"f{i:03d}.jpg"
        frame = np.clip(picture + rng.normal(0, 3, picture.shape), 0, 255).astype(np.uint8)
        Image.fromarray(frame).save(root / name, quality=90)
        names.append(name)
        sizes.append((128, 96))
        if i % 10 == 0:
            for k in range(2):
                shutil.copy(root / name, root / f"f{i:03d}_c{k}.jpg")
                names.append(f"f{i:03d}_c{k}.jpg")
                sizes.append((128, 96))
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)).save(root / f"n{i:02d}.png")
        names.append(f"n{i:02d}.png")
        sizes.append((50, 40 + i))
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / "tiny.png")
    (root / "broken.jpg").write_bytes(b"not an image")
    names += ["tiny.png", "broken.jpg", "missing.png"]
    sizes += [(20, 20), (0, 0), (0, 0)]
    order = rng.permutation(len(names))  # interleave the kinds in row order
    names, sizes = [names[i] for i in order], [sizes[i] for i in order]
    split = ["test" if i % 5 == 0 else "train" for i in range(len(names))]
    images = Images(path=names, width=[s[0] for s in sizes], height=[s[1] for s in sizes], split=split)
    return Dataset(LabelSchema.from_names([]), images, Annotations.empty(), root=root)


@pytest.mark.parametrize("threshold", [0, 8, 20])
def test_many_duplicates_equal_brute_force(many: Dataset, threshold: int) -> None:
    r = find_duplicates(many, threshold=threshold)
    ref = _reference(many, threshold, None, 0.95)
    _assert_same(r, ref)
    assert len(r.pairs) > 7_000 and "exact" in r.kind  # not vacuous: thousands of pairs, near ones from 8 bits
    assert r.kind.count("near") > (3_000 if threshold >= 8 else 0)
    split = np.asarray(many.images.split)
    assert r.cross_split.tolist() == (split[r.pairs[:, 0]] != split[r.pairs[:, 1]]).tolist()


def test_many_semantic_duplicates_equal_brute_force(many: Dataset) -> None:
    rng = np.random.default_rng(1)
    m = many.n_images
    f = np.ones((m, 16)) + rng.normal(size=(m, 16)) * np.where(np.arange(m) % 3 == 0, 0.02, 0.6)[:, None]
    ref = _reference(many, 8, f, 0.95)
    r = find_duplicates(many, features=f, cosine=0.95)
    _assert_same(r, ref)
    assert "semantic" in r.kind
    r = find_duplicates(many, near=False, features=f, cosine=0.95)  # exact and semantic only
    ref = _reference(many, 8, f, 0.95, min_side=10**9)
    _assert_same(r, ref)
    assert {c.kind for c in r.clusters} >= {"semantic"}


def test_identical_files_exact_only_give_every_pair_and_one_cluster(tmp_path: Path) -> None:
    Image.new("L", (40, 40), 7).save(tmp_path / "a.png")
    for i in range(199):
        shutil.copy(tmp_path / "a.png", tmp_path / f"c{i:03d}.png")
    names = sorted(p.name for p in tmp_path.iterdir())
    ds = Dataset(LabelSchema.from_names([]), Images(path=names, width=[40] * 200, height=[40] * 200),
                 Annotations.empty(), root=tmp_path)
    for near in (False, True):
        r = find_duplicates(ds, near=near)
        assert r.pairs.tolist() == [[i, j] for i in range(200) for j in range(i + 1, 200)]
        assert set(r.kind) == {"exact"} and not r.distance.any()
        assert [(c.images, c.keep, c.kind) for c in r.clusters] == [(tuple(range(200)), 0, "exact")]


def test_steps_and_progress_cover_search_and_clustering(many: Dataset) -> None:
    """Each step is named as it starts, and progress counts that step up to its total (the bar no longer sits
    at N/N while the search and the clustering run)."""
    seen: list[tuple[str, int, int]] = []
    steps: list[str] = []
    f = np.ones((many.n_images, 4))
    find_duplicates(many, features=f, step=steps.append,
                    progress=lambda done, total: seen.append((steps[-1], done, total)))
    assert steps == ["hashing images", "searching near duplicates", "comparing features", "clustering"]
    for name in steps:
        calls = [(d, t) for s, d, t in seen if s == name]
        assert calls, name
        assert calls[-1][0] == calls[-1][1] > 0, name  # ends at its total
        assert all(d <= t for d, t in calls)


# --- the search itself on many equal hashes -------------------------------------------------------------------


def _brute(q: np.ndarray, s: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = np.bitwise_count(q[:, None] ^ s[None, :]).astype(np.int64)
    qi, si = np.nonzero(d <= threshold)
    return qi, si, d[qi, si]


def _clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Hashes in a few tight clusters: copies of 3 values and 0-3 bit flips of them, plus random ones."""
    base = rng.integers(0, 2**63, 3, dtype=np.int64).astype(np.uint64)
    h = base[rng.integers(0, 3, n)]
    for _ in range(3):
        flip = rng.random(n) < 0.3
        h[flip] ^= np.uint64(1) << rng.integers(0, 64, int(flip.sum())).astype(np.uint64)
    rand = rng.random(n) < 0.2
    h[rand] = rng.integers(0, 2**63, int(rand.sum()), dtype=np.int64).astype(np.uint64)
    return h


@pytest.mark.parametrize("piece", [1_000, 50_000, 4_000_000])
def test_search_on_equal_hashes_equals_brute_force(monkeypatch: pytest.MonkeyPatch, piece: int) -> None:
    monkeypatch.setattr(_search, "_PIECE", piece)  # small pieces: the multi-index and the piecewise expansion run
    rng = np.random.default_rng(piece)
    for threshold in (0, 3, 8, 13):
        q, s = _clustered(rng, 300), _clustered(rng, 2_000)
        got = search_hashes(q, s, threshold)
        for g, w in zip(got, _brute(q, s, threshold), strict=True):
            assert np.array_equal(g, w), (piece, threshold)


@pytest.mark.parametrize("piece", [500, 20_000, 4_000_000])
def test_hash_pairs_equal_brute_force(monkeypatch: pytest.MonkeyPatch, piece: int) -> None:
    monkeypatch.setattr(_search, "_PIECE", piece)
    rng = np.random.default_rng(piece + 1)
    for threshold in (0, 4, 8):
        h = _clustered(rng, 300 * 26).reshape(300, 26)
        h[:60] = h[0]  # 60 identical images
        pairs, dist = hash_pairs(h, threshold)
        d = np.bitwise_count(h[:, 0][:, None, None] ^ h[None, :, :]).min(axis=2).astype(np.int64)
        d = np.minimum(d, d.T)
        i, j = np.triu_indices(len(h), 1)
        near = d[i, j] <= threshold
        assert pairs.tolist() == np.stack([i[near], j[near]], axis=1).tolist(), (piece, threshold)
        assert dist.tolist() == d[i[near], j[near]].tolist()
        assert len(pairs) >= 60 * 59 // 2


def test_equal_hashes_are_verified_once_not_per_block_and_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 identical queries against 7,800 identical stored hashes (300 images x 26 variants): the old search
    verified 300 x 7,800 candidates in each of 5 blocks (11.7 million) before removing repeats; now equal values are
    searched once and expanded to the 2.34 million pairs of the output."""
    from tests.diversity.test_search_scale import _count_candidates

    monkeypatch.setattr(_search, "_PIECE", 10_000)  # past the brute-force cut-off, as for large data
    sizes = _count_candidates(monkeypatch)
    h = np.full(300, 0x0123456789ABCDEF, np.uint64)
    qi, _, d = search_hashes(h, np.full(7_800, 0x0123456789ABCDEF, np.uint64), 8)
    assert len(qi) == 300 * 7_800 and not d.any()
    assert sum(sizes[:-1]) < 1_000  # the last call gives the distances of the pairs found
    sizes.clear()
    pairs, dist = hash_pairs(np.full((300, 26), 0x0123456789ABCDEF, np.uint64), 8)
    assert len(pairs) == 300 * 299 // 2 and not dist.any()
    assert sum(sizes) < 1_000


def test_semantic_pairs_chunks_do_not_change_the_result() -> None:
    rng = np.random.default_rng(2)
    x = np.ones((400, 8)) + rng.normal(size=(400, 8)) * 0.3
    want = semantic_pairs(x, threshold=0.9)
    for chunk in (1, 7, 400):
        got = semantic_pairs(x, threshold=0.9, chunk=chunk)
        assert np.array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-12)
    assert len(want[0]) > 1_000


def test_cli_features_of_the_wrong_length_name_the_file(tmp_path: Path) -> None:
    """The library's message had no file to name ("features must have one row per image (3), got 5")."""
    from tests.helpers import flat_text, run_cli

    for i in range(3):
        Image.fromarray(np.full((40, 40), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    np.save(tmp_path / "f.npy", np.ones((5, 4), np.float32))
    code, text = run_cli(["diversity", "duplicates", str(tmp_path), "--features", str(tmp_path / "f.npy")])
    assert code == 2 and "f.npy" in flat_text(text) and "one row per image (3), got 5" in flat_text(text)
