"""Load-time and peak-memory benchmark: maslow's COCO and Parquet readers against pycocotools.

Generates a COCO instances file like real COCO (boxes derived from small polygons, areas, a few crowd RLE
regions) with numpy, writes it once to a temporary folder, writes the same dataset as maslow Parquet, then
loads each in a fresh subprocess so loaders don't share memory:

- ``pycocotools``: ``pycocotools.coco.COCO(path)`` (json.load + index);
- ``maslow-coco``: ``maslow.io.read_coco(path)``;
- ``maslow-parquet``: ``maslow.io.read_parquet(dir)``.

Each child reports the wall time of the load call (imports excluded) and its peak resident set (``VmHWM`` on
Linux, else ``ru_maxrss``), in total and above the child's resident set after imports. Targets: maslow's COCO
load at least as fast as pycocotools with at most half its peak memory; Parquet at least 10x faster than
loading the COCO JSON (reported against pycocotools and against maslow's own COCO reader).

Usage::

    python benchmarks/io_bench.py                       # 100,000 images, 1,000,000 annotations
    python benchmarks/io_bench.py --n-images 1000 --n-annotations 10000 --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CHILD = r"""
import gc, json, resource, sys, time
which, path = sys.argv[1], sys.argv[2]
if which == "pycocotools":
    import contextlib, io as _io
    from pycocotools.coco import COCO
    def load():
        with contextlib.redirect_stdout(_io.StringIO()):   # COCO() prints progress
            return COCO(path)
    count = lambda c: (len(c.imgs), len(c.anns))
elif which == "maslow-coco":
    import warnings
    from maslow.io.coco import read_coco
    def load():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return read_coco(path)
    count = lambda d: (d.n_images, d.n_annotations)
else:
    import pyarrow
    from maslow.io.parquet import read_parquet
    pyarrow.array([0])  # pyarrow imports pandas (when installed) at its first conversion: an import cost, not a load
    load = lambda: read_parquet(path)
    count = lambda d: (d.n_images, d.n_annotations)
def status_kb(key):  # VmRSS / VmHWM of this process (VmHWM starts afresh at exec, unlike ru_maxrss)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
gc.collect()
base = status_kb("VmRSS")
t0 = time.perf_counter()
obj = load()
dt = time.perf_counter() - t0
peak = status_kb("VmHWM")
n_img, n_ann = count(obj)
print(json.dumps({"seconds": dt, "peak_rss_mb": peak / 1024, "base_rss_mb": base / 1024,
                  "n_images": n_img, "n_annotations": n_ann}))
