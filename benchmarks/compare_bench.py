"""Model comparison benchmark: maslow's ``compare_models`` against ``hotcoco.compare``, 1000 paired bootstrap
replicates each, on generated data at COCO val2017 scale; each tool in a fresh process.

Data (seeded; ``--scale`` shrinks it): the truth and model A's detections of ``metrics_bench.make_bbox`` (5,000
images, 80 classes, ~36,500 truth boxes, up to 100 detections per image: ~423,000), and model B: A's detections with
a fifth dropped, the boxes moved by a little and the scores redrawn near A's (on 3 decimals, so ties occur), which
makes B a little worse, by an amount the bootstrap has to resolve.

Each tool runs in its own subprocess: import, read the truth and both results files, evaluate both models, then the
comparison with ``--replicates`` replicates (seed 0, 95%). The parent reads the child's CPU seconds (user + system,
all threads) and peak RSS from ``wait4``. Columns: ``wall_s`` and ``cpu_s`` of the whole child, ``compare_s`` (the
comparison call alone, after both evaluations), ``rss_MB``, and ``x_maslow`` (cpu_s and wall_s over maslow's).
hotcoco runs with its default thread pool (rayon: every core) and, as ``hotcoco-1thread``, with
``RAYON_NUM_THREADS=1``. ``maslow-naive`` times ``coco_map`` on the resampled datasets for ``--naive`` replicates
(the definition the fast path reproduces bit for bit) and extrapolates to ``--replicates``.

The intervals are then set side by side, stat by stat: maslow's bootstrap (an image drawn twice counts twice) and
hotcoco's subsample (the distinct images of each draw, ~63% of them), which is narrower by design; ``width_ratio`` is
hotcoco's interval width over maslow's. The point deltas must agree to 1e-9.

    python benchmarks/compare_bench.py [--scale 0.2] [--replicates 1000] [--naive 10] [--tools maslow,hotcoco,...]
        [--json]

``--task classification|multilabel|semantic`` times ``compare_labels`` instead, against ``maslow-naive`` (the metric
function, ``classification_scores``, ``multilabel_scores`` or ``semantic_scores``, on both models' resampled
datasets for ``--naive`` replicates, extrapolated: the definition the fast path reproduces bit for bit, checked on
those replicates). The data is built in each child from the seed (not timed): ``classification`` 10,000 images of
100 classes, both models with probabilities (top-1 and top-5 accuracy compared); ``multilabel`` 10,000 images with 20
tags, scored; ``semantic`` 500 label maps of 512x512 with 21 classes (background and one to four objects per image,
a void border around each object), model A's maps moved by up to 6 pixels with a wrong-class object now and then,
model B's by up to 3. ``compare_s`` is the comparison call (for maslow: both models' per-image counts, then the
replicates; ``counts_s``: the same call without replicates; scipy.stats, which it imports once for McNemar's test,
is imported before the clock starts).

    python benchmarks/compare_bench.py --task semantic [--scale 0.2] [--replicates 1000] [--naive 3]
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
from _child import run_child  # benchmarks/ is on sys.path: the scripts run from there

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics_bench import _dump, make_bbox

TOOLS = ("maslow", "hotcoco", "hotcoco-1thread", "maslow-naive")
LABEL_TASKS = ("classification", "multilabel", "semantic")
#: maslow's stat names -> hotcoco's metric keys
NAMES = {"map_50_95": "AP", "map_50": "AP50", "map_75": "AP75", "map_small": "APs", "map_medium": "APm",
         "map_large": "APl", "mar_1": "AR1", "mar_10": "AR10", "mar_100": "AR100", "mar_small": "ARs",
         "mar_medium": "ARm", "mar_large": "ARl"}


def make_model_b(dets: list[dict[str, Any]], seed: int = 1) -> list[dict[str, Any]]:
    """A's detections, a fifth dropped, boxes moved by ~3% of their size, scores redrawn near A's."""
    rng = np.random.default_rng(seed)
    keep = rng.random(len(dets)) > 0.2
    jit = rng.normal(0, 0.03, (len(dets), 4))
    noise = rng.normal(0, 0.08, len(dets))
    out = []
    for j in np.flatnonzero(keep).tolist():
        d = dets[j]
        x, y, w, h = d["bbox"]
        box = [round(x + jit[j, 0] * w, 2), round(y + jit[j, 1] * h, 2), round(w * float(np.exp(jit[j, 2])), 2),
               round(h * float(np.exp(jit[j, 3])), 2)]
        score = round(float(np.clip(d["score"] + noise[j], 0.001, 1.0)), 3)
        out.append({"image_id": d["image_id"], "category_id": d["category_id"], "bbox": box, "score": score})
    return out


_CHILD = r"""
import json, sys, time
tool, gt, a, b, n, naive, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
t0 = time.perf_counter()
res = {}
if tool in ("maslow", "maslow-naive"):
    import warnings
    warnings.simplefilter("ignore")  # the generated boxes that end past their image are reported, not refused
    import numpy as np
    from maslow import io
    from maslow.metrics.compare import compare_models
    truth = io.read_coco(gt)
    pa, pb = io.read_coco_predictions(a, like=truth), io.read_coco_predictions(b, like=truth)
    t1 = time.perf_counter()
    if tool == "maslow":
        c = compare_models(truth, pa, pb, n_bootstrap=n, seed=0)
        res["compare_s"] = time.perf_counter() - t1
        res["ci"] = {s: [float(c.lower[i]), float(c.upper[i])] for i, s in enumerate(c.stat_names)}
        res["delta"] = {s: float(c.delta[i]) for i, s in enumerate(c.stat_names)}
    else:
        from maslow.metrics.coco import coco_map
        gen = np.random.default_rng(0)
        for _ in range(naive):
            idx = np.sort(gen.integers(0, truth.n_images, truth.n_images))
            t = truth.select_images(idx)
            coco_map(t, pa.select_images(idx)); coco_map(t, pb.select_images(idx))
        res["compare_s"] = (time.perf_counter() - t1) / max(naive, 1) * n
        res["extrapolated_from"] = naive
