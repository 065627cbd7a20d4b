"""Near-duplicate benchmark: precision/recall per transformation, hashing throughput, search time.

Originals: real images of ../shared/data (bccd, coco_instances_10, od_metrics_fixture), up to ``--n``. Each
gets five transformed copies: JPEG re-encode (quality 40), resize to 50%, brightness x1.4, a 10% crop (90%
of width and height kept, at a random offset) and a horizontal mirror. Every image is hashed; a pair is
predicted when the method says so. Precision: share of predicted pairs that are copies of one original.
Recall per transformation: share of (original, copy) pairs predicted. pure_cc: share of the connected
components of the predicted pairs holding copies of a single original. The clusters maslow reports are star
clusters (``star_clusters`` in keep order: most pixels, then largest file): pure_stars is their share holding
one original's copies; drop_precision the share of droppable images (members other than the kept one) that
are copies of the kept image's original; drop_recall those correct drops over the 5 copies per original.

Methods: maslow (``near_pairs``, Hamming <= 8 over its 26 hash variants), imagehash pHash at Hamming <= 8
and cleanvision's near + exact duplicate sets (each when installed: ``pip install imagehash cleanvision``).
fastdup is not run (non-commercial licence); the issue quotes 0.94 / 0.88 at about 40 images per CPU-second.

``--shrink S`` first resizes each original so its shorter side is S pixels (tiny images; the hashes are
compared directly, without ``find_duplicates``' ``min_side`` rule).

Search: random hashes, 26 per image, with planted near pairs, at ``--search-sizes`` images (8k, 16k, 24k, 40k
and 100k by default: 630 to 40,000 images once hit a quadratic cliff, 40k taking 75 s and 4 GB); wall and CPU
time and the search's peak memory (tracemalloc: numpy's buffers, the inputs excluded).

Many duplicates of each other, at ``--many-sizes`` images (500, 1,000 and 2,000 by default): ``find_duplicates`` on
that many byte-identical 64 x 48 PNGs (exact only, and with the near search), and on distinct noise images whose
features are near-identical (cosine about 0.998, exact and semantic); wall time and peak memory (tracemalloc). The
pairs are n (n - 1) / 2 each time: before the fix of 2026 the search kept each pair once per block and per stored
variant (1,000 identical images: 44 s, 4.5 GB) and the pairs went through Python dicts.

Run: ``.venv/bin/python benchmarks/duplicates_bench.py [--n 300] [--shrink 24] [--search-sizes 8000 40000]
[--many-sizes 1000] [--json]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity._graph import clusters_of, star_clusters
from maslow.diversity.duplicates import find_duplicates, image_hashes, near_pairs, search_hashes, variant_names

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRANSFORMS = ("jpeg", "resize", "bright", "crop10", "mirror")


def originals(n: int) -> list[Path]:
    paths: list[Path] = []
    for sub in ("coco_instances_10", "od_metrics_fixture", "bccd"):
        paths += sorted((SHARED / sub / "images").glob("*.jpg"))
    return paths[:n]


def make_set(src: list[Path], dst: Path, seed: int = 0, shrink: int = 0) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Files, group (original index) and transform index (-1 = original) of each file."""
    rng = np.random.default_rng(seed)
    files, group, kind = [], [], []
    for g, p in enumerate(src):
        im = Image.open(p).convert("RGB")
        if shrink:
            f = shrink / min(im.size)
            im = im.resize((max(1, round(im.size[0] * f)), max(1, round(im.size[1] * f))), Image.Resampling.LANCZOS)
        w, h = im.size
        out = dst / f"{g:04d}_orig.jpg"
        im.save(out, quality=95)
        files.append(out), group.append(g), kind.append(-1)
        x0, y0 = int(rng.integers(0, w // 10 + 1)), int(rng.integers(0, h // 10 + 1))
        variants = {
            "jpeg": im,
            "resize": im.resize((w // 2, h // 2), Image.Resampling.BILINEAR),
            "bright": ImageEnhance.Brightness(im).enhance(1.4),
            "crop10": im.crop((x0, y0, x0 + int(w * 0.9), y0 + int(h * 0.9))),
            "mirror": ImageOps.mirror(im),
        }
        for t, name in enumerate(TRANSFORMS):
            out = dst / f"{g:04d}_{name}.jpg"
            variants[name].save(out, quality=40 if name == "jpeg" else 90)
            files.append(out), group.append(g), kind.append(t)
    return files, np.asarray(group), np.asarray(kind)


def score(pairs: np.ndarray, group: np.ndarray, kind: np.ndarray, order: np.ndarray) -> dict[str, float]:
    same = group[pairs[:, 0]] == group[pairs[:, 1]]
    out = {"precision": float(same.mean()) if len(pairs) else 1.0, "n_pairs": float(len(pairs))}
    found = {(int(a), int(b)) for a, b in pairs[same].tolist()}
    orig = {int(g): i for i, (g, k) in enumerate(zip(group, kind, strict=True)) if k == -1}
    recalls = []
    for t, name in enumerate(TRANSFORMS):
        rows = np.flatnonzero(kind == t)
        hit = [tuple(sorted((orig[int(group[r])], int(r)))) in found for r in rows]
        out[f"recall_{name}"] = float(np.mean(hit))
        recalls += hit
    out["recall_all"] = float(np.mean(recalls))
    clusters = clusters_of(len(group), pairs)
    out["pure_cc"] = float(np.mean([len(set(group[c].tolist())) == 1 for c in clusters])) if clusters else 1.0
    stars = star_clusters(len(group), pairs, order=order)
    out["pure_stars"] = float(np.mean([len(set(group[c].tolist())) == 1 for c in stars])) if stars else 1.0
    right = sum(int((group[c[1:]] == group[c[0]]).sum()) for c in stars)
    dropped = sum(len(c) - 1 for c in stars)
    out["drop_precision"] = right / dropped if dropped else 1.0
    out["drop_recall"] = right / int((kind >= 0).sum())
    return out


def imagehash_pairs(files: list[Path], threshold: int) -> tuple[np.ndarray, float] | None:
    try:
        import imagehash
    except ImportError:
        return None
    t0 = time.process_time()
    hs = []
    for f in files:
        with Image.open(f) as im:
            hs.append(int(str(imagehash.phash(im)), 16))
    cpu = time.process_time() - t0
    qi, si, _ = search_hashes(np.asarray(hs, np.uint64), np.asarray(hs, np.uint64), threshold)
    keep = qi < si
    return np.stack([qi[keep], si[keep]], 1), len(files) / cpu


def cleanvision_pairs(folder: Path, files: list[Path]) -> tuple[np.ndarray, float] | None:
    try:
        from cleanvision import Imagelab
    except ImportError:
        return None
    import contextlib
    import io

    t0 = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        lab = Imagelab(data_path=str(folder))
        lab.find_issues({"near_duplicates": {}, "exact_duplicates": {}})
    cpu = time.process_time() - t0
    row = {str(f.resolve()): i for i, f in enumerate(files)}
    pairs = set()
    for kind in ("near_duplicates", "exact_duplicates"):
        for group in lab.info[kind]["sets"]:
            idx = sorted(row[str(Path(p).resolve())] for p in group)
            pairs |= {(a, b) for k, a in enumerate(idx) for b in idx[k + 1:]}
    return np.asarray(sorted(pairs), np.int64).reshape(-1, 2), len(files) / cpu


def many_duplicates(n: int) -> list[dict[str, float | int | str]]:
    """``find_duplicates`` where every image duplicates every other: n identical files (exact only, then with the
    near search) and n distinct images with near-identical features. Time and tracemalloc peak of each."""
    out: list[dict[str, float | int | str]] = []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        Image.new("RGB", (64, 48), (0, 0, 0)).save(root / "same.png")
        same = (root / "same.png").read_bytes()
        for i in range(n):
            (root / f"x{i:05d}.png").write_bytes(same)
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / f"n{i:05d}.png")
        schema, ann = LabelSchema.from_names([]), Annotations.empty()
        identical = Dataset(schema, Images(path=[f"x{i:05d}.png" for i in range(n)], width=[64] * n, height=[48] * n),
                            ann, root=root)
        noise = Dataset(schema, Images(path=[f"n{i:05d}.png" for i in range(n)], width=[40] * n, height=[40] * n),
                        ann, root=root)
        feats = (np.ones((n, 64)) + rng.normal(size=(n, 64)) * 0.05).astype(np.float32)
        cases = [("identical, exact only", identical, {"near": False}), ("identical, near", identical, {}),
                 ("near-identical features", noise, {"near": False, "features": feats})]
        for name, ds, kw in cases:
            t0 = time.perf_counter()
            find_duplicates(ds, **kw)  # type: ignore[arg-type]
            dt = time.perf_counter() - t0  # timed without tracemalloc, which slows the hashing down
            tracemalloc.start()
            r = find_duplicates(ds, **kw)  # type: ignore[arg-type]
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            out.append({"case": name, "n_images": n, "wall_s": dt, "peak_mib": peak, "pairs": len(r.pairs),
                        "clusters": len(r.clusters)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--threshold", type=int, default=8)
    ap.add_argument("--shrink", type=int, default=0, help="shorter side of the originals in pixels (0: as stored)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--search-sizes", type=int, nargs="*", default=[8_000, 16_000, 24_000, 40_000, 100_000],
                    help="image counts of the search timing (random hashes; 26 per image)")
    ap.add_argument("--many-sizes", type=int, nargs="*", default=[500, 1_000, 2_000],
                    help="image counts of the many-duplicates timing (all images duplicates of each other)")
    args = ap.parse_args()
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print  # notes go to stderr beside --json
    src = originals(args.n)
    if not src:
        raise SystemExit(f"no images under {SHARED}")
    with tempfile.TemporaryDirectory() as tmp:
        files, group, kind = make_set(src, Path(tmp), shrink=args.shrink)
        n_files = len(files)
        say(f"{len(src)} originals x {len(TRANSFORMS)} transformations = {len(files)} images")
        t0 = time.process_time()
        table = image_hashes(files)
        cpu = time.process_time() - t0
        pairs, _ = near_pairs(table, args.threshold)
        size = [f.stat().st_size for f in files]
        order = np.asarray(sorted(range(len(files)), key=lambda i: (-table.pixels[i], -size[i], i)), np.int64)
        rows = [("maslow", score(pairs, group, kind, order), len(files) / cpu)]
        ih = imagehash_pairs(files, args.threshold)
        if ih is not None:
            rows.append(("imagehash pHash", score(ih[0], group, kind, order), ih[1]))
        else:
            say("imagehash not installed: skipped")
        cv = cleanvision_pairs(Path(tmp), files)
        if cv is not None:
            rows.append(("cleanvision", score(cv[0], group, kind, order), cv[1]))
        else:
            say("cleanvision not installed: skipped (docs/diversity.md: recall 0.361 with cleanvision 0.3.7)")
    cols = ["precision", "recall_all", *[f"recall_{t}" for t in TRANSFORMS], "pure_cc", "pure_stars",
            "drop_precision", "drop_recall"]
    if not args.json:
        print(f"{'method':16s} " + " ".join(f"{c:>14s}" for c in cols) + f" {'img/CPU-s':>10s}")
        for name, s, speed in rows:
            print(f"{name:16s} " + " ".join(f"{s[c]:14.3f}" for c in cols) + f" {speed:10.0f}")
    search = []
    rng = np.random.default_rng(1)
    v = len(variant_names())
    for n in args.search_sizes:
        base = rng.integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
        others = rng.integers(0, 2**63, size=(n, v - 1), dtype=np.int64).astype(np.uint64)
        hashes = np.concatenate([base[:, None], others], 1)  # v variants per image, as image_hashes stores
        hashes[::100, 1] = hashes[1::100, 0] ^ np.uint64(0b1011)  # planted near pairs
        tracemalloc.start()  # numpy reports its buffers to tracemalloc: the search's own peak, inputs excluded
        t0, c0 = time.perf_counter(), time.process_time()
        qi, _, _ = search_hashes(hashes[:, 0], hashes.ravel(), args.threshold)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        search.append({"n_images": n, "hash_variants": v, "threshold": args.threshold, "wall_s": dt, "cpu_s": cpu,
                       "peak_mib": peak, "matches": len(qi)})
        if not args.json:
            print(f"search: {n:,} images ({v} hash variants each, Hamming <= {args.threshold}): {dt:.2f} s "
                  f"({cpu:.2f} CPU-s), peak {peak:,.0f} MiB, {len(qi):,} matches")
    many = [row for n in args.many_sizes for row in many_duplicates(n)]
    if not args.json:
        for row in many:
            print(f"many duplicates: {row['n_images']:,} images, {row['case']}: {row['wall_s']:.2f} s, peak "
                  f"{row['peak_mib']:,.0f} MiB, {row['pairs']:,} pairs, {row['clusters']} clusters")
    if args.json:
        methods = [{"method": name, **{c: float(s[c]) for c in cols}, "images_per_cpu_s": speed}
                   for name, s, speed in rows]
        print(json.dumps({"n_originals": len(src), "transforms": list(TRANSFORMS), "n_images": n_files,
                          "methods": methods, "search": search, "many_duplicates": many}, indent=1))


if __name__ == "__main__":
    main()
