"""Compiled kernels of maslow (C, no dependency beyond Python's headers).

Every extension is optional: without a C compiler the install still succeeds, and maslow uses its numpy code
paths (same results, slower). ``maslow._native.available()`` says which kernels were built.
"""

from setuptools import Extension, setup

_FLAGS = ["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]
_RECORDS_HEADERS = [f"src/maslow/_native/{h}.h" for h in ("json_scan", "column", "coco_rle")]  # records.c's

setup(
    ext_modules=[
        Extension(f"maslow._native.{name}", [f"src/maslow/_native/{name}.c"], optional=True,
                  extra_compile_args=_FLAGS,
                  depends=_RECORDS_HEADERS if name == "records" else [])
        for name in ("records", "cocoeval", "confusion")
    ],
)
