"""LVIS (federated) evaluation benchmark: maslow's ``lvis_map`` against lvis-api 0.5.3's ``LVISEval``, hotcoco
1.3's ``LVISeval`` and faster-coco-eval's ``COCOeval_faster(lvis_style=True)``, end to end, each in a fresh process.

Cases (generated, seeded, LVIS v1 val-like; ``--scale`` multiplies the image count):

- ``bbox``: ``--images`` images (default 2,000; LVIS v1 val is 19,809: ``--images 19809``), 1,203 classes
  (rare/common/frequent in LVIS's 337/461/405 proportions, by popularity), ~10 truth boxes per image over ~3.5
  positive classes, ~12 negative classes and some not-exhaustive ones per image, and ~300 detections per image
  over all classes (a third of the images have more than the cap: the per-image cap is exercised), scores on 3
  decimals (ties occur);
- ``segm``: a tenth as many images, polygon truth, RLE detections (~60 per image).

Each tool runs in its own subprocess: import, read both JSON files, evaluate, summarize. The parent reads the child's
CPU seconds (user + system, all threads) and peak RSS from ``wait4``. Columns: ``cpu_s`` (the whole child),
``wall_s``, ``eval_s`` (CPU seconds after loading: maslow's ``lvis_map``; lvis-api's ``LVISResults`` + ``run()``;
hotcoco's ``LVISResults`` + ``LVISeval.run()``; faster-coco-eval's ``loadRes`` + evaluate/accumulate/summarize,
after lvis-api's per-image cap applied to the results in Python, as faster-coco-eval has none),
``rss_MB``, ``x_maslow`` (cpu_s over maslow's) and ``vs_lvis``: ``exact`` when the 13 stats and the full
precision and recall arrays equal lvis-api's bit for bit, else the largest difference (stats / arrays); hotcoco's
where lvis-api is not run (at LVIS scale it needs some 20 GB).

lvis-api is not a maslow dependency, imports opencv and uses ``np.float`` (removed in numpy 1.24: the child sets it
back to ``float``); install it apart, e.g. ``pip install --no-deps --target /tmp/lvis lvis==0.5.3
opencv-python-headless`` and run with ``PYTHONPATH=/tmp/lvis``. A tool that is not installed is skipped with a note.

    python benchmarks/lvis_bench.py [--images 2000] [--scale 1] [--cases bbox,segm]
        [--tools maslow,lvis,hotcoco,faster_coco_eval] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _child import run_child  # benchmarks/ is on sys.path: the scripts run from there

TOOLS = ("maslow", "lvis", "hotcoco", "faster_coco_eval")
MODULE = {"maslow": "maslow", "lvis": "lvis", "hotcoco": "hotcoco", "faster_coco_eval": "faster_coco_eval"}
KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR@300", "ARs@300", "ARm@300", "ARl@300")


def _poly(rng: np.random.Generator, x: float, y: float, w: float, h: float) -> list[float]:
    t = np.sort(rng.uniform(0, 2 * np.pi, 8))
    r = rng.uniform(0.7, 1.0, 8)
    px, py = x + w / 2 * (1 + r * np.cos(t)), y + h / 2 * (1 + r * np.sin(t))
    return [round(float(v), 2) for v in np.stack([px, py], 1).ravel()]


def make_lvis(n_images: int, gt_path: Path, dt_path: Path, *, seed: int = 0, n_cats: int = 1203,
              dets_per_image: int = 300, segm: bool = False) -> tuple[int, int]:
    """Write an LVIS-like truth file and results list (module docstring; the results are written as they are
    made, so LVIS scale fits in memory). Returns the numbers of truth objects and of detections."""
    if segm:
        from pycocotools import mask as mask_utils
    rng = np.random.default_rng(seed)
    pop = np.sort(rng.dirichlet(np.full(n_cats, 0.35)))[::-1]
    perm = rng.permutation(n_cats)  # category ids not in popularity order
    pop = pop[np.argsort(perm)]
    rank = np.argsort(np.argsort(-pop))
    n_f, n_c = round(n_cats * 405 / 1203), round(n_cats * 461 / 1203)
    freq = np.where(rank < n_f, "f", np.where(rank < n_f + n_c, "c", "r"))
    cats = [{"id": c + 1, "name": f"cat{c + 1}", "synset": f"cat{c + 1}.n.01", "frequency": str(freq[c]),
             "image_count": 0, "instance_count": 0, "def": "a generated class", "synonyms": [f"cat{c + 1}"]}
            for c in range(n_cats)]
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    n_dets = 0
    image_ids = rng.choice(50 * n_images, n_images, replace=False) + 1  # sparse, unique, in no order
    out = open(dt_path, "w")  # written image by image, closed below
    out.write("[")
    for i in range(n_images):
        w, h = int(rng.choice([640, 480, 500, 427])), int(rng.choice([480, 640, 375, 333]))
        img_id = int(image_ids[i])
        pos = rng.choice(n_cats, min(n_cats, 1 + int(rng.poisson(2.5))), replace=False, p=pop)
        n_each = 1 + rng.geometric(0.35, len(pos)) - 1
        cls = np.repeat(pos, n_each)
        n_gt = len(cls)
        side = np.exp(rng.uniform(np.log(4), np.log(0.9 * min(w, h)), (n_gt, 2)))
        xy = rng.uniform(0, 1, (n_gt, 2)) * (np.array([w, h]) - side)
        others = np.setdiff1d(np.arange(n_cats), pos)
        neg = rng.choice(others, min(len(others), int(rng.poisson(12))), replace=False)
        nel = pos[rng.random(len(pos)) < 0.15]
        images.append({"id": img_id, "width": w, "height": h, "file_name": f"{img_id:012d}.jpg",
                       "neg_category_ids": sorted(int(c) + 1 for c in neg),
                       "not_exhaustive_category_ids": sorted(int(c) + 1 for c in nel)})
        for j in range(n_gt):
            bb = [round(float(v), 2) for v in (*xy[j], *side[j])]
            ann = {"id": len(anns) + 1, "image_id": img_id, "category_id": int(cls[j]) + 1, "bbox": bb,
                   "area": round(bb[2] * bb[3] * float(rng.uniform(0.45, 0.95)), 2)}
            if segm:
                poly = _poly(rng, *bb)
                rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
                ann.update(segmentation=[poly], area=float(mask_utils.area(rle)))
            anns.append(ann)
        n_dt = int(rng.integers(int(dets_per_image * 0.7), int(dets_per_image * 1.25)))
        verified = np.concatenate([pos, neg])
        for j in range(n_dt):
            if n_gt and j < 2 * n_gt and rng.random() < 0.6:
                k = int(rng.integers(n_gt))
                jit = rng.normal(0, 0.1, 4)
                x, y = xy[k, 0] + jit[0] * side[k, 0], xy[k, 1] + jit[1] * side[k, 1]
                bw, bh = side[k, 0] * np.exp(jit[2]), side[k, 1] * np.exp(jit[3])
                c = int(cls[k]) if rng.random() < 0.85 else int(rng.choice(verified))
                s = rng.beta(4, 2)
            else:
                bw, bh = np.exp(rng.uniform(np.log(4), np.log(0.9 * min(w, h)), 2))
                x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                c = int(rng.choice(verified)) if rng.random() < 0.4 else int(rng.choice(n_cats, p=pop))
                s = rng.beta(1.2, 6)
            box = [round(float(v), 2) for v in (x, y, bw, bh)]
            det: dict[str, Any] = {"image_id": img_id, "category_id": c + 1, "score": round(float(s), 3)}
            if segm:
                rle = mask_utils.merge(mask_utils.frPyObjects([_poly(rng, *box)], h, w))
                det["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
            else:
                det["bbox"] = box
            dets.append(det)
        if len(dets) >= 100_000 or i == n_images - 1:
            out.write(("," if n_dets else "") + json.dumps(dets)[1:-1])
            n_dets += len(dets)
            dets = []
    out.write("]")
    out.close()
    _dump({"info": {}, "images": images, "annotations": anns, "categories": cats}, gt_path)
    return len(anns), n_dets


_CHILD = r'''
import sys, time, json, contextlib, io, warnings
import numpy as np
tool, iou_type, gt_path, dt_path, arrays = sys.argv[1:6]
t0 = time.perf_counter()
warnings.simplefilter("ignore")
if tool == "maslow":
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions
    from maslow.metrics.lvis import lvis_map
    truth = read_coco(gt_path)
    pred = read_coco_predictions(dt_path, like=truth)
    freq = None
    if "coco_categories" not in truth.info:  # the reader does not keep the categories' own keys
        freq = {c["name"]: c["frequency"] for c in json.load(open(gt_path))["categories"]}
    t1, c1 = time.perf_counter(), time.process_time()
    r = lvis_map(truth, pred, iou_type=iou_type, frequency=freq)
    stats = dict(zip(r.lvis_keys, r.stats.tolist()))
    precision, recall = r.precision, r.recall
elif tool == "lvis":
    np.float = float  # lvis-api 0.5.3 still uses np.float (removed in numpy 1.24)
    from lvis import LVIS, LVISEval, LVISResults
    gt = LVIS(gt_path)
    t1, c1 = time.perf_counter(), time.process_time()
    ev = LVISEval(gt, LVISResults(gt, dt_path, max_dets=300), iou_type)
    ev.run()
    stats = {k: float(v) for k, v in ev.results.items()}
    precision, recall = ev.eval["precision"], ev.eval["recall"]
elif tool == "hotcoco":
    from hotcoco import COCO, LVISeval, LVISResults
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        t1, c1 = time.perf_counter(), time.process_time()
        ev = LVISeval(gt, LVISResults(gt, dt_path, max_dets=300), iou_type)
        ev.run()
    stats = {k: float(v) for k, v in ev.get_results().items()}
    precision, recall = np.asarray(ev.eval["precision"]), np.asarray(ev.eval["recall"])
else:
    from collections import defaultdict
    from faster_coco_eval import COCO, COCOeval_faster
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        t1, c1 = time.perf_counter(), time.process_time()
        by_image = defaultdict(list)  # lvis_style has no per-image cap: lvis-api's, applied here
        for d in json.load(open(dt_path)):
            by_image[d["image_id"]].append(d)
        capped = [d for ds in by_image.values() for d in sorted(ds, key=lambda d: d["score"], reverse=True)[:300]]
        ev = COCOeval_faster(gt, gt.loadRes(capped), iou_type, lvis_style=True, print_function=lambda *a: None)
        ev.params.maxDets = [300]
        ev.evaluate(); ev.accumulate(); ev.summarize()
    names = {"AP": "AP_all", "AP50": "AP_50", "AP75": "AP_75", "APs": "AP_small", "APm": "AP_medium",
             "APl": "AP_large", "APr": "APr", "APc": "APc", "APf": "APf", "AR@300": "AR_all", "ARs@300": "AR_small",
             "ARm@300": "AR_medium", "ARl@300": "AR_large"}
    got = ev.stats_as_dict
    stats = {k: float(got[v]) for k, v in names.items() if v in got}
    precision, recall = np.asarray(ev.eval["precision"]), np.asarray(ev.eval["recall"])
t2, c2 = time.perf_counter(), time.process_time()
np.savez(arrays, precision=precision, recall=recall)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
rss = int(hwm[0].split()[1]) / 1024 if hwm else None
print(json.dumps({"eval_s": c2 - c1, "eval_wall_s": t2 - t1, "load_s": t1 - t0, "peak_rss_mb": rss, "stats": stats}))
'''


def run_tool(tool: str, iou_type: str, gt: Path, dt: Path, arrays: Path) -> dict[str, Any]:
    """One child: its output, wall time, and CPU time (user + system, from ``wait4``)."""
    c = run_child(_CHILD, [tool, iou_type, str(gt), str(dt), str(arrays)])
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    return {"tool": tool, "wall_s": c.wall_s, "cpu_s": c.cpu_s, **json.loads(c.stdout.strip().splitlines()[-1])}


def _agreement(row: dict[str, Any], ref: dict[str, Any], arrays: Path, ref_arrays: Path) -> str:
    """``exact`` when the stats and the precision/recall arrays equal the reference's bit for bit, else the
    largest differences."""
    a, b = np.load(arrays), np.load(ref_arrays)
    gaps = []
    for key in ("precision", "recall"):
        x, y = a[key], b[key]
        if x.shape != y.shape:
            x = x.reshape(x.shape[:4]) if key == "precision" and x.size == y.size else x
            y = y.reshape(x.shape) if x.size == y.size else y
        gaps.append(float(np.max(np.abs(x - y))) if x.shape == y.shape and x.size else float("inf"))
    s_gap = max((abs(row["stats"][k] - v) for k, v in ref["stats"].items() if k in row["stats"]), default=float("inf"))
    if s_gap == 0 and max(gaps) == 0:
        return "exact"
    return f"stats {s_gap:.1e} / arrays {max(gaps):.1e}"


def _dump(obj: Any, path: Path) -> None:
    try:
        import orjson

        path.write_bytes(orjson.dumps(obj))
    except ImportError:
        path.write_text(json.dumps(obj))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--cases", default="bbox")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    notes: list[str] = []
    for t in list(tools):
        if importlib.util.find_spec(MODULE[t]) is None:
            notes.append(f"{t}: not installed, skipped")
            tools.remove(t)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for case in [c for c in args.cases.split(",") if c]:
            n = max(1, round(args.images * args.scale / (10 if case == "segm" else 1)))
            gt_path, dt_path = tmp / f"{case}_gt.json", tmp / f"{case}_dt.json"
            n_truth, n_dets = make_lvis(n, gt_path, dt_path, segm=case == "segm",
                                        dets_per_image=60 if case == "segm" else 300)
            size = f"{n} images, 1203 classes, {n_truth} truth, {n_dets} detections"
            got = {tool: run_tool(tool, case, gt_path, dt_path, tmp / f"{case}_{tool}.npz") for tool in tools}
            base = got.get("maslow")
            ref_tool = next((t for t in ("lvis", "hotcoco") if t in got and "error" not in got[t]), None)
            if ref_tool == "hotcoco":
                notes.append(f"{case}: lvis-api not run: agreement is with hotcoco")
            for tool, r in got.items():
                row: dict[str, Any] = {"case": case, "size": size, **r}
                if "error" not in r:
                    if base is not None and "error" not in base:
                        row["x_maslow"] = r["cpu_s"] / base["cpu_s"]
                    if ref_tool is not None and tool != ref_tool:
                        row["vs_lvis"] = _agreement(r, got[ref_tool], tmp / f"{case}_{tool}.npz",
                                                    tmp / f"{case}_{ref_tool}.npz")
                rows.append(row)
    if args.json:
        print(json.dumps({"rows": rows, "notes": notes}, indent=1))
        return
    print(f"{'case':5} {'tool':16} {'cpu_s':>7} {'wall_s':>7} {'eval_s':>7} {'rss_MB':>7} {'x_maslow':>8}  vs_lvis")
    for r in rows:
        if "error" in r:
            print(f"{r['case']:5} {r['tool']:16} error: {r['error']}")
            continue
        print(f"{r['case']:5} {r['tool']:16} {r['cpu_s']:7.2f} {r['wall_s']:7.2f} {r['eval_s']:7.2f} "
              f"{r['peak_rss_mb'] or 0:7.0f} {r.get('x_maslow', float('nan')):8.1f}  {r.get('vs_lvis', '')}")
    for case in dict.fromkeys(r["case"] for r in rows):
        print(f"{case}: {next(r['size'] for r in rows if r['case'] == case)}")
        ref = next((r for r in rows if r["case"] == case and r["tool"] == "lvis" and "error" not in r), None)
        if ref is not None:
            print("  lvis-api: " + ", ".join(f"{k} {ref['stats'][k]:.4f}" for k in KEYS if k in ref["stats"]))
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
