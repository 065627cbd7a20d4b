"""Stats, balance and coverage against direct per-row computations on random datasets (empty, one image, one
object per class, boxes on the bucket edges, NaN boxes, crowd regions, unassigned splits)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity import balance, coverage, dataset_stats
from maslow.diversity.coverage import ASPECT_EDGES, RESOLUTION_EDGES


def _random(rng: np.random.Generator) -> dict[str, Any]:
    k, m = int(rng.integers(1, 5)), int(rng.integers(0, 8))
    n = int(rng.integers(0, 15)) if m else 0
    img, lab = np.sort(rng.integers(0, max(m, 1), n)), rng.integers(0, k, n)
    w, h = rng.integers(1, 300, m), rng.integers(1, 300, m)
    box = np.zeros((n, 4))
    for r in range(n):
        x0, y0 = rng.uniform(-10, w[img[r]]), rng.uniform(-10, h[img[r]])
        box[r] = [x0, y0, x0 + rng.choice([0, rng.uniform(0, 200), 32.0, 96.0]),
                  y0 + rng.choice([0, rng.uniform(0, 200), 32.0, 96.0])]
    box[rng.random(n) < 0.15] = np.nan
    crowd = rng.random(n) < 0.1
    split = rng.choice(["train", "val", "test"], m) if rng.random() < 0.8 else None
    ds = Dataset(LabelSchema.from_names([f"c{i}" for i in range(k)]),
                 Images(path=[f"{i}.png" for i in range(m)], width=w, height=h,
                        **({"split": split} if split is not None else {})),
                 Annotations(image=img, label=lab, box=box, iscrowd=crowd))
    sp = np.full(m, "") if split is None else np.asarray(split).astype(str)
    return {"ds": ds, "k": k, "m": m, "n": n, "img": img, "lab": lab, "box": box, "crowd": crowd, "w": w, "h": h,
            "split": sp}


def test_stats_equal_direct_counts() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        r = _random(rng)
        s, k, m, img, lab, sp = dataset_stats(r["ds"]), r["k"], r["m"], r["img"], r["lab"], r["split"]
        names = sorted(set(sp.tolist()))
        assert list(s.splits) == names
        assert s.images_per_split.tolist() == [int((sp == u).sum()) for u in names]
        assert s.annotations_per_class.tolist() == [int((lab == c).sum()) for c in range(k)]
        assert s.images_per_class.tolist() == [len(set(img[lab == c].tolist())) for c in range(k)]
        assert s.annotations_per_class_split.tolist() == [
            [sum(1 for i, c2 in zip(img, lab, strict=True) if c2 == c and sp[i] == u) for u in names] for c in range(k)]
        per = np.array([int((img == i).sum()) for i in range(m)], int)
        bins = [(0, 0), (1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, 10**9)]
        assert s.per_image_hist.tolist() == [int(((per >= a) & (per <= b)).sum()) for a, b in bins]
        assert s.n_empty_images == int((per == 0).sum())
        if m:
            assert (s.per_image_mean, s.per_image_median, s.per_image_max) == (per.mean(), np.median(per), per.max())
        area = (r["box"][:, 2] - r["box"][:, 0]) * (r["box"][:, 3] - r["box"][:, 1])
        for j, (lo, hi) in enumerate([(0, 32**2), (32**2, 96**2), (96**2, np.inf)]):
            assert s.size_per_class[:, j].tolist() == [int(((lab == c) & (area >= lo) & (area < hi)).sum())
                                                       for c in range(k)]
        assert s.label_types["crowd"] == int(r["crowd"].sum())


def test_balance_equals_direct_formulas() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        r = _random(rng)
        k, m, img, lab, sp = r["k"], r["m"], r["img"], r["lab"], r["split"]
        for split in [None, *sorted(set(sp.tolist()))]:
            beta, t = float(rng.choice([0.0, 0.5, 0.999])), float(rng.choice([0.0, 0.001, 0.3, 2.0]))
            target = rng.choice([None, 0.0, 0.2, 0.5])
            rep = balance(r["ds"], split=split, beta=beta, repeat_threshold=t, target_share=target)
            ins = np.ones(m, bool) if split is None else sp == split
            cnt = np.array([sum(1 for i, c2 in zip(img, lab, strict=True) if c2 == c and ins[i]) for c in range(k)])
            n_all, present = int(cnt.sum()), cnt > 0
            assert rep.remedy_counts.tolist() == cnt.tolist()
            assert np.allclose(rep.share, cnt / n_all) if n_all else np.isnan(rep.share).all()
            if present.any():
                assert rep.imbalance_ratio == cnt.max() / cnt[present].min()
            else:
                assert math.isnan(rep.imbalance_ratio)
            eff = np.array([(1 - beta**c) / (1 - beta) for c in cnt])
            assert np.allclose(rep.effective_number, eff)
            assert rep.rare.tolist() == [not p or c / max(n_all, 1) < 0.5 / k for c, p in zip(cnt, present, strict=True)]
            for got, raw in ((rep.weights_inverse, 1 / np.maximum(cnt, 1)), (rep.weights_effective, 1 / np.maximum(eff, 1e-300))):
                ref = np.zeros(k)
                ref[present] = raw[present] / raw[present].mean() if present.any() else 0
                assert np.allclose(got, ref)
            n_in = int(ins.sum())
            freq = np.array([len({int(i) for i, c2 in zip(img, lab, strict=True) if c2 == c and ins[i]}) / n_in
                             if n_in else 0.0 for c in range(k)])
            assert np.allclose(rep.image_frequency, freq)
            r_c = np.array([max(1.0, math.sqrt(t / f)) if f > 0 else 1.0 for f in freq])
            assert np.allclose(rep.class_repeat, r_c)
            r_i = [max((r_c[c] for c in lab[img == i]), default=1.0) if ins[i] else np.nan for i in range(m)]
            assert np.allclose(rep.image_repeat, r_i, equal_nan=True)
            s = 0.5 / k if target is None else float(target)
            need = []
            for c in range(k):  # smallest x with (n_c + x) / (N + x) >= s, by counting up
                x = 0
                while cnt[c] + x < s * (n_all + x) - 1e-12:
                    x += 1
                need.append(x)
            assert rep.needed.tolist() == need


def _under(labels: tuple[str, ...], counts: np.ndarray, rel: float, ordered: bool) -> tuple[str, ...]:
    total, nz = counts.sum(), np.flatnonzero(counts)
    if not total:
        return ()
    return tuple(lab for j, (lab, c) in enumerate(zip(labels, counts, strict=True))
                 if c / total < rel / len(counts) and (not ordered or nz[0] <= j <= nz[-1]))


def _hist(v: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """np.histogram with values below the first edge in the first bin and past the last finite edge in the last."""
    v = v[np.isfinite(v)]
    e = np.array((*edges[:-1], max(v.max(initial=0.0), edges[-2]) + 1) if math.isinf(edges[-1]) else edges)
    return np.histogram(np.clip(v, e[0], np.nextafter(e[-1], -np.inf)), bins=e)[0]


def test_coverage_bins_equal_numpy_histograms() -> None:
    rng = np.random.default_rng(2)
    for _ in range(300):
        r = _random(rng)
        rel, grid = float(rng.choice([0.0, 0.25, 1.0])), int(rng.integers(1, 6))
        cov = coverage(r["ds"], pixels=False, grid=grid, rel_share=rel)
        w, h, box, img = r["w"], r["h"], r["box"], r["img"]
        for name, v, edges in (("resolution_mp", w * h / 1e6, RESOLUTION_EDGES), ("aspect", w / h, ASPECT_EDGES)):
            c = _hist(v, edges)
            assert cov.image[name].counts == tuple(c.tolist())
            assert cov.image[name].under == _under(cov.image[name].labels, c, rel, True)
        ok = ~np.isnan(box).any(1) & ~r["crowd"]
        b, bi = box[ok], img[ok]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        size = np.array([(area < 32**2).sum(), ((area >= 32**2) & (area < 96**2)).sum(), (area >= 96**2).sum()])
        assert cov.objects["size"].counts == tuple(size.tolist())
        assert cov.objects["size"].under == _under(("small", "medium", "large"), size, rel, False)
        bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        c = _hist(np.divide(bw, bh, out=np.full(len(b), np.nan), where=bh > 0), ASPECT_EDGES)
        assert cov.objects["aspect"].counts == tuple(c.tolist())
        pos = np.zeros((grid, grid), int)
        for (x0, y0, x1, y1), i in zip(b, bi, strict=True):
            col = min(max(math.floor((x0 + x1) / 2 / w[i] * grid), 0), grid - 1)
            row = min(max(math.floor((y0 + y1) / 2 / h[i] * grid), 0), grid - 1)
            pos[row, col] += 1
        assert np.array_equal(cov.position, pos)
        assert cov.objects["position"].under == _under(cov.objects["position"].labels, pos.ravel(), rel, False)
        per_class = np.bincount(r["lab"], minlength=r["k"])
        assert cov.objects["class"].under == _under(cov.objects["class"].labels, per_class, rel, False)


def test_coverage_pixel_properties_equal_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    sizes = [(40, 30), (2, 2), (1, 50), (100, 100), (3, 3), (64, 20)]
    arrays = []
    for i, (w, h) in enumerate(sizes):
        a = rng.integers(0, 256, (h, w), dtype=np.uint8) if i % 2 else np.full((h, w), [0, 0, 255, 0, 7, 0][i], np.uint8)
        Image.fromarray(a).save(tmp_path / f"{i}.png")
        arrays.append(a.astype(np.float64))
    images = Images(path=[f"{i}.png" for i in range(len(sizes))] + ["missing.png"],
                    width=[w for w, _ in sizes] + [10], height=[h for _, h in sizes] + [10])
    cov = coverage(Dataset(LabelSchema.from_names(["x"]), images, Annotations.empty(), root=tmp_path))
    for i, g in enumerate(arrays):
        assert np.isclose(cov.values["brightness"][i], g.mean() / 255)
        assert np.isclose(cov.values["contrast"][i], g.std() / 255)
        lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
        assert np.isclose(cov.values["sharpness"][i], lap.var()) if min(g.shape) >= 3 else np.isnan(cov.values["sharpness"][i])
    assert [i for i, _ in cov.unreadable] == [6] and np.isnan(cov.values["brightness"][6])
    bright = np.array([g.mean() / 255 for g in arrays])
    assert cov.image["brightness"].counts == tuple(np.histogram(bright, bins=np.linspace(0, 1, 11))[0].tolist())


def test_empty_and_single_object_datasets() -> None:
    for names in (["a", "b"], []):
        ds = Dataset(LabelSchema.from_names(names), Images(path=[], width=[], height=[]), Annotations.empty())
        rep = balance(ds)
        assert rep.counts.tolist() == [0] * len(names) and math.isnan(rep.imbalance_ratio)
        assert coverage(ds, pixels=False).under_covered() == []
        assert dataset_stats(ds).n_images == 0
    ds = Dataset(LabelSchema.from_names(["a", "b"]), Images(path=["x.png"], width=[10], height=[10], split=["train"]),
                 Annotations(image=[0], label=[1], box=[[0, 0, 5, 5]]))
    rep = balance(ds, split="train")
    assert rep.imbalance_ratio == 1.0 and rep.weights_inverse.tolist() == [0.0, 1.0]
    assert rep.needed.tolist() == [1, 0] and rep.rare.tolist() == [True, False]  # 1 / (1 + 1) >= 0.25
    assert rep.image_repeat.tolist() == [1.0]
