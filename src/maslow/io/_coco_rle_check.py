"""Checks of compressed COCO RLE counts strings, all strings of a chunk at once (numpy, no loop per character).

Glossary: a counts string is pycocotools' ``rleToString`` of a mask's runs (alternating background and
foreground pixel counts, column-major). ``rleFrString`` reads it back: each run is a little-endian group of
6-bit characters (``'0' + value``; bit 5: more characters follow; bit 4 of the last: negative), and from the
fourth run on (``m > 2`` in ``rleFrString``, 0-based) the value is a delta to the run two before; each run is kept
as a uint32.

A string is read as a mask only where its runs cover the ``h x w`` pixels exactly: pycocotools' ``decode``
refuses a mask whose runs sum to more than ``h * w`` ("Invalid RLE mask representation") and leaves the pixels
past a smaller sum uninitialised. Strings on which ``rleFrString`` itself is undefined are refused too: a NUL
character (the C string ends there), a string that ends inside a run (it reads past the end). Runs are read
exactly (64-bit integers, no 32-bit shift overflowing), so the 7-character runs ``rleToString`` writes for
deltas of 2^29 or more (masks of 2^29 pixels or more, whose uncompressed counts the readers compress) read as
written; a run of more than 7 characters is no run ``rleToString`` writes and is refused.

The C reader (``coco_rle.h``'s ``rle_string_box``) gives no box (NaN) for every string refused here, and for runs
of 7 characters, so on that path only those are looked at again.
"""

from __future__ import annotations

import functools

import numpy as np

from maslow._native import load
from maslow.core.types import IntArray

#: Why a string is refused (``check``): codes and the words a finding uses.
OK, NUL, ENDS_IN_RUN, LONG_RUN = 0, 1, 2, 3
_WHY = {NUL: "it holds a NUL character", ENDS_IN_RUN: "it ends inside a run",
        LONG_RUN: "a run takes more than 7 characters"}


def run_sums(strings: list[bytes]) -> tuple[IntArray, IntArray]:
    """(n,) exact sums of each string's runs as ``rleFrString`` reads them (uint32 runs, summed in int64; runs
    of 7 characters read exactly, see the module), and (n,) codes: ``OK``, or why a string is no counts string
    (``NUL``, ``ENDS_IN_RUN``, ``LONG_RUN``, the first that applies; sum 0 then).

    Two passes over the characters find where each run starts; the runs are then decoded all at once, without a
    loop over their characters: a run of one or two characters (95% of them in COCO masks) by a table lookup of its
    first two bytes (a uint16: which of them belong to the run is in their bit 5), a longer one (``_runs32``,
    ``_runs64``) from the little-endian word at its start, its 5-bit groups packed by shifts and masks, cut to its
    length and sign-extended by two shifts. Runs are uint32 (modulo 2^32, as pycocotools keeps them); the delta
    chains (``m > 2``) are cumulative sums in uint32, the string sums in int64. About 11 ns per character (20 before);
    ``check`` takes ``maslow._native.rle`` where it is built (about 6 ns).
    """
    n = len(strings)
    lens = np.fromiter(map(len, strings), np.int64, n)
    sums, why = np.zeros(n, np.int64), np.zeros(n, np.int64)
    if not n or not lens.any():
        return sums, why
    joined = b"".join(strings)
    m = len(joined)
    chars = np.frombuffer(joined, np.uint8)
    # pycocotools: a (signed) char minus '0', as an int; its low 6 bits (all that is read) are those of a byte - 48
    d = np.empty(m + 8, np.uint8)  # 8 bytes past the end: a word read at the last run's start
    np.subtract(chars, 48, out=d[:m])
    d[m:] = 0
    ends = np.cumsum(lens)
    full = np.flatnonzero(lens)  # the non-empty strings
    last = ends[full] - 1
    if not chars.all():
        why[np.searchsorted(ends, np.flatnonzero(chars == 0), side="right")] = NUL
    run_end = (d[:m] & 0x20) == 0  # bit 5 clear: the run ends at this character
    inside = full[~run_end[last]]
    why[inside[why[inside] == OK]] = ENDS_IN_RUN
    run_end[last] = True  # a run never crosses into the next string (one that would is refused above)
    run_start = np.empty(m, bool)
    run_start[0] = True
    run_start[1:] = run_end[:-1]
    starts = np.flatnonzero(run_start)  # each run's first character
    pair = np.take(np.ndarray((m,), "<u2", d, 0, (1,)), starts)  # each run's first two characters
    x = np.take(_pairs(), pair)  # the runs of one or two characters
    longer = np.flatnonzero((pair & 0x2020) == 0x2020)  # both go on: runs of three characters or more
    if len(longer):
        at = starts[longer]
        k = np.take(starts, longer + 1, mode="clip") - at  # their numbers of characters
        if longer[-1] == len(starts) - 1:  # the last run ends with the last string
            k[-1] = m - at[-1]
        x[longer] = _runs32(d, m, at, k)
        wide = np.flatnonzero(k > 4)
        if len(wide):
            x[longer[wide]] = _runs64(d, m, at[wide], k[wide])
        long_run = longer[k > 7]
        if len(long_run):
            s = np.searchsorted(ends, starts[long_run], side="right")
            why[s[why[s] == OK]] = LONG_RUN
    first = np.searchsorted(starts, ends - lens)[full]  # each non-empty string's first run
    nxt = np.append(first[1:], len(x))
    run0 = x[first]
    y = x  # the runs become the pixel counts in place
    y[first] = 0  # run 0 is no delta
    for p in (0, 1):  # runs 2, 4, ... and 1, 3, ...: each the run two before plus its delta (pycocotools' m > 2),
        st = first + ((first & 1) != p)  # so a cumulative sum each; a string's chains lie in the two global
        st = st[st < nxt] // 2  # stride-2 slices, restarted at each string (less the string before's total)
        part = y[p::2]
        if len(part):
            tot = np.add.reduceat(part, st, dtype=np.uint32)
            part[st[1:]] -= tot[:-1]
            np.cumsum(part, out=part, dtype=np.uint32)
    y[first] = run0
    sums[full] = np.add.reduceat(y, first, dtype=np.int64)
    sums[why != OK] = 0
    return sums, why