"""


def generate_coco(path: Path, *, n_images: int, n_annotations: int, seed: int = 0,
                  crowd_fraction: float = 0.005) -> None:
    """Write a COCO instances file like real COCO: polygons of 4-16 vertices, boxes and areas from them."""
    rng = np.random.default_rng(seed)
    n_cat = 80
    width = rng.choice([640, 480, 500, 427], n_images)
    height = rng.choice([480, 640, 375, 333], n_images)
    image_ids = np.sort(rng.choice(np.arange(1, 10 * n_images + 1), n_images, replace=False))
    ann_image = np.sort(rng.integers(0, n_images, n_annotations))
    w, h = width[ann_image].astype(float), height[ann_image].astype(float)
    # one star-convex polygon per annotation
    k = rng.integers(4, 17, n_annotations)
    offs = np.concatenate([[0], np.cumsum(k)])
    owner = np.repeat(np.arange(n_annotations), k)
    radius = np.minimum(w, h) * rng.uniform(0.02, 0.25, n_annotations)
    cx = rng.uniform(0, 1, n_annotations) * w
    cy = rng.uniform(0, 1, n_annotations) * h
    step = 2 * np.pi / k
    angle = (np.arange(len(owner)) - offs[owner]) * step[owner] + rng.uniform(0, 0.5, len(owner)) * step[owner]
    r = radius[owner] * rng.uniform(0.6, 1.0, len(owner))
    px = np.round(np.clip(cx[owner] + r * np.cos(angle), 0, w[owner]), 2)
    py = np.round(np.clip(cy[owner] + r * np.sin(angle), 0, h[owner]), 2)
    x1, x2 = np.minimum.reduceat(px, offs[:-1]), np.maximum.reduceat(px, offs[:-1])
    y1, y2 = np.minimum.reduceat(py, offs[:-1]), np.maximum.reduceat(py, offs[:-1])
    nxt = np.arange(len(owner)) + 1
    nxt[offs[1:] - 1] = offs[:-1]
    area = np.abs(np.add.reduceat(px * py[nxt] - py * px[nxt], offs[:-1])) / 2
    bbox = np.round(np.stack([x1, y1, x2 - x1, y2 - y1], 1), 2)
    crowd = rng.random(n_annotations) < crowd_fraction
    cat = rng.integers(1, n_cat + 1, n_annotations)
    xy = np.stack([px, py], 1).ravel()

    with open(path, "w", encoding="utf-8") as f:
        f.write('{"info": {"description": "maslow io benchmark", "version": "1.0"}, "licenses": [],\n')
        cats = [{"id": i, "name": f"class_{i}", "supercategory": f"super_{i % 12}"} for i in range(1, n_cat + 1)]
        f.write(f'"categories": {json.dumps(cats)},\n"images": [\n')
        for s in range(0, n_images, 50_000):
            e = min(s + 50_000, n_images)
            rows = [{"id": int(image_ids[i]), "file_name": f"{int(image_ids[i]):012d}.jpg", "width": int(width[i]),
                     "height": int(height[i]), "license": 1, "date_captured": "2013-11-14 16:28:13"}
                    for i in range(s, e)]
            f.write(",\n".join(map(json.dumps, rows)))
            f.write(",\n" if e < n_images else "\n")
        f.write('],\n"annotations": [\n')
        xy_list = xy.tolist()
        bbox_list = bbox.tolist()
        area_list = np.round(area, 2).tolist()
        for s in range(0, n_annotations, 100_000):
            e = min(s + 100_000, n_annotations)
            rows = []
            for j in range(s, e):
                d: dict[str, Any] = {"id": j + 1, "image_id": int(image_ids[ann_image[j]]), "category_id": int(cat[j])}
                if crowd[j]:
                    hh, ww = int(h[j]), int(w[j])
                    x0, y0 = int(bbox_list[j][0]), int(bbox_list[j][1])
                    bw, bh = max(int(bbox_list[j][2]), 1), max(int(bbox_list[j][3]), 1)
                    counts = []
                    prev = 0
                    for col in range(x0, min(x0 + bw, ww)):
                        start = col * hh + y0
                        counts += [start - prev, min(bh, hh - y0)]
                        prev = start + min(bh, hh - y0)
                    counts.append(hh * ww - prev)
                    d["segmentation"] = {"counts": counts, "size": [hh, ww]}
                    d["area"] = float(sum(counts[1::2]))
                    d["iscrowd"] = 1
                else:
                    d["segmentation"] = [xy_list[2 * offs[j]: 2 * offs[j + 1]]]
                    d["area"] = area_list[j]
                    d["iscrowd"] = 0
                d["bbox"] = bbox_list[j]
                rows.append(d)
            f.write(",\n".join(map(json.dumps, rows)))
            f.write(",\n" if e < n_annotations else "\n")
        f.write("]}\n")


def run_child(which: str, path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, which, str(path)], capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{which} failed:\n{out.stderr}")
    res: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    res["loader_mb"] = max(res["peak_rss_mb"] - res["base_rss_mb"], 0.0)
    return res


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-images", type=int, default=100_000)
    ap.add_argument("--n-annotations", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="write the generated files here and keep them")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per loader, interleaved; the best time and the highest peak are kept (noisy machines)")
    args = ap.parse_args(argv)

    from maslow.io.coco import read_coco
    from maslow.io.parquet import write_parquet

    with tempfile.TemporaryDirectory(prefix="maslow-io-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        coco_path, pq_path = work / "instances.json", work / "dataset.parquet"
        t0 = time.perf_counter()
        generate_coco(coco_path, n_images=args.n_images, n_annotations=args.n_annotations)
        gen_s = time.perf_counter() - t0
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_coco(coco_path)
        t0 = time.perf_counter()
        write_parquet(ds, pq_path)
        write_s = time.perf_counter() - t0
        del ds
        loaders = (("pycocotools", coco_path), ("maslow-coco", coco_path), ("maslow-parquet", pq_path))
        runs: dict[str, list[dict[str, Any]]] = {w: [] for w, _ in loaders}
        for _ in range(max(args.repeat, 1)):  # interleaved, so a burst of load elsewhere hits every loader
            for w, p in loaders:
                runs[w].append(run_child(w, p))
        results = {}
        for w, rs in runs.items():
            best = dict(min(rs, key=lambda r: r["seconds"]))
            best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rs)
            best["loader_mb"] = max(r["loader_mb"] for r in rs)
            best["all_seconds"] = [round(r["seconds"], 3) for r in rs]
            results[w] = best
        size_json = coco_path.stat().st_size / 2**20
        size_pq = sum(f.stat().st_size for f in pq_path.iterdir()) / 2**20

    ref = results["pycocotools"]
    coco = results["maslow-coco"]
    pq = results["maslow-parquet"]
    summary = {
        "n_images": args.n_images, "n_annotations": args.n_annotations,
        "json_mb": round(size_json, 1), "parquet_mb": round(size_pq, 1),
        "generate_s": round(gen_s, 2), "write_parquet_s": round(write_s, 2),
        "loaders": results,
        "coco_speedup_vs_pycocotools": ratio(ref["seconds"], coco["seconds"]),
        "coco_peak_ratio_vs_pycocotools": ratio(coco["peak_rss_mb"], ref["peak_rss_mb"]),
        "coco_loader_mem_ratio_vs_pycocotools": ratio(coco["loader_mb"], ref["loader_mb"]),
        "parquet_speedup_vs_coco": ratio(coco["seconds"], pq["seconds"]),
        "parquet_speedup_vs_pycocotools": ratio(ref["seconds"], pq["seconds"]),
    }
    summary["targets_met"] = {
        "coco_at_least_as_fast_as_pycocotools": summary["coco_speedup_vs_pycocotools"] >= 1.0,
        "coco_at_most_half_pycocotools_peak": summary["coco_peak_ratio_vs_pycocotools"] <= 0.5,
        "parquet_10x_faster_than_pycocotools": summary["parquet_speedup_vs_pycocotools"] >= 10.0,
        "parquet_10x_faster_than_maslow_coco": summary["parquet_speedup_vs_coco"] >= 10.0,
    }
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"load {args.n_annotations:,} annotations on {args.n_images:,} images "
                        f"(COCO JSON {size_json:.0f} MB, Parquet {size_pq:.0f} MB)")
    for col in ("loader", "seconds", "speed-up", "peak MB", "peak ratio", "load MB", "load ratio"):
        table.add_column(col, justify="left" if col == "loader" else "right")
    for name, r in results.items():
        table.add_row(name, f"{r['seconds']:.2f}", f"{ratio(ref['seconds'], r['seconds']):.2f}x",
                      f"{r['peak_rss_mb']:.0f}", f"{ratio(r['peak_rss_mb'], ref['peak_rss_mb']):.2f}",
                      f"{r['loader_mb']:.0f}", f"{ratio(r['loader_mb'], ref['loader_mb']):.2f}")
    console = Console(width=110)
    console.print(table)
    console.print("speed-up and ratios are against pycocotools; 'load MB' is the peak above the resident set "
                  "after imports")
    console.print(f"parquet vs maslow-coco: {summary['parquet_speedup_vs_coco']:.1f}x faster")
    for k, v in summary["targets_met"].items():
        console.print(f"{k}: {'met' if v else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
