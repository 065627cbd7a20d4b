"""Open Images data for the demo: street and park scenes labelled as Open Images labels them (normalised boxes, group-of
boxes over crowds, verified image-level labels, a class hierarchy), and a simulated detector's output in the
challenge's submission form.

Usage: python scripts/demo_openimages.py OUT_DIR [--n-images N] [--seed N]
Writes under OUT_DIR: images/<ImageID>.jpg, annotations-bbox.csv (the truth, V6 columns), class-descriptions-boxable.csv (MID, display
name; no header, as Open Images ships it), annotations-human-imagelabels-boxable.csv (verified present: Confidence 1, absent: 0),
hierarchy.json (bbox_labels_600_hierarchy.json's nesting) and predictions.csv (ImageId,PredictionString: label,
score and the box's xmin ymin xmax ymax, repeated).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 160, 120
#: MID -> display name (Open Images' own MIDs for these classes)
CLASSES = {"/m/0k4j": "Car", "/m/01bjv": "Bus", "/m/07yv9": "Vehicle", "/m/0bt9lr": "Dog", "/m/01yrx": "Cat",
           "/m/0jbk": "Animal", "/m/01g317": "Person"}
LEAVES = ("/m/0k4j", "/m/01bjv", "/m/0bt9lr", "/m/01yrx", "/m/01g317")
PARENT = {"/m/0k4j": "/m/07yv9", "/m/01bjv": "/m/07yv9", "/m/0bt9lr": "/m/0jbk", "/m/01yrx": "/m/0jbk"}
COLOURS = {"/m/0k4j": (200, 40, 40), "/m/01bjv": (230, 170, 20), "/m/0bt9lr": (130, 80, 40),
           "/m/01yrx": (120, 120, 120), "/m/01g317": (40, 80, 200)}


def hierarchy() -> dict:
    """Open Images' nesting: the root Entity (/m/0bl9f), then each class with its Subcategory list."""
    kids: dict[str, list[str]] = {}
    for child, parent in PARENT.items():
        kids.setdefault(parent, []).append(child)
    top = ["/m/07yv9", "/m/0jbk", "/m/01g317"]
    return {"LabelName": "/m/0bl9f", "Subcategory": [
        {"LabelName": m, **({"Subcategory": [{"LabelName": c} for c in kids[m]]} if m in kids else {})} for m in top]}


def _box(rng: np.random.Generator) -> np.ndarray:
    w, h = rng.uniform(0.12, 0.4), rng.uniform(0.12, 0.4)
    x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
    return np.array([x, y, x + w, y + h])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n-images", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    out: Path = args.out
    (out / "images").mkdir(parents=True, exist_ok=True)
    boxes, labels, preds = [], [], []
    for _i in range(args.n_images):
        image_id = f"{int(rng.integers(16 ** 14, 16 ** 15)):016x}"
        pixels = np.full((H, W, 3), (90, 150, 90), np.uint8)
        present: set[str] = set()
        found = []
        for _ in range(int(rng.integers(1, 5))):
            mid = str(rng.choice(LEAVES))
            b = _box(rng)
            group = mid == "/m/01g317" and rng.random() < 0.3  # a crowd of people: one group-of box
            x1, y1, x2, y2 = (b * [W, H, W, H]).astype(int)
            pixels[y1:y2, x1:x2] = COLOURS[mid]
            boxes.append([image_id, "xclick", mid, 1, *np.round(b[[0, 2, 1, 3]], 6), 0, 0, int(group), 0, 0])
            present.add(mid)
            found.append((mid, b, group))
        Image.fromarray(pixels).save(out / "images" / f"{image_id}.jpg", quality=90)
        absent = [m for m in LEAVES if m not in present and rng.random() < 0.4]  # verified absent
        labels += [[image_id, "verification", m, 1] for m in sorted(present)]
        labels += [[image_id, "verification", m, 0] for m in absent]
        parts = []
        for mid, b, group in found:
            if rng.random() < 0.12:  # missed
                continue
            k = 3 if group else 1  # a crowd: the detector sees several people in it
            for _ in range(k):
                jb = np.clip(b + rng.normal(0, 0.02, 4) * (b[2:] - b[:2]).repeat(2), 0, 1)
                if group:
                    jb = np.r_[b[:2] + rng.uniform(0, 0.5, 2) * (b[2:] - b[:2]), 0, 0]
                    jb[2:] = np.minimum(jb[:2] + 0.4 * (b[2:] - b[:2]), 1)
                label = PARENT[mid] if mid in PARENT and rng.random() < 0.2 else mid  # a parent's name at times
                parts.append((label, rng.beta(5, 2), jb))
        for _ in range(int(rng.poisson(0.7))):  # false alarms
            parts.append((str(rng.choice(LEAVES)), rng.beta(1.5, 4), _box(rng)))
        preds.append([image_id, " ".join(f"{m} {s:.4f} {b[0]:.5f} {b[1]:.5f} {b[2]:.5f} {b[3]:.5f}"
                                         for m, s, b in parts)])
    with open(out / "annotations-bbox.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
                    "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"])
        w.writerows(boxes)
    with open(out / "class-descriptions-boxable.csv", "w", newline="") as f:
        csv.writer(f).writerows(CLASSES.items())
    with open(out / "annotations-human-imagelabels-boxable.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageID", "Source", "LabelName", "Confidence"])
        w.writerows(labels)
    (out / "hierarchy.json").write_text(json.dumps(hierarchy(), indent=1) + "\n")
    with open(out / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ImageId", "PredictionString"])
        w.writerows(preds)
    print(f"wrote {args.n_images} images, {len(boxes)} boxes ({sum(r[10] for r in boxes)} group-of), "
          f"{len(labels)} verified image labels and a detector's predictions under {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
