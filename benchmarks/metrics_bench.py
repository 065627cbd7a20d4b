"""COCO evaluation benchmark: maslow against pycocotools and its faster peers, end to end, each in a fresh process.

Cases (generated, seeded; ``--scale`` shrinks them):

- ``bbox``: COCO val2017 scale: 5,000 images, 80 categories, ~36,000 truth boxes (1% crowd; ``area`` field
  smaller than the box, as a mask area is), up to 100 scored detections per image (jittered copies of truth,
  wrong classes, background boxes; scores on 3 decimals, so ties occur); ``--float32`` writes the detections'
  boxes and scores as a detector's float32 outputs dumped by json (17 significant digits) instead;
- ``segm``: 500 images, polygon truth (and uncompressed-RLE crowds), RLE detections;
- ``keypoints``: 1,000 images of people with 17 keypoints (some unlabelled), up to 20 detections each.

Each tool runs in its own subprocess: import, load both JSON files, evaluate, accumulate, summarise. The parent
reads the child's CPU seconds (user + system, all threads) and peak RSS from ``wait4``, and compares the 12
(10) stats and the full precision and recall arrays with pycocotools' (``exact`` = every cell bit-equal).
A peer that is not installed is skipped with a note. ``torchmetrics``
(``pip install torchmetrics``, needs torch) runs ``MeanAveragePrecision(box_format="xywh",
extended_summary=True)`` with one ``update`` per image (masks decoded per image for segm), its default backend;
it has no keypoints evaluation. ``--json`` prints the table as JSON. Columns: ``cpu_s``
(whole child process), ``wall_s``, ``rss_MB`` (the child's VmHWM), ``x_best_peer`` (cpu_s over the fastest
peer's), ``eval_s`` (maslow only: ``coco_map``/``coco_matches`` alone, after reading the files with
``maslow.io.read_coco`` and ``read_coco_predictions``). ``maslow-matches`` also builds the per-object table.
``--repeat N`` runs each fast tool (under 5 CPU-s) N times, in rounds (each tool once a round, so a busy spell
of the machine falls on all alike), and reports the median run (a shared 2-core machine varies by +-20% from run
to run). ``--blas-threads 1`` pins numpy's BLAS threads in every child alike (they spin at ``import numpy``; no tool
uses them), which takes about 0.1 CPU-s off every tool's run. The last note gives the floor: the CPU seconds of a
child that only starts Python, imports numpy and idles 0.3 s (its BLAS threads' spin included), a fixed cost inside
every row, beside half the fastest peer's time; ``x_own`` is a tool's CPU time above that floor over the fastest
peer's (the tools' own work compared).

    python benchmarks/metrics_bench.py [--scale 0.2] [--cases bbox,segm,keypoints] [--tools ...] [--repeat 5] [--float32]
        [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _child import run_child  # benchmarks/ is on sys.path: the scripts run from there

TOOLS = ("pycocotools", "maslow", "maslow-matches", "faster-coco-eval", "hotcoco", "ultrafast-pycocotools",
         "torchmetrics")
MODULE = {"pycocotools": "pycocotools", "maslow": "maslow", "maslow-matches": "maslow",
          "faster-coco-eval": "faster_coco_eval", "hotcoco": "hotcoco",
          "ultrafast-pycocotools": "ultrafast_pycocotools", "torchmetrics": "torchmetrics"}


# -- generated data ----------------------------------------------------------------------------------------

def _dump(obj: Any, path: Path) -> None:
    try:
        import orjson

        path.write_bytes(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY))
    except ImportError:
        path.write_text(json.dumps(obj))


def make_bbox(n_images: int, seed: int = 0, n_cats: int = 80, float32: bool = False
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    cat_ids = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)][:n_cats]
    cats = [{"id": c, "name": f"class{c}", "supercategory": "thing"} for c in cat_ids]
    freq = rng.dirichlet(np.full(n_cats, 0.6))
    images, anns, dets = [], [], []
    for i in range(n_images):
        w, h = int(rng.choice([640, 480, 500, 427])), int(rng.choice([480, 640, 375, 333]))
        img_id = int(rng.integers(1, 600_000) * 1000 + i)  # sparse ids, not sorted by position
        images.append({"id": img_id, "width": w, "height": h, "file_name": f"{img_id:012d}.jpg"})
        n_gt = int(rng.poisson(7.3))
        side = np.exp(rng.uniform(np.log(4), np.log(0.9 * min(w, h)), (n_gt, 2)))
        xy = rng.uniform(0, 1, (n_gt, 2)) * (np.array([w, h]) - side)
        cls = rng.choice(n_cats, n_gt, p=freq)
        crowd = rng.random(n_gt) < 0.01
        for j in range(n_gt):
            bb = [round(float(v), 2) for v in (*xy[j], *side[j])]
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat_ids[cls[j]], "bbox": bb,
                         "area": round(bb[2] * bb[3] * float(rng.uniform(0.45, 0.95)), 2),
                         "iscrowd": int(crowd[j]), "segmentation": []})
        n_dt = min(100, int(rng.integers(40, 160)))
        src = rng.integers(0, max(n_gt, 1), n_dt)
        jit = rng.normal(0, 0.12, (n_dt, 4))
        for j in range(n_dt):
            if n_gt and rng.random() < 0.5:
                x, y, bw, bh = xy[src[j], 0], xy[src[j], 1], side[src[j], 0], side[src[j], 1]
                x, y = x + jit[j, 0] * bw, y + jit[j, 1] * bh
                bw, bh = bw * np.exp(jit[j, 2]), bh * np.exp(jit[j, 3])
                c = cls[src[j]] if rng.random() < 0.8 else rng.choice(n_cats, p=freq)
                s = rng.beta(4, 2)
            else:
                bw, bh = np.exp(rng.uniform(np.log(4), np.log(0.9 * min(w, h)), 2))
                x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
                c = rng.choice(n_cats, p=freq)
                s = rng.beta(1.2, 5)
            if float32:  # as a detector's float32 outputs dumped by json: up to 17 significant digits
                box, score = [float(np.float32(v)) for v in (x, y, bw, bh)], float(np.float32(s))
            else:
                box, score = [round(float(v), 2) for v in (x, y, bw, bh)], round(float(s), 3)
            dets.append({"image_id": img_id, "category_id": cat_ids[c], "bbox": box, "score": score})
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}, dets


def _poly(rng: np.random.Generator, cx: float, cy: float, r: float, n: int) -> list[float]:
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.6, 1.0, n)
    return [round(float(v), 2) for v in np.stack([cx + rad * np.cos(t), cy + rad * np.sin(t)], 1).ravel()]


def make_segm(n_images: int, seed: int = 1, n_cats: int = 20) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    cats = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(n_cats)]
    images, anns, dets = [], [], []
    for i in range(n_images):
        w, h = 640, 480
        images.append({"id": i + 1, "width": w, "height": h, "file_name": f"{i + 1:012d}.jpg"})
        objs = []
        for _ in range(int(rng.poisson(7))):
            cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), float(np.exp(rng.uniform(np.log(3), np.log(150))))
            c = int(rng.integers(1, n_cats + 1))
            poly = _poly(rng, cx, cy, r, int(rng.integers(5, 16)))
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
                cx, cy, r = cx + rng.normal(0, r * 0.1), cy + rng.normal(0, r * 0.1), r * np.exp(rng.normal(0, 0.1))
            else:
                cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), float(np.exp(rng.uniform(np.log(3), np.log(150))))
                c = int(rng.integers(1, n_cats + 1))
            rle = mask_utils.merge(mask_utils.frPyObjects([_poly(rng, cx, cy, r, 10)], h, w))
            dets.append({"image_id": i + 1, "category_id": c, "score": round(float(rng.random()), 3),
                         "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}, dets


def make_keypoints(n_images: int, seed: int = 2) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    cats = [{"id": 1, "name": "person", "keypoints": [f"k{i}" for i in range(17)], "skeleton": []}]
    images, anns, dets = [], [], []
    for i in range(n_images):
        w, h = 640, 480
        images.append({"id": i + 1, "width": w, "height": h, "file_name": f"{i + 1:012d}.jpg"})
        people = []
        for _ in range(int(rng.poisson(3))):
            bw, bh = rng.uniform(10, 300), rng.uniform(20, 400)
            x, y = rng.uniform(0, w - min(bw, w - 1)), rng.uniform(0, h - min(bh, h - 1))
            kx, ky = np.round(rng.uniform(x, x + bw, 17), 2), np.round(rng.uniform(y, y + bh, 17), 2)
            v = rng.choice([0, 1, 2], 17, p=[0.3, 0.1, 0.6])
            if rng.random() < 0.15:
                v[:] = 0
            kx[v == 0], ky[v == 0] = 0, 0
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1,
                         "keypoints": np.stack([kx, ky, v], 1).ravel().tolist(), "num_keypoints": int((v > 0).sum()),
                         "bbox": [round(float(b), 2) for b in (x, y, bw, bh)],
                         "area": round(float(bw * bh * 0.6), 2), "iscrowd": int(rng.random() < 0.02)})
            people.append((kx, ky, bw + bh))
        for _ in range(int(rng.integers(0, 21))):
            if people and rng.random() < 0.7:
                kx, ky, s = people[int(rng.integers(len(people)))]
                dx, dy = kx + rng.normal(0, 0.03 * s, 17), ky + rng.normal(0, 0.03 * s, 17)
            else:
                dx, dy = rng.uniform(0, w, 17), rng.uniform(0, h, 17)
            dets.append({"image_id": i + 1, "category_id": 1, "score": round(float(rng.random()), 3),
                         "keypoints": np.stack([np.round(dx, 2), np.round(dy, 2), np.ones(17)], 1).ravel().tolist()})
    return {"info": {}, "images": images, "annotations": anns, "categories": cats}, dets


# -- child processes -----------------------------------------------------------------------------------------

_CHILD = r'''
import sys, time, json, numpy as np
tool, iou_type, gt_path, dt_path, out_path = sys.argv[1:6]
sys.path.insert(0, sys.argv[6])
t0 = time.perf_counter()
extra = {}
if tool in ("pycocotools", "faster-coco-eval", "hotcoco", "ultrafast-pycocotools"):
    import contextlib, io
    if tool == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    elif tool == "faster-coco-eval":
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as COCOeval
    elif tool == "hotcoco":
        from hotcoco import COCO, COCOeval
    else:
        from ultrafast_pycocotools import COCO, COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dt_path)
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate(); ev.accumulate(); ev.summarize()
    stats = np.asarray(ev.stats, dtype=np.float64)
    e = ev.eval
    precision, recall = np.asarray(e["precision"], np.float64), np.asarray(e["recall"], np.float64)
elif tool == "torchmetrics":
    import torch
    from pycocotools import mask as mask_utils
    from torchmetrics.detection import MeanAveragePrecision
    torch.set_num_threads(1)
    gt, dts = json.load(open(gt_path)), json.load(open(dt_path))
    by_img = {im["id"]: ([], []) for im in gt["images"]}
    for a in gt["annotations"]:
        by_img[a["image_id"]][0].append(a)
    for d in dts:
        by_img[d["image_id"]][1].append(d)
    hw = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    metric = MeanAveragePrecision(box_format="xywh", iou_type=iou_type, extended_summary=True)

    def masks(objs, h, w):
        segs = [o["segmentation"] for o in objs]
        rles = [mask_utils.merge(mask_utils.frPyObjects(s, h, w)) if isinstance(s, list) else
                mask_utils.frPyObjects(s, h, w) if isinstance(s.get("counts"), list) else s for s in segs]
        return torch.from_numpy(mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)) if rles else \
            torch.zeros((0, h, w), dtype=torch.bool)

    for img, (ts, ds) in by_img.items():
        h, w = hw[img]
        pred = {"scores": torch.tensor([d["score"] for d in ds], dtype=torch.float64),
                "labels": torch.tensor([d["category_id"] for d in ds], dtype=torch.int64)}
        target = {"labels": torch.tensor([a["category_id"] for a in ts], dtype=torch.int64),
                  "iscrowd": torch.tensor([a.get("iscrowd", 0) for a in ts], dtype=torch.int64),
                  "area": torch.tensor([a["area"] for a in ts], dtype=torch.float64)}
        if iou_type == "bbox":
            pred["boxes"] = torch.tensor([d["bbox"] for d in ds], dtype=torch.float64).reshape(-1, 4)
            target["boxes"] = torch.tensor([a["bbox"] for a in ts], dtype=torch.float64).reshape(-1, 4)
        else:
            pred["masks"], target["masks"] = masks(ds, h, w), masks(ts, h, w)
        metric.update([pred], [target])
    r = metric.compute()
    names = ["map", "map_50", "map_75", "map_small", "map_medium", "map_large",
             "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large"]
    stats = np.asarray([float(r[n]) for n in names], np.float64)
    precision, recall = r["precision"].double().numpy(), r["recall"].double().numpy()
else:
    from maslow.metrics import coco_map, coco_matches
    try:  # maslow's own readers, without importing this script (argparse, subprocess, ...) into the child
        from maslow.io.coco import read_coco
        from maslow.io.coco_results import read_coco_predictions
    except ImportError:
        from metrics_bench import load_maslow
        truth, pred = load_maslow(gt_path, dt_path, iou_type)
    else:
        truth = read_coco(gt_path)
        pred = read_coco_predictions(dt_path, like=truth)
    t1 = time.perf_counter()
    if tool == "maslow-matches":
        r = coco_matches(truth, pred, iou_type=iou_type).result
    else:
        r = coco_map(truth, pred, iou_type=iou_type)
    extra = {"load_s": t1 - t0, "eval_s": time.perf_counter() - t1}
    stats, precision, recall = r.stats, r.precision, r.recall
wall = time.perf_counter() - t0
np.savez(out_path, stats=stats, precision=precision, recall=recall)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]
rss = int(hwm[0].split()[1]) / 1024 if hwm else None
print(json.dumps({"wall_in_child": wall, "peak_rss_mb": rss, **extra}))
'''


def load_maslow(gt_path: str, dt_path: str, iou_type: str) -> Any:
    """maslow's COCO readers when they exist, else a minimal loader (orjson) building the same Datasets."""
    if importlib.util.find_spec("maslow.io.coco") is not None and importlib.util.find_spec("maslow.io.coco_results"):
        from maslow.io.coco import read_coco
        from maslow.io.coco_results import read_coco_predictions

        truth = read_coco(gt_path)
        return truth, read_coco_predictions(dt_path, like=truth)
    return _fallback_load(gt_path, dt_path, iou_type)


