"""TIDE error analysis benchmark: maslow's ``tide_errors`` against tidecv 1.0.1 and hotcoco 1.3's
``COCOeval.tide_errors``, end to end, each in a fresh process.

Cases (generated, seeded, by ``metrics_bench.py``'s ``make_bbox``/``make_segm``; ``--scale`` shrinks them):

- ``bbox``: COCO val2017 scale: 5,000 images, 80 classes, ~36,000 truth boxes (1% crowd), up to 100 detections per
  image (~420,000; scores on 3 decimals, so ties occur);
- ``segm``: 500 images, polygon truth (and uncompressed-RLE crowds), RLE detections.

Each tool runs in its own subprocess: import, load both JSON files, compute TIDE's dAP and counts. The parent reads
the child's CPU seconds (user + system, all threads) and peak RSS from ``wait4``. Columns: ``cpu_s`` (the whole
child), ``wall_s``, ``tide_s`` (the CPU seconds of the TIDE computation alone, after loading, all threads:
maslow's ``tide_errors``; tidecv's ``evaluate`` + ``get_main_errors`` + ``get_special_errors``; hotcoco's
``evaluate`` + ``tide_errors``, which needs that evaluation), ``rss_MB``, ``x_maslow`` (cpu_s over maslow's) and ``tide_x`` (tide_s over maslow's), and
``vs_tidecv``: the largest difference of any dAP or of the base AP from tidecv's (fractions), ``counts=`` when
every count is tidecv's. hotcoco differs from tidecv by definition (see ``maslow.metrics.tide``'s docstring).

tidecv is not a maslow dependency and needs opencv at import: ``pip install tidecv`` (or install it into a folder
and put that folder on ``PYTHONPATH``); hotcoco is in the ``bench`` extra. A tool that is not installed is skipped
with a note. tidecv reads the truth through its ``Data`` API (its COCO reader fails on the empty segmentations
of the bbox case). ``--repeat N`` runs each tool under 5 CPU-s N times and reports the median run.

    python benchmarks/tide_bench.py [--scale 0.2] [--cases bbox,segm] [--tools maslow,tidecv,hotcoco] [--repeat 3]
        [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _child import run_child  # benchmarks/ is on sys.path: the scripts run from there

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_bench import _dump, make_bbox, make_segm  # the same generated cases

TOOLS = ("maslow", "tidecv", "hotcoco")
MODULE = {"maslow": "maslow", "tidecv": "tidecv", "hotcoco": "hotcoco"}

_CHILD = r'''
import sys, time, json, contextlib, io, warnings
tool, iou_type, gt_path, dt_path = sys.argv[1:5]
t0 = time.perf_counter()
if tool == "maslow":
    warnings.simplefilter("ignore")  # the reader's notes on the generated boxes
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import read_coco_predictions
    from maslow.metrics import tide_errors
    truth = read_coco(gt_path)
    pred = read_coco_predictions(dt_path, like=truth)
    t1, c1 = time.perf_counter(), time.process_time()
    r = tide_errors(truth, pred, iou_type=iou_type)
    out = {"ap": r.ap_base, "delta": dict(r.delta_ap), "counts": dict(r.counts)}
elif tool == "tidecv":
    warnings.simplefilter("ignore")
    from tidecv import TIDE, Data
    from tidecv import functions as f
    gt, dts = json.load(open(gt_path)), json.load(open(dt_path))
    mode = "mask" if iou_type == "segm" else "bbox"
    truth = Data("gt", max_dets=100)
    size = {}
    for im in gt["images"]:
        truth.add_image(im["id"], im["file_name"])
        size[im["id"]] = (im["width"], im["height"])
    for c in gt["categories"]:
        truth.add_class(c["id"], c["name"])
    for a in gt["annotations"]:
        mask = f.toRLE(a["segmentation"], *size[a["image_id"]]) if mode == "mask" else None
        add = truth.add_ignore_region if a["iscrowd"] else truth.add_ground_truth
        add(a["image_id"], a["category_id"], a["bbox"], mask)
    pred = Data("pred")
    for d in dts:
        pred.add_detection(d["image_id"], d["category_id"], d["score"], d.get("bbox"), d.get("segmentation"))
    t1, c1 = time.perf_counter(), time.process_time()
    tide = TIDE(mode=mode)
    with contextlib.redirect_stdout(io.StringIO()):
        run = tide.evaluate(truth, pred, mode=mode)
        main, special = tide.get_main_errors()["pred"], tide.get_special_errors()["pred"]
    delta = {k: v / 100 for k, v in main.items()}
    delta.update(FP=special["FalsePos"] / 100, FN=special["FalseNeg"] / 100)
    out = {"ap": run.ap / 100, "delta": delta, "counts": {e.short_name: n for e, n in run.count_errors().items()}}
else:
    from hotcoco import COCO, COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.load_res(dt_path)
        t1, c1 = time.perf_counter(), time.process_time()
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        r = ev.tide_errors(pos_thr=0.5, bg_thr=0.1)
    out = {"ap": r["ap_base"], "delta": r["delta_ap"], "counts": r["counts"]}
t2, c2 = time.perf_counter(), time.process_time()
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
rss = int(hwm[0].split()[1]) / 1024 if hwm else None
print(json.dumps({"tide_s": c2 - c1, "tide_wall_s": t2 - t1, "load_s": t1 - t0, "peak_rss_mb": rss, **out}))
'''


def run_tool(tool: str, iou_type: str, gt: Path, dt: Path) -> dict[str, Any]:
    """One child: its output, wall time, and CPU time (user + system, from ``wait4``)."""
    c = run_child(_CHILD, [tool, iou_type, str(gt), str(dt)])
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    return {"tool": tool, "wall_s": c.wall_s, "cpu_s": c.cpu_s, **json.loads(c.stdout.strip().splitlines()[-1])}


def _gap(row: dict[str, Any], ref: dict[str, Any]) -> str:
    """Largest |difference| of the base AP and every dAP from the reference's, and whether the counts agree."""
    diffs = [abs(row["ap"] - ref["ap"])] + [abs(row["delta"][k] - v) for k, v in ref["delta"].items()
                                            if k in row["delta"] and row["delta"][k] is not None and v is not None]
    same = all(row["counts"].get(k) == v for k, v in ref["counts"].items())
    return f"{max(diffs):.1e}{' counts=' if same else ' counts differ'}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--cases", default="bbox,segm")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    notes: list[str] = []
    for t in list(tools):
        if importlib.util.find_spec(MODULE[t]) is None:
            notes.append(f"{t}: not installed, skipped")
            tools.remove(t)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in [c for c in args.cases.split(",") if c]:
            n = max(1, round((5000 if case == "bbox" else 500) * args.scale))
            gt, dt = make_bbox(n) if case == "bbox" else make_segm(n)
            gt_path, dt_path = Path(tmp) / f"{case}_gt.json", Path(tmp) / f"{case}_dt.json"
            _dump(gt, gt_path)
            _dump(dt, dt_path)
            size = f"{n} images, {len(gt['annotations'])} truth, {len(dt)} detections"
            got: dict[str, dict[str, Any]] = {}
            for tool in tools:
                runs = [run_tool(tool, case, gt_path, dt_path)]
                while len(runs) < args.repeat and "error" not in runs[0] and runs[0]["cpu_s"] < 5:
                    runs.append(run_tool(tool, case, gt_path, dt_path))
                ok = [r for r in runs if "error" not in r]
                got[tool] = sorted(ok, key=lambda r: r["cpu_s"])[len(ok) // 2] if ok else runs[0]
            base = got.get("maslow")
            for tool, r in got.items():
                row: dict[str, Any] = {"case": case, "size": size, **r}
                if "error" not in r:
                    if base is not None and "error" not in base:
                        row["x_maslow"] = r["cpu_s"] / base["cpu_s"]
                        row["tide_x"] = r["tide_s"] / base["tide_s"]
                    ref = got.get("tidecv")
                    row["vs_tidecv"] = "" if ref is None or "error" in ref or tool == "tidecv" else _gap(r, ref)
                rows.append(row)
    if args.json:
        print(json.dumps({"rows": rows, "notes": notes}, indent=1))
        return
    head = f"{'case':6} {'tool':8} {'cpu_s':>7} {'wall_s':>7} {'tide_s':>7} {'rss_MB':>7} {'x_maslow':>8} {'tide_x':>7}  vs_tidecv"
    print(head)
    for r in rows:
        if "error" in r:
            print(f"{r['case']:6} {r['tool']:8} error: {r['error']}")
            continue
        print(f"{r['case']:6} {r['tool']:8} {r['cpu_s']:7.2f} {r['wall_s']:7.2f} {r['tide_s']:7.3f} "
              f"{r['peak_rss_mb'] or 0:7.0f} {r.get('x_maslow', float('nan')):8.1f} {r.get('tide_x', float('nan')):7.1f}"
              f"  {r.get('vs_tidecv', '')}")
    for case in dict.fromkeys(r["case"] for r in rows):
        print(f"{case}: {next(r['size'] for r in rows if r['case'] == case)}")
    for note in notes:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
