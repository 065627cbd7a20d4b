"""Compiled kernels of maslow (C, no dependency beyond Python's headers).

Every extension is optional: without a C compiler the install still succeeds, and maslow uses its numpy code
paths (same results, slower). ``maslow._native.available()`` says which kernels were built.
"""

from pathlib import Path

from setuptools import Extension, setup

_FLAGS = ["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
# the kernels' headers (json_scan.h, coco_record.h, coco_orders.h, ...): a changed header rebuilds every kernel
_HEADERS = sorted(str(p) for p in Path("src/maslow/_native").glob("*.h"))

setup(
    ext_modules=[
        Extension(f"maslow._native.{name}", [f"src/maslow/_native/{name}.c"], optional=True,
                  extra_compile_args=_FLAGS, depends=_HEADERS)
        for name in ("records", "cocoeval", "confusion", "rle", "png")
    ],
)
