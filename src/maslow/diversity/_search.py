"""Hamming search over 64-bit hashes: brute force for small sets, else a multi-index (Norouzi et al. 2012).

``b`` disjoint blocks of bits are cut from the 64; when two hashes are within ``threshold`` bits, by pigeonhole
one block differs in at most ``r`` bits with ``b * (r + 1) > threshold``. The blocks need not cover all 64 bits
(two hashes within ``threshold`` bits over 64 are within it over any subset), so each is about
``log2(stored) + 1`` bits wide where ``64 / b`` allows: a dense lookup table of 2 to 4 slots per stored hash
(2^12 to 2^22 slots), each probe finding 0.25 to 0.5 stored hashes on average. ``r`` (0 to 3) is the one with the
least expected work (``_plan``). Candidates are verified with XOR+popcount, so the result
is exactly the brute force's, and they are verified in pieces of at most about 4 million (one bucket alone can be
more), so memory beyond the output stays bounded however the hashes are spread.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from maslow.core.types import IntArray, distinct
from maslow.errors import MaslowError

_PIECE = 4_000_000  # probes, and candidates, handled at once


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))).astype(np.int64)


def _flip_masks(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for bits in itertools.combinations(range(width), r):
            masks.append(sum(1 << b for b in bits))
    return np.asarray(masks, np.int64)


def _plan(n_queries: int, n_stored: int, threshold: int) -> tuple[list[int], list[int], int]:
    """Start bit and width of each block, and the probe radius: the plan with the least expected work.

    ``b = max(ceil((threshold + 1) / (r + 1)), 3)`` disjoint blocks, spread over the 64 bits, each about
    ``log2(n_stored) + 1`` bits (12 to 22) but at most ``64 // b``; the leftover bits are unused (pigeonhole holds
    on any subset). Work per query: ``b x probes x (1 + stored hashes per bucket)``, probes being the masks of up
    to ``r`` flipped bits, plus building each block's table (about 4 passes over the stored hashes). (Always 64 bits cut into ``ceil(64 / width)`` blocks made them 16 bits wide for 2^14
    to 2^20 stored hashes, 630 to 40,000 images of 26: up to 16 a bucket and a quadratic cliff, 40,000 images
    taking 75 s and 4 GB. Tables of 2^22 slots cost 70 MB, hence the width follows the data.)
    """
    width = min(max(n_stored.bit_length() + 1, 12), 22)
    best: tuple[float, list[int], list[int], int] | None = None
    for radius in range(min(threshold, 3) + 1):
        n_blocks = max(-(-(threshold + 1) // (radius + 1)), 3)
        part = [64 // n_blocks + (1 if b < 64 % n_blocks else 0) for b in range(n_blocks)]
        widths = [min(width, w) for w in part]
        work = sum(n_queries * sum(math.comb(w, i) for i in range(radius + 1)) * (1 + n_stored / 2**w)
                   + 4 * n_stored for w in widths)
        if best is None or work < best[0]:
            best = (work, np.concatenate([[0], np.cumsum(part)[:-1]]).tolist(), widths, radius)
    assert best is not None
    return best[1], best[2], best[3]


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
    if len(q) * len(s) <= _PIECE:  # small: brute force
        d = hamming(q[:, None], s[None, :])
        qi, si = np.nonzero(d <= threshold)
        return qi.astype(np.int64), si.astype(np.int64), d[qi, si]
    starts, widths, radius = _plan(len(q), len(s), threshold)
    found_q, found_s = [], []
    for start, width in zip(starts, widths, strict=True):
        mask = np.uint64((1 << width) - 1)
        kq = ((q >> np.uint64(start)) & mask).astype(np.int64)
        ks = ((s >> np.uint64(start)) & mask).astype(np.int64)
        order = np.argsort(ks, kind="stable")
        count = np.bincount(ks, minlength=1 << width)
        offsets = np.zeros((1 << width) + 1, np.int64)
        np.cumsum(count, out=offsets[1:])
        occupied = count > 0  # a 4 MB table: cache-friendly first filter
        all_flips = _flip_masks(width, radius).astype(np.int32)
        kq32 = kq.astype(np.int32)
        for flips in np.array_split(all_flips, max(1, -(-len(q) * len(all_flips) // _PIECE))):
            probe = (kq32[:, None] ^ flips[None, :]).ravel()
            hit = np.flatnonzero(occupied[probe])
            bucket = probe[hit]
            reps = count[bucket]
            ends = np.cumsum(reps)
            lo = 0
            while lo < len(hit):  # pieces of about _PIECE candidates: a crowded bucket must not blow up memory
                base = int(ends[lo - 1]) if lo else 0
                hi = max(lo + 1, int(np.searchsorted(ends, base + _PIECE, side="right")))
                r = reps[lo:hi]
                qi = np.repeat(hit[lo:hi] // len(flips), r)
                first = np.repeat(offsets[bucket[lo:hi]] - (ends[lo:hi] - base) + r, r)
                si = order[first + np.arange(int(ends[hi - 1]) - base)]
                keep = hamming(q[qi], s[si]) <= threshold
                found_q.append(qi[keep])
                found_s.append(si[keep])
                lo = hi
    if not found_q:
        return empty, empty, empty
    key = distinct(np.concatenate(found_q) * len(s) + np.concatenate(found_s))
    qi, si = key // len(s), key % len(s)
    return qi, si, hamming(q[qi], s[si])
