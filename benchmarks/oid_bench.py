"""Open Images benchmark: maslow's ``oid_map`` against hotcoco's ``COCOeval(gt, dt, "bbox", oid_style=True,
hierarchy=...)`` (the other Open Images evaluator with a hierarchy), end to end, each in a fresh process.

Case (generated, seeded; ``--scale`` shrinks it): 5,000 images, 100 classes in a 3-level hierarchy (10 roots, each
with 3 children, each child with 2 grandchildren; a third of the boxes on roots and children, the rest on leaves),
~8 boxes an image: ~7 objects apart (in distinct cells of a grid: where COCO's "best free object" and the challenge's
"best object" choose the same) and, on 80% of the images, one group-of box (hotcoco's ``is_group_of`` key; one, as
two group-of boxes of related classes that both hold a detection entirely are where hotcoco's order of the
expanded boxes departs from TF's, see ``maslow.metrics.openimages``); ~60 detections
an image (jittered copies, some with the parent's or a random class, several inside each group-of box, false
alarms), scores on 2 decimals (ties). No image-level labels (hotcoco has no image-level rule), detections not
expanded (the challenge's rule), hotcoco's per-image cap raised to TF's 10,000.

Tools, each in its own subprocess (import, read both files, read the hierarchy, evaluate):

- ``maslow``: ``read_coco`` + ``read_coco_predictions`` + ``read_hierarchy`` (the flat JSON), then ``oid_map``
  (``eval_s``: that call alone);
- ``hotcoco``: ``COCO`` + ``load_res`` + ``Hierarchy.from_parent_map`` + ``COCOeval(..., oid_style=True)``.

The parent reads each child's CPU seconds (user + system, all threads) and peak RSS, and compares every class's AP
with hotcoco's (``max_diff``; ``bit-exact``: every class equal). ``x_hotcoco``: CPU seconds over hotcoco's.

    python benchmarks/oid_bench.py [--scale 0.2] [--tools maslow,hotcoco] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _child import median_run, pick_tools, run_child  # benchmarks/ is on sys.path: the scripts run from there

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_bench import _compile_maslow, _dump

TOOLS = ("maslow", "hotcoco")
SIZE = 1024.0
GRID = 6  # objects in distinct cells of a GRID x GRID grid


def make_case(n_images: int, seed: int = 11) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
    """COCO truth and results, and the hierarchy as ``{child name: parent name}``."""
    rng = np.random.default_rng(seed)
    names, parent = [], {}
    for r in range(10):
        names.append(f"root{r}")
        for c in range(3):
            names.append(f"root{r}.{c}")
            parent[f"root{r}.{c}"] = f"root{r}"
            for g in range(2):
                names.append(f"root{r}.{c}.{g}")
                parent[f"root{r}.{c}.{g}"] = f"root{r}.{c}"
    k = len(names)
    leaves = np.asarray([i for i, n in enumerate(names) if n.count(".") == 2])
    inner = np.asarray([i for i, n in enumerate(names) if n.count(".") < 2])
    parent_idx = {names.index(c): names.index(p) for c, p in parent.items()}
    q, cell = 1 / 8, SIZE / GRID
    images, anns, dets = [], [], []

    def box_in(x0: float, y0: float, span: float) -> list[float]:
        w, h = (np.round(rng.uniform(0.3, 0.9, 2) * span / q) * q).tolist()
        x, y = (np.round((np.array([x0, y0]) + rng.uniform(0, 1, 2) * (span - np.array([w, h]))) / q) * q).tolist()
        return [x, y, w, h]

    for i in range(n_images):
        images.append({"id": i + 1, "width": SIZE, "height": SIZE, "file_name": f"{i + 1:06d}.jpg"})
        n_obj = int(rng.poisson(7))
        for n, c in enumerate(rng.permutation(GRID * GRID)[: n_obj + 1].tolist()):
            cls = int(rng.choice(inner) if rng.random() < 1 / 3 else rng.choice(leaves))
            group = n == n_obj  # the last: a group-of box, on 80% of the images
            if group and rng.random() < 0.2:
                continue
            b = box_in((c % GRID) * cell, (c // GRID) * cell, cell) if not group else \
                box_in(float(rng.uniform(0, SIZE - 2 * cell)), float(rng.uniform(0, SIZE - 2 * cell)), 2 * cell)
            a = {"id": len(anns) + 1, "image_id": i + 1, "category_id": cls + 1, "bbox": b, "area": b[2] * b[3],
                 "iscrowd": 0}
            if group:
                a["is_group_of"] = True
            anns.append(a)
            for _ in range(int(rng.integers(2, 8)) if group else int(rng.integers(0, 4))):
                if group:  # inside the group-of box
                    w, h = (np.round(rng.uniform(0.1, 0.4, 2) * np.array(b[2:]) / q) * q).tolist()
                    j = [round((b[0] + rng.uniform(0, 1) * (b[2] - w)) / q) * q,
                         round((b[1] + rng.uniform(0, 1) * (b[3] - h)) / q) * q, w, h]
                else:
                    s = np.round((np.array(b) + rng.normal(0, 0.1, 4) * np.array([b[2], b[3], b[2], b[3]])) / q) * q
                    s[2:] = np.maximum(s[2:], 1.0)
                    j = s.tolist()
                u = rng.random()
                d = cls if u < 0.75 else parent_idx.get(cls, cls) if u < 0.9 else int(rng.integers(k))
                dets.append({"image_id": i + 1, "category_id": d + 1, "bbox": j,
                             "score": round(float(rng.random()) * 0.98 + 0.01, 2)})
        for _ in range(int(rng.poisson(30))):  # false alarms
            b = box_in(float(rng.uniform(0, SIZE - cell)), float(rng.uniform(0, SIZE - cell)), cell)
            dets.append({"image_id": i + 1, "category_id": int(rng.integers(k)) + 1, "bbox": b,
                         "score": round(float(rng.random()) * 0.5 + 0.01, 2)})
    cats = [{"id": c + 1, "name": n} for c, n in enumerate(names)]
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}, dets, parent


_CHILD = r'''
import contextlib, io, json, sys, time, warnings
import numpy as np
tool, gt_path, dt_path, h_path, out_path = sys.argv[1:6]
t0 = time.perf_counter()
extra = {}
parent = json.load(open(h_path))
if tool == "maslow":
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions
    from maslow.metrics.openimages import oid_map, read_hierarchy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = read_coco(gt_path)
        pred = read_coco_predictions(dt_path, like=truth)
    h = read_hierarchy(h_path, truth.schema)
    t1 = time.perf_counter()
    r = oid_map(truth, pred, hierarchy=h)
    extra = {"eval_s": time.perf_counter() - t1, "map": r.map}
    ap = {n: float(v) for n, v in zip(r.class_names, r.ap_per_class.tolist()) if v == v}
else:
    import hotcoco
    warnings.simplefilter("ignore")
    with contextlib.redirect_stdout(io.StringIO()):
        gt = hotcoco.COCO(gt_path)
        ids = {c["name"]: c["id"] for c in gt.dataset["categories"]} if hasattr(gt, "dataset") else None
        if ids is None:
            ids = {c["name"]: c["id"] for c in json.load(open(gt_path))["categories"]}
        h = hotcoco.Hierarchy.from_parent_map({ids[c]: ids[p] for c, p in parent.items()})
        ev = hotcoco.COCOeval(gt, gt.load_res(dt_path), "bbox", oid_style=True, hierarchy=h)
        ev.params.max_dets = [10000]
        ev.run()
    res = ev.results(per_class=True)
    ap = {k: float(v) for k, v in res["per_class"].items()}
    extra = {"map": float(res["metrics"]["AP"])}
json.dump(ap, open(out_path, "w"))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
print(json.dumps({"wall_in_child": time.perf_counter() - t0,
                  "peak_rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else None, **extra}))
'''


def run_tool(tool: str, gt: Path, dt: Path, h: Path, out: Path) -> dict[str, Any]:
    c = run_child(_CHILD, [tool, str(gt), str(dt), str(h), str(out)])
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    return {"tool": tool, "cpu_s": c.cpu_s, "wall_s": c.wall_s, **json.loads(c.stdout.strip().splitlines()[-1])}


def compare_ap(ref: Path, other: Path) -> dict[str, Any]:
    a, b = json.loads(ref.read_text()), json.loads(other.read_text())
    same_classes = sorted(a) == sorted(b)
    diff = max((abs(a[k] - b[k]) for k in a if k in b), default=0.0)
    return {"same_classes": same_classes, "max_diff": diff, "exact": same_classes and a == b,
            "classes_off": sum(a[k] != b.get(k) for k in a)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the 5,000 images (default 1.0)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool; the median is reported")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="write the generated files here and keep them")
    args = ap.parse_args(argv)
    tools, notes = pick_tools(args.tools, {"maslow": "maslow", "hotcoco": "hotcoco"})
    _compile_maslow()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = args.keep or Path(tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        gt, dt, parent = make_case(max(1, round(5000 * args.scale)))
        gt_path, dt_path, h_path = tmp / "oid_gt.json", tmp / "oid_dt.json", tmp / "oid_hierarchy.json"
        _dump(gt, gt_path)
        _dump(dt, dt_path)
        h_path.write_text(json.dumps(parent))
        size = {"images": len(gt["images"]), "classes": len(gt["categories"]), "truth": len(gt["annotations"]),
                "group_of": sum(bool(a.get("is_group_of")) for a in gt["annotations"]), "predictions": len(dt)}
        del gt, dt
        for t in tools:
            runs = [run_tool(t, gt_path, dt_path, h_path, tmp / f"{t}.json") for _ in range(max(1, args.repeat))]
            rows.append(median_run(runs))
        ok = {r["tool"] for r in rows if "error" not in r}
        base = next((r["cpu_s"] for r in rows if r["tool"] == "hotcoco" and "cpu_s" in r), None)
        for r in rows:
            if "error" in r:
                continue
            r["x_hotcoco"] = None if base is None else round(r["cpu_s"] / base, 3)
            if "hotcoco" in ok and r["tool"] != "hotcoco":
                r.update(compare_ap(tmp / "hotcoco.json", tmp / f"{r['tool']}.json"))
    if args.json:
        print(json.dumps({"size": size, "rows": rows, "notes": notes}, indent=1))
        return 0
    print(f"{size['images']} images, {size['classes']} classes (3 levels), {size['truth']} truth boxes "
          f"({size['group_of']} group-of), {size['predictions']} detections; CPU seconds end to end, median of "
          f"{max(1, args.repeat)}")
    print(f"{'tool':<10}{'cpu_s':>8}{'wall_s':>8}{'rss_MB':>8}{'x_hotcoco':>10}{'eval_s':>8}{'mAP':>9}  agreement")
    for r in rows:
        if "error" in r:
            print(f"{r['tool']:<10}  error: {r['error']}")
            continue
        if r["tool"] == "hotcoco":
            agree = "reference"
        elif "exact" not in r:
            agree = "not compared"
        elif r["exact"]:
            agree = "every class's AP bit-exact with hotcoco"
        else:
            agree = (f"vs hotcoco: {r['classes_off']} classes differ, max {r['max_diff']:.1e}"
                     f"{'' if r['same_classes'] else ', different classes'}")
        ev = f"{r['eval_s']:>8.2f}" if "eval_s" in r else f"{'':>8}"
        x = f"{r['x_hotcoco']:>10.3f}" if r.get("x_hotcoco") is not None else f"{'':>10}"
        print(f"{r['tool']:<10}{r['cpu_s']:>8.2f}{r['wall_s']:>8.2f}{r['peak_rss_mb']:>8.0f}{x}{ev}{r['map']:>9.4f}  "
              f"{agree}")
    for n in notes:
        print("note:", n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
