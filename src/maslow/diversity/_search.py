"""Hamming search over 64-bit hashes: brute force for small sets, else a multi-index (Norouzi et al. 2012).

``b`` disjoint blocks of bits are cut from the 64; when two hashes are within ``threshold`` bits, by pigeonhole
one block differs in at most ``r`` bits with ``b * (r + 1) > threshold``. The blocks need not cover all 64 bits
(two hashes within ``threshold`` bits over 64 are within it over any subset), so each is about
``log2(stored) + 1`` bits wide where ``64 / b`` allows: a dense lookup table of 2 to 4 slots per stored hash
(2^12 to 2^22 slots), each probe finding 0.25 to 0.5 stored hashes on average. ``r`` (0 to 3) is the one with the
least expected work (``_plan``). Candidates are verified with XOR+popcount, so the result
is exactly the brute force's, and they are verified in pieces of at most about 4 million (one bucket alone can be
more), so memory beyond the output stays bounded however the hashes are spread.

Equal hashes are searched once: the search runs over the distinct values, each matching pair of values is emitted
by the first block where it differs in at most ``r`` bits (never once per block), and only then are the values
expanded to the hashes (or images) holding them, in pieces. 1,000 identical images (26,000 equal stored hashes)
are one value against one value, not 26 million candidate pairs found in each of 5 blocks.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np

from maslow.core.types import IntArray, distinct
from maslow.errors import MaslowError

_PIECE = 4_000_000  # probes, and candidates, handled at once

Progress = Callable[[int, int], None]


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


def _values(h: np.ndarray) -> tuple[np.ndarray, IntArray, IntArray]:
    """(distinct values sorted, rows holding each value (grouped by value, ascending within it), offsets (k + 1,)):
    the rows of value ``v`` are ``rows[offsets[v]:offsets[v + 1]]``."""
    rows = np.argsort(h, kind="stable").astype(np.int64)
    sh = h[rows]
    first = np.ones(len(sh), bool)
    first[1:] = sh[1:] != sh[:-1]
    offsets = np.append(np.flatnonzero(first), len(sh)).astype(np.int64)
    return sh[first], rows, offsets


def _value_matches(q: np.ndarray, s: np.ndarray, threshold: int,
                   progress: Progress | None) -> Iterator[tuple[IntArray, IntArray, IntArray]]:
    """Pieces of (query index, stored index, distance) of every pair within ``threshold`` bits, each pair once."""
    if len(q) * len(s) <= _PIECE:  # small: brute force
        d = hamming(q[:, None], s[None, :])
        qi, si = np.nonzero(d <= threshold)
        yield qi.astype(np.int64), si.astype(np.int64), d[qi, si]
        if progress is not None:
            progress(1, 1)
        return
    starts, widths, radius = _plan(len(q), len(s), threshold)
    blocks = list(zip(starts, widths, strict=True))
    n_flips = [len(_flip_masks(w, radius)) for w in widths]
    total = sum(max(1, -(-len(q) * f // _PIECE)) for f in n_flips)
    done = 0
    for k, (start, width) in enumerate(blocks):
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
                d = hamming(q[qi], s[si])
                keep = np.flatnonzero(d <= threshold)
                x = q[qi[keep]] ^ s[si[keep]]
                for start0, width0 in blocks[:k]:  # an earlier block already found the pair: emit it there only
                    x_block = (x >> np.uint64(start0)) & np.uint64((1 << width0) - 1)
                    later = np.bitwise_count(x_block) > radius
                    keep, x = keep[later], x[later]
                yield qi[keep], si[keep], d[keep]
                lo = hi
            done += 1
            if progress is not None:
                progress(done, total)


def _cross(a: IntArray, b: IntArray, d: IntArray, a_rows: IntArray, a_off: IntArray, b_rows: IntArray,
           b_off: IntArray) -> Iterator[tuple[IntArray, IntArray, IntArray]]:
    """Pieces of at most about ``_PIECE`` (row of a, row of b, distance): every row holding value ``a[p]`` with every
    row holding value ``b[p]`` (``_values``' rows and offsets), for each matching pair of values ``p``."""
    na, nb = a_off[a + 1] - a_off[a], b_off[b + 1] - b_off[b]
    n = na * nb
    ends = np.cumsum(n)
    total = int(ends[-1]) if len(ends) else 0
    for lo in range(0, total, _PIECE):
        hi = min(lo + _PIECE, total)
        p0, p1 = int(np.searchsorted(ends, lo, side="right")), int(np.searchsorted(ends, hi - 1, side="right")) + 1
        begin = ends[p0:p1] - n[p0:p1]
        p = np.repeat(np.arange(p0, p1), np.minimum(ends[p0:p1], hi) - np.maximum(begin, lo))
        k = np.arange(lo, hi, dtype=np.int64) - (ends[p] - n[p])
        yield a_rows[a_off[a[p]] + k // nb[p]], b_rows[b_off[b[p]] + k % nb[p]], d[p]


def search_hashes(queries: np.ndarray, stored: np.ndarray, threshold: int, *,
                  progress: Progress | None = None) -> tuple[IntArray, IntArray, IntArray]:
    """All (query, stored) index pairs whose hashes differ in at most ``threshold`` bits.

    Args:
        queries: (q,) uint64.
        stored: (s,) uint64.
        threshold: maximum Hamming distance (0..32).
        progress: ``progress(done, total)`` over the pieces of the search.

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
    qv, q_rows, q_off = _values(q)
    sv, s_rows, s_off = _values(s)
    keys = []
    for a, b, d in _value_matches(qv, sv, threshold, progress):
        for qi, si, _ in _cross(a, b, d, q_rows, q_off, s_rows, s_off):
            keys.append(qi * len(s) + si)
    if not keys:
        return empty, empty, empty
    key = np.sort(np.concatenate(keys))  # each (query, stored) pair once: no duplicates to remove
    qi, si = key // len(s), key % len(s)
    return qi, si, hamming(q[qi], s[si])


def hash_pairs(hashes: np.ndarray, threshold: int, *,
               progress: Progress | None = None) -> tuple[IntArray, IntArray]:
    """(i, j) row pairs (i < j) of ``hashes`` (n, v) uint64 whose first column is within ``threshold`` bits of any
    column of the other row (either way), and the smallest such distance.

    Memory stays linear in the rows plus the pairs found: the matches of distinct values are expanded to rows in
    pieces, and each piece is reduced to distinct row pairs (smallest distance) before it is kept.

    Returns:
        (pairs (p, 2) int64 sorted by i then j, distance (p,) int64).
    """
    h = np.asarray(hashes, np.uint64)
    n, v = h.shape
    if n < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    qv, q_rows, q_off = _values(h[:, 0])
    sv, flat_rows, s_off = _values(h.ravel())
    # each value's rows, as distinct owners (an image whose variants share a value holds it once)
    owner = flat_rows // v
    value = np.repeat(np.arange(len(sv), dtype=np.int64), np.diff(s_off))
    vo = distinct(value * n + owner)
    o_rows = vo % n
    o_off = np.searchsorted(vo // n, np.arange(len(sv) + 1, dtype=np.int64))
    del owner, value, flat_rows, vo
    kept: list[np.ndarray] = []  # packed (i * n + j) * 64 + distance, distinct keys within each array
    size = compacted = 0
    for a, b, d in _value_matches(qv, sv, threshold, progress):
        for i, j, dd in _cross(a, b, d, q_rows, q_off, o_rows, o_off):
            other = i != j
            i, j, dd = i[other], j[other], dd[other]
            piece = _smallest((np.minimum(i, j) * n + np.maximum(i, j)) * 64 + dd)
            kept.append(piece)
            size += len(piece)
            if size > 2 * compacted + _PIECE:  # pairs found again (other variants) are merged as we go
                kept = [_smallest(np.concatenate(kept))]
                size = compacted = len(kept[0])
    packed = _smallest(np.concatenate(kept)) if kept else np.zeros(0, np.int64)
    key = packed >> 6
    return np.stack([key // n, key % n], axis=1), packed & 63


def _smallest(packed: np.ndarray) -> np.ndarray:
    """Sorted ``key * 64 + distance`` values, one per key: the smallest distance."""
    s = np.sort(packed)
    key = s >> 6
    first = np.ones(len(s), bool)
    first[1:] = key[1:] != key[:-1]
    out: np.ndarray = s[first]
    return out
