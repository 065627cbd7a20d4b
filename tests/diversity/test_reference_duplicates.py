"""Duplicates against brute-force references: all-pairs cosine (exact rational arithmetic, so ties at the
threshold are decided by the maths, not by rounding), all-pairs Hamming, connected components by search, and
star clusters against the properties that define them."""

from __future__ import annotations

import itertools
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity._graph import clusters_of, star_clusters
from maslow.diversity.duplicates import (
    HashTable,
    find_duplicates,
    near_pairs,
    search_hashes,
    semantic_pairs,
)
from maslow.errors import MaslowError


def _cosine_ref(x: np.ndarray, t: float) -> list[tuple[int, int]]:
    """Pairs i < j of integer rows with cos >= t, decided exactly: a.b >= t |a| |b| without square roots."""
    tt = Fraction(repr(t))  # the threshold the user typed (0.8, not the binary float just above it)
    out = []
    for i, j in itertools.combinations(range(len(x)), 2):
        a, b = [int(v) for v in x[i]], [int(v) for v in x[j]]
        na, nb = sum(v * v for v in a), sum(v * v for v in b)
        if na == 0 or nb == 0:  # zero rows never match
            continue
        dot = sum(p * q for p, q in zip(a, b, strict=True))
        lim = tt * tt * na * nb
        if (dot >= 0 and dot * dot >= lim) if tt >= 0 else (dot >= 0 or dot * dot <= lim):
            out.append((i, j))
    return out


def test_semantic_pairs_equal_exact_all_pairs_cosine_including_ties() -> None:
    rng = np.random.default_rng(0)
    for trial in range(1500):
        m, d = int(rng.integers(0, 11)), int(rng.integers(1, 5))
        x = rng.integers(-3, 4, (m, d)).astype(float)  # zero rows, orthogonal rows, exact cosines of 0.8 or 0.5
        if trial % 3 == 0 and m:
            x = x[rng.integers(0, m, m)] * rng.integers(1, 5, (m, 1))  # copies and scaled copies: cosine 1
        t = float(rng.choice([1.0, 0.8, 0.6, 0.5, 0.0, -0.5, -1.0]))
        pairs, sim = semantic_pairs(x, threshold=t)
        assert [tuple(p) for p in pairs.tolist()] == _cosine_ref(x, t), (t, x.tolist())
        assert ((sim >= -1) & (sim <= 1)).all()


def test_identical_float_embeddings_match_at_cosine_one() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        x = rng.normal(size=(6, int(rng.integers(1, 300)))) * rng.choice([1e-3, 1.0, 1e3])
        x[3], x[5] = x[1], 2 * x[1]
        x[4] = 0.0
        pairs, sim = semantic_pairs(x, threshold=1.0)
        assert {(1, 3), (1, 5), (3, 5)} <= {tuple(p) for p in pairs.tolist()}
        assert 4 not in pairs and (sim <= 1.0).all()


def test_multi_index_search_finds_every_pair_brute_force_finds() -> None:
    """2,100 x 2,100 hashes: past the brute-force cut-off, so the pigeonhole multi-index runs."""
    rng = np.random.default_rng(2)
    for t in (0, 1, 4, 5, 8, 20):
        q = rng.integers(0, 2**63, 2100, dtype=np.int64).astype(np.uint64)
        s = rng.integers(0, 2**63, 2100, dtype=np.int64).astype(np.uint64)
        for _ in range(300):  # planted neighbours at distances 0 .. t + 1 (the tie at t included)
            a, b, dist = int(rng.integers(2100)), int(rng.integers(2100)), int(rng.integers(0, t + 2))
            s[b] = q[a] ^ np.uint64(sum(1 << int(bit) for bit in rng.choice(64, dist, replace=False)))
        d = np.bitwise_count(q[:, None] ^ s[None, :]).astype(np.int64)
        rq, rs = np.nonzero(d <= t)
        qi, si, dd = search_hashes(q, s, t)
        assert np.array_equal(qi, rq) and np.array_equal(si, rs) and np.array_equal(dd, d[rq, rs])


def test_near_pairs_equal_brute_force_over_variants() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        m, v, t = int(rng.integers(0, 9)), int(rng.integers(1, 4)), int(rng.integers(0, 10))
        base = rng.integers(0, 2**62, 3, dtype=np.int64).astype(np.uint64)
        noise = np.bitwise_and.reduce(rng.integers(0, 2**62, (4, m, v), dtype=np.int64).astype(np.uint64), axis=0)
        h = base[rng.integers(0, 3, (m, v))] ^ noise
        valid = rng.random(m) < 0.85
        pairs, dist = near_pairs(HashTable(hashes=h, valid=valid, pixels=np.zeros(m, np.int64), errors=(),
                                                  side=np.zeros(m, np.int64)), t)
        ref: dict[tuple[int, int], int] = {}
        for i, j in itertools.permutations(range(m), 2):
            if valid[i] and valid[j]:
                dij = min(bin(int(h[i, 0] ^ h[j, c])).count("1") for c in range(v))
                if dij <= t:
                    key = (min(i, j), max(i, j))
                    ref[key] = min(ref.get(key, 64), dij)
        assert [tuple(p) for p in pairs.tolist()] == sorted(ref)
        assert dist.tolist() == [ref[k] for k in sorted(ref)]


