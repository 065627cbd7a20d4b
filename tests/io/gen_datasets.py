"""Seeded random Datasets for the round-trip property tests (``test_roundtrip_*.py``).

``random_dataset(seed, ...)`` builds a small Dataset with odd file and class names (unicode, spaces, XML and
YAML specials, nested folders, base names that collide), empty images, crowd-only images, boxes touching the
borders, tiny and large coordinates, multi-part polygons, masks, keypoints with v = 0/1/2 and attributes of
every type. Flags switch the geometry kinds off, so a test can build exactly what a format can hold.
``write_images`` draws the image files (blank PNGs of the right size) for the formats that read sizes from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array

FOLDERS = ("", "sub dir", "ünï/çödé", "a/b/c", "x&y", "日本")
STEMS = ("img 1", "ü漢字", "x#y%", "a'b", "a&b<c>", "it's", "a,b;c", "naïve-ℕ", "0", "sp ace", "dots.in.name")
CLASS_NAMES = ("cat", "big dog", "Ünïcödé", "漢字", "a/b", "with,comma", "quote\"d", "amp&lt;", "0", "true",
               "null", "yes", "1.5", "#hash", "emoji😀", "x<y>", "tab-less", "person", "it's", "@at", "x:y", "pad ")
TEXTS = ("plain", "ünï", "a&b<c>\"'", "two\nlines", "漢字", "  spaced  ", "1", "true", "tab\tin")


def _coord(rng: np.random.Generator, lo: float, hi: float, mode: str) -> float:
    v = float(rng.uniform(lo, hi))
    if mode == "int":
        return float(np.clip(round(v), lo, hi))
    if mode == "half":
        return float(np.clip(round(v * 2) / 2, lo, hi))
    if mode == "2dp":
        return float(np.clip(round(v, 2), lo, hi))
    return v


def _box(rng: np.random.Generator, w: int, h: int, mode: str) -> list[float]:
    kind = int(rng.integers(0, 6))
    if kind == 0:  # the whole image
        return [0.0, 0.0, float(w), float(h)]
    if kind == 1:  # touching the right and bottom borders
        x1, y1 = _coord(rng, 0, w, mode), _coord(rng, 0, h, mode)
        return [x1, y1, float(w), float(h)]
    if kind == 2:  # tiny
        x1, y1 = _coord(rng, 0, max(w - 1, 0), "full"), _coord(rng, 0, max(h - 1, 0), "full")
        return [x1, y1, min(x1 + 1e-3, w), min(y1 + 1e-3, h)]
    xs = sorted(_coord(rng, 0, w, mode) for _ in range(2))
    ys = sorted(_coord(rng, 0, h, mode) for _ in range(2))
    return [xs[0], ys[0], xs[1], ys[1]]


def _ring(rng: np.random.Generator, w: int, h: int, mode: str) -> np.ndarray:
    n = int(rng.integers(3, 7))
    pts = [(_coord(rng, 0, w, mode), _coord(rng, 0, h, mode)) for _ in range(n)]
    return np.asarray(pts, np.float64).ravel()


def random_dataset(seed: int, *, polygons: bool = True, masks: bool = True, keypoints: bool = True,
                   crowd: bool = True, attributes: bool = True, splits: bool = True, mode: str | None = None,
                   max_images: int = 5, max_side: int = 120, collide: bool = True,
                   class_names: tuple[str, ...] = CLASS_NAMES, texts: tuple[str, ...] = TEXTS,
                   max_rings: int = 3) -> Dataset:
    """A random Dataset (see the module docstring); ``mode`` fixes the coordinate kind (int, half, 2dp, full)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, min(12, len(class_names)) + 1))
    names = [str(n) for n in rng.choice(class_names, size=min(k, len(class_names)), replace=False)]
    kp_class = keypoints and bool(rng.random() < 0.7)
    kp_names = ("nose", "left_eye", "right_eye")
    classes = [ClassDef(n, id=int(i) + 1 if rng.random() < 0.8 else None, supercategory="sc" if i % 2 else "",
                        keypoints=kp_names if kp_class and i == 0 else (),
                        skeleton=((0, 1), (0, 2)) if kp_class and i == 0 else ()) for i, n in enumerate(names)]
    if len({c.id for c in classes if c.id is not None}) != sum(c.id is not None for c in classes):
        classes = [ClassDef(c.name, id=None) for c in classes]
    m = int(rng.integers(1, max_images + 1))
    paths: list[str] = []
    while len(paths) < m:
        stem = str(rng.choice(STEMS)) if rng.random() < 0.8 else f"img{len(paths)}"
        folder = str(rng.choice(FOLDERS))
        p = f"{folder}/{stem}.png" if folder else f"{stem}.png"
        if p not in paths and (collide or all(Path(q).stem != stem for q in paths)):
            paths.append(p)
    width = rng.integers(1, max_side + 1, size=m)
    height = rng.integers(1, max_side + 1, size=m)
    split = obj_array([str(s) for s in rng.choice(["train", "val", "test", ""], size=m)]) if splits else None
    cols: dict[str, list[Any]] = {k_: [] for k_ in ("image", "label", "box", "polygon", "mask", "kp", "crowd",
                                                   "flag", "num", "text", "level")}
    for i in range(m):
        w, h = int(width[i]), int(height[i])
        n = int(rng.integers(0, 6)) if rng.random() < 0.8 else 0
        crowd_only = crowd and masks and rng.random() < 0.15
        for _ in range(n):
            mode_ = mode or str(rng.choice(["int", "half", "2dp", "full"]))
            is_crowd = crowd_only or (crowd and masks and rng.random() < 0.1)
            label = 0 if kp_class and rng.random() < 0.4 else int(rng.integers(0, k))
            poly = None
            mask = None
            box = _box(rng, w, h, mode_)
            if is_crowd:
                binary = rng.random((h, w)) < 0.3
                mask = M.encode(binary)
                box = M.to_box([mask])[0].tolist() if binary.any() else [0.0, 0.0, 0.0, 0.0]
            elif polygons and rng.random() < 0.5:
                poly = [_ring(rng, w, h, mode_) for _ in range(int(rng.integers(1, max_rings + 1)))]
                box = M.polygon_box(poly).tolist()
            elif masks and rng.random() < 0.3:
                binary = np.zeros((h, w), bool)
                x1, y1 = int(rng.integers(0, w)), int(rng.integers(0, h))
                binary[y1:int(rng.integers(y1, h)) + 1, x1:int(rng.integers(x1, w)) + 1] = True
                mask = M.encode(binary)
                box = M.to_box([mask])[0].tolist()
            kp = np.full((3, 3), np.nan)
            if kp_class and label == 0 and not is_crowd:
                v = rng.integers(0, 3, size=3).astype(float)
                xy = np.stack([[_coord(rng, 0, w, "2dp"), _coord(rng, 0, h, "2dp")] for _ in range(3)])
                xy[v == 0] = 0.0
                kp = np.concatenate([xy, v[:, None]], 1)
            cols["image"].append(i)
            cols["label"].append(label)
            cols["box"].append(box)
            cols["polygon"].append(poly)
            cols["mask"].append(mask)
            cols["kp"].append(kp)
            cols["crowd"].append(is_crowd)
            cols["flag"].append(None if rng.random() < 0.2 else bool(rng.random() < 0.5))
            cols["num"].append(None if rng.random() < 0.2 else float(round(rng.uniform(-5, 5), 3)))
            cols["text"].append(None if rng.random() < 0.2 else str(rng.choice(texts)))
            cols["level"].append(str(rng.choice(["low", "mid", "high"])))
    n = len(cols["image"])
    attrs: dict[str, Any] = {}
    attr_defs: tuple[AttributeDef, ...] = ()
    if attributes:
        attrs = {"flag": obj_array(cols["flag"]), "num": obj_array(cols["num"]),
                 "text": obj_array(cols["text"]), "level": obj_array(cols["level"])}
        attr_defs = (AttributeDef("flag", type="bool"), AttributeDef("num", type="number"),
                     AttributeDef("text", type="text"), AttributeDef("level", type="enum",
                                                                     values=("low", "mid", "high")))
    tasks = [Task.DETECTION]
    if polygons or masks:
        tasks.insert(0, Task.INSTANCE_SEGMENTATION)
    if kp_class:
        tasks.append(Task.KEYPOINTS)
    ann = Annotations(
        image=np.asarray(cols["image"], np.int64), label=np.asarray(cols["label"], np.int64),
        box=np.asarray(cols["box"], np.float64).reshape(-1, 4),
        polygon=Polygons.from_rows(cols["polygon"]) if polygons else None,
        mask=obj_array(cols["mask"]) if masks else None,
        keypoints=np.asarray(cols["kp"], np.float64).reshape(n, 3, 3) if kp_class else None,
        iscrowd=np.asarray(cols["crowd"], bool), attributes=attrs,
    )
    images = Images(path=obj_array(paths), width=width, height=height, split=split)
    schema = LabelSchema(classes=tuple(classes), tasks=tuple(tasks), attributes=attr_defs)
    return Dataset(schema=schema, images=images, annotations=ann)


def write_images(ds: Dataset, root: Path) -> Dataset:
    """Blank PNGs of each image's size under ``root``; the Dataset rooted there."""
    for p, w, h in zip(ds.images.path.tolist(), ds.images.width.tolist(), ds.images.height.tolist(), strict=True):
        f = root / p
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (int(w), int(h))).save(f)
    return ds.replace(root=root)
