"""The multi-index Hamming search at every block width: the same pairs as brute force, and a bounded work load.

The audit of 2026 found that 2^14 to 2^20 stored hashes (630 to 40,000 images of 26 hashes) were cut into four
16-bit blocks whatever their number: up to 16 stored hashes a bucket, so time and memory grew with the square of
the images (40,000 images: 75 s, 4 GB). These tests sit on both sides of each switch of the block width.
"""

from __future__ import annotations

import numpy as np
import pytest

from maslow.diversity import _search
from maslow.diversity._search import _flip_masks, _plan, search_hashes


def _random(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) ^ (
        rng.integers(0, 2, n, dtype=np.int64).astype(np.uint64) << np.uint64(63))


def _planted(rng: np.random.Generator, q: np.ndarray, s: np.ndarray, threshold: int, n: int) -> None:
    """Overwrite ``n`` stored hashes with queries at distances 0 .. threshold + 2 (the tie included)."""
    for _ in range(n):
        a, b, dist = int(rng.integers(len(q))), int(rng.integers(len(s))), int(rng.integers(0, threshold + 3))
        s[b] = q[a] ^ np.uint64(sum(1 << int(bit) for bit in rng.choice(64, dist, replace=False)))


def _brute(q: np.ndarray, s: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out_q, out_s, out_d = [], [], []
    for lo in range(0, len(q), 8):  # a few million XORs at a time
        d = np.bitwise_count(q[lo:lo + 8, None] ^ s[None, :]).astype(np.int64)
        qi, si = np.nonzero(d <= threshold)
        out_q.append(qi + lo), out_s.append(si), out_d.append(d[qi, si])
    return np.concatenate(out_q), np.concatenate(out_s), np.concatenate(out_d)


# stored sizes on both sides of the block-width switches (width = bit_length + 1, 12 to 22): 2^11 (widths 12),
# 2^14 (the old 16-bit cliff began), 2^17, 2^20 (the old switch to 3 blocks; 22 bits, the cap, from there on)
SIZES = [2**11 - 1, 2**11, 2**14 - 1, 2**14, 2**17, 2**20 - 1, 2**20]


@pytest.mark.parametrize("n_stored", SIZES)
def test_search_equals_brute_force_around_width_switches(n_stored: int) -> None:
    rng = np.random.default_rng(n_stored)
    n_query = max(_search._PIECE // n_stored + 8, 40)  # past the brute-force cut-off: the multi-index runs
    assert n_query * n_stored > _search._PIECE
    s0 = _random(rng, n_stored)
    # radius 0, 1 and 2, and 5 blocks (12); two thresholds for a million hashes (brute force takes seconds)
    for threshold in (0, 1, 4, 5, 8, 12) if n_stored < 2**18 else (1, 8):
        q, s = _random(rng, n_query), s0.copy()
        s[: n_query // 2] = q[: n_query // 2]  # exact copies
        _planted(rng, q, s, threshold, 400)
        got = search_hashes(q, s, threshold)
        want = _brute(q, s, threshold)
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(g, w), (n_stored, threshold)
        assert len(want[0]) >= min(n_query, n_stored) // 4  # copies, planted pairs: the check is not vacuous


def test_high_threshold_uses_more_blocks_and_stays_exact() -> None:
    rng = np.random.default_rng(7)
    q, s = _random(rng, 300), _random(rng, 2**14 + 3)
    for threshold in (20, 32):
        _planted(rng, q, s, threshold, 300)
        for g, w in zip(search_hashes(q, s, threshold), _brute(q, s, threshold), strict=True):
            assert np.array_equal(g, w)


def _count_candidates(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the arrays verified with XOR+popcount inside the multi-index (the final distances excluded)."""
    sizes: list[int] = []
    real = _search.hamming

    def counting(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        sizes.append(int(np.size(a)))
        return real(a, b)

    monkeypatch.setattr(_search, "hamming", counting)
    return sizes


@pytest.mark.parametrize("n_stored", [2**15, 2**17, 2**19])
def test_buckets_hold_under_one_stored_hash_per_probe(monkeypatch: pytest.MonkeyPatch, n_stored: int) -> None:
    """Random hashes: about 0.25-0.5 candidates per probe (blocks of log2(stored) + 1 bits), not up to 16.

    The old 16-bit blocks gave n_stored / 2^16 per probe: 0.5 at 2^15, 2 at 2^17, 8 at 2^19.
    """
    rng = np.random.default_rng(1)
    q, s = _random(rng, 500), _random(rng, n_stored)
    _, widths, radius = _plan(len(q), n_stored, 8)
    assert radius == 2 and min(widths) >= min(n_stored.bit_length(), 21)  # threshold 8: 3 blocks, the data's width
    sizes = _count_candidates(monkeypatch)
    search_hashes(q, s, 8)
    probes = len(q) * sum(len(_flip_masks(w, radius)) for w in widths)
    candidates = sum(sizes[:-1])  # the last call gives the distances of the pairs found
    assert candidates < 0.75 * probes, (candidates, probes)


def test_every_plan_keeps_the_pigeonhole() -> None:
    """Disjoint blocks inside the 64 bits, b * (r + 1) > threshold, widths 22 bits at most."""
    for threshold in range(33):
        for n_stored in (2**11, 2**14, 2**17, 2**20, 2**23):
            starts, widths, radius = _plan(n_stored // 26 + 1, n_stored, threshold)
            assert len(widths) * (radius + 1) > threshold and max(widths) <= 22
            assert all(a + w <= b for a, w, b in zip(starts, widths, [*starts[1:], 64], strict=True))


def test_candidates_are_verified_in_bounded_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crowded bucket (hashes equal on a block, the rest random) is verified in pieces of at most _PIECE
    candidates, unless one bucket alone holds more; the result does not change."""
    rng = np.random.default_rng(3)
    q, s = _random(rng, 400), _random(rng, 30_000)
    s[:20_000] &= ~np.uint64((1 << 21) - 1)  # 20,000 stored hashes share their lowest 21 bits (zero)
    q[:50] &= ~np.uint64((1 << 21) - 1)
    want = _brute(q, s, 8)
    monkeypatch.setattr(_search, "_PIECE", 5_000)
    sizes = _count_candidates(monkeypatch)
    got = search_hashes(q, s, 8)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)
    pieces = sizes[:-1]
    assert sum(pieces) > 50 * 20_000  # the crowded bucket was probed by the 50 queries
    assert max(pieces) <= 20_010  # one bucket (20,000 and a few random) at most, never 50 x 20,000 at once
