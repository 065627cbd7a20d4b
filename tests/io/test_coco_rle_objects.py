"""The kernel's RLE dicts: the same values as the Python path's, kept out of the cyclic garbage collector (two
objects per mask that every collection, and the one at interpreter exit, would walk), and tracked again by CPython
when given a container."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest

from maslow._native import load
from maslow.core import masks as M
from maslow.io import coco, coco_results

pytestmark = pytest.mark.skipif(load("records") is None, reason="maslow._native.records is not built")


def _files(tmp: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    images = [{"id": i + 1, "file_name": f"{i}.png", "width": 40, "height": 30} for i in range(4)]
    anns, dets = [], []
    for i in range(4):
        m = np.zeros((30, 40), np.uint8)
        m[rng.integers(0, 10):rng.integers(15, 30), rng.integers(0, 10):rng.integers(20, 40)] = 1
        rle = M.encode(m)
        counts = rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"]
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "area": float(m.sum()),
                     "bbox": [0, 0, 1, 1], "segmentation": {"size": [30, 40], "counts": counts}})
        dets.append({"image_id": i + 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [30, 40],
                                                                                        "counts": counts}})
    gt, dt = tmp / "gt.json", tmp / "dt.json"
    gt.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "a"}]}))
    dt.write_text(json.dumps(dets))
    return gt, dt


def test_kernel_masks_equal_the_python_paths_and_stay_out_of_the_collector(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    gt, dt = _files(tmp_path)
    truth = coco.read_coco(gt)
    kernel = [m for m in coco_results.read_coco_predictions(dt, like=truth).annotations.mask]
    monkeypatch.setenv("MASLOW_NATIVE", "0")
    python = [m for m in coco_results.read_coco_predictions(dt, like=truth).annotations.mask]
    assert kernel == python and len(kernel) == 4
    for m in kernel:
        assert not gc.is_tracked(m) and not gc.is_tracked(m["size"]) and m["size"] == [30, 40]
    d = kernel[0]
    d["note"] = ["a container"]  # CPython tracks a dict again when it may hold a cycle
    assert gc.is_tracked(d)
