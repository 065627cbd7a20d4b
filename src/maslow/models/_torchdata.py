"""Between maslow Datasets and torch batches, for the torchvision detection and segmentation adapters.

Glossary:
    resize: every image is resized on its own so that its longer side is ``image_size`` (aspect kept, bilinear on
        uint8 pixels; label maps and masks nearest); ``scale = image_size / max(h, w)``, the other side rounded to
        whole pixels. Boxes are multiplied by each axis' own ratio (``W / w``, ``H / h``, as torchvision's
        ``resize_boxes``) going in and divided by it coming out, so predictions are in the original image's pixels.
    pixels: float32 tensors (3, H, W) in [0, 1], RGB, EXIF-rotated (as ``maslow.io.images.load``); grey images are
        repeated on 3 channels, palette and 1-bit images shown in their colours, 16-bit images scaled from 0-65535
        (as ``maslow.embed.light``). Normalisation (ImageNet or EfficientNet-Lite's) is the model's job.
    detection target: ``{"boxes": (n, 4) float32 xyxy, "labels": (n,) int64 1-based (0 = background),
        "masks": (n, H, W) uint8}`` (masks only for instance segmentation); sigmoid one-stage detectors (RetinaNet,
        FCOS) have no background class and take 0-based labels (``offset=0``). Crowd regions, annotations without a
        box and boxes thinner than ``MIN_SIZE`` pixels after resizing are left out (torchvision refuses them).
    label map: (H, W) int64 of 0-based class indexes from the semantic masks (one RLE per class per image, as
        ``maslow.io.read_masks`` gives); crowd/ignore regions and pixels no mask covers are ``IGNORE`` (-1, never a
        class index, however many classes the schema has).
    augmentation: a horizontal flip with probability 0.5 from a seeded ``np.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.embed.backbones import torch_device as torch_device  # one check for the embedders and the adapters
from maslow.errors import InvalidDatasetError, MissingDependencyError

IGNORE = -1
MIN_SIZE = 1.0  # pixels: thinner boxes (after resizing) are left out of the training targets


def require_torch() -> tuple[Any, Any]:
    """(torch, torchvision), or MissingDependencyError naming the extra."""
    try:
        import torch
        import torchvision
    except ImportError:
        raise MissingDependencyError("torch and torchvision are not installed: pip install 'maslow[torch]'") from None
    return torch, torchvision


def as_dataset(images: Dataset | Sequence[str | Path]) -> Dataset:
    """The images to predict on as a Dataset (a list of paths becomes an images table with each image's
    displayed size, EXIF orientation applied, read from its header by ``maslow.io.images.image_info``).

    Raises:
        InvalidDatasetError: ``images`` is one path (a str would be read as one path per character).
        FormatError: a path that is missing or not a readable image.
    """
    if isinstance(images, Dataset):
        return images
    if isinstance(images, str | Path):
        raise InvalidDatasetError(f"images: must be a Dataset or a list of image paths, got the single path "
                                  f"{str(images)!r}; pass [{str(images)!r}]")
    from maslow.core.schema import ClassDef
    from maslow.io.images import image_info

    paths = [str(p) for p in images]
    infos = [image_info(p) for p in paths]  # as predictions come back in displayed pixels
    table = Images(path=obj_array(paths), width=np.asarray([i.width for i in infos], np.int64),
                   height=np.asarray([i.height for i in infos], np.int64))
    return Dataset(LabelSchema((ClassDef("object"),)), table, Annotations.empty(), root=None)


def load_rgb(ds: Dataset, i: int) -> np.ndarray:
    """(h, w, 3) uint8 RGB pixels of image row ``i`` as displayed (see the module glossary).

    Raises:
        FormatError: the file is missing, unreadable or a decompression bomb, or the image has no pixels.
    """
    from maslow.io.images import image_path
    from maslow.io.images import load_rgb as load_file_rgb

    return load_file_rgb(image_path(ds, i))


def resized_shape(h: int, w: int, size: int) -> tuple[int, int, float]:
    """(new h, new w, scale) with the longer side ``size`` (the other side rounded: see ``axis_scales``)."""
    scale = size / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale)), scale


def axis_scales(orig_hw: tuple[int, int], new_hw: tuple[int, int]) -> np.ndarray:
    """(4,) float64 factors taking xyxy boxes from ``orig_hw`` pixels to ``new_hw`` pixels (each axis its own)."""
    sx, sy = new_hw[1] / orig_hw[1], new_hw[0] / orig_hw[0]
    return np.array([sx, sy, sx, sy])


def _resize(arr: np.ndarray, h: int, w: int, nearest: bool) -> np.ndarray:
    if arr.shape[:2] == (h, w):
        return arr
    im = Image.fromarray(arr)
    return np.asarray(im.resize((w, h), Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR))


@dataclass(frozen=True)
class Sample:
    """One resized image with its targets (numpy, before ``to_tensors``)."""

    pixels: np.ndarray  # (H, W, 3) uint8
    scale: float  # image_size / longer side; boxes use ``axis_scales(orig_hw, pixels.shape[:2])``
    orig_hw: tuple[int, int]
    boxes: np.ndarray  # (n, 4) float32, resized pixels
    labels: np.ndarray  # (n,) int64, 1-based
    masks: np.ndarray | None  # (n, H, W) uint8
    label_map: np.ndarray | None  # (H, W) int64


def _instance_mask(a: Annotations, r: int, h: int, w: int) -> np.ndarray:
    assert a.box is not None
    if a.mask is not None and a.mask[r] is not None:
        return M.decode(a.mask[r])
    rings = a.polygon[r] if a.polygon is not None else None
    if rings is not None:
        return M.decode(M.from_polygons(rings, h, w))
    out = np.zeros((h, w), bool)
    x1, y1, x2, y2 = a.box[r]
    out[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = True
    return out


def semantic_label_map(ds: Dataset, i: int, h: int, w: int, ignore: Sequence[int] = ()) -> np.ndarray:
    """(h, w) int64 label map of image ``i`` from its semantic masks; crowd/ignore classes and holes are IGNORE."""
    out = np.full((h, w), IGNORE, np.int64)
    a = ds.annotations
    assert a.iscrowd is not None
    ignored = set(int(c) for c in ignore)
    s = ds.image_slices()
    for r in range(s[i], s[i + 1]):
        if a.mask is None or a.mask[r] is None:
            continue
        m = M.decode(a.mask[r])
        if m.shape != (h, w):
            m = _resize(m.astype(np.uint8), h, w, nearest=True).astype(bool)
        out[m] = IGNORE if (a.iscrowd[r] or int(a.label[r]) in ignored) else int(a.label[r])
    return out


def make_sample(ds: Dataset, i: int, size: int, *, task: Task, flip: bool = False,
                ignore: Sequence[int] = ()) -> Sample:
    """Image ``i`` resized to ``size`` (longer side) with its targets for ``task`` (see module glossary)."""
    pixels = load_rgb(ds, i)
    h0, w0 = pixels.shape[:2]
    h, w, scale = resized_shape(h0, w0, size)
    img = _resize(pixels, h, w, nearest=False)
    a = ds.annotations
    s = ds.image_slices()
    rows = np.arange(s[i], s[i + 1])
    masks = label_map = None
    boxes = np.zeros((0, 4), np.float32)
    labels = np.zeros(0, np.int64)
    if task == Task.SEMANTIC_SEGMENTATION:
        # int32 (Pillow's mode I): any class index, and IGNORE, survive the nearest resize
        label_map = _resize(semantic_label_map(ds, i, h0, w0, ignore).astype(np.int32), h, w, nearest=True)
        label_map = label_map.astype(np.int64)
    else:
        assert a.box is not None and a.iscrowd is not None
        rows = rows[a.has_box[rows] & ~a.iscrowd[rows]]
        b = a.box[rows] * axis_scales((h0, w0), (h, w))
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h)
        keep = ((b[:, 2] - b[:, 0]) >= MIN_SIZE) & ((b[:, 3] - b[:, 1]) >= MIN_SIZE)
        rows, boxes = rows[keep], b[keep].astype(np.float32)
        labels = a.label[rows].astype(np.int64) + 1
        if task == Task.INSTANCE_SEGMENTATION:
            ms = [_resize(_instance_mask(a, int(r), h0, w0).astype(np.uint8), h, w, nearest=True) for r in rows]
            masks = np.stack(ms) if ms else np.zeros((0, h, w), np.uint8)
    if flip:
        img = img[:, ::-1]
        if boxes.size:
            boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        if masks is not None:
            masks = masks[:, :, ::-1]
        if label_map is not None:
            label_map = label_map[:, ::-1]
    return Sample(np.ascontiguousarray(img), scale, (h0, w0), boxes, labels,
                  None if masks is None else np.ascontiguousarray(masks),
                  None if label_map is None else np.ascontiguousarray(label_map))


def image_tensor(torch: Any, pixels: np.ndarray) -> Any:
    """(3, H, W) float32 in [0, 1] from (H, W, 3) uint8."""
    return torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1).float().div_(255.0)


def detection_target(torch: Any, s: Sample, *, offset: int = 1) -> dict[str, Any]:
    """The torchvision target dict of a sample; labels are 0-based + ``offset`` (1: 0 is the background)."""
    labels = torch.from_numpy(s.labels - 1 + offset).long()
    t = {"boxes": torch.from_numpy(s.boxes.reshape(-1, 4)).float(), "labels": labels}
    if s.masks is not None:
        t["masks"] = torch.from_numpy(np.array(s.masks, copy=True))
    return t


# -- outputs back to Datasets -------------------------------------------------------------------------------

def detections_to_dataset(outputs: Sequence[dict[str, np.ndarray]], *, like: Dataset, schema: LabelSchema
                          ) -> Dataset:
    """Predictions Dataset from per-image numpy outputs already in original pixels.

    Args:
        outputs: one dict per image of ``like``: ``boxes`` (k, 4) xyxy, ``scores`` (k,), ``labels`` (k,) 0-based,
            and optionally ``masks``: a list of k RLE dicts.
        like: the images the outputs belong to (its images table and root are kept).
        schema: the model's schema.
    """
    img = [np.full(len(o["scores"]), i, np.int64) for i, o in enumerate(outputs)]
    have_masks = any("masks" in o for o in outputs)
    ann = Annotations(
        image=np.concatenate(img) if img else np.zeros(0, np.int64),
        label=np.concatenate([o["labels"] for o in outputs]).astype(np.int64) if outputs else np.zeros(0, np.int64),
        box=np.concatenate([o["boxes"] for o in outputs]).astype(np.float64).reshape(-1, 4)
        if outputs else np.zeros((0, 4)),
        score=np.concatenate([o["scores"] for o in outputs]).astype(np.float64) if outputs else np.zeros(0),
        mask=obj_array([m for o in outputs for m in o.get("masks", [])]) if have_masks else None,
        source=obj_array(["model"] * sum(len(o["scores"]) for o in outputs)),
    )
    return Dataset(schema=schema, images=like.images, annotations=ann, root=like.root)


def semantic_to_dataset(label_maps: Sequence[np.ndarray], scores: Sequence[np.ndarray], *, like: Dataset,
                        schema: LabelSchema) -> Dataset:
    """Predictions Dataset (one RLE per predicted class per image) from (h, w) class-index maps.

    ``scores[i]`` is (K,) the mean softmax probability of each class over the pixels predicted as that class.
    """
    image: list[int] = []
    label: list[int] = []
    score: list[float] = []
    mask: list[dict[str, Any]] = []
    for i, (lm, sc) in enumerate(zip(label_maps, scores, strict=True)):
        for c in np.unique(lm).tolist():
            image.append(i)
            label.append(int(c))
            score.append(float(sc[int(c)]))
            mask.append(M.encode(lm == c))
    n = len(image)
    ann = Annotations(image=np.asarray(image, np.int64), label=np.asarray(label, np.int64),
                      box=np.full((n, 4), np.nan), score=np.asarray(score, np.float64), mask=obj_array(mask),
                      source=obj_array(["model"] * n))
    return Dataset(schema=schema, images=like.images, annotations=ann, root=like.root)
