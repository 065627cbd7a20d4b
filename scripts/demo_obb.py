"""Oriented-box data for the demo: an aerial scene of planes, ships and vehicles at any angle (``maslow.sample.
oriented``) and a simulated oriented-box detector on it, written as COCO files with hotcoco's ``obb`` field.

Usage: python scripts/demo_obb.py OUT_DIR [--n-images N] [--seed N]
Writes OUT_DIR/annotations.json (the truth) and OUT_DIR/predictions.json (the detector's results).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from maslow.io.coco import write_coco
from maslow.io.coco_results import write_coco_results
from maslow.sample import oriented, oriented_predictions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--n-images", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    truth = oriented(args.n_images, seed=args.seed)
    pred = oriented_predictions(truth, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_coco(truth, args.out / "annotations.json", obb=True)
    write_coco_results(pred, args.out / "predictions.json", obb=True)
    print(f"{truth.n_images} tiles, {truth.n_annotations} oriented boxes, {pred.n_annotations} detections -> "
          f"{args.out}/annotations.json, predictions.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
