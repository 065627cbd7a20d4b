"""Near duplicates and odd images: maslow against imagehash, cleanvision and FiftyOne's rule, in one run.

Two parts, each measured on the same image files for every tool, each tool in a child process of its own (so
its run time, CPU time and peak memory are its own):

- ``duplicates``: originals with planted copies (JPEG q30 re-encode, resize to 50%, a slight crop keeping 90-96%
  of each side, a colour jitter of brightness, contrast, saturation and hue, horizontal and vertical flips, and
  a "combo": 60% size + 5% crop + JPEG q50). Two sets: ``generated`` (distinct synthetic pictures: coloured
  1/f noise with random shapes) and ``real`` (the JPEGs of ../shared/data: coco_instances_10,
  od_metrics_fixture, bccd's look-alike smears; skipped when absent). A pair is right when both images come
  from one original. Precision: over every predicted pair; recall: over the (original, copy) pairs, also per
  transformation. Each tool at its default and at its best threshold (highest F1 of precision and recall
  over a sweep of its own knob).
- ``odd``: every real image of ../shared/data (575: bccd, coco_instances_10, od_metrics_fixture, camvid_val),
  ``--per-type`` (6) of them, at random, made odd in each of cleanvision's issue types (dark: brightness x
  0.08-0.18; light: 255 - (255 - v) x 0.05-0.15; blurry: Gaussian blur of 1.2-2% of the longer side; low
  information: a flat colour with noise of sd 2; odd aspect ratio: a 5:1 strip; odd size: 1/12 of each side;
  grayscale: half stored grey, half grey saved as RGB; the two black-and-white photos of the real images, stored
  as RGB, count as grayscale too). Precision and recall per type of cleanvision
  (``Imagelab.find_issues()``, its defaults) and of maslow (``image_issues``, its defaults). A false flag is
  one on a normal image (an image planted with one issue may have another: a flat frame at 25% grey is dark
  too); "normal flagged" counts the normal images with any flag.

Tools:

- maslow: ``find_duplicates`` on the folder (exact bytes + pHash variants, Hamming <= 8); the sweep uses the
  same hashes' all-pairs distance. ``maslow + semantic``: adds cosine >= 0.95 on EfficientNet-Lite0 features.
- imagehash (4.3): pHash, dHash, wHash, aHash. It has no default threshold; "default" is Hamming <= 8 here.
- cleanvision (0.3.7): exact (md5) and near duplicates (pHash of ``hash_size`` 8 bits a side, equal hashes);
  its knob ``hash_size`` is swept over 4, 5, 6, 8 (a smaller hash merges more).
- FiftyOne's rule: ``compute_near_duplicates(threshold=0.2)`` of fiftyone-brain 0.27 (cosine distance <= 0.2
  between embeddings, sklearn radius neighbours; ``fiftyone/brain/similarity.py``) on the same EfficientNet-Lite0
  features as maslow's semantic pairs. FiftyOne itself is not run: it needs a MongoDB server and its default
  model's weights download at run time; the rule is the brain's, re-implemented in a few lines. Its time
  excludes the embedding (given separately), as does maslow + semantic's.
- fastdup is not run (its licence is non-commercial).

With the embeddings, a third table orders the images for labelling: FiftyOne's ``compute_uniqueness`` (the
weighted cosine distance to the 3 nearest neighbours, ``_compute_uniqueness`` in fiftyone-brain's
``internal/core/uniqueness.py``), sorted most unique first, against maslow's ``select`` on the same features;
it counts the distinct originals among the first k images (each original has 8 versions).

Run: ``PYTHONPATH=<folder with imagehash and cleanvision> .venv/bin/python benchmarks/duplicates_vs_anchors.py
[--n 100] [--parts duplicates odd] [--no-embed] [--json]`` (2-3 minutes on 2 cores with the defaults, most
of it the EfficientNet-Lite0 embedding; under a minute with ``--no-embed``). A tool that is not installed is
skipped with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COPIES = ("jpeg", "resize", "crop", "jitter", "hflip", "vflip", "combo")
ODD = ("dark", "light", "blurry", "low_information", "odd_aspect_ratio", "odd_size", "grayscale")
IMAGEHASH = ("phash", "dhash", "whash", "average_hash")


# ---------------------------------------------------------------- data

def real_originals(n: int, *, camvid: bool = False) -> list[Image.Image]:
    paths: list[Path] = []
    for sub in ("coco_instances_10", "od_metrics_fixture", "bccd"):
        paths += sorted((SHARED / sub / "images").glob("*.jpg"))
    if camvid:  # driving frames: many near duplicates of each other, so only as normal images of the odd part
        paths += sorted((SHARED / "camvid_val" / "images").glob("*.png"))
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(len(paths), size=min(n, len(paths)), replace=False).tolist()) if paths else []
    return [Image.open(paths[i]).convert("RGB") for i in pick]


def generated_originals(n: int, seed: int = 0) -> list[Image.Image]:
    """Distinct synthetic pictures: coloured 1/f noise (natural images' spectrum) with 3-8 random shapes."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        w, h = int(rng.integers(320, 641)), int(rng.integers(240, 481))
        fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
        amp = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(w, h))
        chans = []
        for _c in range(3):
            spec = amp * np.exp(2j * np.pi * rng.random((h, w)))
            f = np.real(np.fft.ifft2(spec))
            chans.append((f - f.mean()) / (f.std() + 1e-9))
        base = np.stack(chans, -1) * 40 + rng.uniform(60, 190, 3)
        im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(im)
        for _s in range(int(rng.integers(3, 9))):
            x0, y0 = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.8)
            x1, y1 = x0 + rng.uniform(w * 0.05, w * 0.4), y0 + rng.uniform(h * 0.05, h * 0.4)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            shape = int(rng.integers(0, 3))
            if shape == 0:
                draw.ellipse((x0, y0, x1, y1), fill=colour)
            elif shape == 1:
                draw.rectangle((x0, y0, x1, y1), fill=colour)
            else:
                draw.polygon([(x0, y1), ((x0 + x1) / 2, y0), (x1, y1)], fill=colour)
        out.append(im)
    return out


