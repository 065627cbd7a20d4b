"""A generated sample dataset of coloured shapes, so demos and tests run without downloads.

``shapes(n_images, seed=...)`` builds the Dataset in memory; ``write_shapes(dst, ...)`` also draws the images
as PNG files under ``dst/images``. Classes: circle, square, triangle (object classes with boxes, polygons and
masks; triangles also carry 3 keypoints with a skeleton). Attributes: ``colour`` (enum) and ``occluded``
(bool). Images belong to short sequences (``sequence``, ``frame`` columns) and get a split.

Every shape lies inside its image (radii shrink to fit small images), and the drawn pixels of a shape are exactly
its mask (a later shape covers an earlier one), so boxes, polygons, masks and pixels agree. An object's mask is
its polygon rasterised (the COCO file ``maslow sample`` writes keeps the polygon alone, and ``estimate_cost``
prices the two as one drawing); a crowd region has a mask and no polygon.
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


# -- oriented boxes (an aerial scene: planes, ships, vehicles at any angle) ---------------------------------------

OBB_CLASSES = ("plane", "ship", "vehicle")
_OBB_SIZES = {0: ((30, 110), (0.8, 1.0)), 1: ((50, 140), (0.15, 0.3)), 2: ((10, 22), (0.4, 0.6))}  # length, width/len


def oriented(n_images: int = 24, *, size: int = 512, seed: Rng = 0) -> Dataset:
    """Oriented boxes on ``size`` x ``size`` tiles (no image files): each object a rectangle at any angle, held as
    maslow holds oriented boxes (a 4-point polygon, its extent as ``box``; see ``core.obb``). 0-14 objects per
    image: planes (near-square), ships (long, thin) and vehicles (small)."""
    from maslow.core.obb import corners_from_xywhr

    if n_images < 0:
        raise MaslowError(f"oriented: n_images must be >= 0, got {n_images}")
    if size < 160:
        raise MaslowError(f"oriented: size must be >= 160 pixels, got {size}")
    rng = as_generator(seed)
    img: list[int] = []
    label: list[int] = []
    xywhr: list[list[float]] = []
    for i in range(n_images):
        for _ in range(int(rng.integers(0, 15))):
            k = int(rng.choice(3, p=[0.3, 0.2, 0.5]))
            (lo, hi), (a, b) = _OBB_SIZES[k]
            length = float(rng.uniform(lo, hi))
            width = length * float(rng.uniform(a, b))
            half = float(np.hypot(length, width)) / 2 + 1  # any angle stays inside the tile
            xywhr.append([float(rng.uniform(half, size - half)), float(rng.uniform(half, size - half)), length, width,
                          float(rng.uniform(-np.pi / 2, np.pi / 2))])
            img.append(i)
            label.append(k)
    quads = corners_from_xywhr(np.asarray(xywhr, np.float64).reshape(-1, 5))
    images = Images(path=obj_array([f"images/tile_{i:04d}.png" for i in range(n_images)]),
                    width=np.full(n_images, size), height=np.full(n_images, size))
    ann = Annotations(image=np.asarray(img, np.int64), label=np.asarray(label, np.int64),
                      box=np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1),
                      polygon=Polygons.from_rows([[q.ravel()] for q in quads]))
    schema = LabelSchema(classes=tuple(ClassDef(name, label_types=("box", "polygon"), id=j + 1)
                                       for j, name in enumerate(OBB_CLASSES)), tasks=(Task.DETECTION,),
                         guidelines="One oriented box per object, its long side along the object's length.")
    return Dataset(schema=schema, images=images, annotations=ann)


def oriented_predictions(truth: Dataset, *, seed: Rng = 0, p_miss: float = 0.1, p_swap: float = 0.05,
                         jitter: float = 0.06, angle_jitter: float = 0.1, fp_per_image: float = 1.0) -> Dataset:
    """A simulated oriented-box detector on ``truth`` (from ``oriented``): each object found with probability
    ``1 - p_miss``, its centre and size jittered by ``jitter`` of its size and its angle by ``angle_jitter`` radians,
    its class swapped with probability ``p_swap``, scored higher when found well; plus ``fp_per_image`` false alarms
    per image, scored low."""
    from maslow.core.obb import corners_from_xywhr, oriented_corners, xywhr_from_corners

    rng = as_generator(seed)
    a = truth.annotations
    quads = oriented_corners(a, np.arange(len(a)))
    found = rng.random(len(a)) >= p_miss
    b = xywhr_from_corners(quads[found])
    noise = rng.normal(0, 1, (len(b), 5))
    scale = np.column_stack([b[:, 2], b[:, 2], b[:, 2], b[:, 3], np.ones(len(b))])
    b += noise * np.array([jitter, jitter, jitter, jitter, angle_jitter]) * scale
    b[:, 2:4] = np.maximum(b[:, 2:4], 2.0)
    label = a.label[found].copy()
    swap = rng.random(len(label)) < p_swap
    label[swap] = rng.integers(0, len(truth.schema.names), int(swap.sum()))
    score = np.clip(0.95 - 0.6 * np.abs(noise).mean(axis=1) + rng.normal(0, 0.1, len(b)), 0.02, 0.99)
    n_fp = int(rng.poisson(fp_per_image * truth.n_images))
    size = float(truth.images.width.max()) if truth.n_images else 512.0
    fp = np.column_stack([rng.uniform(20, size - 20, (n_fp, 2)), rng.uniform(10, 60, n_fp), rng.uniform(5, 30, n_fp),
                          rng.uniform(-np.pi / 2, np.pi / 2, n_fp)])
    img = np.concatenate([a.image[found], rng.integers(0, max(truth.n_images, 1), n_fp)])
    q = corners_from_xywhr(np.concatenate([b, fp]))
    order = np.argsort(img, kind="stable")
    ann = Annotations(image=img[order], label=np.concatenate([label, rng.integers(0, len(truth.schema.names),
                                                                                    n_fp)])[order],
                      box=np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1)[order],
                      polygon=Polygons.from_rows([[p.ravel()] for p in q[order]]),
                      score=np.concatenate([score, rng.uniform(0.02, 0.4, n_fp)])[order],
                      source=obj_array(["model"] * len(img)))
    return truth.replace(annotations=ann)
