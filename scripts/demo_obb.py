"""Oriented-box data for the demo: an aerial scene of planes, ships and vehicles at any angle (``maslow.sample.
oriented``), a simulated oriented-box detector on it, and a copy of the truth with planted label errors, written as
COCO files with hotcoco's ``obb`` field.

Usage:
    python scripts/demo_obb.py OUT_DIR [--n-images N] [--seed N]
        writes OUT_DIR/annotations.json (the truth), OUT_DIR/predictions.json (the detector's results),
        OUT_DIR/oof_predictions.json (a sharper detector's, as out-of-fold predictions for maslow qa),
        OUT_DIR/noisy.json (the truth with planted errors), OUT_DIR/planted.json (which: annotation ids; the
        dropped boxes' image ids and extents) and the tiles drawn under OUT_DIR/images/ (the QA report's crops)
    python scripts/demo_obb.py OUT_DIR --score ISSUES.json [--top 20]
        how many of the top findings of ``maslow qa`` on noisy.json are planted errors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.obb import corners_from_xywhr, oriented_corners, xywhr_from_corners
from maslow.core.polygons import Polygons
from maslow.core.tables import Annotations
from maslow.io.coco import write_coco
from maslow.io.coco_results import write_coco_results
from maslow.sample import oriented, oriented_predictions


def plant(truth: Dataset, seed: int, n: int = 6) -> tuple[Dataset, dict[str, list[int]]]:
    """``n`` of each: a class swapped, a ship or vehicle turned by 25-40 degrees, a box dropped, a box added on
    nothing; returns the noisy dataset and the planted rows' COCO ids (the dropped ones: the ids they had)."""
    rng = np.random.default_rng(seed)
    a = truth.annotations
    quads = oriented_corners(a, np.arange(len(a)))
    label = a.label.copy()
    order = rng.permutation(len(a))
    swap, rest = order[:n], order[n:]
    label[swap] = (label[swap] + rng.integers(1, 3, n)) % 3
    thin = rest[a.label[rest] > 0]  # ships and vehicles: a near-square plane turned is almost the same box
    turn, rest = thin[:n], np.setdiff1d(rest, thin[:n])
    b = xywhr_from_corners(quads[turn])
    b[:, 4] += np.radians(rng.uniform(25, 40, n)) * rng.choice([-1, 1], n)
    quads[turn] = corners_from_xywhr(b)
    drop = rng.permutation(rest)[:n]
    keep = np.setdiff1d(np.arange(len(a)), drop)
    size = float(truth.images.width.max())
    extra = corners_from_xywhr(np.column_stack([rng.uniform(60, size - 60, (n, 2)), rng.uniform(25, 50, n),
                                                rng.uniform(12, 25, n), rng.uniform(-1.5, 1.5, n)]))
    ids = np.arange(1, len(a) + 1)
    new_ids = np.arange(len(a) + 1, len(a) + 1 + n)
    image = np.concatenate([a.image[keep], rng.integers(0, truth.n_images, n)])
    q = np.concatenate([quads[keep], extra])
    o = np.argsort(image, kind="stable")
    noisy = truth.replace(annotations=Annotations(
        image=image[o], label=np.concatenate([label[keep], rng.integers(0, 3, n)])[o],
        box=np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1)[o],
        polygon=Polygons.from_rows([[c.ravel()] for c in q[o]]),
        extra={"coco_id": np.concatenate([ids[keep], new_ids])[o]}))
    dropped = [[int(a.image[r]) + 1, *quads[r].min(axis=0).tolist(), *quads[r].max(axis=0).tolist()] for r in drop]
    return noisy, {"wrong_class": ids[swap].tolist(), "low_iou": ids[turn].tolist(), "extra": new_ids.tolist(),
                   "missing": dropped}


def score(out: Path, issues: Path, top: int) -> None:
    planted = json.loads((out / "planted.json").read_text())
    found = json.loads(issues.read_text())[:top]
    ids = {i for k in ("wrong_class", "low_iou", "extra") for i in planted[k]}

    def at_dropped(f: dict) -> bool:  # a missing finding on the place of a dropped box (extents overlapping by half)
        b = (f.get("suggestion") or {}).get("box_xyxy")
        for img, x1, y1, x2, y2 in planted["missing"]:
            if b and f.get("image_id") == img:
                iw = max(0.0, min(b[2], x2) - max(b[0], x1))
                ih = max(0.0, min(b[3], y2) - max(b[1], y1))
                if iw * ih > 0.5 * min((b[2] - b[0]) * (b[3] - b[1]), (x2 - x1) * (y2 - y1)):
                    return True
        return False

    hits = sum(1 for f in found if f.get("annotation_id") in ids or (f["type"] == "missing" and at_dropped(f)))
    print(f"planted errors ({', '.join(f'{len(v)} {k}' for k, v in planted.items())}): {hits} of the top "
          f"{len(found)} findings")


def draw_tiles(truth: Dataset, out: Path, seed: int) -> None:
    """Each tile as a picture of its truth: the objects' rectangles filled in a colour per class on a ground of a
    tile's own shade, so that the QA report's crops show what a reviewer would judge (flat colours: ~10 KB a tile)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    colours = [(236, 236, 240), (70, 90, 150), (200, 60, 40)]  # plane, ship, vehicle
    a = truth.annotations
    quads = oriented_corners(a, np.arange(len(a)))
    for i in range(truth.n_images):
        h, w = int(truth.images.height[i]), int(truth.images.width[i])
        shade = tuple(int(v) for v in rng.normal((120, 135, 100), 10).clip(0, 255))
        im = Image.new("RGB", (w, h), shade)
        draw = ImageDraw.Draw(im)
        for r in np.flatnonzero(a.image == i).tolist():
            draw.polygon([tuple(p) for p in quads[r].tolist()], fill=colours[int(a.label[r]) % 3], outline=(20, 20, 20))
        path = out / str(truth.images.path[i])
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n-images", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--score", type=Path, default=None, help="an ISSUES.json of maslow qa on noisy.json")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    if args.score is not None:
        score(args.out, args.score, args.top)
        return 0
    truth = oriented(args.n_images, seed=args.seed)
    pred = oriented_predictions(truth, seed=args.seed)
    noisy, planted = plant(truth, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_coco(truth, args.out / "annotations.json", obb=True)
    write_coco_results(pred, args.out / "predictions.json", obb=True)
    write_coco(noisy, args.out / "noisy.json", obb=True)
    # a sharper detector's out-of-fold predictions, for maslow qa on noisy.json: what it misses or imagines is
    # indistinguishable from a label error, so its own errors come out as findings too
    oof = oriented_predictions(truth, seed=args.seed + 1, p_swap=0.0, p_miss=0.02, jitter=0.02, angle_jitter=0.02,
                               fp_per_image=0.2)
    write_coco_results(oof, args.out / "oof_predictions.json", obb=True)
    (args.out / "planted.json").write_text(json.dumps(planted))
    draw_tiles(truth, args.out, args.seed)
    print(f"{truth.n_images} tiles, {truth.n_annotations} oriented boxes, {pred.n_annotations} detections -> "
          f"{args.out}/annotations.json, predictions.json; noisy.json with {sum(map(len, planted.values()))} planted "
          "errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