def jitter(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """torchvision-style ColorJitter(0.3, 0.3, 0.4, 0.05), in a random order of the four."""
    steps = rng.permutation(4)
    for s in steps.tolist():
        if s == 0:
            im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.7, 1.3))
        elif s == 1:
            im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.7, 1.3))
        elif s == 2:
            im = ImageEnhance.Color(im).enhance(rng.uniform(0.6, 1.4))
        else:
            hsv = np.asarray(im.convert("HSV")).copy()
            hsv[..., 0] = (hsv[..., 0].astype(np.int64) + int(rng.uniform(-0.05, 0.05) * 255)) % 256
            im = Image.fromarray(hsv, "HSV").convert("RGB")
    return im


def crop(im: Image.Image, rng: np.random.Generator, keep: float) -> Image.Image:
    w, h = im.size
    cw, ch = int(w * keep), int(h * keep)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return im.crop((x0, y0, x0 + cw, y0 + ch))


def write_duplicates(src: list[Image.Image], dst: Path, seed: int = 0) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Files, group (original index) and copy kind (-1 = the original) of each file written."""
    rng = np.random.default_rng(seed)
    dst.mkdir(parents=True, exist_ok=True)
    files, group, kind = [], [], []
    for g, im in enumerate(src):
        w, h = im.size
        variants = {
            "jpeg": (im, 30),
            "resize": (im.resize((w // 2, h // 2), Image.Resampling.BILINEAR), 90),
            "crop": (crop(im, rng, float(rng.uniform(0.90, 0.96))), 90),
            "jitter": (jitter(im, rng), 90),
            "hflip": (ImageOps.mirror(im), 90),
            "vflip": (ImageOps.flip(im), 90),
            "combo": (crop(im.resize((int(w * 0.6), int(h * 0.6)), Image.Resampling.BILINEAR), rng, 0.95), 50),
        }
        out = dst / f"{g:04d}_orig.jpg"
        im.save(out, quality=95)
        files.append(out), group.append(g), kind.append(-1)
        for t, name in enumerate(COPIES):
            out = dst / f"{g:04d}_{name}.jpg"
            pic, q = variants[name]
            pic.save(out, quality=q)
            files.append(out), group.append(g), kind.append(t)
    order = sorted(range(len(files)), key=lambda i: files[i].name)  # the order every tool lists the folder in
    return [files[i] for i in order], np.asarray(group)[order], np.asarray(kind)[order]


def write_odd(src: list[Image.Image], dst: Path, per_type: int, seed: int = 0) -> tuple[list[Path], list[str]]:
    """Files and their planted issue ("" for a normal image): ``per_type`` originals at random per issue type."""
    rng = np.random.default_rng(seed)
    dst.mkdir(parents=True, exist_ok=True)
    files, truth = [], []
    kind = np.full(len(src), -1)
    kind[rng.permutation(len(src))[:len(ODD) * per_type]] = np.repeat(np.arange(len(ODD)), per_type)
    for g, im in enumerate(src):
        issue = ODD[kind[g]] if kind[g] >= 0 else ""
        w, h = im.size
        if issue == "dark":
            im = ImageEnhance.Brightness(im).enhance(float(rng.uniform(0.08, 0.18)))
        elif issue == "light":
            arr = np.asarray(im, np.float64)
            im = Image.fromarray(np.clip(255 - (255 - arr) * float(rng.uniform(0.05, 0.15)), 0, 255).astype(np.uint8))
        elif issue == "blurry":
            im = im.filter(ImageFilter.GaussianBlur(max(w, h) * float(rng.uniform(0.012, 0.02))))
        elif issue == "low_information":  # a flat frame: a uniform colour with mild sensor noise
            arr = np.full((h, w, 3), rng.integers(30, 220, 3), np.float64) + rng.normal(0, 2, (h, w, 3))
            im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        elif issue == "odd_aspect_ratio":
            im = im.crop((0, h // 2 - h // 10, w, h // 2 + h // 10))  # a 5:1 strip (4:3 source)
        elif issue == "odd_size":
            im = im.resize((max(8, w // 12), max(8, h // 12)), Image.Resampling.BILINEAR)
        elif issue == "grayscale":  # half stored grey (mode L), half grey pictures saved as RGB
            im = ImageOps.grayscale(im) if g % 2 else ImageOps.grayscale(im).convert("RGB")
        if not issue and im.mode == "RGB" and not np.ptp(np.asarray(im), axis=2).any():
            issue = "grayscale"  # a black-and-white photo stored as RGB (the real set holds two): truly grayscale
        out = dst / f"{g:04d}_{issue or 'normal'}.jpg"
        im.save(out, quality=92)
        files.append(out)
        truth.append(issue)
    order = sorted(range(len(files)), key=lambda i: files[i].name)  # the order every tool lists the folder in
    return [files[i] for i in order], [truth[i] for i in order]


# ---------------------------------------------------------------- workers (one child process per tool)

def _all_pairs_hamming(h: np.ndarray) -> np.ndarray:
    """(m, m) Hamming distance; for (m, v) variant tables the smallest over full-vs-variant in both directions."""
    h = h.reshape(len(h), -1)
    d = np.full((len(h), len(h)), 64, np.int16)
    for v in range(h.shape[1]):
        d = np.minimum(d, np.bitwise_count(h[:, 0][:, None] ^ h[:, v][None, :]).astype(np.int16))
    return np.minimum(d, d.T)


def worker(tool: str, folder: Path, out: Path, embeddings: Path | None) -> None:
    files = sorted(folder.glob("*.jpg"))
    res: dict[str, object] = {}
    if tool == "maslow":
        from maslow.diversity import find_duplicates, folder_dataset
        from maslow.diversity.duplicates import image_hashes

        ds = folder_dataset(folder)
        t0, c0 = time.perf_counter(), time.process_time()
        r = find_duplicates(ds)
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        row = {p: i for i, p in enumerate(f.name for f in files)}
        res["pairs"] = sorted((row[r.paths[a]], row[r.paths[b]]) for a, b in r.pairs.tolist())
        np.save(out.with_suffix(".dist.npy"), _all_pairs_hamming(image_hashes(files).hashes))
    elif tool == "maslow-semantic":
        from maslow.diversity import find_duplicates, folder_dataset

        assert embeddings is not None
        feats = np.load(embeddings)
        ds = folder_dataset(folder)
        assert [str(p) for p in ds.images.path.tolist()] == [f.name for f in files]  # features follow the files
        t0, c0 = time.perf_counter(), time.process_time()
        r = find_duplicates(ds, features=feats)
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        res["pairs"] = [tuple(p) for p in r.pairs.tolist()]
    elif tool.startswith("imagehash-"):
        import imagehash

        fn = getattr(imagehash, tool.split("-", 1)[1])
        t0, c0 = time.perf_counter(), time.process_time()
        hs = []
        for f in files:
            with Image.open(f) as im:
                hs.append(int(str(fn(im)), 16))
        h = np.asarray(hs, np.uint64)
        d = _all_pairs_hamming(h[:, None])
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        np.save(out.with_suffix(".dist.npy"), d)
    elif tool == "cleanvision":
        from cleanvision import Imagelab

        row = {str(f.resolve()): i for i, f in enumerate(files)}
        sweep = {}
        for size in (8, 4, 5, 6):  # the default first: it is the one timed
            t0, c0 = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                lab = Imagelab(data_path=str(folder))
                lab.find_issues({"near_duplicates": {"hash_size": size}, "exact_duplicates": {}})
            if size == 8:
                res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
            pairs: set[tuple[int, int]] = set()
            for kind in ("near_duplicates", "exact_duplicates"):
                for g in lab.info[kind]["sets"]:
                    idx = sorted(row[str(Path(p).resolve())] for p in g)
                    pairs |= {(a, b) for k, a in enumerate(idx) for b in idx[k + 1:]}
            sweep[size] = sorted(pairs)
        res["sweep"] = sweep
    elif tool == "fiftyone-rule":
        from sklearn.neighbors import NearestNeighbors

        assert embeddings is not None
        x = np.load(embeddings).astype(np.float64)
        t0, c0 = time.perf_counter(), time.process_time()
        nn = NearestNeighbors(metric="cosine").fit(x)  # as fiftyone-brain's sklearn backend builds it
        _, ind = nn.radius_neighbors(x, radius=0.2)
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        res["pairs"] = sorted({(min(i, int(j)), max(i, int(j))) for i, js in enumerate(ind) for j in js if j != i})
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        np.save(out.with_suffix(".dist.npy"), (1.0 - xn @ xn.T).astype(np.float32))
    elif tool == "uniqueness-fiftyone":  # compute_uniqueness, then sort_by("uniqueness", reverse=True)
        from sklearn.neighbors import NearestNeighbors

        assert embeddings is not None
        x = np.load(embeddings).astype(np.float64)
        t0, c0 = time.perf_counter(), time.process_time()
        dists, _ = NearestNeighbors(metric="cosine").fit(x).kneighbors(x, n_neighbors=4)  # K = 3, plus itself
        u = np.mean(dists[:, 1:] * [0.6, 0.3, 0.1], axis=1)
        u /= u.max()
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        res["order"] = np.argsort(-u, kind="stable").tolist()
    elif tool == "uniqueness-maslow":  # maslow's diverse order, the same features
        from maslow.diversity.select import select

        assert embeddings is not None
        x = np.load(embeddings)
        t0, c0 = time.perf_counter(), time.process_time()
        sel = select(x, budget=min(len(x), 100), rng=0)
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        res["order"] = sel.order.tolist()
    elif tool == "embed":
        from maslow.embed import embed

        t0, c0 = time.perf_counter(), time.process_time()
        feats = embed(files, embedder="efficientnet-lite0", use_cache=False)
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        np.save(out.with_suffix(".npy"), feats)
    elif tool == "odd-cleanvision":
        from cleanvision import Imagelab

        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            lab = Imagelab(data_path=str(folder))
            lab.find_issues({t: {} for t in ODD})
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        issues = lab.issues
        name = {str(Path(p).resolve()): p for p in issues.index}
        res["flags"] = {t: [bool(issues.loc[name[str(f.resolve())], f"is_{t}_issue"]) for f in files] for t in ODD}
    elif tool == "odd-maslow":
        from maslow.diversity import folder_dataset, image_issues

        ds = folder_dataset(folder)
        t0, c0 = time.perf_counter(), time.process_time()
        r = image_issues(ds)
        res["seconds"], res["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
        row = {p: i for i, p in enumerate(f.name for f in files)}
        flags = {t: [False] * len(files) for t in ODD}
        for t in ODD:
            for i in r.rows(t).tolist():
                flags[t][row[r.paths[i]]] = True
        res["flags"] = flags
    else:
        raise SystemExit(f"unknown tool {tool}")
    status = Path("/proc/self/status")
    hwm = [ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM")] if status.exists() else []
    res["peak_mb"] = int(hwm[0].split()[1]) / 1024 if hwm else float("nan")  # this process's peak resident memory
    out.write_text(json.dumps(res))


def run_tool(tool: str, folder: Path, work: Path, embeddings: Path | None = None) -> dict | None:
    """Run ``tool`` in a child process: its result, plus seconds (the call), CPU-s and peak RSS (MB) of the process."""
    out = work / f"{tool}-{folder.name}.json"
    cmd = [sys.executable, __file__, "--worker", tool, "--folder", str(folder), "--out", str(out)]
    if embeddings is not None:
        cmd += ["--embeddings", str(embeddings)]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        last = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        print(f"  {tool}: skipped ({last[0]})", file=sys.stderr)
        return None
    res = json.loads(out.read_text())
    dist = out.with_suffix(".dist.npy")
    if dist.exists():
        res["dist"] = np.load(dist)
    return res


# ---------------------------------------------------------------- scoring

def score_pairs(pairs: np.ndarray, group: np.ndarray, kind: np.ndarray) -> dict[str, float]:
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    same = group[pairs[:, 0]] == group[pairs[:, 1]]
    found = {(int(a), int(b)) for a, b in pairs[same].tolist()} | {(int(b), int(a)) for a, b in pairs[same].tolist()}
    orig = {int(g): i for i, (g, k) in enumerate(zip(group, kind, strict=True)) if k == -1}
    out = {"precision": float(same.mean()) if len(pairs) else 1.0, "n_pairs": len(pairs)}
    hits = []
    for t, name in enumerate(COPIES):
        h = [(orig[int(group[r])], int(r)) in found for r in np.flatnonzero(kind == t)]
        out[name] = float(np.mean(h))
        hits += h
    out["recall"] = float(np.mean(hits))
    p, r = out["precision"], out["recall"]
    out["f1"] = 2 * p * r / (p + r) if p + r else 0.0
    return out


def pairs_within(dist: np.ndarray, thr: float) -> np.ndarray:
    i, j = np.nonzero(np.triu(dist <= thr, 1))
    return np.stack([i, j], 1)


def best_of(candidates: dict[str, np.ndarray], group: np.ndarray, kind: np.ndarray) -> tuple[str, dict[str, float]]:
    scored = {k: score_pairs(p, group, kind) for k, p in candidates.items()}
    k = max(scored, key=lambda c: (scored[c]["f1"], scored[c]["recall"]))
    return k, scored[k]


def duplicates_part(name: str, src: list, work: Path, embed: bool, say) -> list[dict]:
    folder = work / name
    files, group, kind = write_duplicates(src, folder)
    say(f"{name}: {len(src)} originals x {len(COPIES)} copies = {len(files)} images")
    rows = []
    emb_path = None
    if embed:
        e = run_tool("embed", folder, work)
        if e is not None:
            emb_path = work / f"embed-{name}.npy"
            say(f"  EfficientNet-Lite0 embeddings: {e['seconds']:.1f} s ({len(files) / e['seconds']:.0f} images/s)")
    tools = ["maslow", *(["maslow-semantic"] if emb_path else []), *[f"imagehash-{h}" for h in IMAGEHASH],
             "cleanvision", *(["fiftyone-rule"] if emb_path else [])]
    for tool in tools:
        res = run_tool(tool, folder, work, emb_path if tool in ("maslow-semantic", "fiftyone-rule") else None)
        if res is None:
            continue
        row: dict = {"set": name, "tool": tool, "seconds": res["seconds"], "cpu_s": res["cpu_s"],
                     "peak_mb": res["peak_mb"], "images_per_s": len(files) / res["seconds"]}
        if tool.startswith("imagehash-"):
            d = res["dist"]
            row["default_knob"] = "<= 8 (none)"
            row["default"] = score_pairs(pairs_within(d, 8), group, kind)
            knob, best = best_of({str(t): pairs_within(d, t) for t in range(0, 25)}, group, kind)
        elif tool == "cleanvision":
            sweep = {k: np.asarray(v, np.int64) for k, v in res["sweep"].items()}
            row["default_knob"] = "hash_size 8"
            row["default"] = score_pairs(sweep["8"], group, kind)
            knob, best = best_of({f"hash_size {k}": v for k, v in sweep.items()}, group, kind)
        elif tool == "fiftyone-rule":
            row["default_knob"] = "cos dist <= 0.2"
            row["default"] = score_pairs(np.asarray(res["pairs"]), group, kind)
            grid = [0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3]
            knob, best = best_of({f"cos dist <= {t:g}": pairs_within(res["dist"], t) for t in grid}, group, kind)
        elif tool == "maslow":
            row["default_knob"] = "<= 8"
            row["default"] = score_pairs(np.asarray(res["pairs"]), group, kind)
            knob, best = best_of({f"<= {t}": pairs_within(res["dist"], t) for t in range(0, 25)}, group, kind)
        else:
            row["default_knob"] = "<= 8, cos >= 0.95"
            row["default"] = score_pairs(np.asarray(res["pairs"]), group, kind)
            knob, best = row["default_knob"], row["default"]
        row["best_knob"], row["best"] = knob, best
        rows.append(row)
    for tool in ("uniqueness-maslow", "uniqueness-fiftyone") if emb_path else ():
        res = run_tool(tool, folder, work, emb_path)
        if res is not None:
            order = np.asarray(res["order"], np.int64)
            rows.append({"set": name, "tool": tool, "seconds": res["seconds"], "cpu_s": res["cpu_s"],
                         "peak_mb": res["peak_mb"],
                         "originals_in_first": {k: len(set(group[order[:k]].tolist())) for k in (25, 50, 100)}})
    return rows


def odd_part(src: list, work: Path, per_type: int, say) -> list[dict]:
    folder = work / "odd"
    files, truth = write_odd(src, folder, per_type)
    t = np.asarray(truth)
    say(f"odd: {len(files)} real images, {per_type} planted per issue type ({len(ODD)} types)")
    rows = []
    for tool in ("odd-maslow", "odd-cleanvision"):
        res = run_tool(tool, folder, work)
        if res is None:
            continue
        row = {"tool": tool.removeprefix("odd-"), "seconds": res["seconds"], "cpu_s": res["cpu_s"],
               "peak_mb": res["peak_mb"]}
        normal = t == ""
        flagged_normal = np.zeros(len(t), bool)
        for issue in ODD:
            flag = np.asarray(res["flags"][issue], bool)
            planted = t == issue
            tp = int((flag & planted).sum())
            # a false flag is one on a normal image: an image planted with another issue may have this one too
            # (a flat frame at 25% grey is dark as well as low in information)
            fp = int((flag & normal).sum())
            flagged_normal |= flag & normal
            row[issue] = {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / planted.sum(),
                          "flagged": int(flag.sum())}
        row["normal_flagged"] = int(flagged_normal.sum())
        row["n_normal"] = int(normal.sum())
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="originals per duplicate set")
    ap.add_argument("--parts", nargs="*", default=["duplicates", "odd"], choices=["duplicates", "odd"])
    ap.add_argument("--per-type", type=int, default=6, help="odd images planted per issue type")
    ap.add_argument("--no-embed", action="store_true", help="skip the embedding tools (no torch needed)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--embeddings", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.folder, args.out, args.embeddings)
        return
    say = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
    report: dict = {"duplicates": [], "odd": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "duplicates" in args.parts:
            sets = [("generated", generated_originals(args.n))]
            real = real_originals(args.n)
            if real:
                sets.append(("real", real))
            else:
                say(f"no images under {SHARED}: the real set is skipped")
            for name, src in sets:
                report["duplicates"] += duplicates_part(name, src, work, not args.no_embed, say)
        if "odd" in args.parts:
            real = real_originals(10_000, camvid=True)  # every real image: the odd ones planted, the rest normal
            if real:
                report["odd"] = odd_part(real, work, args.per_type, say)
            else:
                say(f"no images under {SHARED}: the odd-image part is skipped")
    if args.json:
        print(json.dumps(report, indent=1))
        return
    render(report)


def render(report: dict) -> None:
    for name in dict.fromkeys(r["set"] for r in report["duplicates"]):
        order = [r for r in report["duplicates"] if r["set"] == name and "originals_in_first" in r]
        rows = [r for r in report["duplicates"] if r["set"] == name and "originals_in_first" not in r]
        base = next((r for r in rows if r["tool"] == "maslow"), None)
        print(f"\nnear duplicates, {name} set: precision / recall at each tool's default, then at its best threshold")
        head = (f"{'tool':18s} {'default':>17s} {'P':>6s} {'R':>6s} " + " ".join(f"{c:>6s}" for c in COPIES)
                + f" {'best':>17s} {'P':>6s} {'R':>6s} {'s':>6s} {'MB':>6s} {'x maslow s':>10s}")
        print(head)
        for r in rows:
            d, b = r["default"], r["best"]
            ratio = r["seconds"] / base["seconds"] if base else float("nan")
            print(f"{r['tool']:18s} {r['default_knob']:>17s} {d['precision']:6.3f} {d['recall']:6.3f} "
                  + " ".join(f"{d[c]:6.3f}" for c in COPIES)
                  + f" {r['best_knob']:>17s} {b['precision']:6.3f} {b['recall']:6.3f} {r['seconds']:6.2f} "
                  f"{r['peak_mb']:6.0f} {ratio:10.2f}")
        if order:
            print(f"diverse order, {name} set: distinct originals among the first k images (each has 8 versions)")
            for r in order:
                firsts = "  ".join(f"k={k}: {v}" for k, v in r["originals_in_first"].items())
                print(f"  {r['tool']:20s} {firsts}   {r['seconds']:.2f} s  {r['peak_mb']:.0f} MB")
    if report["odd"]:
        print("\nodd images (cleanvision's issue types): precision / recall per planted type (a false flag: one on a "
              "normal image)")
        print(f"{'tool':12s} " + " ".join(f"{t[:14]:>14s}" for t in ODD) + f" {'normal flagged':>15s} {'s':>6s} "
              f"{'MB':>6s}")
        for r in report["odd"]:
            print(f"{r['tool']:12s} " + " ".join(f"{r[t]['precision']:6.2f}/{r[t]['recall']:<7.2f}" for t in ODD)
                  + f" {r['normal_flagged']:>7d} of {r['n_normal']:<4d} {r['seconds']:6.2f} {r['peak_mb']:6.0f}")


if __name__ == "__main__":
    main()
