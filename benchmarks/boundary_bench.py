"""Boundary IoU benchmark: maslow's ``coco_map(iou_type="boundary")`` against faster-coco-eval's
``COCOeval_faster(iouType="boundary")`` and the boundary-iou-api's method, end to end, each in a fresh process.

Case (generated, seeded; ``--scale`` shrinks it): 500 images of COCO's common sizes (640 x 480, 480 x 640,
640 x 427, 500 x 375, 375 x 500, 640 x 360; dilation 0.02 of the diagonal: 10 to 16 pixels), ~7 polygon objects an
image (radius 3 to 150 pixels, 2% crowds as uncompressed RLE), 10 to 50 RLE detections an image (jittered copies
of the truth with ragged outlines, and background blobs), scores on 3 decimals.

Tools, each in its own subprocess (import, read both files, evaluate, accumulate, summarise):

- ``maslow``: ``maslow.io.read_coco`` + ``read_coco_predictions``, then ``coco_map(iou_type="boundary")``
  (``eval_s``: that call alone); ``maslow-numpy``: the same with ``MASLOW_NATIVE=0`` (pycocotools for the masks);
- ``faster-coco-eval``: ``COCOeval_faster(gt, dt, "boundary", boundary_dilation_ratio=0.02,
  boundary_cpu_count=N)`` (``--fce-threads N``, default 1: one core, as the others use);
- ``api``: the boundary-iou-api's ``computeBoundaryIoU`` (min(mask IoU, boundary IoU), crowd regions by mask IoU)
  on pycocotools 2.0.11's COCOeval, boundaries by the API's ``mask_to_boundary`` (OpenCV) where ``cv2`` imports,
  else by ``scipy.ndimage.binary_erosion`` with the same zero border (the same masks); the reference.

The parent reads each child's CPU seconds (user + system, all threads) and peak RSS (VmHWM), and compares the 12
stats and the precision and recall arrays with the reference's (``bit-exact``: every cell equal; faster-coco-eval's
precision differs from pycocotools' in the last bit of some cells whatever the iou type, its accumulation dividing
by tp + fp where pycocotools adds eps). ``x_fce``: CPU seconds over faster-coco-eval's.

    python benchmarks/boundary_bench.py [--scale 0.2] [--tools maslow,maslow-numpy,faster-coco-eval,api]
        [--fce-threads 1] [--dilation 0.02] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _child import median_run, pick_tools, run_child  # benchmarks/ is on sys.path: the scripts run from there

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_bench import _compile_maslow, _dump, _poly, agreement, compare

TOOLS = ("maslow", "maslow-numpy", "faster-coco-eval", "api")
SIZES = ((640, 480), (480, 640), (640, 427), (500, 375), (375, 500), (640, 360))  # (w, h)


def make_case(n_images: int, seed: int = 3, n_cats: int = 20) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    cats = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(n_cats)]
    images, anns, dets = [], [], []
    for i in range(n_images):
        w, h = SIZES[int(rng.integers(len(SIZES)))]
        images.append({"id": i + 1, "width": w, "height": h, "file_name": f"{i + 1:012d}.jpg"})
        objs = []
        for _ in range(int(rng.poisson(7))):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), float(np.exp(rng.uniform(np.log(3), np.log(150))))
            c = int(rng.integers(1, n_cats + 1))
            poly = _poly(rng, cx, cy, r, int(rng.integers(8, 24)))
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
            crowd = rng.random() < 0.02
            seg: Any = [poly]
            if crowd:
                m = mask_utils.decode(rle).ravel(order="F")
                runs = np.diff(np.r_[0, np.flatnonzero(np.diff(m)) + 1, m.size]).tolist()
                seg = {"size": [h, w], "counts": [0, *runs] if m[0] else runs}
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c, "segmentation": seg,
                         "area": float(mask_utils.area(rle)), "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                         "iscrowd": int(crowd)})
            objs.append((cx, cy, r, c))
        for _ in range(int(rng.integers(10, 50))):
            if objs and rng.random() < 0.6:
                cx, cy, r, c = objs[int(rng.integers(len(objs)))]
                cx, cy, r = cx + rng.normal(0, r * 0.05), cy + rng.normal(0, r * 0.05), r * np.exp(rng.normal(0, 0.05))
            else:
                cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), float(np.exp(rng.uniform(np.log(3), np.log(150))))
                c = int(rng.integers(1, n_cats + 1))
            rle = mask_utils.merge(mask_utils.frPyObjects([_poly(rng, cx, cy, r, 32)], h, w))  # a ragged outline
            dets.append({"image_id": i + 1, "category_id": c, "score": round(float(rng.random()), 3),
                         "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}, dets


_CHILD = r'''
import contextlib, io, json, sys, time
import numpy as np
tool, gt_path, dt_path, out_path, ratio, threads = sys.argv[1:7]
ratio, threads = float(ratio), int(threads)
t0 = time.perf_counter()
extra = {}
if tool in ("maslow", "maslow-numpy"):
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions
    from maslow.metrics import coco_map
    truth = read_coco(gt_path)
    pred = read_coco_predictions(dt_path, like=truth)
    t1 = time.perf_counter()
    r = coco_map(truth, pred, iou_type="boundary", boundary_dilation=ratio)
    extra = {"eval_s": time.perf_counter() - t1}
    stats, precision, recall = r.stats, r.precision, r.recall
elif tool == "faster-coco-eval":
    from faster_coco_eval import COCO, COCOeval_faster
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        ev = COCOeval_faster(gt, gt.loadRes(dt_path), "boundary", boundary_dilation_ratio=ratio,
                             boundary_cpu_count=threads)
        ev.evaluate(); ev.accumulate(); ev.summarize()
    stats, precision, recall = np.asarray(ev.stats), ev.eval["precision"], ev.eval["recall"]
else:  # the boundary-iou-api's computeBoundaryIoU on pycocotools 2.0.11
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    try:
        import cv2
        def to_boundary(mask, d):  # boundary_utils.mask_to_boundary
            h, w = mask.shape
            padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
            return mask - cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1:h + 1, 1:w + 1]
        extra = {"erosion": "opencv"}
    except ImportError:
        from scipy.ndimage import binary_erosion
        def to_boundary(mask, d):
            return mask & ~binary_erosion(mask, np.ones((3, 3), bool), iterations=d, border_value=0)
        extra = {"erosion": "scipy"}

    class API(COCOeval):
        cache = {}
        def boundary(self, ann):
            if id(ann) not in self.cache:  # truth and results both number their ids from 1
                m = mask_utils.decode(ann["segmentation"])
                h, w = m.shape
                d = max(1, int(round(ratio * np.sqrt(h ** 2 + w ** 2))))
                b = to_boundary(m, d).astype(np.uint8)
                self.cache[id(ann)] = mask_utils.encode(np.asfortranarray(b))
            return self.cache[id(ann)]
        def computeIoU(self, imgId, catId):
            p = self.params
            if p.useCats:
                gt, dt = self._gts[imgId, catId], self._dts[imgId, catId]
            else:
                gt = [g for c in p.catIds for g in self._gts[imgId, c]]
                dt = [d for c in p.catIds for d in self._dts[imgId, c]]
            if len(gt) == 0 and len(dt) == 0:
                return []
            dt = [dt[i] for i in np.argsort([-d["score"] for d in dt], kind="mergesort")][:p.maxDets[-1]]
            iscrowd = [int(o["iscrowd"]) for o in gt]
            ious = np.array(mask_utils.iou([d["segmentation"] for d in dt], [g["segmentation"] for g in gt], iscrowd))
            if len(gt) and len(dt):
                b = np.array(mask_utils.iou([self.boundary(d) for d in dt], [self.boundary(g) for g in gt], iscrowd))
                plain = np.array(iscrowd) == 0
                ious[:, plain] = np.minimum(ious[:, plain], b[:, plain])
            return ious

    import warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        ev = API(gt, gt.loadRes(dt_path), "segm")
        ev.evaluate(); ev.accumulate(); ev.summarize()
    stats, precision, recall = np.asarray(ev.stats), ev.eval["precision"], ev.eval["recall"]
np.savez(out_path, stats=stats, precision=precision, recall=recall)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
print(json.dumps({"wall_in_child": time.perf_counter() - t0,
                  "peak_rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else None, **extra}))
'''


def run_tool(tool: str, gt: Path, dt: Path, out: Path, ratio: float, threads: int) -> dict[str, Any]:
    env = dict(os.environ)
    if tool == "maslow-numpy":
        env["MASLOW_NATIVE"] = "0"
    c = run_child(_CHILD, [tool, str(gt), str(dt), str(out), str(ratio), str(threads)], env=env)
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    return {"tool": tool, "cpu_s": c.cpu_s, "wall_s": c.wall_s, **json.loads(c.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the 500 images (default 1.0)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--fce-threads", type=int, default=1, help="faster-coco-eval's boundary_cpu_count")
    ap.add_argument("--dilation", type=float, default=0.02, help="boundary dilation ratio (default 0.02)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool; the median is reported")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="write the generated files here and keep them")
    args = ap.parse_args(argv)
    notes: list[str] = []
    module = {"maslow": "maslow", "maslow-numpy": "maslow", "faster-coco-eval": "faster_coco_eval",
              "api": "pycocotools"}
    tools, skipped = pick_tools(args.tools, module)
    notes += skipped
    if "api" in tools and importlib.util.find_spec("cv2") is None:
        notes.append("api: OpenCV not installed: boundaries by scipy.ndimage.binary_erosion (the same masks)")
    _compile_maslow()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = args.keep or Path(tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        gt, dt = make_case(max(1, round(500 * args.scale)))
        gt_path, dt_path = tmp / "boundary_gt.json", tmp / "boundary_dt.json"
        _dump(gt, gt_path)
        _dump(dt, dt_path)
        size = {"images": len(gt["images"]), "truth": len(gt["annotations"]), "predictions": len(dt)}
        del gt, dt
        for t in tools:
            runs = [run_tool(t, gt_path, dt_path, tmp / f"{t}.npz", args.dilation, args.fce_threads)
                    for _ in range(max(1, args.repeat))]
            rows.append({**median_run(runs), **size})
        ref = "api" if any(r["tool"] == "api" and "error" not in r for r in rows) else \
            "faster-coco-eval" if any(r["tool"] == "faster-coco-eval" and "error" not in r for r in rows) else None
        fce = next((r["cpu_s"] for r in rows if r["tool"] == "faster-coco-eval" and "cpu_s" in r), None)
        for r in rows:
            if "error" in r:
                continue
            r["x_fce"] = None if fce is None else round(r["cpu_s"] / fce, 3)
            if ref is not None and r["tool"] != ref:
                r.update(reference=ref, **compare(tmp / f"{ref}.npz", tmp / f"{r['tool']}.npz"))
    if args.json:
        print(json.dumps({"rows": rows, "notes": notes}, indent=1))
        return 0
    print(f"{size['images']} images, {size['truth']} truth objects, {size['predictions']} predictions; "
          f"dilation {args.dilation:g}")
    print(f"{'tool':<18}{'cpu_s':>8}{'wall_s':>8}{'rss_MB':>8}{'x_fce':>8}{'eval_s':>8}  agreement")
    for r in rows:
        if "error" in r:
            print(f"{r['tool']:<18}  error: {r['error']}")
            continue
        agree = agreement(r, ref)
        ev = f"{r['eval_s']:>8.2f}" if "eval_s" in r else f"{'':>8}"
        x = f"{r['x_fce']:>8.3f}" if r.get("x_fce") is not None else f"{'':>8}"
        print(f"{r['tool']:<18}{r['cpu_s']:>8.2f}{r['wall_s']:>8.2f}{r['peak_rss_mb']:>8.0f}{x}{ev}  {agree}")
    for n in notes:
        print("note:", n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
