"""balance() and dataset_stats() on semantic classes against numpy over the label maps themselves, on random
label maps (classes absent, unlabelled background pixels, crowd regions, a void class all of whose regions are
crowd regions, maps of different sizes, unassigned splits, object classes mixed in) and on CamVid:

- ignored pixels (crowd regions, pixels of no class) and void classes are left out of balance by default, as
  ``metrics.semantic_scores`` leaves them out (the maps are rewritten with -1 there); ``include_ignored=True``
  counts every pixel of the maps;

- pixels and shares: ``np.count_nonzero(label_map == v)`` summed over the maps;
- median-frequency balancing as published (Eigen & Fergus 2015, section 4.2; used by SegNet, Badrinarayanan et
  al. 2017): ``alpha_c = median_freq / freq(c)``, ``freq(c)`` = pixels of class c / total (counted) pixels of the
  images where c is present, ``median_freq`` the median of these frequencies (over the classes present);
- the rest as ``test_balance_reference`` writes it (LVIS repeat factors over images holding the class, ``needed``
  by counting up), each class compared only with the classes of its own measure.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.cli.render import json_text
from maslow.core import Annotations, Dataset, Images, LabelSchema, masks
from maslow.core.schema import ClassDef, Task
from maslow.diversity import balance, dataset_stats
from tests.conftest import shared_path
from tests.helpers import run_cli


def _smallest_x(n: float, total: float, s: float) -> int:
    """The smallest x >= 0 with ``(n + x) / (total + x) >= s``, by counting up (0 when total is 0)."""
    x = 0
    while total and (n + x) / (total + x) < s:
        x += 1
    return x


def _smallest_x_large(n: int, total: int, s: float) -> int:
    """The same for CamVid's millions of pixels: the rational closed form, checked against the definition."""
    x = max(0, math.ceil((Fraction(s) * total - n) / (1 - Fraction(s))))
    while x and (n + x - 1) / (total + x - 1) >= s:
        x -= 1
    while (n + x) / (total + x) < s:
        x += 1
    return x


def _case(rng: np.random.Generator, how: str) -> dict:
    """Random label maps (value ``k_sem`` = unlabelled background) and objects; ``how``: ``task`` (every class
    semantic through the task), ``kind`` (``ClassDef.kind``) or ``mixed`` (object classes too)."""
    k_sem = int(rng.integers(1, 6))
    k_obj = int(rng.integers(1, 4)) if how == "mixed" else 0
    kinds = rng.permutation(["semantic"] * k_sem + ["object"] * k_obj).tolist()
    sem_label = [j for j, kd in enumerate(kinds) if kd == "semantic"]  # label of pixel value v
    obj_label = [j for j, kd in enumerate(kinds) if kd == "object"]
    m = int(rng.integers(1, 9))
    maps, objs = [], []
    for _ in range(m):
        h, w = (int(v) for v in rng.integers(1, 10, 2))
        p = rng.dirichlet(np.full(k_sem + 1, 0.4))  # skewed: some classes tiny or absent
        maps.append(rng.choice(k_sem + 1, (h, w), p=p))
        objs.append([obj_label[int(c)] for c in rng.integers(0, max(k_obj, 1), int(rng.integers(0, 4)))]
                    if k_obj else [])
    rows = []  # (image, label, mask, box, crowd)
    void = int(rng.integers(0, k_sem)) if rng.random() < 0.3 else -1  # a class of crowd regions only ("255")
    crowd_of = {}
    for i, (lm, ob) in enumerate(zip(maps, objs, strict=True)):
        for v in np.unique(lm).tolist():
            if v < k_sem:
                crowd_of[i, v] = v == void or bool(rng.random() < 0.15)
                rows.append((i, sem_label[v], masks.encode(lm == v), [np.nan] * 4, crowd_of[i, v]))
        rows += [(i, c, None, [0.0, 0.0, 2.0, 1.0], False) for c in ob]
    img, lab, rle, box, crowd = (list(col) for col in zip(*rows, strict=True)) if rows else ([],) * 5
    if how == "task":
        schema = LabelSchema(classes=tuple(ClassDef(f"c{j}") for j in range(k_sem)),
                             tasks=(Task.SEMANTIC_SEGMENTATION,))
    else:
        schema = LabelSchema(classes=tuple(ClassDef(f"c{j}", kind=kd) for j, kd in enumerate(kinds)))
    split = rng.choice(["train", "val", ""], m).tolist()
    ds = Dataset(schema, Images(path=[f"{i}.png" for i in range(m)], width=[lm.shape[1] for lm in maps],
                                height=[lm.shape[0] for lm in maps], split=split),
                 Annotations(image=img, label=lab, mask=rle, box=box, iscrowd=crowd))
    return {"ds": ds, "maps": maps, "objs": objs, "sem_label": sem_label, "obj_label": obj_label, "split": split,
            "crowd_of": crowd_of}


