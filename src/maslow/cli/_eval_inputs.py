"""The truth and the predictions ``maslow eval`` and ``maslow compare`` read: a file in any format or a workspace
version, and predictions moved onto the truth's images (results files by id or stem, other formats by path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maslow import io
from maslow.cli.render import (
    err_console,
    lit,
    refuse_import_error,
    refuse_offsets,
    render_report,
    results_or_folder,
    workspace_version,
)
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import Task
from maslow.errors import FormatError

#: Truth tasks whose predictions are labels (classes, tags, label maps), scored without a confidence.
LABEL_TASKS = (Task.CLASSIFICATION, Task.MULTILABEL, Task.SEMANTIC_SEGMENTATION)


def read_truth(src: str, fmt: str | None, images_root: Path | None, flag: str) -> tuple[Dataset, Report, str]:
    """The truth, its import report and its format: ``src`` read as ``fmt`` (coco by default), or, without
    ``--from``, a workspace version or dataset (checked when it was imported: an empty report)."""
    if fmt is None:
        found = workspace_version(src, "--gt")
        if found is not None:
            return found[0], Report(()), found[1]
    fmt = io.get_format(fmt or "coco", where=flag).name
    imp = io.import_dataset(Path(src), fmt, images_root=images_root, check_files=False)
    return imp.dataset, imp.report, fmt


def render_issues(label: str, report: Report, notes: list[str]) -> None:
    """The notes and import issues of one input file, on stderr (stdout holds the results only)."""
    for n in notes:
        err_console.print(f"[yellow]{label}:[/yellow] {lit(n)}", highlight=False)
    if len(report):
        err_console.print(f"[yellow]{label}: {len(report)} import issues ({report.n_errors} errors)[/yellow]")
        render_report(report, limit=5, to=err_console)  # with its heading


def read_pred(src: Path, fmt: str, truth: Dataset, id_offset: int,
               category_offset: int | None = None) -> tuple[Dataset, Report, list[str]]:
    spec = io.get_format(results_or_folder(src, fmt), where="--pred-format")
    if spec.needs_like:  # results files name the truth's images by id (COCO) or stem (DOTA)
        if spec.name == "coco-results":
            ds, report = spec.parse(src, like=truth, id_offset=id_offset, category_offset=category_offset)
        else:
            refuse_offsets("eval", fmt, id_offset, category_offset)
            ds, report = spec.parse(src, like=truth)
        errors = [i for i in report.issues if i.severity == "error"]
        # ids off by one: the rest would be paired with the wrong images or classes (a wrong mAP, exit 0)
        refuse_import_error(errors, src, only_off_by_one=True)
        sized = next((i for i in errors if i.type == "coco_size_mismatch"), None)
        if sized is not None:  # boxes of another image size: every IoU would be wrong (AP near 0, exit 0)
            raise FormatError(f"{sized.message} [{sized.type}; {len(errors)} errors]", path=sized.file or src,
                              record=sized.record, field=sized.field)
        if not ds.n_annotations:  # every record refused: all "-" and exit code 0 said nothing was wrong
            refuse_import_error(errors, src, tail=": no prediction is left to evaluate")
        # an error may name many predictions (33 of one unknown class): each message counts its own
        return ds, report, [f"the predictions named by {len(errors)} import errors (listed below) are left out of "
                            "the evaluation"] if errors else []
    refuse_offsets("eval", fmt, id_offset, category_offset)
    # label maps are paired with the truth's images (found under its root by path or stem), as `compare` reads them:
    # a model's output folder has no images/ beside it, and each map's size is checked against its image by align
    root = truth.root if spec.name == "masks" else None
    imp = io.import_dataset(src, spec.name, check_files=False, images_root=root)
    try:
        pred, notes = align(truth, imp.dataset, src, scored=truth.schema.task not in LABEL_TASKS)
    except FormatError as e:  # why the file holds no scores or images may be in its import errors: shown
        errors = [i for i in imp.report.issues if i.severity == "error"
                  and not (root is not None and i.type in ("missing_image", "size_mismatch"))]
        if not errors:
            raise
        render_issues(f"{src}", imp.report, [])
        first = errors[0]
        where = ", ".join(str(v) for v in (first.file, first.record) if v)
        raise FormatError(f"{e.args[0]}; the import reported {len(errors)} errors (listed above), first: "
                          f"{where}: {first.message} [{first.type}]", path=src) from None
    if truth.schema.task in LABEL_TASKS:  # on truth's images now: row i of pred.images is truth image i
        same = np.arange(truth.n_images, dtype=np.int64)
        notes += check_label_classes(truth, pred, src, spec.name, refuse_any=False)
        check_label_shapes(truth, pred, src, same)
    if truth.schema.task == Task.SEMANTIC_SEGMENTATION:
        n, first_path = unpredicted_images(truth, imp.dataset)
        if n:  # its truth pixels are all misses (semantic_scores' rule for uncovered pixels): said, not silent
            notes.append(f"{n} of {truth.n_images} truth images have no prediction map (first: {first_path!r}); all "
                         "their pixels count as missed (n_unpredicted)")
    return pred, imp.report, notes


def truth_rows(truth: Dataset, pred: Dataset) -> np.ndarray:
    """(pred images,) the truth row of each prediction image: by path, else by a file name that is unique in the
    truth; -1 for none."""
    t_rows = {str(p): i for i, p in enumerate(truth.images.path.tolist())}
    base: dict[str, int] = {}
    for p, i in t_rows.items():
        name = Path(p).name
        base[name] = -1 if name in base else i  # an ambiguous file name matches nothing
    return np.asarray([t_rows.get(str(p), base.get(Path(str(p)).name, -1)) for p in pred.images.path.tolist()],
                      dtype=np.int64)


def unpredicted_images(truth: Dataset, pred: Dataset) -> tuple[int, str]:
    """How many truth images no prediction image matches (``truth_rows``), and the first one's path ("" if none)."""
    rows = truth_rows(truth, pred)
    matched = np.zeros(truth.n_images, bool)
    matched[rows[rows >= 0]] = True
    missing = np.flatnonzero(~matched)
    return int(missing.size), str(truth.images.path[missing[0]]) if missing.size else ""


