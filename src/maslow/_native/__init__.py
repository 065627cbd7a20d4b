"""Compiled kernels (C), built at install time when a C compiler is present.

Each kernel has a numpy twin that gives the same results bit for bit; the kernel is only faster. ``load(name)``
returns the compiled module, or None when it was not built (no compiler at install) or when the environment
variable ``MASLOW_NATIVE=0`` asks for the numpy paths (the tests run both and compare them).

- ``records``: COCO annotation/result records (a JSON array of objects) straight to numpy-ready columns;
- ``cocoeval``: pycocotools' greedy matching and accumulation;
- ``confusion``: the confusion matrix of two label maps (semantic segmentation);
- ``rle``: COCO masks as run lengths (polygons rasterised, counts strings parsed) and their areas and IoUs, as
  pycocotools' mask API computes them (mask mAP).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

KERNELS = ("records", "cocoeval", "confusion", "rle")


def load(name: str) -> ModuleType | None:
    """The compiled kernel ``name``, or None (not built, or ``MASLOW_NATIVE=0``)."""
    if os.environ.get("MASLOW_NATIVE", "1") == "0":
        return None
    try:
        return importlib.import_module(f"maslow._native.{name}")
    except ImportError:
        return None


def available() -> dict[str, bool]:
    """Which kernels are in use (built and not switched off)."""
    return {name: load(name) is not None for name in KERNELS}
