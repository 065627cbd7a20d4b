"""Compiled kernels (C), built at install time when a C compiler is present.

Each kernel has a numpy twin that gives the same results bit for bit; the kernel is only faster. ``load(name)``
returns the compiled module, or None when it was not built (no compiler at install) or when the environment
variable ``MASLOW_NATIVE=0`` asks for the numpy paths (the tests run both and compare them).

- ``records``: COCO annotation/result records (a JSON array of objects) straight to numpy-ready columns;
- ``cocoeval``: pycocotools' greedy matching and accumulation;
- ``confusion``: the confusion matrix of two label maps (semantic segmentation);
- ``rle``: COCO masks as run lengths (polygons rasterised, counts strings parsed) and their areas and IoUs, as
  pycocotools' mask API computes them (mask mAP);
- ``png``: 8-bit PNGs inflated and unfiltered, and panoptic segment-id maps as COCO RLE (``io/_coco_panoptic_png``).
"""

from __future__ import annotations

import importlib
import math
import os
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

KERNELS = ("records", "cocoeval", "confusion", "rle", "png")


def load(name: str) -> ModuleType | None:
    """The compiled kernel ``name``, or None (not built, or ``MASLOW_NATIVE=0``)."""
    if os.environ.get("MASLOW_NATIVE", "1") == "0":
        return None
    try:
        return importlib.import_module(f"maslow._native.{name}")
    except ImportError:
        return None


#: Bytes from which ``empty`` maps huge pages (json_scan.h's BIG_BUF).
HUGE_MIN = 1 << 20


def empty(shape: int | tuple[int, ...], dtype: Any) -> np.ndarray:
    """``np.empty(shape, dtype)``; from ``HUGE_MIN`` bytes on (and with the ``cocoeval`` kernel), in a 2 MiB-aligned
    mapping marked for transparent huge pages: one page fault per 2 MiB when first written instead of 512 (0.1
    instead of 0.35 ms per MB on the benchmark machine). numpy marks only its allocations of 4 MiB or more, and
    not aligned. For the large outputs of the kernels' callers."""
    import numpy as np

    dt = np.dtype(dtype)
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    n = dt.itemsize * math.prod(int(d) for d in dims)
    kernel = load("cocoeval") if n >= HUGE_MIN else None
    if kernel is None:
        return np.empty(dims, dt)
    return np.frombuffer(kernel.empty(n), dt).reshape(dims)


def available() -> dict[str, bool]:
    """Which kernels are in use (built and not switched off)."""
    return {name: load(name) is not None for name in KERNELS}