@functools.cache
def _pairs() -> np.ndarray:
    """(65536,) uint32 the value (modulo 2^32) of a run of one or two characters by its first two bytes (a
    little-endian uint16 of characters - 48; bits 6 and 7 of each unread); 0 where both go on (a longer run)."""
    i = np.arange(1 << 16, dtype=np.int64)
    c0, c1 = i & 0x3F, (i >> 8) & 0x3F
    one = (c0 & 0x1F) - (c0 & 0x10) * 2  # bit 4 of its only character: x |= -1 << 5
    two = ((c0 & 0x1F) | (c1 & 0x1F) << 5) - (c1 & 0x10) * 64  # bit 4 of its second: x |= -1 << 10
    value = np.where((c0 & 0x20) == 0, one, np.where((c1 & 0x20) == 0, two, 0))
    table = (value & 0xFFFFFFFF).astype(np.uint32)
    table.flags.writeable = False  # cached: shared by every call
    return table


#: 32 - 5k for a run of k characters (k > 6: as 6)
_UP32 = np.array([32 - 5 * min(k, 6) for k in range(8)], np.uint32)


def _runs32(d: np.ndarray, m: int, starts: IntArray, k: IntArray) -> np.ndarray:
    """(runs,) uint32 each run's value modulo 2^32, exact for runs of up to 4 characters: the word of the 4
    characters at its start, their low 5 bits packed (character j at bit 5j), then shifted up and back down as an
    int32, which drops the characters past the run's ``k`` and copies bit 4 of its last one (bit ``5k - 1``) into
    the bits above: ``x |= -1 << 5*k``."""
    w: np.ndarray = np.take(np.ndarray((m,), "<u4", d, 0, (1,)), starts)  # unaligned words, one per character
    w &= 0x1F1F1F1F
    t = w >> 3  # characters 1 and 3 next to 0 and 2: 10 bits in each half
    t &= 0x03E003E0
    w &= 0x001F001F
    w |= t
    np.right_shift(w, 6, out=t)  # the upper half next to the lower: 20 bits
    t &= 0xFFC00
    w &= 0x3FF
    w |= t
    up = np.take(_UP32, k, mode="clip")  # 32 - 5k (runs of more than 4 characters are _runs64's)
    w <<= up
    signed = w.view(np.int32)
    np.right_shift(signed, up.view(np.int32), out=signed)  # an arithmetic shift (numpy: floor division by 2^up)
    return w


