"""Clusters of a pair graph: connected components (for folds that must hold every linked image) and stars (for
duplicates: a kept image and its own neighbours, no chaining)."""

from __future__ import annotations

import numpy as np

from maslow.core.types import IntArray
from maslow.errors import MaslowError

__all__ = ["clusters_of", "star_clusters"]


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


def star_clusters(m: int, pairs: np.ndarray, *, order: np.ndarray | None = None) -> list[IntArray]:
    """Clusters of the graph on ``m`` nodes with edges ``pairs`` that do not chain: a kept node and its neighbours.

    Nodes are visited in ``order`` (default: row order; a permutation of ``range(m)``). A node not yet in a
    cluster starts one and takes every neighbour not yet in a cluster, so every member is a neighbour of the
    node that started its cluster (unlike connected components, where a chain a-b-c puts a and c together).
    A node whose neighbours all joined other clusters belongs to none.

    Returns:
        clusters with 2+ members, in the order they were started: the starting node first, then the others
        ascending.
    """
    edges = np.asarray(pairs, np.int64).reshape(-1, 2)
    visit = np.arange(m, dtype=np.int64) if order is None else np.asarray(order, np.int64)
    if sorted(visit.tolist()) != list(range(m)):
        raise MaslowError(f"star_clusters: order must be a permutation of range({m}), got {visit.tolist()[:8]}...")
    both = np.concatenate([edges, edges[:, ::-1]])
    both = both[np.lexsort((both[:, 1], both[:, 0]))]
    start = np.searchsorted(both[:, 0], np.arange(m + 1))
    taken = np.zeros(m, bool)
    out = []
    for c in visit.tolist():
        if taken[c]:
            continue
        taken[c] = True
        nb = both[start[c]:start[c + 1], 1]
        nb = np.unique(nb[~taken[nb]])
        if nb.size:
            taken[nb] = True
            out.append(np.concatenate([[c], nb]).astype(np.int64))
    return out