def _counted(c: dict, include_ignored: bool) -> tuple[list[np.ndarray], list[int], set[int]]:
    """The label maps as balance counts them (-1: an ignored pixel), each map's counted pixels, and the void
    values (classes all of whose regions are crowd regions)."""
    maps, k_sem = c["maps"], len(c["sem_label"])
    if include_ignored:
        return maps, [lm.size for lm in maps], set()
    out = []
    for i, lm in enumerate(maps):
        em = np.where(lm < k_sem, lm, -1)  # value k_sem: pixels of no class
        for v in range(k_sem):
            if c["crowd_of"].get((i, v)):
                em[lm == v] = -1
        out.append(em)
    rows = {}
    for (_, v), crowd in c["crowd_of"].items():
        rows.setdefault(v, []).append(crowd)
    return out, [int(np.count_nonzero(em >= 0)) for em in out], {v for v, cr in rows.items() if all(cr)}


def _check(r, c: dict, split: str | None, beta: float, t: float, rare_share: float | None,
           target: float | None, include_ignored: bool = False) -> None:
    maps, den, void = _counted(c, include_ignored)
    objs, obj, split_of = c["objs"], c["obj_label"], c["split"]
    sem = c["sem_label"]  # every class's pixels below: a void class has none counted (by default)
    k = len(sem) + len(obj)
    ignored = [sem[v] for v in sorted(void)]  # not compared with the other classes
    assert r.ignored.tolist() == [j in ignored for j in range(k)] and r.include_ignored is include_ignored
    assert np.isnan(r.share[ignored]).all() and not r.rare[ignored].any() and not r.needed[ignored].any()
    assert not r.weights_inverse[ignored].any() and not r.weights_median_frequency[ignored].any()
    ins = [i for i in range(len(maps)) if split is None or split_of[i] == split]
    # pixels over all images and per split (NaN for object classes), numpy over the label maps
    px_all = np.full(k, np.nan)
    px_all[sem] = [sum(np.count_nonzero(lm == v) for lm in maps) for v in range(len(sem))]
    assert r.pixels.tolist() == pytest.approx(px_all.tolist(), nan_ok=True)
    assert r.measure == tuple("pixels" if j in sem else "annotations" for j in range(k))
    names = sorted(set(split_of))
    for j, s in enumerate(names):
        ref = [sum(np.count_nonzero(lm == v) for i, lm in enumerate(maps) if split_of[i] == s) for v in range(len(sem))]
        assert r.pixels_per_split[sem, j].tolist() == ref
        assert np.isnan(r.pixels_per_split[obj, j]).all()
    # amounts in the split: pixels for semantic classes, annotations for object classes
    amount = np.zeros(k)
    amount[sem] = [sum(np.count_nonzero(maps[i] == v) for i in ins) for v in range(len(sem))]
    amount[obj] = [sum(objs[i].count(o) for i in ins) for o in obj]
    assert r.remedy_pixels[sem].tolist() == amount[sem].tolist() and np.isnan(r.remedy_pixels[obj]).all()
    for group in ([j for j in sem if j not in ignored], obj):
        if not group:
            continue
        total, present = amount[group].sum(), [j for j in group if amount[j] > 0]
        measure = "annotations" if group is obj else "pixels"
        if total:
            assert r.share[group].tolist() == pytest.approx((amount[group] / total).tolist())
            assert r.imbalance_ratios[measure] == pytest.approx(amount[group].max() / min(amount[present]))
        else:
            assert np.isnan(r.share[group]).all() and math.isnan(r.imbalance_ratios[measure])
        s_rare = 0.5 / len(group) if rare_share is None else rare_share
        assert r.rare[group].tolist() == [amount[j] == 0 or amount[j] / total < s_rare for j in group]
        s = s_rare if target is None else target
        assert r.needed[group].tolist() == [_smallest_x(amount[j], total, s) for j in group]
        inv = [1 / amount[j] if amount[j] else 0.0 for j in group]
        mean = sum(1 / amount[j] for j in present) / len(present) if present else 1.0
        assert r.weights_inverse[group].tolist() == pytest.approx([x / mean for x in inv])
    if len(ignored) < len(sem):
        assert r.imbalance_ratio == pytest.approx(r.imbalance_ratios["pixels"], nan_ok=True) if not obj else \
            math.isnan(r.imbalance_ratio)
    # effective numbers: object classes only
    assert np.isnan(r.effective_number[sem]).all() and np.isnan(r.weights_effective[sem]).all()
    eff = [(1 - beta ** amount[j]) / (1 - beta) for j in obj]
    assert r.effective_number[obj].tolist() == pytest.approx(eff)
    # median-frequency balancing, as published
    freq = {}
    for v, j in enumerate(sem):
        holding = [i for i in ins if (maps[i] == v).any()]
        if holding:
            freq[j] = sum(np.count_nonzero(maps[i] == v) for i in holding) / sum(den[i] for i in holding)
    median = float(np.median(list(freq.values()))) if freq else math.nan
    assert r.pixel_frequency[sem].tolist() == pytest.approx([freq.get(j, 0.0) for j in sem])
    assert r.weights_median_frequency[sem].tolist() == pytest.approx(
        [median / freq[j] if j in freq else 0.0 for j in sem])
    assert np.isnan(r.pixel_frequency[obj]).all() and np.isnan(r.weights_median_frequency[obj]).all()
    # repeat factors: images holding the class (a pixel of it, or an object), as LVIS defines f_c
    held = [{sem[v] for v in np.unique(maps[i]).tolist() if 0 <= v < len(sem)} | set(objs[i]) for i in ins]
    f = [sum(j in h for h in held) / len(ins) for j in range(k)]
    assert r.image_frequency.tolist() == pytest.approx(f)
    r_c = [max(1.0, math.sqrt(t / x)) if x else 1.0 for x in f]
    assert r.class_repeat.tolist() == pytest.approx(r_c)
    assert r.image_repeat[ins].tolist() == pytest.approx([max((r_c[j] for j in h), default=1.0) for h in held])


