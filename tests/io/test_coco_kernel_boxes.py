"""The boxes the C reader (``maslow._native.records``) gives results without a ``bbox``, and its parse of RLE
counts strings, against pycocotools 2.0.11 and against the Python path (``MASLOW_NATIVE=0``), bit for bit:

- keypoint results: the extent of each record's keypoints (``kp_box``, taken while the parser holds them), as
  ``COCO.loadRes`` boxes them; records of several K, records with a box or without keypoints beside them, and
  extents of 0 where both 0.0 and -0.0 occur (which one numpy's min gives is its choice: numpy decides there);
- RLE results: ``toBbox`` of counts strings with runs of 1 to 6 characters, negative deltas and positions past
  2^32 (``rle_box``), and the runs ``rle.dict_runs`` parses from them (pycocotools' own strings of known runs);
  the strings coco_rle.h leaves to pycocotools (an embedded NUL, a string ending inside its odd last run, a run of
  7 characters, a height of 0 under a foreground run) are left to it;
- files mixing RLE, box-only and keypoint records (the readers' scatter paths beside their shortcuts).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from maslow._native import load
from maslow.core.dataset import Dataset
from maslow.io import coco, coco_results
from maslow.io._coco_columns import AnnColumns
from maslow.io._coco_native import read_results_native
from maslow.io.coco import write_coco
from maslow.sample import shapes

KERNEL = load("records")
RLE = load("rle")
pytestmark = pytest.mark.skipif(KERNEL is None or RLE is None, reason="maslow._native.records/rle not built")


@pytest.fixture(scope="module")
def truth_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kernel_boxes") / "truth.json"
    write_coco(shapes(6, seed=1), path)
    return path


@pytest.fixture(scope="module")
def truth(truth_file: Path) -> Dataset:
    return coco.parse(truth_file)[0]


def _ids(truth: Dataset) -> tuple[int, int]:
    return int(truth.images.extra["coco_id"][0]), int(truth.schema.classes[0].id)  # type: ignore[arg-type]


def _same_floats(a: np.ndarray, b: np.ndarray) -> None:
    """Equal bit for bit (-0.0 and 0.0 differ)."""
    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _read_both(mp: pytest.MonkeyPatch, path: Path, truth: Dataset) -> Dataset:
    """The predictions read by the kernel and by the Python path: boxes, keypoints and masks alike; the kernel's."""
    mp.setenv("MASLOW_NATIVE", "0")
    py = coco_results.parse(path, like=truth)[0]
    mp.setenv("MASLOW_NATIVE", "1")
    nat = coco_results.parse(path, like=truth)[0]
    assert read_results_native(path.read_bytes(), AnnColumns(bbox_optional=True))  # the kernel took the file
    a, b = py.annotations, nat.annotations
    assert a.box is not None and b.box is not None
    _same_floats(a.box, b.box)
    assert (a.keypoints is None) == (b.keypoints is None)
    if a.keypoints is not None and b.keypoints is not None:
        _same_floats(a.keypoints, b.keypoints)
    assert (a.mask is None) == (b.mask is None)
    if a.mask is not None and b.mask is not None:
        assert a.mask.tolist() == b.mask.tolist()
    return nat


def _loadres_boxes(truth_file: Path, results: list[dict[str, Any]]) -> np.ndarray:
    """pycocotools' loadRes boxes of the results (xywh)."""
    gt = COCO()
    gt.dataset = json.loads(truth_file.read_text())
    gt.createIndex()
    res = gt.loadRes([dict(r) for r in results])
    return np.asarray([res.anns[i]["bbox"] for i in sorted(res.anns)], np.float64)


def _xywh(xyxy: np.ndarray) -> np.ndarray:
    """x1 - x0 and y1 - y0 as loadRes computes its width and height from the extent."""
    return np.column_stack([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]])


# -- keypoints ------------------------------------------------------------------------------------------------

def test_keypoint_boxes_equal_loadres_and_the_python_path(monkeypatch: pytest.MonkeyPatch, truth_file: Path,
                                                         truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    rng = np.random.default_rng(0)
    recs = []
    for i in range(40):
        k = (17, 17, 5, 1)[i % 4]
        kp = np.round(rng.uniform(-30, 400, (k, 3)), 2)
        kp[:, 2] = rng.choice([0, 1, 2], k)
        if i % 5 == 0:
            kp[rng.random(k) < 0.5, :2] = 0.0  # unlabelled keypoints written as 0
        recs.append({"image_id": image_id, "category_id": cat, "score": 0.5, "keypoints": kp.ravel().tolist()})
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(recs))
    pred = _read_both(monkeypatch, path, truth)
    assert pred.annotations.box is not None
    _same_floats(_xywh(pred.annotations.box), _loadres_boxes(truth_file, recs))


