"""A generated sample dataset of coloured shapes, so demos and tests run without downloads.

``shapes(n_images, seed=...)`` builds the Dataset in memory; ``write_shapes(dst, ...)`` also draws the images
as PNG files under ``dst/images``. Classes: circle, square, triangle (object classes with boxes, polygons and
masks; triangles also carry 3 keypoints with a skeleton). Attributes: ``colour`` (enum) and ``occluded``
(bool). Images belong to short sequences (``sequence``, ``frame`` columns) and get a split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import Rng, as_generator, obj_array
from maslow.errors import FormatError, MaslowError

CLASSES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}


def schema() -> LabelSchema:
    return LabelSchema(
        classes=(
            ClassDef("circle", label_types=("box", "polygon", "mask"), supercategory="shape", id=1),
            ClassDef("square", label_types=("box", "polygon", "mask"), supercategory="shape", id=2),
            ClassDef("triangle", label_types=("box", "polygon", "mask", "keypoints"), supercategory="shape",
                     keypoints=("top", "left", "right"), skeleton=((0, 1), (1, 2), (2, 0)), id=3),
        ),
        tasks=(Task.INSTANCE_SEGMENTATION, Task.DETECTION, Task.KEYPOINTS),
        attributes=(
            AttributeDef("colour", type="enum", values=tuple(COLOURS), required=True),
            AttributeDef("occluded", type="bool"),
        ),
        guidelines="Box every whole or partly visible shape; mark shapes cut by another as occluded.",
    )


def _polygon(kind: int, cx: float, cy: float, r: float) -> np.ndarray:
    if kind == 0:
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
    elif kind == 1:
        pts = np.array([[cx - r, cy - r], [cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r]])
    else:
        pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]])
    return np.round(pts, 2).ravel()


def shapes(n_images: int = 24, *, width: int = 160, height: int = 120, seed: Rng = 0,
           frames_per_sequence: int = 4) -> Dataset:
    """The shapes dataset, in memory (``root`` None)."""
    if n_images < 0:
        raise MaslowError(f"shapes: n_images must be >= 0, got {n_images}")
    rng = as_generator(seed)
    img: list[int] = []
    label: list[int] = []
    box: list[list[float]] = []
    poly: list[list[np.ndarray] | None] = []
    mask: list[dict[str, object]] = []
    kps: list[np.ndarray] = []
    crowd: list[bool] = []
    colour: list[str] = []
    occl: list[bool | None] = []
    for i in range(n_images):
        n = int(rng.integers(0, 5)) if i % 7 else 0  # every 7th image is empty
        for _ in range(n):
            kind = int(rng.choice(3, p=[0.5, 0.35, 0.15]))
            r = float(rng.uniform(6, 28))
            cx = float(rng.uniform(r, width - r))
            cy = float(rng.uniform(r, height - r))
            p = _polygon(kind, cx, cy, r)
            xy = p.reshape(-1, 2)
            img.append(i)
            label.append(kind)
            box.append([float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())])
            poly.append([p])
            mask.append(M.from_polygons([p.tolist()], height, width))
            kp = np.full((3, 3), np.nan)  # NaN row: no keypoints (circles, squares)
            if kind == 2:
                kp = np.concatenate([xy, np.full((3, 1), 2.0)], 1)
            kps.append(kp)
            crowd.append(False)
            colour.append(str(rng.choice(list(COLOURS))))
            occl.append(bool(rng.random() < 0.2))
        if i % 11 == 5:  # a crowd region: a group of small squares labelled once
            x0, y0 = float(rng.uniform(0, width - 40)), float(rng.uniform(0, height - 30))
            binary = np.zeros((height, width), bool)
            binary[int(y0):int(y0) + 30, int(x0):int(x0) + 40] = True
            img.append(i)
            label.append(1)
            rle = M.encode(binary)
            box.append(M.to_box([rle])[0].tolist())
            poly.append(None)
            mask.append(rle)
            kps.append(np.full((3, 3), np.nan))
            crowd.append(True)
            colour.append("blue")
            occl.append(None)
    ann = Annotations(
        image=np.asarray(img, np.int64), label=np.asarray(label, np.int64),
        box=np.asarray(box, np.float64).reshape(-1, 4), polygon=Polygons.from_rows(poly), mask=obj_array(mask),
        keypoints=np.asarray(kps, np.float64).reshape(-1, 3, 3), iscrowd=np.asarray(crowd, bool),
        attributes={"colour": obj_array(colour), "occluded": obj_array(occl)},
    )
    seq = np.arange(n_images) // max(frames_per_sequence, 1)
    images = Images(
        path=obj_array([f"images/shape_{i:04d}.png" for i in range(n_images)]),
        width=np.full(n_images, width), height=np.full(n_images, height),
        extra={"sequence": obj_array([f"seq{s:03d}" for s in seq]),
               "frame": np.arange(n_images) % max(frames_per_sequence, 1)},
    )
    ds = Dataset(schema=schema(), images=images, annotations=ann)
    return ds.split({"train": 0.75, "val": 0.25}, rng=rng)


def write_shapes(dst: str | Path, n_images: int = 24, *, seed: Rng = 0, **kwargs: int) -> Dataset:
    """Draw the shapes dataset's images under ``dst/images``; returns the Dataset rooted at ``dst``."""
    ds = shapes(n_images, seed=seed, **kwargs)
    dst = Path(dst)
    try:
        (dst / "images").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = (e.strerror or str(e)).lower()
        raise FormatError(f"output folder must be a folder that can be created, got {why}", path=dst) from None
    rng = as_generator(seed)
    slices = ds.image_slices()
    a = ds.annotations
    assert a.iscrowd is not None and a.box is not None and a.polygon is not None
    for i in range(ds.n_images):
        w, h = int(ds.images.width[i]), int(ds.images.height[i])
        base = rng.integers(200, 256, size=3)
        noise = rng.integers(-12, 13, size=(h, w, 3))
        canvas = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        for r in range(slices[i], slices[i + 1]):
            fill = COLOURS.get(str(a.attributes["colour"][r]), (90, 90, 90))
            if a.iscrowd[r]:
                x1, y1, x2, y2 = a.box[r]
                for yy in np.arange(y1, y2 - 4, 7):
                    for xx in np.arange(x1, x2 - 4, 7):
                        draw.rectangle([xx, yy, xx + 4, yy + 4], fill=fill)
                continue
            rings = a.polygon[r]
            assert rings is not None  # every non-crowd shape has a polygon
            pts = rings[0].reshape(-1, 2)
            draw.polygon([tuple(p) for p in pts.tolist()], fill=fill)
        canvas.save(dst / str(ds.images.path[i]))
    return ds.replace(root=dst)