@pytest.mark.parametrize("how", ["task", "kind", "mixed"])
def test_every_number_equals_numpy_over_the_label_maps(how: str) -> None:
    rng = np.random.default_rng({"task": 3, "kind": 4, "mixed": 5}[how])
    for _ in range(40):
        c = _case(rng, how)
        for split in [None, *sorted(set(c["split"]))]:
            beta = float(rng.choice([0.0, 0.9, 0.999]))
            t = float(rng.choice([0.0, 0.3, 1.5]))
            rare_share = None if rng.random() < 0.5 else float(rng.uniform(0, 0.6))
            target = None if rng.random() < 0.5 else float(rng.choice([0.0, 0.2, 0.5]))
            include = bool(rng.random() < 0.3)
            r = balance(c["ds"], split=split, beta=beta, rare_share=rare_share, target_share=target,
                        repeat_threshold=t, include_ignored=include)
            _check(r, c, split, beta, t, rare_share, target, include)
            json.loads(json_text(r.to_dict()))  # JSON-safe with the NaN of the other measure


@pytest.mark.parametrize("how", ["task", "mixed"])
def test_stats_pixels_equal_numpy_over_the_label_maps(how: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        c = _case(rng, how)
        s = dataset_stats(c["ds"])
        sem, obj, maps = c["sem_label"], c["obj_label"], c["maps"]
        px = [sum(np.count_nonzero(lm == v) for lm in maps) for v in range(len(sem))]
        assert s.semantic.tolist() == [j in sem for j in range(len(sem) + len(obj))]
        assert s.pixels_per_class[sem].tolist() == px and np.isnan(s.pixels_per_class[obj]).all()
        total = sum(px)
        assert s.pixel_share[sem].tolist() == pytest.approx([x / total for x in px]) if total else \
            np.isnan(s.pixel_share).all()
        d = s.to_dict()["classes"]
        assert [d[j]["pixels"] for j in sem] == px and all(d[j]["pixels"] is None for j in obj)
        # annotation counts are unchanged: one per class present in a map
        assert s.annotations_per_class[sem].tolist() == [sum(bool((lm == v).any()) for lm in maps)
                                                         for v in range(len(sem))]


def _write_label_maps(folder: Path, maps: list[np.ndarray], names: list[str]) -> Path:
    (folder / "annotations").mkdir(parents=True)
    (folder / "images").mkdir()
    for i, lm in enumerate(maps):
        Image.fromarray(lm.astype(np.uint8)).save(folder / "annotations" / f"seq_{i:05d}.png")
        Image.new("RGB", lm.shape[::-1]).save(folder / "images" / f"seq_{i:05d}.png")
    (folder / "annotations" / "classes.txt").write_text("\n".join(names) + "\n")
    return folder / "annotations"


def test_cli_reads_label_maps_and_reports_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    maps = [rng.choice(4, (6, 8), p=[0.7, 0.2, 0.09, 0.01]) for _ in range(5)]
    folder = _write_label_maps(tmp_path / "lm", maps, ["road", "car", "pole", "sign"])
    code, out = run_cli(["diversity", "balance", str(folder), "--from", "masks", "--json", "--plot",
                         str(tmp_path / "plots")])
    assert code == 0, out
    got = json.loads(out)
    assert got.pop("plots") == [str(tmp_path / "plots" / "balance.png")]
    px = [sum(np.count_nonzero(lm == v) for lm in maps) for v in range(4)]
    assert [c["pixels"] for c in got["classes"]] == px and [c["measure"] for c in got["classes"]] == ["pixels"] * 4
    assert got["imbalance_ratio"] == pytest.approx(max(px) / min(x for x in px if x))
    assert got["classes"][0]["share"] == pytest.approx(px[0] / sum(px))


@pytest.mark.shared
def test_camvid_shares_weights_and_stats_equal_numpy() -> None:
    folder = shared_path("camvid_val", "annotations")
    maps = [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]
    values = sorted(set(np.unique(np.stack(maps)).tolist()))
    ds = io.read(folder, "masks")
    label = {c.id: j for j, c in enumerate(ds.schema.classes)}
    assert sorted(label) == values
    px = np.zeros(len(values))
    for v in values:
        px[label[v]] = sum(np.count_nonzero(lm == v) for lm in maps)
    share = px / px.sum()
    r = balance(ds)
    assert r.measure == ("pixels",) * len(values)
    assert r.pixels.tolist() == px.tolist() and r.share.tolist() == pytest.approx(share.tolist())
    assert r.imbalance_ratio == pytest.approx(px.max() / px.min())
    assert r.rare.tolist() == (share < 0.5 / len(values)).tolist()
    # median-frequency balancing as published: freq(c) over the images where c is present
    freq = np.zeros(len(values))
    for v in values:
        holding = [lm for lm in maps if (lm == v).any()]
        freq[label[v]] = sum(np.count_nonzero(lm == v) for lm in holding) / sum(lm.size for lm in holding)
    assert r.weights_median_frequency.tolist() == pytest.approx((np.median(freq) / freq).tolist())
    assert r.needed.tolist() == [_smallest_x_large(int(x), int(px.sum()), 0.5 / len(values)) for x in px]
    # every class is in every frame: image frequency 1, nothing repeated
    assert r.image_frequency.tolist() == [1.0] * len(values) and r.epoch_size == len(maps)
    s = dataset_stats(ds)
    assert s.pixels_per_class.tolist() == px.tolist() and s.pixel_share.tolist() == pytest.approx(share.tolist())
    code, out = run_cli(["diversity", "balance", str(folder), "--from", "masks", "--json"])
    assert code == 0 and json.loads(out)["classes"] == json.loads(json_text(r.to_dict()))["classes"]
    code, out = run_cli(["stats", str(folder), "--from", "masks", "--json"])
    assert code == 0 and [c["pixels"] for c in json.loads(out)["classes"]] == px.astype(int).tolist()


CAMVID_NAMES = ["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
                "Bicyclist", "Unlabelled"]


def test_balance_and_stats_tables_fit_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The balance table had 13 columns and cut its headers to 'an…', 'te…' in an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    rng = np.random.default_rng(0)
    maps = [rng.choice(12, (36, 48), p=np.linspace(1, 12, 12) ** 2 / (np.linspace(1, 12, 12) ** 2).sum())
            for _ in range(6)]
    folder = _write_label_maps(tmp_path / "lm", maps, CAMVID_NAMES)
    for args in (["diversity", "balance", str(folder), "--from", "masks"],
                 ["diversity", "balance", str(folder), "--from", "masks", "--weight", "inverse"],
                 ["stats", str(folder), "--from", "masks"]):
        code, out = run_cli(args)
        assert code == 0, out
        assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80, out
    code, out = run_cli(["diversity", "balance", str(folder), "--from", "masks"])
    header = next(line for line in out.splitlines() if "class" in line and "┃" in line)
    assert [h.strip() for h in header.strip("┃").split("┃")] == ["class", "pixels", "share", "rare", "weight",
                                                                 "repeat", "needed"]
    assert "median frequency for semantic classes" in " ".join(out.split())
    px = [sum(np.count_nonzero(lm == v) for lm in maps) for v in range(12)]
    for name, n in zip(CAMVID_NAMES, px, strict=True):  # each row shows the class's pixels
        assert any(line.split("│")[1].strip() == name and line.split("│")[2].strip() == str(n)
                   for line in out.splitlines() if line.count("│") > 2)
    code, out = run_cli(["diversity", "balance", str(folder), "--from", "masks", "--weight", "nope"])
    assert code == 2 and "--weight: must be one of" in out


@pytest.mark.shared
def test_camvid_balance_table_fits_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    folder = shared_path("camvid_val", "annotations")
    code, out = run_cli(["diversity", "balance", str(folder), "--from", "masks"])
    assert code == 0, out
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80, out
    text = " ".join(out.split())
    r = balance(io.read(folder, "masks"))
    assert f"Imbalance ratio (max/min pixels): {r.imbalance_ratio:.2f}" in text
    assert "rare (< 4.2% of pixels): " + ", ".join(r.rare_classes) in text