def _fallback_load(gt_path: str, dt_path: str, iou_type: str) -> Any:
    try:
        import orjson

        loads: Any = orjson.loads
    except ImportError:
        loads = json.loads
    import gc

    from pycocotools import mask as mask_utils

    from maslow.core.dataset import Dataset
    from maslow.core.schema import ClassDef, LabelSchema
    from maslow.core.tables import Annotations, Images

    gc.disable()  # JSON parsing builds millions of acyclic containers: the cyclic collector only slows it
    gt = loads(Path(gt_path).read_bytes())
    res = loads(Path(dt_path).read_bytes())
    cats = gt["categories"]
    schema = LabelSchema(classes=tuple(ClassDef(name=c["name"], id=c["id"]) for c in cats))
    ims = gt["images"]
    img_ids = np.asarray([im["id"] for im in ims], np.int64)
    id_order = np.argsort(img_ids)
    images = Images(path=np.asarray([im["file_name"] for im in ims], dtype=object),
                    width=np.asarray([im["width"] for im in ims]), height=np.asarray([im["height"] for im in ims]),
                    extra={"coco_id": img_ids})
    lab_of = np.full(max(c["id"] for c in cats) + 1, -1, np.int64)
    lab_of[[c["id"] for c in cats]] = np.arange(len(cats))

    def rows(anns: list[dict[str, Any]], truth: bool) -> Annotations:
        n = len(anns)
        iid = np.fromiter((a["image_id"] for a in anns), np.int64, n)
        image = id_order[np.searchsorted(img_ids[id_order], iid)]
        label = lab_of[np.fromiter((a["category_id"] for a in anns), np.int64, n)]
        cols: dict[str, Any] = {"image": image, "label": label, "extra": {}}
        if n and "bbox" in anns[0]:
            bb = np.asarray([a["bbox"] for a in anns], np.float64).reshape(n, 4)
            cols["box"] = np.concatenate([bb[:, :2], bb[:, :2] + bb[:, 2:]], 1)
            cols["extra"]["coco_bbox"] = bb
        if truth:
            cols["extra"]["area"] = np.fromiter((a["area"] for a in anns), np.float64, n)
            cols["extra"]["coco_id"] = np.fromiter((a["id"] for a in anns), np.int64, n)
            cols["iscrowd"] = np.fromiter((a.get("iscrowd", 0) for a in anns), bool, n)
        else:
            cols["score"] = np.fromiter((a["score"] for a in anns), np.float64, n)
            cols["source"] = "model"
        if iou_type == "segm":
            poly = np.empty(n, dtype=object)
            mask = np.empty(n, dtype=object)
            for i, a in enumerate(anns):
                s = a["segmentation"]
                if isinstance(s, list):
                    poly[i] = [np.asarray(p, np.float64) for p in s]
                elif isinstance(s["counts"], list):
                    mask[i] = mask_utils.frPyObjects(s, *s["size"])
                else:
                    mask[i] = {"size": s["size"], "counts": s["counts"].encode()}
            cols["polygon"], cols["mask"] = poly, mask
        if iou_type == "keypoints":
            cols["keypoints"] = np.asarray([a["keypoints"] for a in anns], np.float64).reshape(n, -1, 3)
            if truth:
                cols["extra"]["num_keypoints"] = np.fromiter((a["num_keypoints"] for a in anns), np.float64, n)
        return Annotations.sort_rows(**cols)

    truth = Dataset(schema=schema, images=images, annotations=rows(gt["annotations"], True))
    pred = Dataset(schema=schema, images=images, annotations=rows(res, False))
    del gt, res
    gc.enable()
    return truth, pred


