"""Panoptic data for the demo: street-like scenes (sky, road and grass as stuff; cars and people as things) and a
simulated panoptic model's output (outlines a little off, some objects missed or imagined, a stuff border moved),
written as COCO panoptic files (JSON plus PNGs whose colours encode the segment ids).

Usage: python scripts/demo_panoptic.py OUT_DIR [--n-images N] [--seed N]
Writes OUT_DIR/panoptic.json + OUT_DIR/panoptic/ (the truth) and OUT_DIR/pred.json + OUT_DIR/pred/ (the model's).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 320, 240
STUFF = {101: "sky", 102: "road", 103: "grass"}
THINGS = {1: "car", 2: "person"}


def _scene(rng: np.random.Generator, horizon: float, objects: list[tuple[int, float, float, float, float]],
           ids: list[int]) -> tuple[np.ndarray, dict[int, int]]:
    """A label map of segment ids and each id's category: sky above the horizon, road or grass below it (split at
    a slanted line), then the objects (ellipses) painted in order."""
    yy, xx = np.mgrid[0:H, 0:W]
    seg = np.zeros((H, W), np.int64)
    cat: dict[int, int] = {}
    sky, road, grass = ids[:3]
    seg[yy < horizon] = sky
    below = yy >= horizon
    seg[below & (xx < W * 0.6 + (yy - horizon) * 0.3)] = road
    seg[below & (seg == 0)] = grass
    cat.update({sky: 101, road: 102, grass: 103})
    for (c, cx, cy, a, b), sid in zip(objects, ids[3:], strict=False):
        seg[((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1] = sid
        cat[sid] = c
    return seg, cat


def _write(out: Path, name: str, images: list[dict], maps: list[tuple[np.ndarray, dict[int, int]]]) -> None:
    (out / name).mkdir(parents=True, exist_ok=True)
    anns = []
    for img, (seg, cat) in zip(images, maps, strict=True):
        ids, area = np.unique(seg, return_counts=True)
        segments = []
        for sid, n in zip(ids.tolist(), area.tolist(), strict=True):
            if sid == 0 or sid not in cat:
                continue
            ys, xs = np.nonzero(seg == sid)
            segments.append({"id": sid, "category_id": cat[sid], "iscrowd": 0, "area": n,
                             "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                      int(ys.max() - ys.min() + 1)]})
        png = img["file_name"].replace(".jpg", ".png")
        rgb = np.stack([seg & 255, (seg >> 8) & 255, (seg >> 16) & 255], axis=-1).astype(np.uint8)
        Image.fromarray(rgb).save(out / name / png)
        anns.append({"image_id": img["id"], "file_name": png, "segments_info": segments})
    cats = [{"id": c, "name": n, "isthing": 0, "supercategory": "stuff"} for c, n in STUFF.items()]
    cats += [{"id": c, "name": n, "isthing": 1, "supercategory": "thing"} for c, n in THINGS.items()]
    (out / f"{name}.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n-images", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    images, truth, pred = [], [], []
    for i in range(args.n_images):
        images.append({"id": i + 1, "file_name": f"street_{i:03d}.jpg", "width": W, "height": H})
        horizon = float(rng.uniform(70, 120))
        objects = [(int(rng.choice([1, 2], p=[0.6, 0.4])), float(rng.uniform(20, W - 20)),
                    float(rng.uniform(horizon + 10, H - 15)), 0.0, 0.0) for _ in range(int(rng.integers(2, 7)))]
        objects = [(c, x, y, *(rng.uniform(18, 34, 1).tolist() + rng.uniform(9, 16, 1).tolist() if c == 1 else
                               rng.uniform(5, 9, 1).tolist() + rng.uniform(12, 22, 1).tolist())) for c, x, y, _, _ in objects]
        ids = rng.choice(np.arange(1, 1 << 24), 40, replace=False).tolist()
        truth.append(_scene(rng, horizon, objects, ids[:20]))
        seen = []
        for c, x, y, a, b in objects:
            if rng.random() < 0.12:  # missed
                continue
            c = c if rng.random() > 0.08 else 3 - c  # the other thing class
            seen.append((c, x + rng.normal(0, 0.12 * a), y + rng.normal(0, 0.12 * b), a * float(np.exp(rng.normal(0, 0.1))),
                         b * float(np.exp(rng.normal(0, 0.1)))))
        if rng.random() < 0.4:  # imagined
            seen.append((2, float(rng.uniform(20, W - 20)), float(rng.uniform(horizon + 10, H - 15)), 6.0, 15.0))
        pred.append(_scene(rng, horizon + rng.normal(0, 4), seen, ids[20:]))
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out, "panoptic", images, truth)
    _write(args.out, "pred", images, pred)
    print(f"{len(images)} images -> {args.out}/panoptic.json + panoptic/, {args.out}/pred.json + pred/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
