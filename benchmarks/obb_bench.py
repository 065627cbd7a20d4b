"""Oriented-box benchmark: maslow's ``coco_map(iou_type="obb")`` against hotcoco's ``COCOeval(gt, dt, "obb")`` (the
other oriented-box COCO evaluator), end to end, each in a fresh process.

Case (generated, seeded; ``--scale`` shrinks it): 2,000 tiles of 1024 x 1024 (the size DOTA's tools cut images
into), 15 classes, ~30 objects a tile (Poisson) at any angle: near-square (planes, tanks), long and thin (ships,
bridges) and small (vehicles), 3% crowd regions; up to 100 detections a tile: jittered copies of the truth (centre,
size and angle noise, some with the wrong class) and false alarms, scores on 3 decimals. Both files carry hotcoco's
``obb`` field ``[cx, cy, w, h, angle]`` (and the truth a ``bbox`` and ``area``).

Tools, each in its own subprocess (import, read both files, evaluate, accumulate, summarise):

- ``maslow``: ``maslow.io.read_coco`` + ``read_coco_predictions``, then ``coco_map(iou_type="obb")`` (``eval_s``:
  that call alone); ``maslow-numpy``: the same with ``MASLOW_NATIVE=0`` (numpy paths);
- ``hotcoco``: ``COCO`` + ``load_res`` + ``COCOeval(gt, dt, "obb")``, the reference.

The parent reads each child's CPU seconds (user + system, all threads) and peak RSS (VmHWM), and compares the 12
stats and the precision and recall arrays with hotcoco's (``bit-exact``: every cell equal). ``x_hotcoco``: CPU
seconds over hotcoco's.

    python benchmarks/obb_bench.py [--scale 0.2] [--tools maslow,maslow-numpy,hotcoco] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _child import median_run, pick_tools, run_child  # benchmarks/ is on sys.path: the scripts run from there

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_bench import _compile_maslow, _dump, agreement, compare

TOOLS = ("maslow", "maslow-numpy", "hotcoco")
SIZE = 1024
# (length range, width / length range) per kind: near-square, long and thin, small
KINDS = (((20, 160), (0.7, 1.0)), ((40, 300), (0.1, 0.3)), ((8, 30), (0.35, 0.6)))


def make_case(n_images: int, seed: int = 5, n_cats: int = 15) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from maslow.core.obb import corners_from_xywhr

    rng = np.random.default_rng(seed)
    cats = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(n_cats)]
    kind_of = rng.integers(0, len(KINDS), n_cats)
    images, anns, dets = [], [], []
    for i in range(n_images):
        images.append({"id": i + 1, "width": SIZE, "height": SIZE, "file_name": f"tile_{i + 1:05d}.png"})
        objs = []
        for _ in range(int(rng.poisson(30))):
            c = int(rng.integers(n_cats))
            (lo, hi), (a, b) = KINDS[kind_of[c]]
            length = float(rng.uniform(lo, hi))
            width = length * float(rng.uniform(a, b))
            box = [float(rng.uniform(0, SIZE)), float(rng.uniform(0, SIZE)), length, width,
                   float(rng.uniform(-np.pi / 2, np.pi / 2))]
            q = corners_from_xywhr([box])[0]
            lo_xy, hi_xy = q.min(axis=0), q.max(axis=0)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c + 1, "obb": box,
                         "bbox": [*lo_xy.tolist(), *(hi_xy - lo_xy).tolist()], "area": length * width,
                         "iscrowd": int(rng.random() < 0.03)})
            objs.append((box, c))
        for _ in range(int(rng.integers(20, 101))):
            if objs and rng.random() < 0.7:
                (cx, cy, w, h, r), c = objs[int(rng.integers(len(objs)))]
                s = rng.normal(0, 0.08, 4)
                box = [cx + s[0] * w, cy + s[1] * w, w * np.exp(s[2]), h * np.exp(s[3]), r + rng.normal(0, 0.1)]
                if rng.random() < 0.1:
                    c = int(rng.integers(n_cats))
            else:
                c = int(rng.integers(n_cats))
                (lo, hi), (a, b) = KINDS[kind_of[c]]
                length = float(rng.uniform(lo, hi))
                box = [rng.uniform(0, SIZE), rng.uniform(0, SIZE), length, length * rng.uniform(a, b),
                       rng.uniform(-np.pi / 2, np.pi / 2)]
            dets.append({"image_id": i + 1, "category_id": c + 1, "obb": [float(v) for v in box],
                         "score": round(float(rng.random()), 3)})
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}, dets


_CHILD = r'''
import contextlib, io, json, sys, time, warnings
import numpy as np
tool, gt_path, dt_path, out_path = sys.argv[1:5]
t0 = time.perf_counter()
extra = {}
if tool in ("maslow", "maslow-numpy"):
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions
    from maslow.metrics import coco_map
    truth = read_coco(gt_path)
    pred = read_coco_predictions(dt_path, like=truth)
    t1 = time.perf_counter()
    r = coco_map(truth, pred, iou_type="obb")
    extra = {"eval_s": time.perf_counter() - t1}
    stats, precision, recall = r.stats, r.precision, r.recall
else:
    import hotcoco
    warnings.simplefilter("ignore")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = hotcoco.COCO(gt_path)
        ev = hotcoco.COCOeval(gt, gt.load_res(dt_path), "obb")
        ev.evaluate(); ev.accumulate(); ev.summarize()
    stats, precision, recall = np.asarray(ev.stats), np.asarray(ev.eval["precision"]), np.asarray(ev.eval["recall"])
np.savez(out_path, stats=np.nan_to_num(np.asarray(stats, float), nan=-1.0), precision=precision, recall=recall)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
print(json.dumps({"wall_in_child": time.perf_counter() - t0,
                  "peak_rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else None, **extra}))
'''


def run_tool(tool: str, gt: Path, dt: Path, out: Path) -> dict[str, Any]:
    env = dict(os.environ)
    if tool == "maslow-numpy":
        env["MASLOW_NATIVE"] = "0"
    c = run_child(_CHILD, [tool, str(gt), str(dt), str(out)], env=env)
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    return {"tool": tool, "cpu_s": c.cpu_s, "wall_s": c.wall_s, **json.loads(c.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the 2,000 tiles (default 1.0)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool; the median is reported")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="write the generated files here and keep them")
    args = ap.parse_args(argv)
    notes: list[str] = []
    module = {"maslow": "maslow", "maslow-numpy": "maslow", "hotcoco": "hotcoco"}
    tools, skipped = pick_tools(args.tools, module)
    notes += skipped
    _compile_maslow()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = args.keep or Path(tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        gt, dt = make_case(max(1, round(2000 * args.scale)))
        gt_path, dt_path = tmp / "obb_gt.json", tmp / "obb_dt.json"
        _dump(gt, gt_path)
        _dump(dt, dt_path)
        size = {"images": len(gt["images"]), "truth": len(gt["annotations"]), "predictions": len(dt)}
        del gt, dt
        for t in tools:
            runs = [run_tool(t, gt_path, dt_path, tmp / f"{t}.npz") for _ in range(max(1, args.repeat))]
            rows.append({**median_run(runs), **size})
        ref = "hotcoco" if any(r["tool"] == "hotcoco" and "error" not in r for r in rows) else None
        base = next((r["cpu_s"] for r in rows if r["tool"] == "hotcoco" and "cpu_s" in r), None)
        for r in rows:
            if "error" in r:
                continue
            r["x_hotcoco"] = None if base is None else round(r["cpu_s"] / base, 3)
            if ref is not None and r["tool"] != ref:
                r.update(reference=ref, **compare(tmp / f"{ref}.npz", tmp / f"{r['tool']}.npz"))
    if args.json:
        print(json.dumps({"rows": rows, "notes": notes}, indent=1))
        return 0
    print(f"{size['images']} tiles, {size['truth']} truth objects, {size['predictions']} predictions")
    print(f"{'tool':<14}{'cpu_s':>8}{'wall_s':>8}{'rss_MB':>8}{'x_hotcoco':>10}{'eval_s':>8}  agreement")
    for r in rows:
        if "error" in r:
            print(f"{r['tool']:<14}  error: {r['error']}")
            continue
        agree = agreement(r, ref)
        ev = f"{r['eval_s']:>8.2f}" if "eval_s" in r else f"{'':>8}"
        x = f"{r['x_hotcoco']:>10.3f}" if r.get("x_hotcoco") is not None else f"{'':>10}"
        print(f"{r['tool']:<14}{r['cpu_s']:>8.2f}{r['wall_s']:>8.2f}{r['peak_rss_mb']:>8.0f}{x}{ev}  {agree}")
    for n in notes:
        print("note:", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