def _child_env(blas_threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if blas_threads is not None:  # the same for every tool: numpy's BLAS threads spin at import, none is used here
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(blas_threads)
    return env


def run_tool(tool: str, iou_type: str, gt: Path, dt: Path, out: Path, blas_threads: int | None = None) -> dict[str, Any]:
    env = _child_env(blas_threads)
    c = run_child(_CHILD, [tool, iou_type, str(gt), str(dt), str(out), str(Path(__file__).resolve().parent)], env=env)
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    info = json.loads(c.stdout.strip().splitlines()[-1])
    # peak RSS: the child's own high-water mark (VmHWM); ru_maxrss would count the parent it was forked from
    info["peak_rss_mb"] = info.get("peak_rss_mb") or c.max_rss_mb
    return {"tool": tool, "cpu_s": c.cpu_s, "wall_s": c.wall_s, **info}


# x_own needs the fastest peer's own work (its CPU time above the floor) to stand above the run-to-run noise
# (single runs vary by up to 0.1 CPU-s): below this the ratio was noise over noise (82x for pycocotools on keypoints)
MIN_OWN_CPU_S = 0.05


def floor_cpu(repeat: int, blas_threads: int | None = None) -> float:
    """Median CPU seconds of a child that starts Python and imports numpy, as every tool's child does first, then
    idles 0.3 s and exits: the fixed cost inside every row. numpy's BLAS threads spin for ~0.1 s of wall time after
    the import, whatever the main thread does, so every child that lives that long pays it whole."""
    env = _child_env(blas_threads)
    runs = []
    for _ in range(max(1, repeat)):
        code = "import sys, time, json, numpy as np; time.sleep(0.3)"
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        _, _, usage = os.wait4(proc.pid, 0)
        runs.append(usage.ru_utime + usage.ru_stime)
    return sorted(runs)[len(runs) // 2]


def compare(ref: Path, other: Path) -> dict[str, Any]:
    a, b = np.load(ref), np.load(other)
    out: dict[str, Any] = {}
    exact = True
    for name in ("stats", "precision", "recall"):
        x, y = a[name], b[name]
        if x.shape != y.shape:
            out[f"{name}_max_diff"] = out[f"{name}_cells_off"] = None
            exact = False
            continue
        diff = np.abs(x - y)
        out[f"{name}_max_diff"] = float(diff.max()) if diff.size else 0.0
        out[f"{name}_cells_off"] = int((x != y).sum())
        exact &= bool(np.array_equal(x, y))
    out["exact"] = exact
    return out


def agreement(row: dict[str, Any], ref: str | None) -> str:
    """How a benchmark row's arrays (``compare``'s keys in it) agree with the reference tool's, in words."""
    if row["tool"] == ref:
        return "reference"
    if "exact" not in row:
        return "not compared"
    if row["exact"]:
        return f"bit-exact with {ref}"
    return (f"vs {ref}: stats off {row['stats_max_diff']:.1e} ({row['stats_cells_off']} of 12), recall cells off "
            f"{row['recall_cells_off']}, precision cells off {row['precision_cells_off']} "
            f"(max {row['precision_max_diff']:.1e})")


def _compile_maslow() -> None:
    """Byte-compile maslow as ``pip install`` does for the peers' wheels: an editable install under
    PYTHONDONTWRITEBYTECODE=1 would otherwise compile every module from source in every child."""
    import compileall

    spec = importlib.util.find_spec("maslow")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the image counts (default 1.0)")
    ap.add_argument("--cases", default="bbox,segm,keypoints")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--keep", type=Path, default=None, help="write the generated files here and keep them")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each tool that needs under 5 CPU-s this many times and report the median run")
    ap.add_argument("--float32", action="store_true",
                    help="bbox: write the detections' boxes and scores as float32 values in full (17 significant "
                         "digits, as a detector's outputs dumped by json), not rounded to 2 and 3 decimals")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="set OPENBLAS/OMP/MKL_NUM_THREADS in every child (default: the environment's); numpy's "
                         "BLAS threads spin for ~0.05 CPU-s at import in every tool, and no tool uses them")
    args = ap.parse_args(argv)
    makers: dict[str, tuple[Any, int]] = {
        "bbox": ((lambda n: make_bbox(n, float32=True)) if args.float32 else make_bbox, 5000),
        "segm": (make_segm, 500), "keypoints": (make_keypoints, 1000)}
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    targets: dict[str, float] = {}  # case -> half the fastest peer's CPU seconds
    tools = [t for t in args.tools.split(",") if t]
    for t in tools:
        if t not in MODULE:
            notes.append(f"{t}: unknown tool (known: {', '.join(TOOLS)}), skipped")
        elif importlib.util.find_spec(MODULE[t]) is None:
            notes.append(f"{t}: not installed (pip install {t}), skipped")
    tools = [t for t in tools if t in MODULE and importlib.util.find_spec(MODULE[t]) is not None]
    _compile_maslow()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = args.keep or Path(tmp_s)
        tmp.mkdir(parents=True, exist_ok=True)
        for case in args.cases.split(","):
            make, n = makers[case]
            gt, dt = make(max(1, round(n * args.scale)))
            gt_path, dt_path = tmp / f"{case}_gt.json", tmp / f"{case}_dt.json"
            _dump(gt, gt_path)
            _dump(dt, dt_path)
            size = {"images": len(gt["images"]), "truth": len(gt["annotations"]), "predictions": len(dt),
                    "dt_mb": round(dt_path.stat().st_size / 2**20, 1)}
            del gt, dt
            runs: dict[str, list[dict[str, Any]]] = {}
            for t in tools:
                if t == "torchmetrics" and case == "keypoints":
                    notes.append("torchmetrics: MeanAveragePrecision has no keypoints (OKS) evaluation")
                    continue
                runs[t] = [run_tool(t, case, gt_path, dt_path, tmp / f"{case}_{t}.npz", args.blas_threads)]
            fast = [t for t, rs in runs.items() if "error" not in rs[0] and rs[0]["cpu_s"] < 5]
            for _ in range(args.repeat - 1):  # noise matters for the fast tools: rounds, each tool once a round,
                for t in fast:  # so a busy spell of the shared machine falls on all of them alike
                    runs[t].append(run_tool(t, case, gt_path, dt_path, tmp / f"{case}_{t}.npz", args.blas_threads))
            ref = tmp / f"{case}_pycocotools.npz" if "error" not in runs.get("pycocotools", [{"error": ""}])[0] \
                else None
            case_rows = []
            for t, rs in runs.items():
                ok_runs = sorted((x for x in rs if "error" not in x), key=lambda x: x["cpu_s"])
                r = ok_runs[len(ok_runs) // 2] if ok_runs else rs[0]  # the median run (its own wall, memory, eval)
                if len(rs) > 1:
                    r["runs"] = len(ok_runs)
                r.update(case=case, **size)
                if "error" not in r and t != "pycocotools" and ref is not None:
                    r.update(compare(ref, tmp / f"{case}_{t}.npz"))
                case_rows.append(r)
            ok = [r for r in case_rows if "cpu_s" in r]
            peers = [r["cpu_s"] for r in ok if not r["tool"].startswith("maslow")]
            best = min(peers) if peers else None
            for r in ok:
                r["x_fastest_peer"] = None if best is None else round(r["cpu_s"] / best, 2)
            rows += case_rows
            if best is not None:
                targets[case] = best / 2
    floor = floor_cpu(max(args.repeat, 3), args.blas_threads)
    too_small = []
    for r in rows:  # each tool's own work: its CPU time above the floor, over the fastest peer's
        best = 2 * targets[r["case"]] if "cpu_s" in r and r["case"] in targets else None
        if best is not None and best - floor < MIN_OWN_CPU_S:  # a ratio of noise over noise: left blank
            too_small += [r["case"]] if r["case"] not in too_small else []
            best = None
        r["x_own"] = round((r["cpu_s"] - floor) / (best - floor), 2) if best is not None else None
    halves = ", ".join(f"{t:.2f} ({c})" for c, t in targets.items()) or "unknown (no peer ran)"
    notes.append(f"floor: a child that only starts Python, imports numpy and idles (what every child does first) "
                 f"needs {floor:.2f} CPU-s; half the fastest peer is {halves}. x_own: (cpu_s - floor) over the "
                 f"fastest peer's")
    if too_small:
        notes.append(f"x_own left blank for {', '.join(too_small)}: the fastest peer's own work is under "
                     f"{MIN_OWN_CPU_S} CPU-s above the floor, less than single runs vary (use a larger --scale)")
    if args.json:
        print(json.dumps({"rows": rows, "notes": notes, "floor_cpu_s": floor, "half_fastest_peer": targets},
                         indent=1))
        return 0
    head = (f"{'case':<10}{'tool':<23}{'cpu_s':>8}{'wall_s':>8}{'rss_MB':>8}{'x_best_peer':>12}{'x_own':>7}"
            f"{'eval_s':>8}  agreement")
    print(head)
    for r in rows:
        if "error" in r:
            print(f"{r['case']:<10}{r['tool']:<23}  error: {r['error']}")
            continue
        agree = "reference" if r["tool"] == "pycocotools" else "not compared (pycocotools not run)" if (
            "exact" not in r) else (
            "bit-exact" if r.get("exact") else
            f"stats off {r.get('stats_max_diff')}, precision cells off {r.get('precision_cells_off')}")
        ev = f"{r['eval_s']:>8.2f}" if "eval_s" in r else f"{'':>8}"
        own = f"{r['x_own']:>7.2f}" if r.get("x_own") is not None else f"{'':>7}"
        print(f"{r['case']:<10}{r['tool']:<23}{r['cpu_s']:>8.2f}{r['wall_s']:>8.2f}{r['peak_rss_mb']:>8.0f}"
              f"{r['x_fastest_peer'] or 0:>12.2f}{own}{ev}  {agree}")
    for n in notes:
        print("note:", n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
