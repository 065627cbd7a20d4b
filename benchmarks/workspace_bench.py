"""Workspace benchmark: what a user does with a large dataset in a workspace, each against the plain way of doing
the same with json and pandas, as ratios of wall time and of peak memory.

Generates a COCO file (``--images`` images of 640 x 480, ``--boxes`` boxes over 20 classes, seeded) and a second
version of it (1% of the boxes removed, 2% moved by a pixel, 5,000 boxes added, the last 0.5% of the images
dropped), in a scratch folder deleted at the end. Each operation runs in a fresh subprocess, so none shares memory
with another; a child reports the wall time of the operation (imports excluded) and its peak resident set
(``VmHWM`` on Linux, else ``ru_maxrss``):

| operation | maslow | plain baseline |
|---|---|---|
| import | ``maslow import big.json --from coco --no-check-files`` | ``json.load`` + pandas tables + ``to_parquet`` |
| import unchanged | the same import again (no new version) | the same baseline |
| import version 2 | ``maslow import big2.json`` (a new version) | the baseline on big2.json |
| log | ``Workspace.log`` (``maslow log`` adds the CLI's imports, ~0.3 s) | ``json.load`` of every ``version.json`` |
| load | ``Workspace.load(version)`` (what check, stats and export start with) | ``pd.read_parquet`` of both tables |
| diff | ``maslow diff --json`` | both versions' tables read, an outer ``merge`` on path, class and box |
| subset | ``ds.select_images(split == "val")`` then ``.select(label == 3)`` | boolean filters and ``isin`` |
| stats | ``maslow stats --json`` (the version loaded, then counted) | tables read, ``value_counts`` per class and per image |
| export | ``maslow export big out.json --to coco`` | tables read, COCO dicts + ``json.dump`` |

Ratios above 1 mean maslow takes longer (or more memory) than the baseline; the baseline does less (no checks, no
content hash, no validation), so a ratio near 1 is the aim and over 3 is worth a look.

    python benchmarks/workspace_bench.py [--images 200000] [--boxes 1500000] [--scratch DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HARNESS = r"""
import json, resource, sys, time
def _peak_mb():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
SETUP
_t0 = time.perf_counter()
RUN
sys.stdout.flush()
print("\n@@" + json.dumps({"seconds": time.perf_counter() - _t0, "peak_mb": _peak_mb()}))
"""

CLI = """
import contextlib, io, os, sys
from maslow.cli.main import build
app = build()
os.chdir({ws!r})
def run(args):
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            app(args, standalone_mode=False)
        except SystemExit:
            pass
"""

PANDAS_IMPORT = """
import json, os
import pandas as pd
def run(src, dst):
    with open(src) as f:
        d = json.load(f)
    images = pd.DataFrame(d["images"])
    anns = pd.DataFrame(d["annotations"])
    box = pd.DataFrame(anns.pop("bbox").tolist(), columns=["x", "y", "w", "h"])
    anns = pd.concat([anns, box], axis=1)
    os.makedirs(dst, exist_ok=True)
    images.to_parquet(os.path.join(dst, "images.parquet"))
    anns.to_parquet(os.path.join(dst, "annotations.parquet"))
"""

PANDAS_READ = """
import pandas as pd
def read(folder):
    return pd.read_parquet(folder + "/images.parquet"), pd.read_parquet(folder + "/annotations.parquet")
