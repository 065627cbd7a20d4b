"""Scaling benchmark of every format's writer and reader: the cost must grow with the data, not with its square.

A writer that looked up its image's rows with a whole-column scan per image or per annotation (``has_box`` per
row, ``image_slices()`` per task, ``dict.setdefault(k, [None] * row)`` per object) took 64-100 CPU-s for 30,000
images where 10,000 took 10: this prints, for each format, the CPU seconds to write and to read back the same
COCO-like dataset (``io_bench.generate_coco``: polygons, boxes, areas, a few crowd regions; 10 annotations per
image) at ``n`` and at ``3n`` images, the growth (3.0 is linear; a quadratic step gives about 9), and the cost
per annotation at ``3n`` beside the anchor measured in the same run: the standard library's ``json.dumps`` and
``json.loads`` of the same COCO document, the least any writer or reader of this data does.

    python benchmarks/formats_bench.py [--n 3000] [--formats coco,parquet,yolo,voc,cvat,labelstudio] [--repeat 3]
        [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from io_bench import generate_coco

FORMATS = ("coco", "parquet", "yolo", "voc", "cvat", "labelstudio")
WRITE_OPTIONS: dict[str, dict[str, Any]] = {"yolo": {"images": False, "task": "segment"}, "voc": {"images": False}}
READ_OPTIONS: dict[str, dict[str, Any]] = {"yolo": {"image_size": (640, 480)}}


def _cpu(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def _target(tmp: Path, fmt: str, tag: str) -> Path:
    return tmp / (f"{fmt}_{tag}.json" if fmt in ("coco", "labelstudio") else f"{fmt}_{tag}.xml" if fmt == "cvat"
                  else f"{fmt}_{tag}")


def measure(n_images: int, formats: list[str], tmp: Path, tag: str, repeat: int = 1) -> dict[str, Any]:
    from maslow import io

    src = tmp / f"coco_{tag}.json"
    generate_coco(src, n_images=n_images, n_annotations=10 * n_images, seed=0)
    text = src.read_text(encoding="utf-8")
    doc = json.loads(text)
    ds = io.read_coco(src)
    out: dict[str, Any] = {"n_images": n_images, "n_annotations": ds.n_annotations,
                           "json.dumps": min(_cpu(lambda: json.dumps(doc))[0] for _ in range(repeat)),
                           "json.loads": min(_cpu(lambda: json.loads(text))[0] for _ in range(repeat))}
    for fmt in formats:
        w_opts, r_opts = WRITE_OPTIONS.get(fmt, {}), READ_OPTIONS.get(fmt, {})
        t_w, t_r = float("inf"), float("inf")
        for r in range(repeat):  # the best of `repeat` runs, each into a fresh target (writes of many small files
            dst = _target(tmp, fmt, f"{tag}{r}")  # vary most: their system time is the file system's)
            t, _ = _cpu(lambda d=dst, f=fmt, o=w_opts: io.write(ds, d, f, **o))
            t_w = min(t_w, t)
            t, back = _cpu(lambda d=dst, f=fmt, o=r_opts: io.import_dataset(d, f, check_files=False, **o))
            t_r = min(t_r, t)
            if back.dataset.n_annotations != ds.n_annotations:
                raise SystemExit(f"{fmt}: read back {back.dataset.n_annotations} annotations of {ds.n_annotations}")
        out[f"{fmt} write"], out[f"{fmt} read"] = t_w, t_r
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="images of the small case (the large one has 3x)")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each step; the least CPU time is kept (a shared machine's noise is one-sided)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.n < 1 or args.repeat < 1:
        ap.error("--n and --repeat must be at least 1")
    formats = [f for f in args.formats.split(",") if f]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        ap.error(f"--formats: unknown {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    with tempfile.TemporaryDirectory() as t:
        # a first pass on a few images imports each format's modules (pyarrow, lxml, ...) and warms its code
        # paths, so neither size's timing counts one-off costs (the n write of parquet took longer than the 3n one)
        measure(min(args.n, 20), formats, Path(t), "warmup")
        small = measure(args.n, formats, Path(t), "small", args.repeat)
        large = measure(3 * args.n, formats, Path(t), "large", args.repeat)
    steps = [k for k in large if k not in ("n_images", "n_annotations")]
    rows = [{"step": k, "cpu_s_n": round(small[k], 3), "cpu_s_3n": round(large[k], 3),
             "growth": round(large[k] / max(small[k], 1e-9), 2),
             "us_per_annotation": round(1e6 * large[k] / large["n_annotations"], 2),
             "x_json": round(large[k] / large["json.loads" if k.endswith(("read", "loads")) else "json.dumps"], 1)}
            for k in steps]
    if args.json:
        print(json.dumps({"n": small["n_images"], "3n": large["n_images"], "rows": rows}, indent=1))
        return 0
    print(f"{small['n_images']} and {large['n_images']} images ({large['n_annotations']} annotations); growth 3.0 is "
          "linear; x_json: over json.dumps (writes) or json.loads (reads) of the same COCO document")
    print(f"{'step':<20}{'cpu_s n':>9}{'cpu_s 3n':>10}{'growth':>8}{'us/ann':>9}{'x_json':>8}")
    for r in rows:
        print(f"{r['step']:<20}{r['cpu_s_n']:>9.2f}{r['cpu_s_3n']:>10.2f}{r['growth']:>8.2f}"
              f"{r['us_per_annotation']:>9.2f}{r['x_json']:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
