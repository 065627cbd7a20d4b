"""coverage() recomputed by brute force from its docstring: bins in exact rationals (values on an edge open the
upper bin; the top finite edge closes the last), the under-covered rule, crowd regions, unset metadata values,
unreadable images, and the CLI's --json against the API."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from maslow import io
from maslow.cli.render import json_text
from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.diversity.coverage import ASPECT_EDGES, BRIGHTNESS_EDGES, RESOLUTION_EDGES, Distribution, coverage
from maslow.diversity.stats import PER_IMAGE_BINS
from maslow.sample import write_shapes
from tests.helpers import run_cli

SIZES = ("small", "medium", "large")


def _bin(v: Fraction, edges: tuple[float, ...]) -> int:
    """Index j with edges[j] <= v < edges[j + 1], the edges read as the decimals they are written as."""
    e = [Fraction(str(x)) for x in edges if math.isfinite(x)]
    j = max(i for i, lo in enumerate(e) if v >= lo) if v >= e[0] else 0
    return min(j, len(edges) - 2)


def _under(d: Distribution, rel: float, ordered: bool) -> tuple[str, ...]:
    total = sum(d.counts)
    nz = [j for j, c in enumerate(d.counts) if c]
    if not total:
        return ()
    return tuple(lab for j, (lab, c) in enumerate(zip(d.labels, d.counts, strict=True))
                 if Fraction(c, total) < Fraction(rel) / len(d.counts) and (not ordered or nz[0] <= j <= nz[-1]))


def _random(rng: np.random.Generator) -> tuple[Dataset, dict]:
    k, m = int(rng.integers(1, 5)), int(rng.integers(1, 9))
    sides = [1, 2, 4, 5, 8, 10, 100, 200, 250, 316, 400, 1000, 2000]
    w, h = rng.choice(sides, m), rng.choice(sides, m)  # aspects 0.5, 0.8, 1.25, 2 and 0.1 / 0.3 / 1 MP on edges
    img, lab, box, crowd, weather = [], [], [], [], []
    for i in range(m):
        for _ in range(int(rng.integers(0, 6))):
            x0, y0 = int(rng.integers(0, w[i] + 1)), int(rng.integers(0, h[i] + 1))
            bw, bh = (int(rng.choice([0, 16, 32, 48, 96, 120, int(rng.integers(0, 300))])) for _ in range(2))
            img.append(i)
            lab.append(int(rng.integers(0, k)))
            box.append([x0, y0, x0 + bw, y0 + bh] if rng.random() > 0.1 else [np.nan] * 4)
            crowd.append(bool(rng.random() < 0.2))
            weather.append(rng.choice(["sun", "rain", None, np.nan], p=[0.4, 0.3, 0.15, 0.15]))
    extra = {"camera": rng.choice(["a", "b", "c"], m).tolist(),
             "exposure": [float(x) if x == x else np.nan for x in rng.choice([0.5, 1.0, np.nan], m)]}
    ds = Dataset(LabelSchema.from_names([f"c{j}" for j in range(k)]),
                 Images(path=[f"{i}.png" for i in range(m)], width=w, height=h, extra=extra),
                 Annotations(image=img, label=lab, box=np.asarray(box, float).reshape(-1, 4), iscrowd=crowd,
                             attributes={"weather": weather}))
    return ds, {"k": k, "w": w, "h": h, "img": img, "lab": lab, "box": box, "crowd": crowd, "extra": extra,
                "weather": weather}


def _unset(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def test_every_count_and_under_covered_list_by_brute_force() -> None:
    rng = np.random.default_rng(21)
    for _ in range(200):
        ds, r = _random(rng)
        rel, grid = float(rng.choice([0.0, 0.25, 0.5, 1.0, 3.0])), int(rng.integers(1, 6))
        cov = coverage(ds, pixels=False, grid=grid, rel_share=rel)
        k, w, h = r["k"], r["w"].tolist(), r["h"].tolist()
        # image properties from the table, in exact rationals
        for name, values, edges in (
                ("resolution_mp", [Fraction(a * b, 10**6) for a, b in zip(w, h, strict=True)], RESOLUTION_EDGES),
                ("aspect", [Fraction(a, b) for a, b in zip(w, h, strict=True)], ASPECT_EDGES)):
            want = [0] * (len(edges) - 1)
            for v in values:
                want[_bin(v, edges)] += 1
            assert cov.image[name].counts == tuple(want), name
        # objects: boxes of non-crowd annotations only
        objs = [(i, c, b) for i, c, b, cr in zip(r["img"], r["lab"], r["box"], r["crowd"], strict=True)
                if not cr and not math.isnan(b[0])]

        def size(b: list[float]) -> str:
            a = (b[2] - b[0]) * (b[3] - b[1])
            return "small" if a < 32**2 else "medium" if a < 96**2 else "large"

        assert cov.objects["size"].counts == tuple(sum(size(b) == s for _, _, b in objs) for s in SIZES)
        for c in range(k):  # used to count crowd regions too, so the classes did not add up to objects["size"]
            assert cov.per_class[f"c{c}"].counts == tuple(sum(size(b) == s and c2 == c for _, c2, b in objs)
                                                          for s in SIZES)
        aspect = [0] * (len(ASPECT_EDGES) - 1)
        pos = np.zeros((grid, grid), int)
        for i, _, b in objs:
            if b[3] > b[1]:
                aspect[_bin(Fraction(b[2] - b[0], b[3] - b[1]), ASPECT_EDGES)] += 1
            cx, cy = Fraction(b[0] + b[2], 2 * w[i]), Fraction(b[1] + b[3], 2 * h[i])
            pos[min(math.floor(cy * grid), grid - 1), min(math.floor(cx * grid), grid - 1)] += 1
        assert cov.objects["aspect"].counts == tuple(aspect)
        assert cov.position.tolist() == pos.tolist()
        assert cov.objects["class"].counts == tuple(r["lab"].count(c) for c in range(k))
        per_image = [r["img"].count(i) for i in range(len(w))]
        lows = [0, *[b + 1 for b in PER_IMAGE_BINS]]
        highs = [*PER_IMAGE_BINS, math.inf]
        assert cov.objects["per_image"].counts == tuple(sum(lo <= n <= hi for n in per_image)
                                                        for lo, hi in zip(lows, highs, strict=True))
        # metadata: unset values (None, NaN) not counted; columns whose values are all distinct skipped
        for key, vals in (("extra:camera", r["extra"]["camera"]), ("extra:exposure", r["extra"]["exposure"]),
                          ("attribute:weather", r["weather"])):
            kept = sorted(str(v) for v in vals if not _unset(v))
            counts = {v: kept.count(v) for v in sorted(set(kept))}
            shown = bool(kept) and (key.startswith("attribute") or len(counts) < len(kept))
            assert (key in cov.metadata) == shown, key
            if shown:  # NaN used to be counted as a value "nan"
                assert dict(zip(cov.metadata[key].labels, cov.metadata[key].counts, strict=True)) == counts
        # the rule, on every distribution
        for group, dists in (("image", cov.image), ("objects", cov.objects), ("per_class", cov.per_class),
                             ("metadata", cov.metadata)):
            for name, d in dists.items():
                ordered = group == "image" or name in ("aspect", "per_image")
                assert d.under == _under(d, rel, ordered), (group, name)
        assert cov.under_covered() == [(g, p, u) for g, ds_ in (("image", cov.image), ("objects", cov.objects),
                                                              ("per_class", cov.per_class),
                                                              ("metadata", cov.metadata))
                                       for p, d in ds_.items() for u in d.under]


def test_brightness_on_the_edges_unreadable_files_and_single_images(tmp_path: Path) -> None:
    greys = [(0, 0), (25, 26), (51, 51), (127, 128), (229, 230), (255, 255), (76, 77)]  # means on edges 0 .. 1
    paths = []
    for j, (a, b) in enumerate(greys):
        Image.fromarray(np.array([[a, b], [b, a]], np.uint8)).save(tmp_path / f"{j}.png")
        paths.append(f"{j}.png")
    (tmp_path / "garbage.png").write_bytes(b"not an image")
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(tmp_path / "whole.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:40])
    (tmp_path / "folder.png").mkdir()
    bad = ["missing.png", "garbage.png", "cut.png", "folder.png"]
    all_paths = paths + bad
    m = len(all_paths)
    ds = Dataset(LabelSchema.from_names(["x"]), Images(path=all_paths, width=[2] * m, height=[2] * m),
                 Annotations.empty(), root=tmp_path)
    cov = coverage(ds)
    assert [i for i, _ in cov.unreadable] == list(range(len(paths), m))
    assert all(np.isnan(cov.values[p][len(paths):]).all() for p in ("brightness", "contrast", "sharpness"))
    want = [0] * 10
    for a, b in greys:
        want[_bin(Fraction(a + b, 2 * 255), BRIGHTNESS_EDGES)] += 1
    assert cov.image["brightness"].counts == tuple(want)  # unreadable images not counted
    assert cov.image["resolution_mp"].total == m  # sizes come from the table
    assert cov.image["brightness"].under == _under(cov.image["brightness"], 0.25, True)
    assert cov.to_dict()["image_summary"]["sharpness"]["mean"] is None  # 2x2 images have no 3x3 Laplacian
    one = coverage(ds.select_images(np.array([3])))  # one image, mean 0.5 exactly: bin 0.5-0.6, nothing under
    assert one.image["brightness"].counts == tuple(int(j == 5) for j in range(10)) and one.under_covered() == []
    assert one.to_dict()["image_summary"]["brightness"]["median"] == (127 + 128) / 2 / 255


def test_cli_json_equals_the_api(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "s", 14, seed=8)
    io.write(ds, tmp_path / "s" / "annotations.json", "coco")
    args = ["diversity", "coverage", str(tmp_path / "s" / "annotations.json"), "--from", "coco",
            "--grid", "3", "--rel-share", "0.5"]
    code, out = run_cli([*args, "--json"])
    assert code == 0, out
    got = json.loads(out)
    assert got.pop("plots") == [] and got.pop("n_images") == ds.n_images  # as every level-1 document
    r = coverage(io.read(tmp_path / "s" / "annotations.json", "coco"), grid=3, rel_share=0.5)
    assert got == json.loads(json_text(r.to_dict()))
    code, out = run_cli(args)
    assert code == 0, out
    shown = [(g, p, v) for g, p, v in r.under_covered() if g in ("objects", "metadata") and p != "position"]
    assert shown and all(f"{v} (under)" in out for _, _, v in shown)  # the tables mark what the API names
