"""The records kernel's scanning of JSON text: strings (16 bytes a step) and numbers (Clinger's fast path, then
Eisel-Lemire, then strtod), each bit for bit what Python's json gives."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow._native import load

KERNEL = load("records")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="maslow._native.records is not built")
ROOT = Path(__file__).resolve().parents[2]


def _parse(numbers: list[str]) -> Any:
    """The kernel's values of number tokens (5 per record: bbox and score), or its bail-out reason (a str)."""
    assert KERNEL is not None and len(numbers) % 5 == 0
    recs = [f'{{"image_id":1,"category_id":1,"bbox":[{",".join(numbers[i:i + 4])}],"score":{numbers[i + 4]}}}'
            for i in range(0, len(numbers), 5)]
    data = ("[" + ",".join(recs) + "]").encode()
    cols = KERNEL.parse(data, 0, len(data), True)
    if not isinstance(cols, dict):
        return cols
    bbox = np.frombuffer(cols["bbox"], np.float64).reshape(-1, 4)
    return np.concatenate([bbox, np.frombuffer(cols["score"], np.float64)[:, None]], axis=1).ravel()


def _assert_exact(tokens: list[str]) -> None:
    tokens = tokens + ["1"] * (-len(tokens) % 5)
    got = _parse(tokens)
    assert not isinstance(got, str), got
    want = np.asarray([float(t) for t in tokens], np.float64)  # Python's float(): correctly rounded
    bad = np.flatnonzero(got.view(np.uint64) != want.view(np.uint64))
    assert not bad.size, [(tokens[i], got[i], want[i]) for i in bad[:5]]


def _doubles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite positive doubles spread over every exponent (random bit patterns)."""
    bits = rng.integers(1, 0x7FF0000000000000, n, dtype=np.int64)
    return bits.view(np.float64)


@needs_kernel
def test_shortest_reprs_of_any_double() -> None:
    """repr() gives up to 17 significant digits: most miss Clinger's fast path (Eisel-Lemire or strtod then)."""
    rng = np.random.default_rng(1)
    _assert_exact([repr(float(v)) for v in _doubles(rng, 20_000)])
    _assert_exact([repr(-float(v)) for v in _doubles(rng, 5_000)])


@needs_kernel
def test_float32_values_as_python_writes_them() -> None:
    """A detectron2-style results file: float32 boxes and scores dumped by json (17 digits, plain notation)."""
    rng = np.random.default_rng(2)
    vals = np.concatenate([rng.uniform(-10, 2000, 20_000), rng.random(5_000)]).astype(np.float32)
    _assert_exact([json.dumps(float(v)) for v in vals])


@needs_kernel
@pytest.mark.parametrize("n_digits", [16, 17, 18, 19])
def test_random_digit_strings_at_every_exponent(n_digits: int) -> None:
    rng = np.random.default_rng(n_digits)
    tokens = []
    for _ in range(4_000):
        digits = "".join(str(d) for d in rng.integers(0, 10, n_digits))
        digits = str(int(rng.integers(1, 10))) + digits[1:]
        exp = int(rng.integers(-340, 290))
        tokens.append(f"{digits[0]}.{digits[1:]}e{exp}")  # n_digits significant digits, value ~ 10^exp
        tokens.append(f"0.{'0' * int(rng.integers(0, 6))}{digits}")  # leading zeros: not counted as digits
    _assert_exact(tokens)


@needs_kernel
def test_binary_fractions_written_in_full() -> None:
    """m / 2^k written exactly in decimal (m * 5^k with k decimals, up to 19 digits): a double, or halfway between
    two when m has more than 53 bits; Eisel-Lemire can't decide most of these, the dyadic path does."""
    rng = np.random.default_rng(4)
    tokens = []
    for k in range(1, 28):
        top = 10**19 // 5**k  # m * 5^k below 10^19
        for m in rng.integers(1, max(2, min(top, 2**63 - 1)), 60, dtype=np.int64).tolist():
            if m % 5 == 0:
                m += 1
            digits = str(m * 5**k).rjust(k + 1, "0")
            tokens.append(f"{digits[:-k]}.{digits[-k:]}")
    assert sum(len(t) - 1 > 16 for t in tokens) > 500  # many past Clinger's 2^53
    _assert_exact(tokens)


def _halfway(a: float) -> str:
    """The exact decimal of the midpoint between a > 0 and the next double up."""
    ulp = math.ldexp(1.0, math.frexp(a)[1] - 53)
    mid = Fraction(a) + Fraction(ulp) / 2
    num, den = mid.numerator, mid.denominator  # den is a power of 2: mid has a finite decimal expansion
    k = den.bit_length() - 1
    digits = str(num * 5**k)
    return f"{digits}e-{k}"


