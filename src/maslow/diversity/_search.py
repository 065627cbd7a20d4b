"""Hamming search over 64-bit hashes: brute force for small sets, else a multi-index (Norouzi et al. 2012).

The 64 bits are cut into ``b`` blocks; when two hashes are within ``threshold`` bits, by pigeonhole one block
differs in at most ``r`` bits with ``b * (r + 1) > threshold``. Each block is a dense lookup table of 2 to 4
slots per stored hash (2^12 to 2^22 slots); candidates are verified with XOR+popcount.
"""

from __future__ import annotations

import itertools

import numpy as np

from maslow.core.types import IntArray, distinct
from maslow.errors import MaslowError


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))).astype(np.int64)


def _flip_masks(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for bits in itertools.combinations(range(width), r):
            masks.append(sum(1 << b for b in bits))
    return np.asarray(masks, np.int64)


def search_hashes(queries: np.ndarray, stored: np.ndarray, threshold: int) -> tuple[IntArray, IntArray, IntArray]:
    """All (query, stored) index pairs whose hashes differ in at most ``threshold`` bits.

    Args:
        queries: (q,) uint64.
        stored: (s,) uint64.
        threshold: maximum Hamming distance (0..32).

    Returns:
        (query index, stored index, distance), each (p,) int64, sorted by query then stored index.
    """
    q = np.asarray(queries, np.uint64)
    s = np.asarray(stored, np.uint64)
    if not 0 <= threshold <= 32:
        raise MaslowError(f"search_hashes: threshold must be in 0..32, got {threshold}")
    empty = np.zeros(0, np.int64)
    if not len(q) or not len(s):
        return empty, empty, empty
    if len(q) * len(s) <= 4_000_000:  # small: brute force
        d = hamming(q[:, None], s[None, :])
        qi, si = np.nonzero(d <= threshold)
        return qi.astype(np.int64), si.astype(np.int64), d[qi, si]
    radius = 2 if threshold >= 5 else (1 if threshold >= 1 else 0)
    # blocks of about log2(stored) + 1 bits (12 to 22): tables of 2^22 slots cost 70 MB whatever the data's size,
    # so a few thousand images used more memory for the index than for everything else; more blocks keep the
    # pigeonhole (b * (r + 1) > threshold still holds)
    width = min(max(len(s).bit_length() + 1, 12), 22)
    n_blocks = max(-(-(threshold + 1) // (radius + 1)), 3, -(-64 // width))
    widths = [64 // n_blocks + (1 if b < 64 % n_blocks else 0) for b in range(n_blocks)]
    found_q, found_s = [], []
    start = 0
    for width in widths:
        mask = np.uint64((1 << width) - 1)
        kq = ((q >> np.uint64(start)) & mask).astype(np.int64)
        ks = ((s >> np.uint64(start)) & mask).astype(np.int64)
        start += width
        order = np.argsort(ks, kind="stable")
        count = np.bincount(ks, minlength=1 << width)
        offsets = np.zeros((1 << width) + 1, np.int64)
        np.cumsum(count, out=offsets[1:])
        occupied = count > 0  # a 4 MB table: cache-friendly first filter
        all_flips = _flip_masks(width, radius).astype(np.int32)
        kq32 = kq.astype(np.int32)
        for flips in np.array_split(all_flips, max(1, -(-len(q) * len(all_flips) // 4_000_000))):
            probe = (kq32[:, None] ^ flips[None, :]).ravel()
            hit = np.flatnonzero(occupied[probe])
            if not hit.size:
                continue
            bucket = probe[hit]
            reps = count[bucket]
            qi = np.repeat(hit // len(flips), reps)
            first = np.repeat(offsets[bucket] - np.cumsum(reps) + reps, reps)
            si = order[first + np.arange(reps.sum())]
            keep = hamming(q[qi], s[si]) <= threshold
            found_q.append(qi[keep])
            found_s.append(si[keep])
    if not found_q:
        return empty, empty, empty
    key = distinct(np.concatenate(found_q) * len(s) + np.concatenate(found_s))
    qi, si = key // len(s), key % len(s)
    return qi, si, hamming(q[qi], s[si])