def test_keypoint_boxes_beside_boxes_and_records_without_keypoints(monkeypatch: pytest.MonkeyPatch,
                                                                  truth: Dataset, tmp_path: Path) -> None:
    image_id, cat = _ids(truth)
    recs: list[dict[str, Any]] = [
        {"image_id": image_id, "category_id": cat, "score": 0.5, "keypoints": [5.5, 6.25, 2, -1.5, 9, 1]},
        {"image_id": image_id, "category_id": cat, "score": 0.4, "keypoints": [1, 2, 2], "bbox": [3, 4, 5, 6]},
        {"image_id": image_id, "category_id": cat, "score": 0.3, "bbox": [7, 8, 9, 10]},
        {"image_id": image_id, "category_id": cat, "score": 0.2, "keypoints": [4, 4, 2, 3.5, 7, 0, 8, 1, 1]},
    ]
    path = tmp_path / "mixed_kp.json"
    path.write_text(json.dumps(recs))
    box = _read_both(monkeypatch, path, truth).annotations.box
    assert box is not None
    want = [[-1.5, 6.25, 5.5, 9.0], [3.0, 4.0, 8.0, 10.0], [7.0, 8.0, 16.0, 18.0], [3.5, 1.0, 8.0, 7.0]]
    _same_floats(box, np.asarray(want))


@pytest.mark.parametrize("values", [[0.0, -0.0], [-0.0, 0.0], [-0.0, 0.0, 3.0], [2.0, 0.0, -0.0], [-0.0, -0.0]])
def test_keypoint_extents_of_signed_zeros(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path,
                                          values: list[float]) -> None:
    """An extent of 0 with both zeros among the coordinates: the kernel leaves every record's box to numpy, so
    the two paths agree whatever numpy makes of it; with one kind of zero, its sign is kept."""
    image_id, cat = _ids(truth)
    recs = [{"image_id": image_id, "category_id": cat, "score": 0.5,
             "keypoints": [v for x in values for v in (x, 1.0 + len(values), 2)]},
            {"image_id": image_id, "category_id": cat, "score": 0.4, "keypoints": [4.0, 5.0, 2, 6.0, 7.0, 2]}]
    path = tmp_path / "zeros.json"
    path.write_text(json.dumps(recs))
    box = _read_both(monkeypatch, path, truth).annotations.box
    assert box is not None
    _same_floats(box[1], np.array([4.0, 5.0, 6.0, 7.0]))
    if all(struct.pack("<d", v) == struct.pack("<d", -0.0) for v in values):
        assert struct.pack("<d", box[0, 0]) == struct.pack("<d", -0.0)


# -- RLE counts strings ---------------------------------------------------------------------------------------

def _kernel_rle(counts: list[str], sizes: list[tuple[int, int]]) -> tuple[np.ndarray, dict[str, Any]]:
    """The records kernel's rle_box of results with these counts strings, and its raw columns."""
    data = json.dumps([{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [h, w], "counts": c}}
                       for c, (h, w) in zip(counts, sizes, strict=True)]).encode()
    assert KERNEL is not None
    cols = KERNEL.parse(data, 0, len(data), True)
    assert isinstance(cols, dict)
    return np.frombuffer(cols["rle_box"], np.float64).reshape(-1, 4), cols


def _runs_of(masks: list[dict[str, Any]]) -> tuple[list[list[int]], np.ndarray]:
    assert RLE is not None
    runs, off, _h, _w, status = RLE.dict_runs(masks)
    r, o = np.frombuffer(runs, np.uint32), np.frombuffer(off, np.int64)
    return [r[o[i]:o[i + 1]].tolist() for i in range(len(masks))], np.frombuffer(status, np.uint8)


@pytest.mark.parametrize("seed", range(4))
def test_counts_strings_of_long_runs_equal_pycocotools(seed: int) -> None:
    """pycocotools' strings of random runs (1 to 6 characters each, deltas of either sign, odd and even counts)
    on masks up to 2^32 - 1 pixels high (positions past 2^32 wrap in its uint32 box), the runs padded with
    background to cover the mask (the kernel leaves other strings without a box): the kernel's runs are the runs,
    its box is toBbox's."""
    rng = np.random.default_rng(seed)
    masks, runs_in, sizes = [], [], []
    for _ in range(300):
        n = int(rng.integers(1, 30))
        runs = [int(rng.integers(0, rng.choice([8, 1_000, 2**20, 2**29 - 1]))) for _ in range(n)]
        runs = [r if rng.random() > 0.1 else 0 for r in runs]
        runs[0] %= 16  # one character: pycocotools' rleToString writes 1 byte past its buffer when every run needs 6
        h = int(rng.choice([1, 3, 480, 65_537, 2**31, 2**32 - 1]))
        w = -(-max(sum(runs), 1) // h)  # columns enough for the runs
        pad = h * w - sum(runs)
        while pad:  # the rest as background, in runs below 2^29 (6 characters), after empty foreground runs
            part = min(pad, 2**29 - 1)
            runs += [part] if len(runs) % 2 == 0 else [0, part]
            pad -= part
        m = mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)
        masks.append(m)
        runs_in.append(runs)
        sizes.append((h, w))
    got, status = _runs_of(masks)
    assert not status.any() and got == runs_in
    box, _ = _kernel_rle([m["counts"].decode() for m in masks], sizes)
    assert not np.isnan(box).any()
    _same_floats(box, np.asarray(mask_utils.toBbox(masks), np.float64))


