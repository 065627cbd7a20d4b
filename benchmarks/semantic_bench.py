"""Semantic segmentation benchmark: maslow's streaming ConfusionMatrix against hotcoco and numpy peers.

Every tool counts the same label maps, one map per call (as a validation loop feeds them), in the same process;
each is timed ``--repeats`` times and the best run is kept. Tools:

- ``maslow``: ``maslow.metrics.ConfusionMatrix(K, ignore_index=255)``, ``add`` per map, then ``result()``;
- ``hotcoco``: ``hotcoco.semantic.SemanticEval(K, ignore_index=255)``, ``update`` per map, then ``results()``
  (compiled Rust; mmseg's protocol);
- ``numpy-bincount``: ``np.bincount(t.astype(intp) * K + p)`` over every pixel (the ignore rows dropped at the end);
- ``torchmetrics-style``: torchmetrics' ``_multiclass_confusion_matrix_update`` in numpy: drop the ignored pixels
  with a boolean mask, then ``bincount(target * K + preds, minlength=K * K)``;
- ``mmseg-style``: mmseg's ``intersect_and_union`` in numpy: mask, ``pred[pred == label]``, three histograms
  (areas only, no confusion matrix).

Cases: ``voc`` (the target: ``--n-maps`` maps of ``--size`` squared pixels, ``--classes`` classes, generated like
PASCAL VOC: a background, 1 to 5 objects, a 4-pixel void band (255) around each; the prediction moves and rescales
the objects a little, swaps the class of 10% of them, misses 5% and adds a spurious blob to 20% of the maps);
``camvid`` (the 101 real CamVid label maps under ``../shared/data/camvid_val`` when present, void 11 mapped to 255,
the prediction shifted by 3 rows and 4 columns); ``noise`` (the voc truth, 30% of prediction pixels replaced by
random classes: the worst case for maslow, whose counting relies on maps being piecewise constant).

Agreement: each tool's confusion matrix (areas for mmseg-style) must equal maslow's exactly, and its mIoU (where
it reports one) to 1e-12.

Usage::

    python benchmarks/semantic_bench.py                   # 500 maps, 512 x 512, 21 classes
    python benchmarks/semantic_bench.py --n-maps 100 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

IGNORE = 255


def _ellipse(out: np.ndarray, value: int, cx: float, cy: float, a: float, b: float, band: float = 0.0) -> None:
    h, w = out.shape
    pad = band + 1
    x0, x1 = max(int(cx - a - pad), 0), min(int(cx + a + pad + 1), w)
    y0, y1 = max(int(cy - b - pad), 0), min(int(cy + b + pad + 1), h)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    d = np.sqrt(((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2)
    sub = out[y0:y1, x0:x1]
    if band:
        sub[np.abs((d - 1.0) * min(a, b)) <= band / 2] = value
    else:
        sub[d <= 1.0] = value


def voc_like(n: int, size: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size) uint8 truth and prediction maps, PASCAL VOC-like (see the module docstring)."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((n, size, size), np.uint8)
    pred = np.zeros_like(truth)
    for i in range(n):
        objs = [(int(rng.integers(1, k)), *rng.uniform(0, size, 2), *rng.uniform(size / 25, size / 3.2, 2))
                for _ in range(int(rng.integers(1, 6)))]
        for c, cx, cy, a, b in objs:
            _ellipse(truth[i], c, cx, cy, a, b)
        for _, cx, cy, a, b in objs:
            _ellipse(truth[i], IGNORE, cx, cy, a, b, band=4.0)
        for c, cx, cy, a, b in objs:
            if rng.random() < 0.05:
                continue
            c = int(rng.integers(1, k)) if rng.random() < 0.1 else c
            _ellipse(pred[i], c, cx + rng.normal(0, 4), cy + rng.normal(0, 4), a * rng.uniform(0.92, 1.08),
                     b * rng.uniform(0.92, 1.08))
        if rng.random() < 0.2:
            _ellipse(pred[i], int(rng.integers(1, k)), *rng.uniform(0, size, 2), *rng.uniform(5, 30, 2))
    return truth, pred


def camvid() -> tuple[np.ndarray, np.ndarray, int] | None:
    folder = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid_val" / "annotations"
    files = sorted(folder.glob("*.png"))
    if not files:
        return None
    from PIL import Image

    truth = np.stack([np.asarray(Image.open(f)) for f in files]).astype(np.uint8)
    pred = np.minimum(np.roll(truth, (3, 4), axis=(1, 2)), 10)
    truth[truth == 11] = IGNORE
    return truth, np.ascontiguousarray(pred), 11


# -- the tools: each returns (confusion matrix or None, areas (intersect, pred, truth), miou or None) -------------


def run_maslow(truth: np.ndarray, pred: np.ndarray, k: int) -> tuple[Any, ...]:
    from maslow.metrics import ConfusionMatrix

    cm = ConfusionMatrix(k, ignore_index=IGNORE)
    for t, p in zip(truth, pred, strict=True):
        cm.add(t, p)
    r = cm.result()
    return r.confusion_matrix, None, r.miou


def run_hotcoco(truth: np.ndarray, pred: np.ndarray, k: int) -> tuple[Any, ...]:
    from hotcoco import semantic

    ev = semantic.SemanticEval(k, ignore_index=IGNORE)
    for t, p in zip(truth, pred, strict=True):
        ev.update(t, p)
    res = ev.results()
    return ev.confusion().astype(np.int64), None, res["mIoU"]


def run_bincount(truth: np.ndarray, pred: np.ndarray, k: int) -> tuple[Any, ...]:
    total = np.zeros(256 * k, np.int64)
    for t, p in zip(truth, pred, strict=True):
        key = t.reshape(-1).astype(np.intp)
        key *= k
        key += p.reshape(-1)
        total += np.bincount(key, minlength=256 * k)
    return total[: k * k].reshape(k, k), None, None


def run_torchmetrics_style(truth: np.ndarray, pred: np.ndarray, k: int) -> tuple[Any, ...]:
    total = np.zeros(k * k, np.int64)
    for t, p in zip(truth, pred, strict=True):
        t, p = t.reshape(-1), p.reshape(-1)
        idx = t != IGNORE
        target, preds = t[idx].astype(np.int64), p[idx].astype(np.int64)
        total += np.bincount(target * k + preds, minlength=k * k)
    return total.reshape(k, k), None, None


def run_mmseg_style(truth: np.ndarray, pred: np.ndarray, k: int) -> tuple[Any, ...]:
    inter, area_p, area_t = (np.zeros(k, np.int64) for _ in range(3))
    for t, p in zip(truth, pred, strict=True):
        mask = t != IGNORE
        pm, tm = p[mask], t[mask]
        inter += np.bincount(pm[pm == tm], minlength=k)[:k]
        area_p += np.bincount(pm, minlength=k)[:k]
        area_t += np.bincount(tm, minlength=k)[:k]
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / (area_p + area_t - inter)
    return None, (inter, area_p, area_t), float(np.nanmean(iou))


TOOLS: dict[str, Callable[[np.ndarray, np.ndarray, int], tuple[Any, ...]]] = {
    "maslow": run_maslow,
    "hotcoco": run_hotcoco,
    "numpy-bincount": run_bincount,
    "torchmetrics-style": run_torchmetrics_style,
    "mmseg-style": run_mmseg_style,
}


def bench_case(truth: np.ndarray, pred: np.ndarray, k: int, repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    ref: tuple[Any, ...] | None = None
    for name, fn in TOOLS.items():
        if name == "hotcoco":
            try:
                import hotcoco  # noqa: F401
            except ImportError:
                rows.append({"tool": name, "seconds": None, "agrees": None, "note": "not installed"})
                continue
        fn(truth[:2], pred[:2], k)  # warm up (imports, first calls)
        best, out = float("inf"), None
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn(truth, pred, k)
            best = min(best, time.perf_counter() - t0)
        assert out is not None
        if ref is None:
            ref = out
            agrees = True
        else:
            cm_ref = ref[0]
            if out[0] is not None:
                agrees = bool(np.array_equal(out[0], cm_ref))
            else:
                areas = (np.diagonal(cm_ref), cm_ref.sum(0), cm_ref.sum(1))
                agrees = all(np.array_equal(a, b) for a, b in zip(out[1], areas, strict=True))
            if out[2] is not None:
                agrees = agrees and abs(out[2] - ref[2]) <= 1e-12
        rows.append({"tool": name, "seconds": best, "agrees": agrees})
    base = rows[0]["seconds"]
    for r in rows:
        r["vs_maslow"] = None if r["seconds"] is None else r["seconds"] / base
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-maps", type=int, default=500)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--classes", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    truth, pred = voc_like(args.n_maps, args.size, args.classes, args.seed)
    gen_s = time.perf_counter() - t0
    noisy = pred.copy()
    rng = np.random.default_rng(args.seed + 1)
    flip = rng.random(noisy.shape) < 0.3
    noisy[flip] = rng.integers(0, args.classes, int(flip.sum()))
    cases: dict[str, tuple[np.ndarray, np.ndarray, int]] = {"voc": (truth, pred, args.classes)}
    real = camvid()
    if real is not None:
        cases["camvid"] = real
    cases["noise"] = (truth, noisy, args.classes)

    results = {}
    for name, (t, p, k) in cases.items():
        results[name] = {"n_maps": len(t), "shape": list(t.shape[1:]), "classes": k,
                         "tools": bench_case(t, p, k, args.repeats)}
    if args.json:
        json.dump({"generate_seconds": gen_s, "cases": results}, sys.stdout, indent=2)
        print()
        return 0
    print(f"maps generated in {gen_s:.1f} s; best of {args.repeats} runs, one map per call, same process\n")
    print(f"{'case':8} {'tool':20} {'ms':>9} {'us/map':>8} {'x maslow':>9}  agrees")
    ok = True
    for name, res in results.items():
        for r in res["tools"]:
            if r["seconds"] is None:
                print(f"{name:8} {r['tool']:20} {'-':>9} {'-':>8} {'-':>9}  {r.get('note', '')}")
                continue
            ok &= bool(r["agrees"])
            print(f"{name:8} {r['tool']:20} {r['seconds'] * 1e3:9.1f} {r['seconds'] / res['n_maps'] * 1e6:8.1f} "
                  f"{r['vs_maslow']:9.2f}  {'yes' if r['agrees'] else 'NO'}")
        print(f"{'':8} ({res['n_maps']} maps of {res['shape'][0]} x {res['shape'][1]}, {res['classes']} classes)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