else:
    import hotcoco
    coco = hotcoco.COCO(gt)
    evs = []
    for path in (a, b):
        ev = hotcoco.COCOeval(coco, coco.load_res(path), "bbox")
        ev.evaluate()
        evs.append(ev)
    t1 = time.perf_counter()
    r = hotcoco.compare(evs[0], evs[1], n_bootstrap=n, seed=0, confidence=0.95)
    res["compare_s"] = time.perf_counter() - t1
    res["ci"] = {k: [v["lower"], v["upper"]] for k, v in (r["ci"] or {}).items()}
    res["delta"] = dict(r["deltas"])
res["load_eval_s"] = t1 - t0
with open("/proc/self/status") as f:
    res["peak_rss_mb"] = next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
json.dump(res, open(out, "w"))
"""


def make_classification(n: int, seed: int = 0, n_classes: int = 100) -> tuple[Any, Any, Any]:
    """Truth and two classifiers with probabilities (B a little better than A)."""
    from maslow.core.dataset import Dataset
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Annotations, Images

    rng = np.random.default_rng(seed)
    images = Images(path=np.array([f"img_{i:06d}.jpg" for i in range(n)], object), width=[224] * n, height=[224] * n)
    y = rng.integers(0, n_classes, n)
    truth = Dataset(LabelSchema.from_names([f"class_{k}" for k in range(n_classes)], task="classification"),
                    images, Annotations(image=np.arange(n), label=y))

    def model(s: int, skill: float) -> Any:
        r = np.random.default_rng(s)
        probs = r.dirichlet(np.full(n_classes, 0.3), n)
        probs[np.arange(n), y] += skill * r.random(n)
        probs /= probs.sum(axis=1, keepdims=True)
        return truth.replace(annotations=Annotations(image=np.arange(n), label=probs.argmax(axis=1),
                                                     score=probs.max(axis=1), extra={"probs": probs}))

    return truth, model(seed + 1, 0.5), model(seed + 2, 0.55)


def make_multilabel(n: int, seed: int = 0, n_tags: int = 20) -> tuple[Any, Any, Any]:
    """Tags (about 3 per image) and two scored taggers (B's scores less noisy)."""
    from maslow.core.dataset import Dataset
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Annotations, Images

    rng = np.random.default_rng(seed)
    images = Images(path=np.array([f"img_{i:06d}.jpg" for i in range(n)], object), width=[224] * n, height=[224] * n)
    has = rng.random((n, n_tags)) < 0.15
    img, lab = np.nonzero(has)
    schema = LabelSchema.from_names([f"tag_{k}" for k in range(n_tags)], task="multilabel")
    truth = Dataset(schema, images, Annotations(image=img, label=lab))

    def model(s: int, noise: float) -> Any:
        r = np.random.default_rng(s)
        score = np.clip(0.2 + 0.6 * has + r.normal(0, noise, has.shape), 0, 1)
        i, k = np.nonzero(score > 0.2)
        return Dataset(schema, images, Annotations(image=i, label=k, score=np.round(score[i, k], 3)))

    return truth, model(seed + 1, 0.25), model(seed + 2, 0.22)


def make_semantic(n: int, seed: int = 0, size: int = 512, n_classes: int = 21) -> tuple[Any, Any, Any]:
    """Label maps: background (0) and 1-4 objects (ellipses of classes 1..20) with a 3-pixel void border (255,
    a crowd region); model A's maps moved by up to 6 pixels, a wrong-class object now and then; B's by up to 3."""
    from maslow.core import masks as M
    from maslow.core.dataset import Dataset
    from maslow.core.schema import ClassDef, LabelSchema, Task
    from maslow.core.tables import Annotations, Images
    from maslow.core.types import obj_array

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    maps = []
    for _ in range(n):
        m = np.zeros((size, size), np.uint8)
        for _ in range(int(rng.integers(1, 5))):
            cy, cx = rng.uniform(0.15, 0.85, 2) * size
            ry, rx = rng.uniform(0.05, 0.25, 2) * size
            d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
            m[d <= 1.15] = 255
            m[d <= 1] = rng.integers(1, n_classes)
        maps.append(m)
    names = ["background", *(f"class_{k}" for k in range(1, n_classes)), "void"]
    ids = [*range(n_classes), 255]
    schema = LabelSchema(tuple(ClassDef(nm, kind="semantic", id=i) for nm, i in zip(names, ids, strict=True)),
                         tasks=(Task.SEMANTIC_SEGMENTATION,))
    images = Images(path=obj_array([f"img_{i:04d}.png" for i in range(n)]), width=[size] * n, height=[size] * n)
    pos = {v: k for k, v in enumerate(ids)}

    def dataset(label_maps: list[np.ndarray]) -> Any:
        rows = [(i, pos[v], M.encode(m == v), v == 255) for i, m in enumerate(label_maps) for v in np.unique(m).tolist()]
        return Dataset(schema, images, Annotations(image=[r[0] for r in rows], label=[r[1] for r in rows],
                                                   mask=obj_array([r[2] for r in rows]), iscrowd=[r[3] for r in rows]))

    def model(s: int, shift: int, swap: float) -> Any:
        r = np.random.default_rng(s)
        out = []
        for m in maps:
            p = np.roll(np.where(m == 255, 0, m), tuple(r.integers(-shift, shift + 1, 2)), axis=(0, 1))
            for v in np.unique(p)[1:].tolist():
                if r.random() < swap:
                    p[p == v] = r.integers(1, n_classes)
            out.append(p)
        return dataset(out)

    return dataset(maps), model(seed + 1, 6, 0.15), model(seed + 2, 3, 0.1)


_LABEL_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[8])
import numpy as np
from compare_bench import make_classification, make_multilabel, make_semantic
tool, task, scale, n, naive, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
size = {"classification": 10000, "multilabel": 10000, "semantic": 500}[task]
make = {"classification": make_classification, "multilabel": make_multilabel, "semantic": make_semantic}[task]
t0 = time.perf_counter()
truth, a, b = make(max(10, round(size * scale)))
res = {"n_images": truth.n_images, "build_s": time.perf_counter() - t0}
from maslow.metrics.compare import compare_labels
from maslow.metrics import classification_scores, multilabel_scores, semantic_scores
import scipy.stats  # imported once by compare_labels (McNemar's test): not timed
metric = {"classification": classification_scores, "multilabel": multilabel_scores, "semantic": semantic_scores}[task]
t1 = time.perf_counter()
if tool == "maslow":
    compare_labels(truth, a, b, n_bootstrap=0)
    res["counts_s"] = time.perf_counter() - t1  # both models' scores and per-image counts, no replicate
    t1 = time.perf_counter()
    c = compare_labels(truth, a, b, n_bootstrap=n, seed=0)
    res["compare_s"] = time.perf_counter() - t1
    res["delta"] = {s: float(c.delta[i]) for i, s in enumerate(c.stat_names)}
    res["ci"] = {s: [float(c.lower[i]), float(c.upper[i])] for i, s in enumerate(c.stat_names)}
    check = compare_labels(truth, a, b, n_bootstrap=min(naive, n), seed=0)
    gen = np.random.default_rng(0)
    same = True
    for r in range(min(naive, n)):  # the replicates equal the metric function on the resampled datasets
        idx = np.sort(gen.integers(0, truth.n_images, truth.n_images))
        t = truth.select_images(idx)
        ra, rb = metric(t, a.select_images(idx)), metric(t, b.select_images(idx))
        head = c.stat_names[0]
        same &= bool(check.samples[r, 0] == getattr(rb, head) - getattr(ra, head))
    res["exact"] = same
