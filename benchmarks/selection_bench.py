"""Diverse selection benchmark: which images to label first, every strategy against random and k-means medoids.

Three parts, one run:

- ``accuracy``: on scikit-learn ``digits`` (1,797 images) and ``mnist_test`` (10,000 images, read with
  ``maslow.io.read_mnist(../shared/data/mnist_test)``, skipped when absent), each strategy orders the images once
  (budget 10%); a logistic regression trained on the first k = 1%, 2%, 5%, 10% of that order is scored on every
  image. Features: the pixels scaled to [0, 1] (the "embedding" of these small digit images). Baselines: random
  (a fresh permutation per seed) and k-means medoids recomputed for EACH budget (so the baseline needs no good
  prefixes: a strong bar). Mean over ``--seeds`` seeds. Target: maslow's default (``auto``) beats random and
  k-means medoids at every budget.
- ``frames``: a generated video (``--scenes`` scenes of unequal length, small camera motion and noise inside a
  scene, plus blank, noise and torn glitch frames), embedded with the light embedder. Reported per method: how
  many first picks cover every scene, scenes covered by the first K = number of scenes, glitch frames among the
  first 2K picks. Baselines: random order, uniform stride. Target: all scenes covered sooner than any baseline,
  no glitch frame in the first picks.
- ``throughput``: images per second for the light embedder (and EfficientNet-Lite0 when torch is installed).
- ``gate``: the quality gate at scale (it scores every image, not the ``max_points`` sample): wall time, CPU time
  and peak memory (tracemalloc: numpy's buffers, the features passed in excluded, the float32 and float64 copies
  ``outliers`` makes included) of ``outliers(x, k=3, n_mads=4, min_ratio=3)`` on ``--gate-sizes`` images (10k,
  20k, 40k) of 256-d L2-normalised features in 50 clusters (the light embedder's size). Exact kNN: time grows as
  m^2 d; the kNN's own blocks stay about 128 MB (186, 193 and 243 MiB peak in all; the audit of 2026 measured
  2 GB of RSS at 40k with fixed 2,048-row blocks).

Usage::

    python benchmarks/selection_bench.py            # digits + mnist + frames + throughput, 5 seeds
    python benchmarks/selection_bench.py --seeds 10 --json
    python benchmarks/selection_bench.py --blas-threads 1   # steadier s/order on a shared machine
    python benchmarks/selection_bench.py --skip digits mnist frames throughput --gate-sizes 10000 40000
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from maslow.diversity.select import select

STRATEGIES = ["auto", "typicality", "kcenter", "kmeans-prefix", "random", "kmeans-medoids (per budget)"]
FRACTIONS = (0.01, 0.02, 0.05, 0.10)


def _accuracy(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y[idx])) < 2:
        return float(np.mean(y == y[idx][0]))
    clf = LogisticRegression(max_iter=1000).fit(x[idx], y[idx])
    return float(clf.score(x, y))


def accuracy_table(x: np.ndarray, y: np.ndarray, seeds: int) -> dict[str, Any]:
    n = len(x)
    ks = [max(round(f * n), 1) for f in FRACTIONS]
    out: dict[str, Any] = {"n_images": n, "budgets": ks, "strategies": {}}
    for name in STRATEGIES:
        t0 = time.perf_counter()
        res = []
        for seed in range(seeds):
            if name == "kmeans-medoids (per budget)":
                res.append([_accuracy(x, y, select(x, budget=k, strategy="kmeans", rng=seed, quality_gate=False).order)
                            for k in ks])
                continue
            if name == "random":
                order = np.random.default_rng(seed).permutation(n)
            else:
                strat = "kmeans" if name == "kmeans-prefix" else name
                order = select(x, budget=ks[-1], strategy=strat, rng=seed).order  # type: ignore[arg-type]
            res.append([_accuracy(x, y, order[:k]) for k in ks])
        arr = np.array(res)
        out["strategies"][name] = {"mean": arr.mean(axis=0).round(4).tolist(), "std": arr.std(axis=0).round(4).tolist(),
                                   "seconds_per_order": round((time.perf_counter() - t0) / seeds, 2)}
    auto = np.array(out["strategies"]["auto"]["mean"])
    out["auto_beats_random_and_kmeans_at_every_budget"] = bool(
        (auto > np.array(out["strategies"]["random"]["mean"])).all()
        and (auto > np.array(out["strategies"]["kmeans-medoids (per budget)"]["mean"])).all())
    return out


def make_video(folder: Path, n_scenes: int, rng: np.random.Generator) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Frames with scene ids (-1 for glitch frames); scene lengths vary from 4 to 60 frames."""
    from PIL import Image

    lengths = rng.integers(4, 61, n_scenes)
    frames: list[np.ndarray] = []
    scene: list[int] = []
    h, w = 96, 128
    for s, length in enumerate(lengths):
        base = np.zeros((h + 16, w + 16, 3), np.float32)
        base[:] = rng.uniform(0, 255, 3)
        for _ in range(6):  # a few coloured rectangles and stripes per scene
            y0, x0 = rng.integers(0, h, 2)
            base[y0 : y0 + rng.integers(10, 50), x0 : x0 + rng.integers(10, 60)] = rng.uniform(0, 255, 3)
        for t in range(length):
            dy, dx = (int(v) for v in np.clip(np.round(np.array([t * 0.3, t * 0.5]) % 16), 0, 15))
            f = base[dy : dy + h, dx : dx + w] + rng.normal(0, 4, (h, w, 3))
            frames.append(np.clip(f, 0, 255).astype(np.uint8))
            scene.append(s)
    glitch_at = np.sort(rng.choice(len(frames), 6, replace=False))
    for j, at in enumerate(glitch_at[::-1]):
        kind = j % 3
        if kind == 0:
            g = np.zeros((h, w, 3), np.uint8)  # blank
        elif kind == 1:
            g = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)  # noise
        else:
            g = frames[at].copy()  # torn: bottom half shifted and colour-swapped
            g[h // 2 :] = np.roll(g[h // 2 :, :, ::-1], 37, axis=1)
            g[h // 2 : h // 2 + 6] = 255
        frames.insert(int(at), g)
        scene.insert(int(at), -1)
    paths = []
    for i, f in enumerate(frames):
        p = folder / f"frame_{i:05d}.png"
        Image.fromarray(f).save(p)
        paths.append(p)
    return paths, np.array(scene), lengths


def frames_table(n_scenes: int, seeds: int) -> dict[str, Any]:
    from maslow.core.dataset import Dataset
    from maslow.core.schema import LabelSchema
    from maslow.core.tables import Annotations, Images
    from maslow.core.types import obj_array
    from maslow.embed import embed

    rows: dict[str, list[list[float]]] = {"maslow auto": [], "random": [], "uniform stride": []}
    t_embed = 0.0
    n_frames = 0
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed)
        with tempfile.TemporaryDirectory() as tmp:
            paths, scene, _ = make_video(Path(tmp), n_scenes, rng)
            n = len(paths)
            n_frames += n
            ds = Dataset(LabelSchema.from_names([], task="classification"),
                         Images(path=obj_array([p.name for p in paths]), width=np.full(n, 128),
                                height=np.full(n, 96),
                                extra={"sequence": obj_array(["video"] * n), "frame": np.arange(n)}),
                         Annotations.empty(), root=Path(tmp))
            t0 = time.perf_counter()
            feats = embed(paths, embedder="light", use_cache=False)
            t_embed += time.perf_counter() - t0
            orders = {
                "maslow auto": select(ds, features=feats, budget=n, rng=seed).order,
                "random": rng.permutation(n),
                "uniform stride": _stride_order(n),
            }
        for name, order in orders.items():
            sc = scene[order]
            seen: set[int] = set()
            need = n
            for j, s in enumerate(sc):
                if s >= 0:
                    seen.add(int(s))
                if len(seen) == n_scenes:
                    need = j + 1
                    break
            first_k = {int(s) for s in sc[:n_scenes] if s >= 0}
            rows[name].append([need, len(first_k), int((sc[: 2 * n_scenes] < 0).sum())])
    out = {name: dict(zip(["picks_to_cover_all_scenes", f"scenes_in_first_{n_scenes}", f"glitches_in_first_{2 * n_scenes}"],
                          np.array(r).mean(axis=0).round(2).tolist(), strict=True)) for name, r in rows.items()}
    return {"n_scenes": n_scenes, "mean_frames": n_frames / seeds, "methods": out,
            "light_embed_images_per_s": round(n_frames / t_embed, 1)}


def _stride_order(n: int) -> np.ndarray:
    """Uniform stride, coarse to fine: frame 0, n/2, n/4, 3n/4, ... (bit-reversal order)."""
    order: list[int] = []
    seen = np.zeros(n, bool)
    step = 1
    while len(order) < n:
        for i in range(step):
            j = int(i * n / step)
            if not seen[j]:
                seen[j] = True
                order.append(j)
        step *= 2
    return np.array(order)


def throughput() -> dict[str, Any]:
    from PIL import Image

    from maslow.embed import embed

    out: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(200):
            p = Path(tmp) / f"img{i}.jpg"
            Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(p, quality=90)
            paths.append(p)
        for name in ("light", "efficientnet-lite0"):
            try:
                embed(paths[:8], embedder=name, use_cache=False)  # warm up / load the model
                t0 = time.perf_counter()
                embed(paths, embedder=name, use_cache=False)
                out[name] = round(len(paths) / (time.perf_counter() - t0), 1)
            except ImportError as e:
                out[name] = f"skipped: {e}"
    return {"images": "200 JPEG 640x480", "images_per_s": out}


def gate_table(sizes: list[int]) -> list[dict[str, Any]]:
    from maslow.diversity.outliers import outliers

    rows = []
    for m in sizes:
        rng = np.random.default_rng(0)
        centres = rng.normal(size=(50, 256))
        x = (centres[rng.integers(0, 50, m)] + 0.7 * rng.normal(size=(m, 256))).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        tracemalloc.start()
        t0, c0 = time.perf_counter(), time.process_time()
        res = outliers(x, k=3, n_mads=4.0, min_ratio=3.0)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append({"n_images": m, "dims": 256, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                     "peak_mib": round(peak, 1), "n_outliers": res.n_outliers})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--scenes", type=int, default=12)
    ap.add_argument("--mnist", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/mnist_test")
    ap.add_argument("--skip", nargs="*", default=[], choices=["digits", "mnist", "frames", "throughput", "gate"])
    ap.add_argument("--gate-sizes", type=int, nargs="*", default=[10_000, 20_000, 40_000],
                    help="image counts of the quality-gate timing (part gate)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit numpy's and scikit-learn's BLAS/OpenMP threads (default: theirs); on a shared 2-core "
                         "machine 1 keeps s/order steady (the default threads made auto on mnist_test 2.4x slower)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.blas_threads is not None:
        if args.blas_threads < 1:
            ap.error("--blas-threads must be at least 1")
        import scipy.linalg  # noqa: F401  (threadpoolctl limits only the libraries loaded when it is called)
        import sklearn.cluster
        import sklearn.linear_model  # noqa: F401
        from threadpoolctl import threadpool_limits  # a scikit-learn dependency

        with threadpool_limits(limits=args.blas_threads):
            run(args)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    report: dict[str, Any] = {}
    if "digits" not in args.skip:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        report["digits"] = accuracy_table(x / 16.0, y, args.seeds)
    if "mnist" not in args.skip and args.mnist.exists():
        from maslow.io import read_mnist
        from maslow.io.images import idx_member, read_idx

        ds = read_mnist(args.mnist)
        base, _ = idx_member(Path(ds.root or ".") / str(ds.images.path[0]))
        x = read_idx(base).reshape(ds.n_images, -1) / 255.0
        members = [idx_member(p)[1] for p in ds.images.path]
        x = x[np.array(members)]
        y = np.zeros(ds.n_images, np.int64)
        y[ds.annotations.image] = ds.annotations.label
        report["mnist_test"] = accuracy_table(x, y, args.seeds)
    if "frames" not in args.skip:
        report["frames"] = frames_table(args.scenes, args.seeds)
    if "throughput" not in args.skip:
        report["throughput"] = throughput()
    if "gate" not in args.skip:
        report["gate"] = gate_table(args.gate_sizes)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name in ("digits", "mnist_test"):
        if name in report:
            r = report[name]
            print(f"\n{name} ({r['n_images']} images): logistic-regression accuracy on all images, first k picks, "
                  f"mean of {args.seeds} seeds")
            print(f"{'strategy':30s}" + "".join(f"{f'k={k} ({f:.0%})':>14s}" for k, f in zip(r["budgets"], FRACTIONS, strict=True))
                  + f"{'s/order':>10s}")
            for s, v in r["strategies"].items():
                print(f"{s:30s}" + "".join(f"{m:14.3f}" for m in v["mean"]) + f"{v['seconds_per_order']:10.2f}")
            print(f"auto beats random and k-means medoids at every budget: {r['auto_beats_random_and_kmeans_at_every_budget']}")
    if "frames" in report:
        r = report["frames"]
        print(f"\nframes: {r['mean_frames']:.0f} frames on average, {r['n_scenes']} scenes, 6 glitch frames, "
              f"mean of {args.seeds} videos")
        for name, v in r["methods"].items():
            print(f"{name:16s} " + "  ".join(f"{k} {val:g}" for k, val in v.items()))
        print(f"light embedder on these frames: {r['light_embed_images_per_s']} images/s")
    if "throughput" in report:
        print(f"\nembedding throughput ({report['throughput']['images']}): {report['throughput']['images_per_s']}")
    if "gate" in report:
        print("\nquality gate, outliers(k=3) on 256-d features (exact kNN over every image):")
        for r in report["gate"]:
            print(f"{r['n_images']:>8,} images: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU-s, "
                  f"peak {r['peak_mib']:.0f} MiB, {r['n_outliers']} outliers")


if __name__ == "__main__":
    main()
