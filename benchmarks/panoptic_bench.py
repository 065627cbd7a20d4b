"""Panoptic segmentation benchmark: maslow's ``panoptic_quality`` against hotcoco's ``PanopticEval`` (panopticapi's
protocol, compiled Rust), end to end, each in a fresh process.

Case (generated, seeded; ``--n-images``, ``--size``): 500 images of 640 x 480, 10 thing and 6 stuff classes; each
image 4 stuff bands with slanted borders and ~16 things (ellipses, Poisson, some crowds, half with a VOID border), so
~20 segments; the predictions move and resize the things, relabel 10% of them, miss 15%, invent ~3 an image, shift
the stuff borders, and leave a strip VOID in 30% of the images. Written as COCO panoptic files (JSON + a folder of
RGB PNGs), truth and predictions, and from them as segments with RLE masks (hotcoco: COCO instances + results JSON;
maslow: its Parquet format).

Tools, each in its own subprocess (import, read both sides, evaluate):

- ``maslow``: ``read_coco_panoptic`` (truth) and ``coco_panoptic.parse(like=truth)`` (predictions), then
  ``panoptic_quality`` (``eval_s``: that call alone); ``maslow-numpy``: the same with ``MASLOW_NATIVE=0`` (masks
  decoded into label maps, as panopticapi counts);
- ``hotcoco``: ``PanopticEval(gt_json, pred_json).run()`` on the same files, the reference;
- ``maslow-rle`` and ``hotcoco-rle``: the evaluation from segments already held as RLE (maslow: ``read_parquet``
  twice, then ``panoptic_quality``; hotcoco: ``COCO`` + ``load_res`` + ``PanopticEval(gt, dt)``): no PNG to decode.

The parent reads each child's CPU seconds (user + system, all threads) and peak RSS (VmHWM), and compares PQ, SQ and
RQ (all, things, stuff) and every class's TP, FP and FN with hotcoco's (``agreement``: the counts equal, the largest
difference of the scores).

    python benchmarks/panoptic_bench.py [--n-images 500] [--tools maslow,maslow-numpy,hotcoco,maslow-rle,hotcoco-rle]
                                        [--repeat 3] [--json]
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
from metrics_bench import _compile_maslow, _dump

TOOLS = ("maslow", "maslow-numpy", "hotcoco", "maslow-rle", "hotcoco-rle")
N_THINGS, N_STUFF = 10, 6


def _ellipse(out: np.ndarray, value: int, cx: float, cy: float, a: float, b: float, border: float = 0.0) -> None:
    """Paint an ellipse of ``value`` (and, with ``border``, a VOID ring around it first) into ``out``, in place."""
    h, w = out.shape
    pad = border + 1
    x0, x1 = max(int(cx - a - pad), 0), min(int(cx + a + pad + 1), w)
    y0, y1 = max(int(cy - b - pad), 0), min(int(cy + b + pad + 1), h)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.ogrid[y0:y1, x0:x1]
    sub = out[y0:y1, x0:x1]
    if border:
        sub[((xx - cx) / (a + border)) ** 2 + ((yy - cy) / (b + border)) ** 2 <= 1] = 0
    sub[((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1] = value


def _bands(out: np.ndarray, ids: list[int], cuts: np.ndarray, slopes: np.ndarray) -> None:
    h, w = out.shape
    yy, xx = np.ogrid[0:h, 0:w]
    for k, sid in enumerate(ids):
        top = -1.0 if k == 0 else cuts[k - 1] + slopes[k - 1] * (xx - w / 2)
        out[(yy >= top) & (True if k == len(ids) - 1 else yy < cuts[k] + slopes[k] * (xx - w / 2))] = sid


def make_case(folder: Path, n_images: int, size: tuple[int, int], seed: int = 0) -> dict[str, int]:
    """Write ``gt.json`` + ``gt/`` and ``pred.json`` + ``pred/`` (COCO panoptic) into ``folder``."""
    from PIL import Image
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    w, h = size
    cats = [{"id": c + 1, "name": f"thing{c}", "isthing": 1, "color": [int(v) for v in rng.integers(0, 256, 3)],
             "supercategory": "thing"} for c in range(N_THINGS)]
    cats += [{"id": 100 + c, "name": f"stuff{c}", "isthing": 0, "color": [int(v) for v in rng.integers(0, 256, 3)],
              "supercategory": "stuff"} for c in range(N_STUFF)]
    images, anns = [], {"gt": [], "pred": []}
    counts = {"truth": 0, "pred": 0}
    for side in anns:
        (folder / side).mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        name = f"{i:012d}"
        images.append({"id": i + 1, "file_name": f"{name}.jpg", "width": w, "height": h})
        maps = {"gt": np.zeros((h, w), np.int64), "pred": np.zeros((h, w), np.int64)}
        cls: dict[str, dict[int, tuple[int, int]]] = {"gt": {}, "pred": {}}
        ids = iter(rng.choice(np.arange(1, 1 << 24), 80, replace=False).tolist())
        cuts = np.sort(rng.uniform(0.1, 0.9, 3)) * h
        slopes = rng.normal(0, 0.1, 3)
        stuff = [100 + int(c) for c in rng.integers(0, N_STUFF, 4)]
        for side, shift in (("gt", 0.0), ("pred", rng.normal(0, 6))):
            sids = [next(ids) for _ in stuff]
            labels = stuff if side == "gt" else [c if rng.random() > 0.1 else 100 + int(rng.integers(N_STUFF))
                                                 for c in stuff]
            _bands(maps[side], sids, cuts + shift, slopes)
            cls[side].update({s: (c, 0) for s, c in zip(sids, labels, strict=True)})
        for _ in range(int(rng.poisson(16))):
            c = 1 + int(rng.integers(N_THINGS))
            cx, cy, a, b = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, 90), rng.uniform(8, 90)
            sid = next(ids)
            _ellipse(maps["gt"], sid, cx, cy, a, b, border=2.0 if rng.random() < 0.5 else 0.0)
            cls["gt"][sid] = (c, int(rng.random() < 0.05))
            if rng.random() < 0.85:
                pid = next(ids)
                _ellipse(maps["pred"], pid, cx + rng.normal(0, 0.15 * a), cy + rng.normal(0, 0.15 * b),
                         a * np.exp(rng.normal(0, 0.1)), b * np.exp(rng.normal(0, 0.1)))
                cls["pred"][pid] = (c if rng.random() > 0.1 else 1 + int(rng.integers(N_THINGS)), 0)
        for _ in range(int(rng.poisson(3))):
            pid = next(ids)
            _ellipse(maps["pred"], pid, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(5, 40), rng.uniform(5, 40))
            cls["pred"][pid] = (1 + int(rng.integers(N_THINGS)), 0)
        if rng.random() < 0.3:
            maps["pred"][: int(rng.integers(1, 30))] = 0
        for side, m in maps.items():
            present, inv = np.unique(m, return_inverse=True)
            area = np.bincount(inv.ravel(), minlength=len(present))
            boxes = ndimage.find_objects(inv.reshape(m.shape) + 1)
            segs = []
            for k, sid in enumerate(present.tolist()):
                if sid == 0:
                    continue
                ys, xs = boxes[k]
                c, crowd = cls[side][sid]
                segs.append({"id": sid, "category_id": c, "iscrowd": crowd,
                             "bbox": [xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start],
                             "area": int(area[k])})
            counts["truth" if side == "gt" else "pred"] += len(segs)
            rgb = np.stack([m & 255, (m >> 8) & 255, (m >> 16) & 255], axis=-1).astype(np.uint8)
            Image.fromarray(rgb).save(folder / side / f"{name}.png")
            anns[side].append({"segments_info": segs, "file_name": f"{name}.png", "image_id": i + 1})
    for side, recs in anns.items():
        _dump({"images": images, "annotations": recs, "categories": cats}, folder / f"{side}.json")
    return {"images": n_images, **counts}


def make_rle(folder: Path) -> None:
    """The same segments as RLE: ``gt_rle.json`` + ``pred_rle.json`` (hotcoco), ``gt.parquet`` + ``pred.parquet``."""
    from maslow.core.masks import to_json
    from maslow.io import write_parquet
    from maslow.io.coco_panoptic import parse

    truth, _ = parse(folder / "gt.json")
    pred, _ = parse(folder / "pred.json", like=truth)
    write_parquet(truth, folder / "gt.parquet")
    write_parquet(pred, folder / "pred.parquet")
    cats = json.loads((folder / "gt.json").read_text())["categories"]
    ids = truth.images.extra["coco_id"].tolist()
    cat_ids = [c.id for c in truth.schema.classes]
    for ds, name in ((truth, "gt_rle.json"), (pred, "pred_rle.json")):
        a = ds.annotations
        recs = []
        for r in range(ds.n_annotations):
            x1, y1, x2, y2 = a.box[r].tolist()
            rec = {"id": r + 1, "image_id": ids[a.image[r]], "category_id": cat_ids[a.label[r]],
                   "segmentation": to_json(a.mask[r]), "area": float(a.extra["area"][r]),
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(a.iscrowd[r])}
            if ds is pred:
                rec["score"] = 1.0
            recs.append(rec)
        doc: Any = recs if ds is pred else {"images": json.loads((folder / "gt.json").read_text())["images"],
                                            "annotations": recs, "categories": cats}
        _dump(doc, folder / name)


_CHILD = r'''
import contextlib, io, json, sys, time, warnings
import numpy as np
tool, folder, out_path = sys.argv[1:4]
t0 = time.perf_counter()
extra = {}
if tool.startswith("maslow"):
    from maslow.metrics.panoptic import panoptic_quality
    if tool == "maslow-rle":
        from maslow.io import read_parquet
        truth, pred = read_parquet(folder + "/gt.parquet"), read_parquet(folder + "/pred.parquet")
    else:
        from maslow.io.coco_panoptic import parse
        truth, _ = parse(folder + "/gt.json")
        pred, _ = parse(folder + "/pred.json", like=truth)
    t1 = time.perf_counter()
    r = panoptic_quality(truth, pred)
    extra = {"read_s": t1 - t0, "eval_s": time.perf_counter() - t1}
    summary = {k.capitalize(): v for k, v in r.summary().items()}
    ids = [c.id for c in truth.schema.classes]
    per_class = {str(ids[k]): [int(r.tp_per_class[k]), int(r.fp_per_class[k]), int(r.fn_per_class[k])]
                 for k in range(len(ids))}
else:
    import hotcoco
    from hotcoco import panoptic
    warnings.simplefilter("ignore")
    with contextlib.redirect_stdout(io.StringIO()):
        if tool == "hotcoco-rle":
            gt = hotcoco.COCO(folder + "/gt_rle.json")
            ev = panoptic.PanopticEval(gt, gt.load_res(folder + "/pred_rle.json"))
        else:
            ev = panoptic.PanopticEval(folder + "/gt.json", folder + "/pred.json")
        ev.run()
    res = ev.results()
    summary = {k: {m: (None if res[k][m] < 0 else res[k][m]) for m in ("pq", "sq", "rq")} | {"n": res[k]["n"]}
               for k in ("All", "Things", "Stuff")}
    per_class = {str(k): [v["tp"], v["fp"], v["fn"]] for k, v in res["per_class"].items()}
json.dump({"summary": summary, "per_class": per_class}, open(out_path, "w"))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
print(json.dumps({"wall_in_child": time.perf_counter() - t0,
                  "peak_rss_mb": int(hwm[0].split()[1]) / 1024 if hwm else None, **extra}))
'''


def run_tool(tool: str, folder: Path, out: Path) -> dict[str, Any]:
    env = dict(os.environ)
    if tool == "maslow-numpy":
        env["MASLOW_NATIVE"] = "0"
    c = run_child(_CHILD, [tool, str(folder), str(out)], env=env)
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    return {"tool": tool, "cpu_s": c.cpu_s, "wall_s": c.wall_s, **json.loads(c.stdout.strip().splitlines()[-1])}


def compare(ref: Path, other: Path) -> dict[str, Any]:
    a, b = json.loads(ref.read_text()), json.loads(other.read_text())
    diff = 0.0
    same_n = True
    for group, sa in a["summary"].items():
        sb = b["summary"][group]
        same_n &= sa["n"] == sb["n"]
        for m in ("pq", "sq", "rq"):
            if (sa[m] is None) != (sb[m] is None):
                diff = float("inf")
            elif sa[m] is not None:
                diff = max(diff, abs(sa[m] - sb[m]))
    counts = a["per_class"] == {k: v for k, v in b["per_class"].items() if k in a["per_class"]}
    return {"counts_equal": bool(counts and same_n), "max_score_diff": diff}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-images", type=int, default=500)
    ap.add_argument("--size", default="640x480", help="image width x height (default 640x480)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1, help="runs of each tool; the median CPU time is reported")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="write the generated files here and keep them")
    args = ap.parse_args(argv)
    notes: list[str] = []
    module = {"maslow": "maslow", "maslow-numpy": "maslow", "hotcoco": "hotcoco", "maslow-rle": "maslow",
              "hotcoco-rle": "hotcoco"}
    tools, skipped = pick_tools(args.tools, module)
    notes += skipped
    _compile_maslow()
    w, h = (int(v) for v in args.size.lower().split("x"))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = args.keep or Path(tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        size = make_case(tmp, args.n_images, (w, h))
        if any(t.endswith("-rle") for t in tools):
            make_rle(tmp)
        for t in tools:
            runs = [run_tool(t, tmp, tmp / f"{t}.out.json") for _ in range(max(1, args.repeat))]
            rows.append({**median_run(runs), **size})
        base = {r["tool"]: r["cpu_s"] for r in rows if r["tool"] in ("hotcoco", "hotcoco-rle") and "cpu_s" in r}
        for r in rows:
            if "error" in r:
                continue
            ref = "hotcoco-rle" if r["tool"].endswith("-rle") else "hotcoco"
            r["x_hotcoco"] = round(r["cpu_s"] / base[ref], 3) if ref in base else None
            if ref in base and r["tool"] != ref:
                r.update(reference=ref, **compare(tmp / f"{ref}.out.json", tmp / f"{r['tool']}.out.json"))
    if args.json:
        print(json.dumps({"rows": rows, "notes": notes}, indent=1))
        return 0
    print(f"{size['images']} images of {w}x{h}, {size['truth']} truth segments, {size['pred']} predicted segments")
    print(f"{'tool':<14}{'cpu_s':>8}{'wall_s':>8}{'rss_MB':>8}{'x_hotcoco':>10}{'read_s':>8}{'eval_s':>8}  agreement")
    for r in rows:
        if "error" in r:
            print(f"{r['tool']:<14}  error: {r['error']}")
            continue
        agree = "reference" if "reference" not in r and r["tool"].startswith("hotcoco") else \
            "not compared" if "reference" not in r else \
            (f"vs {r['reference']}: TP/FP/FN {'equal' if r['counts_equal'] else 'DIFFER'}, scores within "
             f"{r['max_score_diff']:.1e}")
        x = f"{r['x_hotcoco']:>10.3f}" if r.get("x_hotcoco") is not None else f"{'':>10}"
        rd = f"{r['read_s']:>8.2f}" if "read_s" in r else f"{'':>8}"
        ev = f"{r['eval_s']:>8.2f}" if "eval_s" in r else f"{'':>8}"
        print(f"{r['tool']:<14}{r['cpu_s']:>8.2f}{r['wall_s']:>8.2f}{r['peak_rss_mb']:>8.0f}{x}{rd}{ev}  {agree}")
    for n in notes:
        print("note:", n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
