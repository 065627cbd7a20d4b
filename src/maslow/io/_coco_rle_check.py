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

    About 20-25 ns per character (numpy passes over the characters, then over the runs; most runs take one or
    two characters): ``check`` takes ``maslow._native.rle`` where it is built (about 5 ns).
    """
    n = len(strings)
    lens = np.fromiter(map(len, strings), np.int64, n)
    sums, why = np.zeros(n, np.int64), np.zeros(n, np.int64)
    if not n or not lens.any():
        return sums, why
    chars = np.frombuffer(b"".join(strings), np.uint8)
    ends = np.cumsum(lens)
    full = np.flatnonzero(lens)  # the non-empty strings
    last = ends[full] - 1
    c = chars.view(np.int8).astype(np.int16)
    c -= 48  # pycocotools: a (signed) char minus '0', as an int
    more = (c & 0x20).astype(bool)
    if not chars.all():
        why[np.searchsorted(ends, np.flatnonzero(chars == 0), side="right")] = NUL
    inside = full[more[last]]
    why[inside[why[inside] == OK]] = ENDS_IN_RUN
    more[last] = False  # a run never crosses into the next string (one that would is refused above)
    low = c & 0x1F
    val = ((low ^ 0x10) - 0x10).astype(np.int64)  # a one-character run's value (bit 4 the sign), at its character
    conts = np.flatnonzero(more)
    if len(conts):  # runs of several characters: their values at their last characters
        s0 = conts[~more[conts - 1]]  # their first characters (the one before ends a run, or a string)
        stop = s0 + 1
        v = low[s0].astype(np.int64) + (low[stop].astype(np.int64) << 5)
        at = np.flatnonzero(more[stop])
        for j in range(2, 8):  # up to 8 characters: past 7 the string is refused (no shift past 40 bits)
            if not len(at):
                break
            stop[at] += 1
            v[at] += low[stop[at]].astype(np.int64) << (5 * j)
            at = at[more[stop[at]]]
        k = stop - s0  # characters after the first
        v -= ((c[stop] >> 4) & 1).astype(np.int64) << (5 * (k + 1))  # bit 4 of the last: x |= -1 << 5 * chars
        val[stop] = v
        if (k > 6).any():
            s = np.searchsorted(ends, s0[k > 6], side="right")
            why[s[why[s] == OK]] = LONG_RUN
    stops = np.flatnonzero(~more)  # each run's last character
    x = val[stops]
    x &= 0xFFFFFFFF  # each run is a uint32: its delta too, modulo 2^32 (the chains' sums stay below 2^63)
    first = np.searchsorted(stops, ends - lens)[full]  # each non-empty string's first run
    nxt = np.append(first[1:], len(x))
    y = x.copy()
    y[first] = 0  # run 0 is no delta
    for p in (0, 1):  # runs 2, 4, ... and 1, 3, ...: each the run two before plus its delta (pycocotools' m > 2),
        st = first + ((first & 1) != p)  # so a cumulative sum each; a string's chains lie in the two global
        st = st[st < nxt] // 2  # stride-2 slices, restarted at each string (less the string before's total)
        part = y[p::2]
        if len(part):
            tot = np.add.reduceat(part, st)
            part[st[1:]] -= tot[:-1]
            np.cumsum(part, out=part)
    y[first] = x[first]
    y &= 0xFFFFFFFF
    sums[full] = np.add.reduceat(y, first)
    sums[why != OK] = 0
    return sums, why


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
    """``run_sums``, the runs parsed by ``maslow._native.rle`` where it is built (4 ns a character, against 20
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
