"""A generated sample dataset of coloured shapes, so demos and tests run without downloads.

``shapes(n_images, seed=...)`` builds the Dataset in memory; ``write_shapes(dst, ...)`` also draws the images
as PNG files under ``dst/images``. Classes: circle, square, triangle (object classes with boxes, polygons and
masks; triangles also carry 3 keypoints with a skeleton). Attributes: ``colour`` (enum) and ``occluded``
(bool). Images belong to short sequences (``sequence``, ``frame`` columns) and get a split.

Every shape lies inside its image (radii shrink to fit small images), and the drawn pixels of a shape are exactly
its mask (a later shape covers an earlier one), so boxes, polygons, masks and pixels agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from maslow.core import masks as M
from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import Rng, as_generator, obj_array
from maslow.errors import FormatError, MaslowError

CLASSES = ("circle", "square", "triangle")
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 80, 220)}
MIN_SIDE = 12  # the smallest shape has radius 6


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
    if width < MIN_SIDE or height < MIN_SIDE:
        raise MaslowError(f"shapes: width and height must be >= {MIN_SIDE} pixels, got {width}x{height}")
    if frames_per_sequence < 1:
        raise MaslowError(f"shapes: frames_per_sequence must be >= 1, got {frames_per_sequence}")
    r_max = min(28.0, min(width, height) / 2)  # a shape of radius r needs 2r pixels both ways
    crowd_w, crowd_h = min(40, width), min(30, height)
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
            r = float(rng.uniform(6, r_max))
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
            x0, y0 = float(rng.uniform(0, width - crowd_w)), float(rng.uniform(0, height - crowd_h))
            binary = np.zeros((height, width), bool)
            binary[int(y0):int(y0) + crowd_h, int(x0):int(x0) + crowd_w] = True
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
    seq = np.arange(n_images) // frames_per_sequence
    images = Images(
        path=obj_array([f"images/shape_{i:04d}.png" for i in range(n_images)]),
        width=np.full(n_images, width), height=np.full(n_images, height),
        extra={"sequence": obj_array([f"seq{s:03d}" for s in seq]),
               "frame": np.arange(n_images) % frames_per_sequence},
    )
    ds = Dataset(schema=schema(), images=images, annotations=ann)
    return ds.split({"train": 0.75, "val": 0.25}, rng=rng)


def write_shapes(dst: str | Path, n_images: int = 24, *, seed: Rng = 0, **kwargs: int) -> Dataset:
    """Draw the shapes dataset's images under ``dst/images``; returns the Dataset rooted at ``dst``.

    Each shape is painted on its mask's pixels, in row order; a crowd region gets a grid of small squares. Each
    PNG is written atomically (whole or not at all).
    """
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
    assert a.iscrowd is not None and a.box is not None and a.mask is not None
    for i in range(ds.n_images):
        w, h = int(ds.images.width[i]), int(ds.images.height[i])
        base = rng.integers(200, 256, size=3)
        noise = rng.integers(-12, 13, size=(h, w, 3))
        px = np.clip(base + noise, 0, 255).astype(np.uint8)
        for r in range(slices[i], slices[i + 1]):
            fill = COLOURS.get(str(a.attributes["colour"][r]), (90, 90, 90))
            if a.iscrowd[r]:  # 5x5 squares on a 7-pixel grid, inside the region
                x1, y1, x2, y2 = (int(v) for v in a.box[r])
                for yy in range(y1, y2 - 4, 7):
                    for xx in range(x1, x2 - 4, 7):
                        px[yy:yy + 5, xx:xx + 5] = fill
                continue
            px[M.decode(a.mask[r])] = fill  # the mask's pixels: what is drawn is what is annotated
        with atomic_path(dst / str(ds.images.path[i])) as tmp:
            Image.fromarray(px).save(tmp, format="PNG")
    return ds.replace(root=dst)