def _check_sizes(truth: Dataset, pred: Dataset, image_row: np.ndarray, src: Path) -> None:
    """Refuse predictions on an image whose size (in the prediction file) is not the truth image's: their pixels
    are another image's, so every IoU would be wrong (sizes unknown on either side are not compared)."""
    a = pred.annotations
    used = np.zeros(pred.n_images, bool)
    used[a.image] = True
    at = np.flatnonzero(used & (image_row >= 0))
    pw, ph = pred.images.width[at], pred.images.height[at]
    tw, th = truth.images.width[image_row[at]], truth.images.height[image_row[at]]
    off = np.flatnonzero((pw > 0) & (ph > 0) & (tw > 0) & (th > 0) & ((pw != tw) | (ph != th)))
    if not off.size:
        return
    j = int(off[0])
    path = str(pred.images.path[at[j]])
    swapped = " (width and height swapped: an EXIF rotation applied on one side only?)" if \
        (pw[j], ph[j]) == (th[j], tw[j]) else ""
    raise FormatError(f"the image size must be the truth image's {tw[j]}x{th[j]} (width x height), got {pw[j]}x{ph[j]}"
                      f"{swapped} ({off.size} of {at.size} images with predictions differ); the predictions were "
                      "made at another image size (or read against other image files): rescale them to the truth's "
                      "image sizes", path=src, record=f"image {path!r}", field="width/height")


def align(truth: Dataset, pred: Dataset, src: Path, *, scored: bool = True) -> tuple[Dataset, list[str]]:
    """Predictions read from another format, moved onto truth's images table (images matched by path, then by a
    unique file name; an image of another size than the truth's is refused). ``scored``: detections, which need
    a score each (label maps and image classes are scored without)."""
    notes: list[str] = []
    a = pred.annotations
    if scored and (a.score is None or not np.any(~np.isnan(a.score))):
        raise FormatError("predictions must carry scores, got none (this format or file holds no scores)", path=src)
    has = ~np.isnan(a.score) if scored and a.score is not None else np.ones(len(a), bool)
    if not has.all():
        notes.append(f"{int((~has).sum())} annotations without a score (ground truth in the same file) are "
                     "not evaluated")
        pred = pred.select(has)
        a = pred.annotations
    image_row = truth_rows(truth, pred)
    _check_sizes(truth, pred, image_row, src)
    new = image_row[a.image] if len(a) else np.zeros(0, np.int64)
    lost = new < 0
    if lost.any():
        first = str(pred.images.path[a.image[np.flatnonzero(lost)[0]]])
        if lost.all():
            raise FormatError(f"predictions must be on the truth's images, got none on them (first image: {first!r})",
                              path=src)
        notes.append(f"{int(lost.sum())} predictions on images the truth lacks are not evaluated (first: {first!r})")
    keep = np.flatnonzero(~lost)
    order = keep[np.argsort(new[keep], kind="stable")]
    ann = a.take(order, image=new[order])
    return Dataset(schema=pred.schema, images=truth.images, annotations=ann, root=truth.root), notes


