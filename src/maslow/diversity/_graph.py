"""Clusters of a pair graph: connected components (for folds that must hold every linked image) and stars (for
duplicates: a kept image and its own neighbours, no chaining)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from maslow.core.types import IntArray
from maslow.errors import MaslowError

__all__ = ["clusters_of", "star_clusters", "unit_stars"]


def clusters_of(m: int, pairs: np.ndarray) -> list[IntArray]:
    """Connected components with 2+ members of the graph on ``m`` nodes with edges ``pairs`` (union-find)."""
    parent = np.arange(m)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = int(parent[root])
        while parent[x] != root:
            parent[x], x = root, int(parent[x])
        return root

    for a, b in np.asarray(pairs, np.int64).reshape(-1, 2).tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.asarray([find(i) for i in range(m)], np.int64)
    groups: dict[int, list[int]] = {}
    for i, r in enumerate(roots.tolist()):
        groups.setdefault(r, []).append(i)
    return [np.asarray(g, np.int64) for g in groups.values() if len(g) > 1]


def star_clusters(m: int, pairs: np.ndarray, *, order: np.ndarray | None = None,
                  progress: Callable[[int, int], None] | None = None) -> list[IntArray]:
    """Clusters of the graph on ``m`` nodes with edges ``pairs`` that do not chain: a kept node and its neighbours.

    Nodes are visited in ``order`` (default: row order; a permutation of ``range(m)``). A node not yet in a
    cluster starts one and takes every neighbour not yet in a cluster, so every member is a neighbour of the
    node that started its cluster (unlike connected components, where a chain a-b-c puts a and c together).
    A node whose neighbours all joined other clusters belongs to none.

    ``progress(done, total)`` counts the nodes with a neighbour visited (about 100 calls).

    Returns:
        clusters with 2+ members, in the order they were started: the starting node first, then the others
        ascending.
    """
    edges = np.asarray(pairs, np.int64).reshape(-1, 2)
    visit = np.arange(m, dtype=np.int64) if order is None else np.asarray(order, np.int64)
    if len(visit) != m or not np.array_equal(np.sort(visit), np.arange(m)):
        raise MaslowError(f"star_clusters: order must be a permutation of range({m}), got {visit.tolist()[:8]}...")
    both = np.concatenate([edges, edges[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    start = np.searchsorted(both[:, 0], np.arange(m + 1))
    visit = visit[np.diff(start)[visit] > 0]  # a node without neighbours starts no cluster and joins none
    taken = np.zeros(m, bool)
    out = []
    every = max(1, len(visit) // 100)
    for n, c in enumerate(visit.tolist()):
        if progress is not None and n % every == 0:
            progress(n, len(visit))
        if taken[c]:
            continue
        taken[c] = True
        nb = both[start[c]:start[c + 1], 1]
        nb = np.unique(nb[~taken[nb]])
        if nb.size:
            taken[nb] = True
            out.append(np.concatenate([[c], nb]).astype(np.int64))
    if progress is not None:
        progress(len(visit), len(visit))
    return out


def unit_stars(m: int, pairs: np.ndarray, near: np.ndarray, unit: IntArray, order: IntArray, *,
               progress: Callable[[int, int], None] | None = None) -> list[tuple[IntArray, int, str]]:
    """(members ascending, keep, kind) of the star clusters of duplicate pairs whose nodes are units of images.

    Args:
        m: images. pairs: (p, 2) image rows; near: (p,) bool, the pair is a near (pHash) duplicate.
        unit: (m,) each image's unit: the first row, in ``order``, of its group of identical files (itself when
            it has no identical file); pairs inside a unit are never materialised here.
        order: the keep order (a permutation of ``range(m)``).

    Returns:
        the stars of ``star_clusters`` over the units (kind "near" when the kept unit has a near pair with some
        member unit, else "semantic"), then, in keep order, the groups of identical files that joined no star
        (kind "exact"). A star's members are the images of its units.
    """
    p = np.asarray(pairs, np.int64).reshape(-1, 2)
    ua, ub = unit[p[:, 0]], unit[p[:, 1]]
    other = ua != ub
    key = np.minimum(ua, ub)[other] * m + np.maximum(ua, ub)[other]
    flag = np.asarray(near, bool)[other]
    by = np.argsort(key, kind="stable")
    key, flag = key[by], flag[by]
    first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]])) if len(key) else np.zeros(0, np.int64)
    edge_key = key[first]
    edge_near = np.logical_or.reduceat(flag, first) if len(first) else np.zeros(0, bool)
    stars = star_clusters(m, np.stack([edge_key // m, edge_key % m], axis=1), order=order, progress=progress)
    rows = np.argsort(unit, kind="stable")  # the images of each unit, ascending
    size = np.bincount(unit, minlength=m)
    off = np.concatenate([[0], np.cumsum(size)])
    in_star = np.zeros(m, bool)
    out: list[tuple[IntArray, int, str]] = []
    for star in stars:
        in_star[star] = True
        keep = int(star[0])
        members = np.sort(np.concatenate([rows[off[u]:off[u + 1]] for u in star.tolist()]))
        rest = star[1:]
        linked = edge_near[np.searchsorted(edge_key, np.minimum(keep, rest) * m + np.maximum(keep, rest))]
        out.append((members, keep, "near" if linked.any() else "semantic"))
    o = np.asarray(order, np.int64)
    for u in o[(unit[o] == o) & (size[o] > 1) & ~in_star[o]].tolist():
        out.append((rows[off[u]:off[u + 1]].copy(), u, "exact"))
    return out