else:
    gen = np.random.default_rng(0)
    for _ in range(naive):
        idx = np.sort(gen.integers(0, truth.n_images, truth.n_images))
        t = truth.select_images(idx)
        metric(t, a.select_images(idx)); metric(t, b.select_images(idx))
    res["compare_s"] = (time.perf_counter() - t1) / max(naive, 1) * n
    res["extrapolated_from"] = naive
with open("/proc/self/status") as f:
    res["peak_rss_mb"] = next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
json.dump(res, open(out, "w"))
"""


def run_label_tool(tool: str, task: str, scale: float, n: int, naive: int, folder: Path) -> dict[str, Any]:
    out = folder / f"{tool}.json"
    c = run_child(_LABEL_CHILD, [tool, task, str(scale), str(n), str(naive), str(out), "",
                                 str(Path(__file__).resolve().parent)])
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    return {"tool": tool, "wall_s": c.wall_s, "cpu_s": c.cpu_s, **json.loads(out.read_text())}


def main_labels(args: argparse.Namespace) -> int:
    tools = [t for t in args.tools.split(",") if t in ("maslow", "maslow-naive")] or ["maslow", "maslow-naive"]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_label_tool(t, args.task, args.scale, args.replicates, args.naive, Path(tmp)) for t in tools]
    ok = {r["tool"]: r for r in rows if "error" not in r}
    if "maslow" in ok and "maslow-naive" in ok:
        ok["maslow-naive"]["x_maslow"] = ok["maslow-naive"]["compare_s"] / ok["maslow"]["compare_s"]
    if args.json:
        print(json.dumps({"task": args.task, "replicates": args.replicates, "tools": rows}, indent=2))
        return 0
    first = next(iter(ok.values()), {})
    print(f"{args.task}: {first.get('n_images', '?')} images; {args.replicates} replicates (naive: {args.naive} "
          "timed, extrapolated)")
    print(f"{'tool':<14}{'compare_s':>11}{'counts_s':>10}{'x_maslow':>10}{'rss_MB':>9}  exact")
    for r in rows:
        if "error" in r:
            print(f"{r['tool']:<14}  {r['error']}")
            continue
        counts = f"{r['counts_s']:>10.2f}" if "counts_s" in r else f"{'':>10}"
        print(f"{r['tool']:<14}{r['compare_s']:>11.2f}{counts}{r.get('x_maslow', 1.0):>10.1f}{r['peak_rss_mb']:>9.0f}  "
              f"{r.get('exact', '')}")
    if "maslow" in ok:
        i = next(iter(ok["maslow"]["delta"]))
        lo, hi = ok["maslow"]["ci"][i]
        print(f"{i}: B - A {ok['maslow']['delta'][i]:+.4f}, 95% interval [{lo:+.4f}, {hi:+.4f}]")
    return 0


def run_tool(tool: str, gt: Path, a: Path, b: Path, n: int, naive: int, folder: Path) -> dict[str, Any]:
    env = dict(os.environ)
    if tool == "hotcoco-1thread":
        env["RAYON_NUM_THREADS"] = "1"
    out = folder / f"{tool}.json"
    c = run_child(_CHILD, [tool.removesuffix("-1thread"), str(gt), str(a), str(b), str(n), str(naive), str(out)],
                  env=env)
    if c.error is not None:
        return {"tool": tool, "error": c.error}
    info = json.loads(out.read_text())
    cpu, wall = c.cpu_s, c.wall_s
    if tool == "maslow-naive":  # the comparison extrapolated: the reading and evaluating part as measured
        cpu = wall = info["load_eval_s"] + info["compare_s"]
    return {"tool": tool, "wall_s": wall, "cpu_s": cpu, **info}


def agreement(m: dict[str, Any], h: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s, key in NAMES.items():
        lo_m, hi_m = m["ci"][s]
        lo_h, hi_h = h["ci"].get(key, [float("nan")] * 2)
        wm, wh = hi_m - lo_m, hi_h - lo_h
        rows.append({"stat": s, "delta": m["delta"][s], "delta_hotcoco": h["delta"].get(key), "maslow": [lo_m, hi_m],
                     "hotcoco": [lo_h, hi_h], "width_ratio": wh / wm if wm > 0 else float("nan"),
                     "same_sign_flag": (lo_m > 0 or hi_m < 0) == (lo_h > 0 or hi_h < 0)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of COCO val2017's 5,000 images")
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--naive", type=int, default=10, help="replicates timed for maslow-naive (extrapolated)")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--task", default="coco", choices=("coco", *LABEL_TASKS),
                    help="coco (compare_models against hotcoco) or a compare_labels task")
    args = ap.parse_args(argv)
    if args.task != "coco":
        return main_labels(args)
    tools = [t for t in args.tools.split(",") if t]
    n_images = max(10, round(5000 * args.scale))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        gt, dets = make_bbox(n_images, seed=0)
        _dump(gt, d / "gt.json")
        _dump(dets, d / "a.json")
        _dump(make_model_b(dets), d / "b.json")
        head = {"n_images": n_images, "n_truth": len(gt["annotations"]), "n_dets_a": len(dets),
                "replicates": args.replicates}
        del gt, dets
        rows = []
        for tool in tools:
            if tool.startswith("hotcoco") and not _has("hotcoco"):
                rows.append({"tool": tool, "error": "not installed (pip install hotcoco)"})
                continue
            rows.append(run_tool(tool, d / "gt.json", d / "a.json", d / "b.json", args.replicates, args.naive, d))
    ok = {r["tool"]: r for r in rows if "error" not in r}
    base = ok.get("maslow")
    for r in rows:
        if base is not None and "error" not in r:
            r["x_maslow_cpu"] = r["cpu_s"] / base["cpu_s"]
            r["x_maslow_wall"] = r["wall_s"] / base["wall_s"]
    agree = agreement(base, ok["hotcoco"]) if base is not None and "hotcoco" in ok else []
    if args.json:
        print(json.dumps({**head, "tools": rows, "intervals": agree}, indent=2))
        return 0
    print(f"{head['n_images']} images, {head['n_truth']} truth boxes, {head['n_dets_a']} detections (model A); "
          f"{head['replicates']} replicates")
    print(f"{'tool':<16}{'wall_s':>9}{'cpu_s':>9}{'compare_s':>11}{'rss_MB':>9}{'x_maslow_cpu':>14}{'x_maslow_wall':>15}")
    for r in rows:
        if "error" in r:
            print(f"{r['tool']:<16}  {r['error']}")
            continue
        print(f"{r['tool']:<16}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['compare_s']:>11.1f}{r['peak_rss_mb']:>9.0f}"
              f"{r.get('x_maslow_cpu', float('nan')):>14.2f}{r.get('x_maslow_wall', float('nan')):>15.2f}")
    if agree:
        print("\n95% intervals of B - A (maslow: bootstrap; hotcoco: subsample of distinct images)")
        print(f"{'stat':<12}{'delta':>10}{'maslow':>24}{'hotcoco':>24}{'width_ratio':>13}  same flag")
        for r in agree:
            m, h = r["maslow"], r["hotcoco"]
            print(f"{r['stat']:<12}{r['delta']:>+10.4f}   [{m[0]:+.4f}, {m[1]:+.4f}]   [{h[0]:+.4f}, {h[1]:+.4f}]"
                  f"{r['width_ratio']:>13.2f}  {'yes' if r['same_sign_flag'] else 'NO'}")
        bad = [r["stat"] for r in agree if r["delta_hotcoco"] is None or abs(r["delta"] - r["delta_hotcoco"]) > 1e-9]
        print("point deltas equal to 1e-9:", "yes" if not bad else f"NO ({', '.join(bad)})")
    return 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    raise SystemExit(main())