def check_label_classes(truth: Dataset, pred: Dataset, src: Path, fmt: str, *, refuse_any: bool) -> list[str]:
    """Label predictions (classification, multi-label, semantic) whose classes the truth lacks (matched by name,
    case included). None on a truth class: refused, naming the file, the first record and ``label`` (every score
    would be 0, saying nothing of why). Some: refused with ``refuse_any`` (``compare``: both models must predict
    the truth's classes), else a note naming them (``eval`` scores them as the metric functions define: wrong
    classes, false tags, missed pixels)."""
    a = pred.annotations
    if not len(a):
        return []
    known = np.asarray([n in truth.schema for n in pred.schema.names], bool)
    bad = np.flatnonzero(~known[a.label])
    if not bad.size:
        return []
    r = int(bad[0])
    shown = ", ".join(repr(n) for n in truth.schema.names[:8]) + (", ..." if len(truth.schema.names) > 8 else "")
    hint = (": a label map's values are named by the classes.txt beside it; copy the truth's there"
            if fmt == "masks" else "")
    record = f"annotations row {r} (image {pred.images.path[a.image[r]]!r})"
    if bad.size == len(a):
        raise FormatError(f"no prediction is of a truth class: class {pred.schema.names[a.label[r]]!r} is not a truth "
                          f"class ({shown}; {bad.size} of {len(a)} predictions of other classes); classes are matched "
                          f"by name, case included{hint}", path=src, record=record, field="label")
    if refuse_any:
        raise FormatError(f"class {pred.schema.names[a.label[r]]!r} is not a truth class ({shown}; {bad.size} "
                          f"predictions); both models must predict the truth's classes, matched by name{hint}", path=src,
                          record=record, field="label")
    counts = np.bincount(a.label[bad], minlength=len(pred.schema.names))
    named = ", ".join(f"{pred.schema.names[k]!r}: {int(counts[k])}" for k in np.flatnonzero(counts)[:8])
    more = ", ..." if np.count_nonzero(counts) > 8 else ""
    effect = {Task.CLASSIFICATION: "scored as wrong predictions (extra rows of the per-class table)",
              Task.MULTILABEL: "scored as false tags (extra rows of the per-class table)",
              Task.SEMANTIC_SEGMENTATION: "their pixels count as missed (unpredicted)"}[truth.schema.task]
    return [f"{bad.size} of {len(a)} predictions are of classes the truth lacks ({named}{more}; classes are matched "
            f"by name, case included): {effect}"]


def check_label_shapes(truth: Dataset, pred: Dataset, src: Path, rows: np.ndarray) -> None:
    """Refuse, naming the file, the image and the field, a classification truth image without exactly one
    predicted class and a label map of another size than its image. ``rows``: (pred images,) each one's truth row
    (``truth_rows``; every prediction is on a truth image)."""
    a = pred.annotations
    task = truth.schema.task
    if task == Task.CLASSIFICATION:  # per truth image: two prediction images may carry the same file name
        count = np.bincount(rows[a.image], minlength=truth.n_images) if len(a) else np.zeros(truth.n_images, np.int64)
        wrong = np.flatnonzero(count != 1)
        if wrong.size:
            i = int(wrong[0])
            raise FormatError(f"an image must have exactly one predicted class, got {int(count[i])} ({wrong.size} "
                              "images)", path=src, record=f"image {truth.images.path[i]!r}", field="label")
    if task == Task.SEMANTIC_SEGMENTATION and len(a):
        if a.mask is None:
            raise FormatError("predictions must be masks (label maps), got none", path=src, field="mask")
        h, w = truth.images.height[rows[a.image]], truth.images.width[rows[a.image]]
        size = np.asarray([(-1, -1) if m is None else tuple(m["size"]) for m in a.mask.tolist()], np.int64)
        off = np.flatnonzero((size[:, 0] != h) | (size[:, 1] != w))
        if off.size:
            r = int(off[0])
            got = "no mask" if size[r, 0] < 0 else f"{size[r, 1]}x{size[r, 0]}"
            n_img = len(np.unique(a.image[off]))
            raise FormatError(f"the label map's size must be the truth image's {w[r]}x{h[r]} (width x height), got "
                              f"{got} ({n_img} images)", path=src,
                              record=f"image {pred.images.path[a.image[r]]!r}", field="mask")