"""


def generate(path: Path, n_images: int, n_boxes: int, *, edit: bool = False, seed: int = 0) -> None:
    """A COCO file written in blocks (never a dict of every box at once); ``edit``: the second version."""
    rng = np.random.default_rng(seed)
    img = np.sort(rng.integers(0, n_images, n_boxes))
    x, y = rng.uniform(0, 560, n_boxes).round(2), rng.uniform(0, 400, n_boxes).round(2)
    w, h = rng.uniform(4, 80, n_boxes).round(2), rng.uniform(4, 80, n_boxes).round(2)
    cat = rng.integers(1, 21, n_boxes)
    ids = np.arange(1, n_boxes + 1)
    keep_images = n_images
    if edit:
        keep = np.ones(n_boxes, bool)
        keep[::100] = False
        x = np.where(np.arange(n_boxes) % 50 == 1, x + 1.0, x)
        extra = 5000
        img = np.r_[img[keep], np.arange(extra) % n_images]
        x, y, w, h = (np.r_[v[keep], np.full(extra, 10.0)] for v in (x, y, w, h))
        cat, ids = np.r_[cat[keep], np.full(extra, 3)], np.r_[ids[keep], 10_000_000 + np.arange(extra)]
        keep_images = n_images - n_images // 200
        inside = img < keep_images
        img, x, y, w, h, cat, ids = (v[inside] for v in (img, x, y, w, h, cat, ids))
    with open(path, "w") as f:
        f.write('{"images": [')
        f.write(",".join(f'{{"id": {i + 1}, "file_name": "img/{i:07d}.jpg", "width": 640, "height": 480}}'
                         for i in range(keep_images)))
        f.write('], "categories": [')
        f.write(",".join(f'{{"id": {c}, "name": "class{c}"}}' for c in range(1, 21)))
        f.write('], "annotations": [')
        for s in range(0, len(img), 100_000):
            f.write(("," if s else "") + ",".join(
                f'{{"id": {ids[k]}, "image_id": {img[k] + 1}, "category_id": {cat[k]}, "bbox": [{x[k]}, {y[k]}, '
                f'{w[k]}, {h[k]}], "area": {w[k] * h[k]:.2f}, "iscrowd": 0}}' for k in range(s, min(s + 100_000, len(img)))))
        f.write("]}")


def child(setup: str, run: str) -> dict[str, float]:
    code = HARNESS.replace("SETUP", setup).replace("RUN", run)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if res.returncode != 0 or "\n@@" not in res.stdout:
        raise RuntimeError(f"benchmark child failed:\n{res.stderr[-3000:]}")
    out: dict[str, float] = json.loads(res.stdout.rsplit("\n@@", 1)[1])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=200_000)
    ap.add_argument("--boxes", type=int, default=1_500_000)
    ap.add_argument("--scratch", type=Path, default=None, help="Folder for the generated files (default: a temp one).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="workspace_bench_", dir=args.scratch))
    try:
        rows = bench(scratch, args.images, args.boxes)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps({"images": args.images, "boxes": args.boxes, "operations": rows}, indent=1))
        return
    print(f"{args.images:,} images, {args.boxes:,} boxes: maslow / plain baseline (time, peak memory)")
    print(f"{'operation':<18} {'time':>7} {'memory':>7}  baseline")
    for r in rows:
        print(f"{r['operation']:<18} {r['time_ratio']:>6.2f}x {r['memory_ratio']:>6.2f}x  {r['baseline']}")


def bench(d: Path, n_images: int, n_boxes: int) -> list[dict[str, Any]]:
    v1, v2, ws = d / "big.json", d / "big2.json", d / "ws"
    generate(v1, n_images, n_boxes)
    generate(v2, n_images, n_boxes, edit=True)
    from maslow.store import init_workspace

    init_workspace(ws)
    cli = CLI.format(ws=str(ws))
    imp = ["import", str(v1), "--from", "coco", "--no-check-files", "--name", "big", "--json"]
    out: list[dict[str, Any]] = []

    def row(name: str, mine: dict[str, float], base: dict[str, float], what: str) -> None:
        out.append({"operation": name, "time_ratio": mine["seconds"] / max(base["seconds"], 1e-9),
                    "memory_ratio": mine["peak_mb"] / max(base["peak_mb"], 1e-9), "baseline": what,
                    "maslow": mine, "plain": base})

    pd1, pd2 = str(d / "pd1"), str(d / "pd2")
    base1 = child(PANDAS_IMPORT, f"run({str(v1)!r}, {pd1!r})")
    row("import", child(cli, f"run({imp!r})"), base1, "json.load + pandas + to_parquet")
    row("import unchanged", child(cli, f"run({imp!r})"), base1, "json.load + pandas + to_parquet")
    imp2 = [*imp[:1], str(v2), *imp[2:]]
    row("import version 2", child(cli, f"run({imp2!r})"), child(PANDAS_IMPORT, f"run({str(v2)!r}, {pd2!r})"),
        "json.load + pandas + to_parquet")
    records = "import glob, json\n"
    load = f"from maslow.store import Workspace\nws = Workspace({str(ws)!r})\n"
    row("log", child(load, "versions = ws.log('big')"),
        child(records, f"[json.load(open(p)) for p in glob.glob({str(ws)!r} + '/.maslow/versions/*/version.json')]"),
        "json.load of every version.json")
    row("load", child(load, "ds = ws.load('big')"), child(PANDAS_READ, f"t = read({pd2!r})"), "pd.read_parquet")
    merge = PANDAS_READ + """
def diff(a, b):
    (ia, aa), (ib, ab) = read(a), read(b)
    key = ["file_name", "category_id", "x", "y", "w", "h", "iscrowd"]
    aa = aa.merge(ia[["id", "file_name"]], left_on="image_id", right_on="id")[key]
    ab = ab.merge(ib[["id", "file_name"]], left_on="image_id", right_on="id")[key]
    m = aa.merge(ab, on=key, how="outer", indicator=True)
    return m["_merge"].value_counts(), set(ia.file_name) ^ set(ib.file_name)
"""
    row("diff", child(cli, "run(['diff', '--json'])"), child(merge, f"r = diff({pd1!r}, {pd2!r})"),
        "read both + outer merge")
    subset = load + "ds = ws.load('big')\nimport numpy as np\nval = np.arange(ds.n_images) % 5 == 0\n"
    pandas_subset = PANDAS_READ + f"im, an = read({pd2!r})\nval = im.index % 5 == 0\n"
    row("subset", child(subset, "s = ds.select_images(val)\ns = s.select(s.annotations.label == 3)"),
        child(pandas_subset, "i = im[val]\na = an[an.image_id.isin(i.id) & (an.category_id == 4)]"),
        "boolean filter + isin")
    row("stats", child(cli, "run(['stats', 'big', '--json'])"),
        child(PANDAS_READ, f"im, an = read({pd2!r})\na = an.category_id.value_counts()\n"
                           "b = an.image_id.value_counts().value_counts()"), "pd.read_parquet + value_counts")
    pandas_export = PANDAS_READ + "import json\n"
    dump = (f"im, an = read({pd2!r})\nan['bbox'] = an[['x', 'y', 'w', 'h']].values.tolist()\n"
            "d = {'images': im.to_dict('records'), 'annotations': an.drop(columns=['x', 'y', 'w', 'h'])"
            ".to_dict('records'), 'categories': [{'id': c, 'name': f'class{c}'} for c in range(1, 21)]}\n"
            f"json.dump(d, open({str(d / 'pd_out.json')!r}, 'w'))")
    row("export", child(cli, f"run(['export', 'big', {str(d / 'out.json')!r}, '--to', 'coco', '--json'])"),
        child(pandas_export, dump), "pd.read_parquet + to_dict + json.dump")
    return out


if __name__ == "__main__":
    main()
