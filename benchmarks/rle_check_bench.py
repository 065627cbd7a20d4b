"""Speed of the COCO RLE counts check (``maslow.io._coco_rle_check``): the numpy path (no C compiler) against the C
kernel (``maslow._native.rle``), and optionally against another version of the module (``--baseline FILE``, e.g.
``git show HEAD~1:src/maslow/io/_coco_rle_check.py > /tmp/old.py``), on pycocotools' counts strings of random
polygons (masks of 200-800 pixels a side, about 540 characters a string).

Each is run ``--repeat`` times, alternating, and the best process CPU time and wall time are reported (the CPU time
is steadier on a shared machine); the results are checked to be identical.

Usage::

    python benchmarks/rle_check_bench.py                    # about 20 MB of counts strings
    python benchmarks/rle_check_bench.py --mb 95 --baseline /tmp/old.py
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from maslow._native import load
from maslow.io import _coco_rle_check as check


def strings_of(mb: float, seed: int = 0) -> tuple[list[bytes], list[tuple[int, int]]]:
    rng = np.random.default_rng(seed)
    strings: list[bytes] = []
    sizes: list[tuple[int, int]] = []
    total = 0
    while total < mb * 1e6:
        h, w = int(rng.integers(200, 800)), int(rng.integers(200, 800))
        k = int(rng.integers(3, 40))
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, min(h, w) / 2)
        angle = np.sort(rng.uniform(0, 2 * np.pi, k))
        radius = r * rng.uniform(0.3, 1.0, k)
        poly = np.column_stack([cx + radius * np.cos(angle), cy + radius * np.sin(angle)]).ravel().tolist()
        s = mask_utils.frPyObjects([poly], h, w)[0]["counts"]
        strings.append(s)
        sizes.append((h, w))
        total += len(s)
    return strings, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=20.0, help="megabytes of counts strings")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", help="another _coco_rle_check.py to time beside this one")
    args = parser.parse_args()
    strings, sizes = strings_of(args.mb)
    mb = sum(map(len, strings)) / 1e6
    runs: dict[str, Callable[[], Any]] = {"numpy": lambda: check.run_sums(strings)}
    if args.baseline:
        spec = importlib.util.spec_from_file_location("baseline_rle_check", args.baseline)
        assert spec is not None and spec.loader is not None
        base = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(base)
        runs["numpy (baseline)"] = lambda: base.run_sums(strings)
    if load("rle") is not None:
        runs["C kernel"] = lambda: check._kernel_sums(strings, sizes)
    best: dict[str, tuple[float, float]] = {}
    results: dict[str, Any] = {}
    for _ in range(args.repeat):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            results[name] = run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            b = best.get(name, (float("inf"), float("inf")))
            best[name] = (min(b[0], wall), min(b[1], cpu))
    first = next(iter(results.values()))
    for name, r in results.items():
        if r[0].tolist() != first[0].tolist() or r[1].tolist() != first[1].tolist():
            raise SystemExit(f"{name}: results differ from numpy's")
    print(f"{len(strings)} counts strings, {mb:.1f} MB; best of {args.repeat}; identical results")
    for name, (wall, cpu) in best.items():
        print(f"  {name:18s} wall {wall:6.2f} s   cpu {cpu:6.2f} s   {1e3 * cpu / mb:5.1f} ns/char (cpu)")


if __name__ == "__main__":
    main()