LEFT_TO_PYCOCOTOOLS = {  # coco_rle.h: the kernel's box is NaN, dict_runs' status 1 (or the string ends at a NUL)
    "nul inside a run": ("5\x60\x00=", (4, 5)),
    "ends inside its odd last run": ("52=0\x60", (4, 5)),
    "ends inside a run after an even count": ("52\x60", (4, 5)),
    "7-character odd last run": ("52\x60\x60\x60\x60\x60\x60\x30", (4, 5)),
    "7-character run first": ("\x60\x60\x60\x60\x60\x60\x3052", (4, 5)),
    "height 0 under a foreground run": ("12", (0, 5)),
    "height 2^32 under a foreground run": ("12", (2**32, 5)),
}


def test_strings_left_to_pycocotools() -> None:
    counts = [c for c, _ in LEFT_TO_PYCOCOTOOLS.values()]
    sizes = [s for _, s in LEFT_TO_PYCOCOTOOLS.values()]
    box, _ = _kernel_rle(counts, sizes)
    assert np.isnan(box).all()
    _, status = _runs_of([{"size": list(s), "counts": c.encode()} for c, s in zip(counts, sizes, strict=True)])
    assert dict(zip(LEFT_TO_PYCOCOTOOLS, status.tolist(), strict=True)) == dict.fromkeys(LEFT_TO_PYCOCOTOOLS, 1)
    # what the kernel keeps (runs that cover the mask): a 6-character run, an odd last run, a height of 0 without
    # foreground
    kept = [("52UPPPP06", (4, 5)), ("52510", (4, 5)), ("0", (0, 5)), ("00", (0, 5))]
    box, _ = _kernel_rle([c for c, _ in kept], [s for _, s in kept])
    want = mask_utils.toBbox([{"size": list(s), "counts": c.encode()} for c, s in kept])
    _same_floats(box, np.asarray(want, np.float64))


# -- files mixing record kinds --------------------------------------------------------------------------------

def test_mixed_results_files(monkeypatch: pytest.MonkeyPatch, truth_file: Path, truth: Dataset,
                             tmp_path: Path) -> None:
    """RLE records beside box-only and keypoint records: every record's box as loadRes gives it where the file has
    none, the masks where there are some, both paths alike; and a file of RLE records only."""
    image_id, cat = _ids(truth)
    h, w = int(truth.images.height[0]), int(truth.images.width[0])
    rng = np.random.default_rng(4)
    recs: list[dict[str, Any]] = []
    for i in range(30):
        r: dict[str, Any] = {"image_id": image_id, "category_id": cat, "score": round(float(rng.random()), 3)}
        if i % 3 == 0:
            m = np.zeros((h, w), np.uint8)
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            m[y:y + int(rng.integers(1, h)), x:x + int(rng.integers(1, w))] = 1
            r["segmentation"] = {"size": [h, w], "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode()}
        elif i % 3 == 1:
            r["bbox"] = [float(v) for v in np.round(rng.uniform(0, 20, 4), 2)]
        else:
            r["keypoints"] = np.round(rng.uniform(0, 30, 9), 1).tolist()
        recs.append(r)
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(recs))
    pred = _read_both(monkeypatch, path, truth)
    assert pred.annotations.box is not None and pred.annotations.mask is not None
    masks = [m for m in pred.annotations.mask.tolist() if m is not None]
    assert len(masks) == 10
    boxes = pred.annotations.box
    seg = [i for i, r in enumerate(recs) if "segmentation" in r]
    want = np.asarray(mask_utils.toBbox([{"size": [h, w], "counts": recs[i]["segmentation"]["counts"].encode()}
                                         for i in seg]), np.float64)
    want[:, 2:] += want[:, :2]
    _same_floats(boxes[seg], want)
    only_rle = [recs[i] for i in seg]
    path.write_text(json.dumps(only_rle))
    pred = _read_both(monkeypatch, path, truth)
    assert pred.annotations.box is not None
    _same_floats(pred.annotations.box, want)