def _runs64(d: np.ndarray, m: int, starts: IntArray, k: IntArray) -> np.ndarray:
    """``_runs32`` for runs of 5 to 8 characters (uint64 words of 8 characters; a longer run is refused, its value
    no matter), as uint32 modulo 2^32."""
    u = np.uint64
    w: np.ndarray = np.ndarray((m,), "<u8", d, 0, (1,))[starts]
    w &= u(0x1F1F1F1F1F1F1F1F)
    w = (w & u(0x001F001F001F001F)) | ((w >> u(3)) & u(0x03E003E003E003E0))
    w = (w & u(0x000003FF000003FF)) | ((w >> u(6)) & u(0x000FFC00000FFC00))
    w = (w & u(0xFFFFF)) | ((w >> u(12)) & u(0xFFFFF00000))
    up = u(64) - np.minimum(k, 8).astype(np.uint64) * u(5)
    w <<= up
    signed = w.view(np.int64)
    np.right_shift(signed, up.view(np.int64), out=signed)
    return w.astype(np.uint32)  # modulo 2^32


def check(strings: list[bytes], sizes: list[tuple[int, int]]) -> dict[int, str]:
    """The strings (each with its mask's ``(h, w)``) that are no mask: position -> what a finding says is wrong."""
    sums, why = _kernel_sums(strings, sizes)
    hw = np.fromiter((h * w for h, w in sizes), np.int64, len(sizes))
    out: dict[int, str] = {}
    for i in np.flatnonzero((why != OK) | (sums != hw)).tolist():  # the few bad ones: the rest is one comparison
        if why[i] != OK:
            out[i] = (f"RLE counts must be a compressed RLE string (pycocotools' rleToString), got "
                      f"{_short(strings[i])}: {_WHY[int(why[i])]}")
        else:
            out[i] = (f"RLE counts must hold runs that sum to height*width = {int(hw[i])}, got {int(sums[i])} "
                      f"({_short(strings[i])})")
    return out


def _kernel_sums(strings: list[bytes], sizes: list[tuple[int, int]]) -> tuple[IntArray, IntArray]:
    """``run_sums``, the runs parsed by ``maslow._native.rle`` where it is built (4 ns a character, against 11
    here): its runs are ``rleFrString``'s; the strings it leaves to pycocotools (an end inside a run, a run of
    more than 6 characters, a height of 0 under a foreground run) and those with a NUL (it reads up to the NUL, as
    pycocotools does) go through ``run_sums``."""
    kernel = load("rle")
    if kernel is None or not strings:
        return run_sums(strings)
    runs, off, _, _, status = kernel.dict_runs([{"size": list(hw), "counts": s} for s, hw in zip(strings, sizes,
                                                                                                 strict=True)])
    runs, off, status = np.frombuffer(runs, np.uint32), np.frombuffer(off, np.int64), np.frombuffer(status, np.uint8)
    total = np.concatenate([[0], np.cumsum(runs, dtype=np.int64)])
    sums, why = total[off[1:]] - total[off[:-1]], np.zeros(len(strings), np.int64)
    redo = np.flatnonzero(status != 0)
    nul = [i for i, s in enumerate(strings) if b"\0" in s] if b"\0" in b"".join(strings) else []
    if nul:
        redo = np.union1d(redo, nul)
    if len(redo):
        sums[redo], why[redo] = run_sums([strings[i] for i in redo.tolist()])
    return sums, why


def _short(s: bytes, limit: int = 40) -> str:
    t = repr(s.decode("ascii", "replace"))
    return t if len(t) <= limit else t[: limit - 4] + "...'"
