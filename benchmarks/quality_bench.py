"""Rule-check benchmark: ``maslow.quality.check`` on a generated dataset of 1,000,000 annotations.

The dataset (seeded): 100,000 images of 640 x 480, 10 annotations per image on average (Poisson), 20 classes
with their own size distributions, boxes plus two attributes, image metadata (``site``, ``camera``), and
planted problems (0.1% zero-area, 0.1% out of bounds, 0.1% duplicates, a few images with 300 boxes). A second,
part of 33,334 images (``--agreement-images``) is labelled by three annotators (1,000,000 annotations) for the agreement family.
Prints the seconds per check family and the issue counts; ``--json`` prints them as JSON.

    python benchmarks/quality_bench.py [--n-annotations 1000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.quality import CHECKS, CheckConfig, QualityIssues


def make(n_annotations: int, seed: int = 0, n_classes: int = 20) -> Dataset:
    rng = np.random.default_rng(seed)
    m = max(n_annotations // 10, 1)
    per = rng.poisson(10, m)
    per[rng.choice(m, 5, replace=False)] = 300  # dense images
    image = np.repeat(np.arange(m), per)[:n_annotations]
    n = len(image)
    label = rng.integers(0, n_classes, n)
    side = np.exp(rng.normal(3 + 0.05 * label, 0.4))
    aspect = np.exp(rng.normal(0, 0.2, n))
    w, h = side * np.sqrt(aspect), side / np.sqrt(aspect)
    x = rng.uniform(0, 640 - w)
    y = rng.uniform(0, 480 - h)
    box = np.stack([x, y, x + w, y + h], 1)
    k = max(n // 1000, 1)
    zero = rng.choice(n, k, replace=False)
    box[zero, 2] = box[zero, 0]
    bad = rng.choice(n, k, replace=False)
    box[bad, 2] = box[bad, 0] + 700
    box[:, 2] = np.maximum(box[:, 2], box[:, 0])
    dup = rng.choice(n - 1, k, replace=False)
    same = image[dup] == image[dup + 1]
    box[dup[same] + 1] = box[dup[same]] + 0.5
    label[dup[same] + 1] = label[dup[same]]
    occluded = obj_array((rng.random(n) < 0.2).tolist())
    colour = obj_array(rng.choice(["red", "green", "blue"], n).tolist())
    images = Images(path=obj_array([f"img{i:06d}.jpg" for i in range(m)]), width=np.full(m, 640),
                    height=np.full(m, 480), extra={"site": obj_array(rng.choice(["a", "b", "c"], m).tolist()),
                                                   "camera": rng.integers(0, 4, m)})
    return Dataset(schema=LabelSchema.from_names([f"class{c}" for c in range(n_classes)]), images=images,
                   annotations=Annotations(image=image, label=label, box=box,
                                           attributes={"occluded": occluded, "colour": colour}))


def make_agreement(n_images: int, seed: int = 1) -> Dataset:
    base = make(n_images * 10, seed=seed)
    a = base.annotations
    assert a.box is not None
    rng = np.random.default_rng(seed)
    parts = []
    for name in ("a", "b", "c"):
        lab = a.label.copy()
        flip = rng.random(len(a)) < 0.05
        lab[flip] = rng.integers(0, 20, int(flip.sum()))
        parts.append((name, lab, a.box + rng.normal(0, 0.5, a.box.shape)))
    ann = Annotations.sort_rows(
        image=np.concatenate([a.image] * 3), label=np.concatenate([p[1] for p in parts]),
        box=np.maximum.accumulate(np.concatenate([p[2] for p in parts]).reshape(-1, 2, 2), axis=1).reshape(-1, 4),
        annotator=obj_array(np.repeat(["a", "b", "c"], len(a)).tolist()))
    return Dataset(schema=base.schema, images=base.images, annotations=ann)


def run(n_annotations: int, agreement_images: int) -> dict[str, Any]:
    t = time.perf_counter()
    ds = make(n_annotations)
    out: dict[str, Any] = {"n_annotations": ds.n_annotations, "n_images": ds.n_images,
                           "generate_s": time.perf_counter() - t, "families": {}}
    parts = []
    cfg = CheckConfig()
    total = 0.0
    for fam, fn in CHECKS.items():
        data = make_agreement(agreement_images) if fam == "agreement" else ds
        t = time.perf_counter()
        res = fn(data, cfg, None)
        dt = time.perf_counter() - t
        total += dt
        out["families"][fam] = {"seconds": round(dt, 3), "n_annotations": data.n_annotations, "issues": res.counts()}
        parts.append(res)
    t = time.perf_counter()
    QualityIssues.build(parts)
    out["rank_s"] = round(time.perf_counter() - t, 3)
    out["total_s"] = round(total + out["rank_s"], 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-annotations", type=int, default=1_000_000)
    p.add_argument("--agreement-images", type=int, default=33_334)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    res = run(args.n_annotations, args.agreement_images)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{res['n_annotations']:,} annotations on {res['n_images']:,} images (generated in {res['generate_s']:.1f} s)")
    for fam, r in res["families"].items():
        print(f"  {fam:<12} {r['seconds']:>7.2f} s  ({r['n_annotations']:,} annotations)  {r['issues']}")
    print(f"  {'rank':<12} {res['rank_s']:>7.2f} s")
    print(f"total {res['total_s']:.2f} s")


if __name__ == "__main__":
    main()