@needs_kernel
def test_near_halfway_values() -> None:
    """The hardest inputs: exactly halfway between two doubles (ties to even), and that midpoint cut to 17-19
    significant digits, just below or above it (the algorithm must defer or decide right)."""
    rng = np.random.default_rng(3)
    tokens = []
    moderate = 10.0 ** rng.uniform(-4, 5, 1_500)  # few digits before the point: short decimal exponents
    for v in np.concatenate([_doubles(rng, 1_500), moderate]):
        a = float(v)
        if not 1e-300 < a < 1e300:
            continue
        exact = _halfway(a)  # hundreds of digits: strtod
        mant, exp = exact.split("e")
        shift = len(mant)
        if len(exact) < 390:  # longer numbers are left to the Python reader (test_coco_native)
            tokens.append(exact)
        for keep in (17, 18, 19):
            cut = int(mant[:keep])
            for c in (cut - 1, cut, cut + 1):
                tokens.append(f"{c}e{int(exp) + shift - keep}")
    _assert_exact(tokens)


@needs_kernel
@pytest.mark.parametrize("token", [
    "9007199254740993", "9007199254740993.0", "9007199254740992.5", "1e23", "8.98846567431158e307",
    "1.7976931348623157e308", "1.7976931348623158e308", "2.2250738585072014e-308", "2.2250738585072011e-308",
    "4.9406564584124654e-324", "2.4703282292062328e-324", "1e-320", "0.1", "0.30000000000000004",
    "123456789012345678.9", "1234567890123456789e-19", "0.000000000000000000000000000001234567890123456789",
    "7.2057594037927933e16", "3.0517578125e-05", "1.00000000000000011102230246251565e0", "5e-324", "1e-400",
])
def test_known_hard_numbers(token: str) -> None:
    _assert_exact([token, "-" + token])


@needs_kernel
@pytest.mark.parametrize("token", ["1.7976931348623159e308", "2e308", "1e400"])
def test_numbers_beyond_the_largest_double_are_refused(token: str) -> None:
    """json gives inf for these: the kernel leaves the file to the Python reader, which reports the value."""
    assert isinstance(_parse([token, "1", "1", "1", "1"]), str)


def test_pow10_table_is_what_its_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "pow10_128.h"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_pow10.py"), str(out)], check=True)
    assert out.read_text() == (ROOT / "src" / "maslow" / "_native" / "pow10_128.h").read_text()
    first = out.read_text().split("{0x", 2)[1]  # 1e-348, rounded down: the entry every table of this kind has
    assert first.startswith("fa8fd5a0081c0288u, 0x1732c869cd60e453u")
    assert struct.calcsize("Q") == 8


@needs_kernel
@pytest.mark.parametrize("at", range(0, 40))
def test_string_scan_stops_at_every_position(at: int) -> None:
    """The string scanner (16 bytes a step where SSE2 is) finds an escape, a control character or a non-ASCII
    byte wherever it is in a 16-byte block, in a kept string (the RLE counts) and in a skipped one (an extra key)."""
    assert KERNEL is not None

    def parse(counts: bytes, note: bytes = b"x") -> Any:
        data = (b'[{"image_id":1,"category_id":1,"score":0.5,"note":"' + note +
                b'","segmentation":{"size":[4,4],"counts":"' + counts + b'"}}]')
        return KERNEL.parse(data, 0, len(data), True)

    plain = b"a" * 41
    for escape, value in ((b"\\\\", b"\\"), (b'\\"', b'"'), (b"\\u0041", b"A"), (b"\\/", b"/")):
        cols = parse(plain[:at] + escape + plain[at:])
        assert isinstance(cols, dict) and bytes(cols["rle_chars"]) == plain[:at] + value + plain[at:]
    for bad in (b"\x01", b"\x1f", "\u00e9".encode(), b"\x80", b"\xff"):  # kept strings are ASCII only
        assert isinstance(parse(plain[:at] + bad + plain[at:]), str)
    assert isinstance(parse(plain, note=plain[:at] + "\u00e9".encode() + plain[at:]), dict)  # skipped: any UTF-8
    assert isinstance(parse(plain, note=plain[:at] + b"\x01" + plain[at:]), str)  # never a control character
    cols = parse(plain[:at] + b'"' + plain[at:])  # the string ends at the quote: then malformed JSON
    assert isinstance(cols, str)


