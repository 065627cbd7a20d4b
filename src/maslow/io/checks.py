"""Technical checks of an imported dataset: the errors made when importing or exporting.

Format-specific findings (YOLO values above 1, COCO boxes that look like xyxy, duplicate ids, ...) come from
each reader's ``parse``. The checks here need only the Dataset: image files (missing, unreadable, truncated,
wrong declared size, EXIF rotation) and boxes (out of bounds, degenerate).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.issues import Issue, Report
from maslow.errors import FormatError
from maslow.io.images import MAX_PIXELS, image_info, image_path, load_path

Progress = Callable[[int, int], None]


def check_paths(ds: Dataset) -> Report:
    """Image records listed again under a path an earlier one has (``duplicate_image``, a warning naming that
    row): the same file twice, whose labels a per-image format keeps apart only by renaming. No file is opened."""
    out: list[Issue] = []
    seen: dict[str, int] = {}
    for i, rel in enumerate(str(p) for p in ds.images.path.tolist()):
        first = seen.setdefault(rel, i)
        if first != i:
            out.append(Issue("duplicate_image", "warning", f"image path repeats image row {first}", file=rel,
                             record=f"images[{i}]", field="path", image=i))
    return Report(tuple(out))


def check_images(
    ds: Dataset, *, decode: bool = False, max_pixels: int = MAX_PIXELS, progress: Progress | None = None,
    source: str | Path | None = None,
) -> Report:
    """Missing or unreadable files, declared sizes that disagree with the file (EXIF rotation included).

    Args:
        decode: also decode every image to find truncated files (slower: headers only otherwise).
        progress: called as ``progress(done, total)``.
        source: the one annotation file the dataset was read from (COCO, CVAT, Label Studio): named as each
            finding's file, the image's path in its message (``mi.json, images[3], field 'path':
            /data/images/nope.png: image file not found``); without it the image's file is named (YOLO, VOC).
    """
    m = ds.n_images
    if ds.root is None:
        return Report(())
    out = list(check_paths(ds).issues)
    for i in range(m):
        rel = str(ds.images.path[i])
        path = image_path(ds, i)
        issue = functools.partial(_image_issue, i, rel, source)
        try:
            info = image_info(path, max_pixels=max_pixels)
            if decode:
                load_path(path, max_pixels=max_pixels)
        except FormatError as e:
            # the message ends with the reason; the path itself may contain any words
            kind = "missing_image" if str(e).endswith("file not found") else "unreadable_image"
            out.append(issue(kind, "error", str(e), "path", named=True))
            if progress is not None:
                progress(i + 1, m)
            continue
        w, h = int(ds.images.width[i]), int(ds.images.height[i])
        if (w, h) == (0, 0):
            out.append(issue("unknown_size", "info", f"size not declared; the file is {info.width}x{info.height}",
                             "width"))
        elif (w, h) != (info.width, info.height):
            if info.orientation != 1 and (w, h) == (info.stored_width, info.stored_height):
                out.append(issue(
                    "exif_rotated", "error",
                    f"declared size {w}x{h} is the stored size, but EXIF orientation {info.orientation} displays "
                    f"the image as {info.width}x{info.height}: annotations may be drawn on the unrotated image",
                    "width"))
            else:
                out.append(issue(
                    "size_mismatch", "error",
                    f"declared size must match the file, got {w}x{h} declared and {info.width}x{info.height} in the file",
                    "width"))
        if progress is not None:
            progress(i + 1, m)
    return Report(tuple(out))


def _image_issue(i: int, rel: str, source: str | Path | None, kind: str, severity: str, message: str, field: str, *,
                 named: bool = False) -> Issue:
    """A finding of image row ``i`` (path ``rel``): named by the annotation file ``source`` when given, the image's
    path in the message (``named``: it already starts with it, a FormatError's); else by the image file."""
    if source is None:
        return Issue(kind, severity, message, file=rel, record=f"images[{i}]", field=field, image=i)
    return Issue(kind, severity, message if named else f"image {rel}: {message}", file=str(source),
                 record=f"images[{i}]", field=field, image=i)


def annotation_place(ds: Dataset, r: int, *, source: str | Path | None = None) -> dict[str, Any]:
    """Where annotation row ``r`` is, as ``Issue`` fields (file, record, image, annotation): in the annotation file
    ``source`` by its id when the reader kept one (``annotation id=4 (image images/a.png)``), else the image file
    and the dataset row (``annotations[3]``: one file per image, or no file)."""
    i = int(ds.annotations.image[r])
    path = ds.images.path[i]
    if source is None:
        return {"file": str(path), "record": f"annotations[{r}]", "image": i, "annotation": r}
    ids = ds.annotations.extra.get("coco_id")
    record = f"annotation id={ids[r]}" if ids is not None and ids[r] is not None else f"annotations[{r}]"
    return {"file": str(source), "record": f"{record} (image {path})", "image": i, "annotation": r}


def check_boxes(ds: Dataset, *, source: str | Path | None = None) -> Report:
    """Boxes outside their image (beyond half a pixel) or with zero width or height.

    ``source``: the one annotation file the dataset was read from (COCO, CVAT, Label Studio), named as the
    finding's file, with the image in the message and the annotation's id in the record when the file gave ids;
    without it, the image's file and the dataset row are named (YOLO and VOC: a label file per image)."""
    a = ds.annotations
    out: list[Issue] = []
    if not len(a):
        return Report(())
    box = a.box
    assert box is not None
    has = a.has_box
    w = ds.images.width[a.image].astype(np.float64)
    h = ds.images.height[a.image].astype(np.float64)
    known = (w > 0) & (h > 0)
    tol = 0.5
    with np.errstate(invalid="ignore"):
        oob = has & known & ((box[:, 0] < -tol) | (box[:, 1] < -tol) | (box[:, 2] > w + tol) | (box[:, 3] > h + tol))
        degenerate = has & ((box[:, 2] - box[:, 0] <= 0) | (box[:, 3] - box[:, 1] <= 0))

    def place(r: int) -> dict[str, Any]:
        return annotation_place(ds, r, source=source)

    for r in np.flatnonzero(oob).tolist():
        out.append(Issue("box_out_of_bounds", "warning",
                         f"box must lie inside the {w[r]:.0f}x{h[r]:.0f} image, got xyxy {np.round(box[r], 2).tolist()}",
                         field="box", **place(r)))
    for r in np.flatnonzero(degenerate).tolist():
        out.append(Issue("degenerate_box", "warning",
                         f"box must have positive width and height, got xyxy {np.round(box[r], 2).tolist()}",
                         field="box", **place(r)))
    return Report(tuple(out))


def check_dataset(
    ds: Dataset, *, files: bool = True, decode: bool = False, progress: Progress | None = None,
    source: str | Path | None = None,
) -> Report:
    """All technical checks: images (when ``files``; repeated paths always) and boxes (``source``: the one
    annotation file, see ``check_images`` and ``check_boxes``)."""
    rep = check_images(ds, decode=decode, progress=progress, source=source) if files and ds.root is not None \
        else check_paths(ds)
    return rep + check_boxes(ds, source=source)


def fill_sizes(ds: Dataset, *, progress: Progress | None = None) -> Dataset:
    """Fill unknown (0) image sizes from the files' headers; files that can't be read keep 0."""
    zero = np.flatnonzero((ds.images.width == 0) | (ds.images.height == 0))
    if not len(zero) or ds.root is None:
        return ds
    w, h = ds.images.width.copy(), ds.images.height.copy()
    for n, i in enumerate(zero.tolist()):
        try:
            info = image_info(Path(image_path(ds, i)))
            w[i], h[i] = info.width, info.height
        except FormatError:
            pass
        if progress is not None:
            progress(n + 1, len(zero))
    return ds.replace(images=replace(ds.images, width=w, height=h))