def _components(m: int, pairs: np.ndarray) -> list[list[int]]:
    adj: dict[int, set[int]] = {i: set() for i in range(m)}
    for a, b in pairs.tolist():
        adj[a].add(b)
        adj[b].add(a)
    seen: set[int] = set()
    out = []
    for i in range(m):
        if i in seen:
            continue
        stack, comp = [i], []
        seen.add(i)
        while stack:
            u = stack.pop()
            comp.append(u)
            for w in adj[u] - seen:
                seen.add(w)
                stack.append(w)
        if len(comp) > 1:
            out.append(sorted(comp))
    return sorted(out)


def test_clusters_are_the_connected_components() -> None:
    rng = np.random.default_rng(4)
    for _ in range(500):
        m = int(rng.integers(0, 15))
        pairs = rng.integers(0, max(m, 1), (int(rng.integers(0, 15)) if m else 0, 2))
        assert sorted(sorted(g.tolist()) for g in clusters_of(m, pairs)) == _components(m, pairs)


def test_star_clusters_are_the_greedy_stars_in_visiting_order() -> None:
    """The properties that define the result given the order: (1) members are neighbours of the first,
    (2) clusters are disjoint and started in visiting order, (3) a centre took every neighbour still free when
    it was visited, (4) a node left out had no free neighbour when visited, (5) each lies in one component."""
    rng = np.random.default_rng(5)
    for trial in range(600):
        m = int(rng.integers(0, 16))
        pairs = rng.integers(0, max(m, 1), (int(rng.integers(0, 3 * m + 1)) if m else 0, 2))
        order = rng.permutation(m) if trial % 2 else np.arange(m)
        stars = star_clusters(m, pairs, order=None if trial % 4 == 0 else order)
        order = np.arange(m) if trial % 4 == 0 else order
        adj: dict[int, set[int]] = {i: set() for i in range(m)}
        for a, b in pairs.tolist():
            if a != b:
                adj[a].add(b)
                adj[b].add(a)
        visit = {int(n): k for k, n in enumerate(order.tolist())}
        taken_at: dict[int, int] = {}
        for s in stars:
            c = int(s[0])
            assert len(s) >= 2 and s[1:].tolist() == sorted(s[1:].tolist())
            assert set(s[1:].tolist()) <= adj[c]  # (1)
            for n in s.tolist():
                assert n not in taken_at  # (2) disjoint
                taken_at[n] = visit[c]
        starts = [visit[int(s[0])] for s in stars]
        assert starts == sorted(starts)  # (2) started in visiting order
        for s in stars:  # (3) every neighbour outside c's star was taken earlier
            c = int(s[0])
            assert all(taken_at[n] < visit[c] for n in adj[c] - set(s.tolist()))
        for u in set(range(m)) - set(taken_at):  # (4)
            assert all(n in taken_at and taken_at[n] < visit[u] for n in adj[u])
        comps = {i: k for k, g in enumerate(clusters_of(m, pairs)) for i in g.tolist()}
        assert all(len({comps[n] for n in s.tolist()}) == 1 for s in stars)  # (5)
    with pytest.raises(MaslowError, match="permutation"):
        star_clusters(3, np.zeros((0, 2), np.int64), order=np.array([0, 0, 1]))


@pytest.fixture
def mixed(tmp_path: Path) -> Dataset:
    """a.png and b.png: same bytes (train, test); c.png and d.png: missing (train, val); e.png: noise."""
    Image.fromarray(np.full((40, 40), 100, np.uint8)).save(tmp_path / "a.png")
    shutil.copy(tmp_path / "a.png", tmp_path / "b.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)).save(tmp_path / "e.png")
    images = Images(path=["a.png", "b.png", "c.png", "d.png", "e.png"], width=[40] * 5, height=[40] * 5,
                    split=["train", "test", "train", "val", "train"])
    return Dataset(LabelSchema.from_names(["x"]), images, Annotations.empty(), root=tmp_path)


@pytest.mark.parametrize("near", [True, False])
def test_unreadable_files_linked_by_embeddings_are_not_exact(mixed: Dataset, near: bool) -> None:
    f = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], float)
    r = find_duplicates(mixed, features=f, near=near)
    assert [i for i, _ in r.unreadable] == [2, 3]
    assert [(c.images, c.kind, c.splits) for c in r.clusters] == [
        ((0, 1), "exact", ("test", "train")), ((2, 3), "semantic", ("train", "val"))]
    assert len(r.leaks) == 2 and r.kind == ("exact", "semantic")


def test_cluster_of_exact_and_semantic_pairs_is_semantic_not_near(mixed: Dataset) -> None:
    f = np.array([[1, 0], [1, 0], [0, 1], [5, 1], [1, 0.01]], float)
    r = find_duplicates(mixed, features=f, near=False)  # no pHash at all: nothing can be "near"
    assert set(r.kind) == {"exact", "semantic"}
    assert [(c.images, c.kind) for c in r.clusters] == [((0, 1, 3, 4), "semantic")]


def test_empty_and_single_image(mixed: Dataset) -> None:
    for n in (0, 1):
        ds = mixed.replace(images=Images(path=["a.png"][:n], width=[40][:n], height=[40][:n]))
        r = find_duplicates(ds, features=np.ones((n, 3)))
        assert r.pairs.shape == (0, 2) and r.clusters == () and r.to_drop.tolist() == []
