"""``maslow qa``: consensus scoring of a ground truth against out-of-fold predictions (given, or made here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from maslow.cli.render import (
    console,
    either,
    fold_columns,
    format_name,
    kpt_sigmas_error,
    kpt_sigmas_option,
    lit,
    load_dataset,
    print_json,
    refuse_import_error,
    refuse_offsets,
    results_or_folder,
    spinner,
    table,
    workspace_version,
    write_json_list,
)
from maslow.core.dataset import Dataset
from maslow.errors import FormatError, InvalidDatasetError, MaslowError
from maslow.quality.records import issue_record_chunks, issue_records

#: ``--pred-format`` names of a COCO results list (``coco-results``, as in ``maslow formats`` and ``maslow eval``;
#: ``coco_predictions``, the old default, still works), compared with ``_`` read as ``-`` and in any case
_RESULTS_FORMATS = ("coco-predictions", "coco-results")


#: the share of a truth's annotated images that a results list has no prediction on, from which a note says so
_UNPREDICTED_SHARE = 0.05


def _is_results(fmt: str) -> bool:
    return fmt.lower().replace("_", "-") in _RESULTS_FORMATS


def read_predictions(path: Path, fmt: str, truth: Dataset, *, id_offset: int = 0,
                     category_offset: int | None = None) -> Dataset:
    """Predictions for ``truth``'s images: a COCO results file matched by ids (``id_offset`` added to its image
    and category ids, ``category_offset``, when given, to its category ids instead), or any format matched by path.

    Raises:
        FormatError: unreadable file, predictions on unknown images or of unknown classes (names the place).
    """
    return read_listed_predictions(path, fmt, truth, id_offset=id_offset, category_offset=category_offset)[0]


def read_listed_predictions(path: Path, fmt: str, truth: Dataset, *, id_offset: int = 0,
                            category_offset: int | None = None) -> tuple[Dataset, np.ndarray | None]:
    """``read_predictions``, and which truth images the file lists: (n_images,) bool for a dataset format (its
    images table says which images the model was run on), None for a results list (it names only the images with a
    prediction: an image it lacks may have been predicted empty).

    Raises:
        FormatError: unreadable file, predictions on unknown images or of unknown classes (names the place).
    """
    from maslow import io

    if _is_results(fmt):
        from maslow.io.coco_results import parse

        pred, report = parse(path, like=truth, id_offset=id_offset, category_offset=category_offset)
        refuse_import_error([i for i in report if i.severity == "error"], path)  # any error: qa refuses them all
        return pred, None
    refuse_offsets("qa", fmt, id_offset, category_offset)
    spec = io.get_format(fmt, where="--pred-format")
    if spec.needs_like:  # DOTA results: images named by stem
        pred, report = spec.parse(path, like=truth)
        refuse_import_error([i for i in report if i.severity == "error"], path)
        return pred, None

    # label maps are paired with the truth's images (under its root), as eval and compare read them: a model's
    # output folder has no images beside it (a "missing image" per map otherwise)
    pred = io.read(path, fmt, **({"images_root": truth.root} if spec.name == "masks" and truth.root else {}))
    pos = {p: r for r, p in enumerate(truth.images.path.tolist())}
    unknown = [p for p in pred.images.path.tolist() if p not in pos]
    if unknown:
        raise FormatError(f"image {unknown[0]!r} is not in the ground truth ({len(unknown)} such images)", path=path,
                          field="images")
    _refuse_other_classes(pred, truth, path)
    rows = np.asarray([pos[p] for p in pred.images.path.tolist()], np.int64)
    # the truth's images table; each prediction moved to its image's truth row (rows sorted by image, stable)
    a = pred.annotations
    image = rows[a.image]
    order = np.argsort(image, kind="stable")
    listed = np.zeros(truth.n_images, bool)
    listed[rows] = True
    return Dataset(schema=pred.schema, images=truth.images, annotations=a.take(order, image=image[order]),
                   root=truth.root), listed


def _refuse_other_classes(pred: Dataset, truth: Dataset, path: Path) -> None:
    """A dataset-format --pred whose predictions have a class the truth lacks (a class it only lists is fine)."""
    names = set(truth.schema.names)
    used = np.bincount(pred.annotations.label, minlength=len(pred.schema.names))
    bad = [(n, int(c)) for n, c in zip(pred.schema.names, used.tolist(), strict=True) if c and n not in names]
    if bad:
        more = f"; {len(bad)} such classes" if len(bad) > 1 else ""
        raise FormatError(f"class {bad[0][0]!r} of {bad[0][1]} predictions is not a truth class "
                          f"({', '.join(truth.schema.names)}){more}", path=path, field="classes")


def _names(truth: Dataset, rows: np.ndarray, n: int = 3) -> str:
    return ", ".join(repr(p) for p in truth.images.path[rows[:n]].tolist()) + (", ..." if len(rows) > n else "")


def _coverage(truth: Dataset, predictions: Dataset, listed: np.ndarray | None
              ) -> tuple[np.ndarray | None, dict[str, Any], str | None]:
    """What --pred says of the truth images it has no prediction on: the truth rows to score (None: all), the
    ``unpredicted`` summary of ``--json`` and the note for stderr (None: nothing to say).

    A dataset-format --pred lists the images the model was run on: an image it lacks is not scored (every
    annotation there would be ``extra``, the model's recall lowered with it). A results list names only images with
    a prediction, so an annotated image it lacks is scored (the model saw nothing there) and said, with how to tell
    maslow otherwise."""
    from maslow.core.schema import Task

    a = truth.annotations
    scored = np.ones(len(a), bool) if a.iscrowd is None else ~a.iscrowd  # crowd regions are not scored
    if listed is not None:
        rows = np.flatnonzero(~listed)
        n_ann = int(np.count_nonzero(scored & ~listed[a.image]))
        info = {"n_images": len(rows), "n_annotations": n_ann, "scored": False,
                "first": truth.images.path[rows[:3]].tolist()}
        if not len(rows):
            return None, info, None
        return np.flatnonzero(listed), info, (
            f"{len(rows)} of the {truth.n_images} truth images are not in --pred (first: {_names(truth, rows)}): the "
            f"file shows the model was not run on them, so they are not scored (their {n_ann} annotations are left "
            "out of the ranking and of the statistics)")
    seen = np.zeros(truth.n_images, bool)
    seen[predictions.annotations.image] = True
    labelled = np.zeros(truth.n_images, bool)
    labelled[a.image[scored]] = True
    rows = np.flatnonzero(labelled & ~seen)
    n_ann = int(np.count_nonzero(scored & ~seen[a.image]))
    info = {"n_images": len(rows), "n_annotations": n_ann, "scored": True, "first": truth.images.path[rows[:3]].tolist()}
    if len(rows) < _UNPREDICTED_SHARE * labelled.sum() or not len(rows) or \
            truth.schema.task in (Task.CLASSIFICATION, Task.MULTILABEL, Task.SEMANTIC_SEGMENTATION):
        return None, info, None  # a few: the model's misses (a model sees nothing on some images); --json counts them
    return None, info, (
        f"{len(rows)} of the {int(labelled.sum())} annotated images have no prediction at all (first: "
        f"{_names(truth, rows)}): their {n_ann} annotations are scored as objects the model does not see (extra). A "
        "results list can't tell an image the model saw nothing on from one it was not run on: if it was not run on "
        "them, leave them out of --gt, or give --pred in a dataset format listing the images predicted (--pred-format "
        "coco: the images it lacks are not scored)")


def ignore_class(truth: Dataset, ignore_index: int) -> Dataset:
    """A semantic truth whose class of label-map value ``ignore_index`` (``ClassDef.id``) is a void region: its
    annotations made crowd regions, as ``read_masks(..., ignore_index=...)`` reads them, so they are not scored.

    Raises:
        MaslowError: the truth is not semantic segmentation, or no class has that id.
    """
    from maslow.core.schema import Task

    if truth.schema.task != Task.SEMANTIC_SEGMENTATION:
        raise MaslowError(f"qa: --ignore-index applies to semantic segmentation, got a {truth.schema.task.value} "
                          "truth")
    ids = [c.id for c in truth.schema.classes]
    if ignore_index not in ids:
        raise MaslowError(f"qa: --ignore-index must be the label-map value of a truth class "
                          f"({sorted(i for i in ids if i is not None)}), got {ignore_index}")
    a = truth.annotations
    assert a.iscrowd is not None
    return truth.replace(annotations=a.with_columns(iscrowd=a.iscrowd | (a.label == ids.index(ignore_index))))


def _pixel_probs(folder: Path, truth: Dataset) -> Any:
    """``--pred-probs``: the probability files of a semantic truth's images (read one at a time when scored).

    Raises:
        MaslowError: the truth is not semantic segmentation. FormatError: not a folder, a file of no image, an
            image with labels and no file.
    """
    from maslow.core.schema import Task
    from maslow.io.pixel_probs import read_pixel_probs

    if truth.schema.task != Task.SEMANTIC_SEGMENTATION:
        raise MaslowError(f"qa: --pred-probs applies to semantic segmentation, got a {truth.schema.task.value} truth")
    return read_pixel_probs(folder, like=truth)


def _blind_model(truth: Dataset, predictions: Dataset, kind: str, sigmas: Any, *, from_model: bool = False
                 ) -> str | None:
    """Why an object table came out empty when the model sees none of the annotations (its expected recall is 0:
    then no annotation is scored ``extra``, see docs/consensus.md); None when it sees some, or for other tasks."""
    from maslow.quality.consensus import object_scores

    if kind not in ("bbox", "segm", "keypoints", "obb"):  # "": classification, tags, semantic masks
        return None
    if object_scores(truth, predictions, iou_type=kind, kpt_sigmas=sigmas).recall > 0:
        return None
    check = ("check the --model config (its data, classes and image size)" if from_model else
             "check the classes, image ids and boxes of --pred")
    return ("the predictions explain none of the annotations (none is matched by a prediction the calibration "
            f"trusts), so nothing can be scored: {check}, or train the model longer (a smoke-test model learns "
            "little)")


def _unlabelled(truth: Dataset, predictions: Dataset, pixel_probs: bool) -> str | None:
    """Why nothing is found on a truth with no annotation to score and a model that predicts (None otherwise): the
    confidences are calibrated on the predictions that match an annotation, so none can be trusted, and an empty
    table would read as "no label errors"."""
    a = truth.annotations
    n_scored = len(a) if a.iscrowd is None else int(np.count_nonzero(~a.iscrowd))
    if n_scored or not (predictions.n_annotations or pixel_probs):
        return None
    crowd = f" ({len(a)} crowd regions, not scored)" if len(a) else ""
    what = "per-pixel probabilities" if pixel_probs else f"{predictions.n_annotations} predictions"
    return (f"the ground truth has no annotations to score on its {truth.n_images} images{crowd}, so nothing is "
            f"scored against the model's {what} (its confidences are calibrated on the predictions that match an "
            "annotation, see docs/consensus.md): finding nothing here is no sign of clean labels; label the images "
            "first, or check --gt")


def _check_geometry(kind: str, predictions: Dataset, path: Path) -> None:
    """Refuse predictions without what ``kind`` compares, naming the file (the scorer names only its table's row).

    Raises:
        FormatError: no keypoints for ``keypoints``; a prediction with no segmentation for ``segm``.
    """
    a = predictions.annotations
    if not len(a):
        return
    if kind == "keypoints" and a.keypoints is None:
        raise FormatError(f"--iou-type keypoints needs keypoints in the predictions, got none in any of the {len(a)} "
                          "predictions", path=path, field="keypoints")
    if kind == "segm":
        shaped = np.zeros(len(a), bool) if a.polygon is None else ~a.polygon.null
        if a.mask is not None:
            shaped |= np.asarray([m is not None for m in a.mask.tolist()], bool)
        bad = np.flatnonzero(~shaped)
        if bad.size:
            raise FormatError(f"--iou-type segm needs a segmentation (polygons or an RLE) in every prediction, got "
                              f"none in {bad.size} of the {len(a)} (first: on image "
                              f"{predictions.images.path[a.image[bad[0]]]!r})", path=path, field="segmentation")


def _kind(truth: Dataset, predictions: Dataset, iou_type: str, sigmas: list[float] | None) -> tuple[str, list[str]]:
    """The iou type the objects are compared by, and notes for stderr: predictions whose boxes are only their
    keypoints' extent (a keypoints results file) compared as boxes."""
    from maslow.core.schema import Task
    from maslow.quality._consensus_kp import extent_boxes
    from maslow.quality.consensus import resolve_iou_type

    if truth.schema.task in (Task.CLASSIFICATION, Task.MULTILABEL, Task.SEMANTIC_SEGMENTATION):
        if iou_type != "auto" or sigmas is not None:
            raise MaslowError(f"qa: --iou-type and --kpt-sigmas apply to objects, got a {truth.schema.task.value} "
                              "truth")
        return "", []
    kind = resolve_iou_type(truth, predictions, iou_type)
    if sigmas is not None and kind != "keypoints":
        raise MaslowError(f"qa: --kpt-sigmas applies to keypoints (--iou-type keypoints), got iou type {kind}")
    n_ext = extent_boxes(predictions) if kind == "bbox" else 0
    notes = [] if not n_ext else [
        f"{n_ext} of the {predictions.n_annotations} predictions have keypoints and no box of their own (their box "
        "is their keypoints' extent, as pycocotools' loadRes makes it); they are compared as boxes (--iou-type "
        "bbox): pass --iou-type keypoints to compare keypoints (OKS)"]
    return kind, notes


def _model_config(config: Path) -> tuple[Any, Any]:
    """``--model``: the training config and its adapter, built (its settings checked) before any data is read, as
    ``maslow crossval`` does; a wrong setting names the config file."""
    from maslow.cli.train import read_train_config
    from maslow.errors import MissingDependencyError
    from maslow.models.base import build_model

    cfg = read_train_config(config, None)[0]
    try:
        return cfg, build_model(cfg)
    except MissingDependencyError:
        raise
    except MaslowError as e:
        raise FormatError(str(e), path=config) from None


def _truth(gt: str, fmt: str | None, images_root: Path | None, flag: str = "--from") -> tuple[Dataset, str]:
    """The ground truth and its format: ``gt`` read as ``fmt`` (coco by default), or, without ``--from``, a
    workspace version or dataset name (as ``maslow check`` takes one; see ``render.workspace_version``)."""
    if fmt is None:
        found = workspace_version(gt, "--gt")
        if found is not None:
            return found
    fmt = format_name(fmt or "coco", flag)
    return load_dataset(gt, fmt, images_root=images_root, flag=flag), fmt


def _write_outputs(issues: Any, truth: Dataset, out: Path, html: Path | None, *, xywh: bool,
                   chunk_size: int = 4096, title: str = "maslow label issues") -> None:
    """ISSUES.json and the HTML page together or neither (as ``maslow eval`` writes its JSON and plots): an --html
    that can't be written left a new ISSUES.json behind an exit code 2. ISSUES.json is encoded ``chunk_size``
    records at a time into its temp file (the same bytes as ``json_bytes(issue_records(...))``)."""
    import contextlib

    from maslow.core.atomic import atomic_path

    with contextlib.ExitStack() as stack:
        tmp_out = stack.enter_context(atomic_path(out))
        tmp_html = None if html is None else stack.enter_context(atomic_path(html))
        try:
            with open(tmp_out, "wb") as f:
                write_json_list(f, lambda: issue_record_chunks(issues, truth, xywh=xywh, size=chunk_size))
                f.write(b"\n")
        except OSError as e:  # a full disk or a file size limit, halfway: the temp file goes, nothing is left
            raise FormatError(f"--out must be a writable file, got {(e.strerror or str(e)).lower()} while writing "
                              "it (nothing was written)", path=out) from None
        if tmp_html is not None:
            from maslow.quality.consensus_report import write_consensus_html

            write_consensus_html(issues, truth, tmp_html, title=title)


def _note_missing_crops(truth: Dataset, issues: Any, *, probe: int = 50) -> None:
    """Say on stderr when the images of the top issues are not where the truth says: the HTML report then shows
    "(no image)" instead of every crop, which nothing had said (a COCO file read away from its images)."""
    from maslow.cli.render import err_console
    from maslow.quality.report import missing_crop_images

    found = missing_crop_images(issues, truth, top=probe)
    if found is not None and found.n_missing:
        err_console.print(f"note: --html: {found.n_missing} of the {found.n_checked} images of the top issues are not "
                          f"found (e.g. {found.first}): their crops are left out of the report; pass --images-root "
                          "FOLDER", markup=False, highlight=False)


def qa_command(
    gt: Annotated[str, typer.Option("--gt", help="Ground-truth file or folder, or a workspace version or dataset "
                                    "(without --from).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the ranked issues here (ISSUES.json).")],
    pred: Annotated[Path | None, typer.Option("--pred", help="Out-of-fold predictions (e.g. a COCO results file).")] = None,
    gt_format: Annotated[str | None, typer.Option("--from", "-f", help="Format of --gt (see `maslow formats`; "
                                                  "default coco). Without it, a --gt that is no file or folder is a "
                                                  "workspace version or dataset.")] = None,
    pred_format: Annotated[str, typer.Option("--pred-format", help="Format of --pred: coco-results (a COCO "
                                             "results list) or any dataset format, matched by image path.")]
    = "coco-results",
    model: Annotated[Path | None, typer.Option("--model", help="Training config (YAML): make out-of-fold predictions "
                                               "here instead of --pred.")] = None,
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds for --model.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fold assignment (--model).")] = 0,
    images_root: Annotated[Path | None, typer.Option("--images-root", help="Folder the image paths are relative to.")] = None,
    id_offset: Annotated[int, typer.Option("--id-offset", help="Added to a COCO results file's image and category "
                                           "ids (1 for 0-based ids against 1-based truth).")] = 0,
    category_offset: Annotated[int | None, typer.Option("--category-offset", help="Added to a COCO results "
                                                        "file's category ids (default: --id-offset).")] = None,
    ignore_index: Annotated[int | None, typer.Option("--ignore-index", help="Semantic segmentation: label-map "
                                                     "value of a truth class to ignore (a void class).")] = None,
    pred_probs: Annotated[Path | None, typer.Option("--pred-probs", help="Semantic segmentation: a folder of the "
                                                    "model's per-pixel probabilities, one .npy/.npz per image named "
                                                    "after it ((K, H, W) or (H, W, K) softmax), scored instead of "
                                                    "--pred.")] = None,
    iou_type: Annotated[str, typer.Option("--iou-type", help="auto, bbox, segm (instance masks), keypoints (OKS; "
                                          "auto picks it for a keypoints truth and keypoint predictions) or obb "
                                          "(oriented boxes; auto picks it for oriented boxes on both sides).")]
    = "auto",
    kpt_sigmas: Annotated[str | None, typer.Option("--kpt-sigmas", help="Keypoints: OKS sigmas, one per keypoint, "
                                                   "comma separated, as pycocotools holds them (COCO's are 0.026 to "
                                                   "0.107; default COCO's 17).")] = None,
    min_score: Annotated[float, typer.Option("--min-score", help="Leave out findings scored below this "
                                              "(in [0, 1]).")] = 0.05,
    ambiguous_share: Annotated[float, typer.Option("--ambiguous-share", min=0.01, max=0.5, help="Classification: "
                                                   "an image is ambiguous when the best other class holds this "
                                                   "share to 1 minus it of the model's support for it and the "
                                                   "label, wrong_class above.")] = 0.25,
    html: Annotated[Path | None, typer.Option("--html", help="Write an HTML report with crops of the top issues.")] = None,
    top: Annotated[int, typer.Option("--top", "-n", min=0, help="How many issues to show (and --json lists).")] = 20,
    rules: Annotated[bool, typer.Option("--rules/--no-rules", help="Also run the rule checks (maslow check) and "
                                        "rank their findings in the same table and file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary for scripts instead of tables.")] = False,
    gt_format_old: Annotated[str | None, typer.Option("--gt-format", hidden=True)] = None,  # before --from
) -> None:
    """Find label errors (wrong class, missing, extra, low IoU, ambiguous) from out-of-fold model predictions."""
    from maslow.cli.render import err_console
    from maslow.quality.consensus import find_label_issues, summarize

    sigmas = kpt_sigmas_option(kpt_sigmas, "qa")
    if not 0 <= min_score <= 1:  # NaN too: no score is >= NaN, so every finding went, silently
        raise MaslowError(f"qa: --min-score must be a number in [0, 1] (findings are scored in [0, 1]), got "
                          f"{min_score:g}")

    if sum(x is not None for x in (pred, model, pred_probs)) != 1:
        raise MaslowError("give exactly one of --pred PREDICTIONS, --pred-probs FOLDER or --model CONFIG")
    for flag, path in (("--out", out), ("--html", html)):  # before any work; atomic writes find it only at the end
        if path is not None and path.is_dir():
            raise FormatError(f"{flag} must be a file to write, got a folder", path=path)
    gt_format, gt_flag = either(gt_format, gt_format_old, ("--from", "--gt-format"))
    cfg, adapter = (None, None) if model is None else _model_config(model)  # before the truth is read
    if pred is not None:
        pred_format = results_or_folder(pred, pred_format)
    if pred is not None and not _is_results(pred_format):
        format_name(pred_format, "--pred-format")  # a misspelt format is named before the truth is read
    truth, truth_format = _truth(gt, gt_format, images_root, gt_flag)
    if ignore_index is not None:
        truth = ignore_class(truth, ignore_index)
    probs = None
    listed = None  # a dataset-format --pred: the truth images it lists
    crossval: dict[str, Any] | None = None  # --model: the fold models (fold_summary) and their scores
    scores: Any = None
    if pred_probs is not None:
        probs = _pixel_probs(pred_probs, truth)
        predictions = truth.select(np.zeros(truth.n_annotations, bool))  # the images table only
    elif pred is not None:
        predictions, listed = read_listed_predictions(pred, pred_format, truth, id_offset=id_offset,
                                                      category_offset=category_offset)
    else:
        assert model is not None and cfg is not None
        from maslow.cli.models import fold_summary, out_of_fold_run

        # the fold models' metrics and what they started from, as maslow crossval says them (one code path)
        predictions, scores, weights = out_of_fold_run(
            truth, cfg, folds=folds, seed=seed, task=getattr(adapter, "task", None), label="out-of-fold predictions",
            enabled=not as_json)
        crossval = fold_summary(model, cfg, folds=folds, seed=seed, weights=weights, scores=scores)
    if probs is None and not predictions.n_annotations and truth.n_annotations:
        # every truth object would come out "extra" (the model sees none of them), ranked at score 1: noise
        where = "--pred" if pred is not None else f"--model's {folds}-fold out-of-fold predictions"
        started = "" if crossval is None else f" (the fold models started from: {crossval['weights']})"
        raise FormatError(f"{where} must hold predictions, got none on any of the {truth.n_images} images, so "
                          "every annotation would be reported as extra; a model trained too briefly or with a high "
                          f"params.score_threshold predicts nothing{started}", path=pred if pred is not None else model)
    # the images --pred has no prediction on: said, and not scored where the file shows they were not predicted
    kept, unpredicted, cover = (None, None, None) if pred is None or probs is not None else \
        _coverage(truth, predictions, listed)
    part, part_pred = (truth, predictions) if kept is None else \
        (truth.select_images(kept), predictions.select_images(kept))
    kind, notes = _kind(part, part_pred, iou_type, sigmas)
    notes = ([] if cover is None else [cover]) + notes
    for note in notes:
        err_console.print(f"note: --pred: {note}", markup=False, highlight=False)
    if pred is not None:
        _check_geometry(kind, part_pred, pred)
    try:
        with spinner(f"scoring {part.n_annotations} annotations against {part_pred.n_annotations} predictions",
                     enabled=not as_json):
            issues = find_label_issues(part, part_pred, iou_type=kind or "auto", min_score=min_score,
                                       ambiguous_share=ambiguous_share, kpt_sigmas=sigmas, pixel_probs=probs,
                                       ignore_index=ignore_index)
    except InvalidDatasetError as e:  # keypoints that are not COCO's 17 (people): the option to use
        msg = str(e)
        if msg.startswith("kpt_sigmas:"):
            raise MaslowError(f"qa: --kpt-sigmas{msg.removeprefix('kpt_sigmas')}") from None
        sigmas_error = kpt_sigmas_error(e, gt, "scored")
        if sigmas_error is not None:
            raise sigmas_error from None
        side = pred if msg.startswith("pred.") else gt if msg.startswith("truth.") else None
        if side is None:
            raise
        raise FormatError(msg, path=side) from None  # the scorer names the table and row, not the file
    if kept is not None:  # back to the truth's rows (ISSUES.json names them; review apply checks them)
        issues = issues.on_rows(kept, np.flatnonzero(np.isin(truth.annotations.image, kept)))
    if rules:  # one ranked table: the model's findings and the rule checks' (types beyond the five consensus ones)
        from maslow.quality import CheckConfig, QualityIssues, check

        # compared as oriented boxes: their corners are checked too (else when the truth reads as oriented)
        with spinner("running the rule checks", enabled=not as_json):
            issues = QualityIssues.build([issues, check(truth, config=CheckConfig(oriented=True if kind == "obb"
                                                                                   else None))])
    if not len(issues) and probs is None and part_pred.n_annotations and part.n_annotations:
        blind = _blind_model(part, part_pred, kind, sigmas, from_model=pred is None)
        if blind is not None:
            notes.append(blind)
            err_console.print(f"note: {blind}", markup=False, highlight=False)
    unlabelled = _unlabelled(part, part_pred, probs is not None)
    if unlabelled is not None:
        notes.append(unlabelled)
        err_console.print(f"note: {unlabelled}", markup=False, highlight=False)
    xywh = truth_format.startswith("coco")
    summary = summarize(issues, truth, scored=listed if kept is not None else None)
    _write_outputs(issues, truth, out, html, xywh=xywh, title=f"maslow qa: {gt}")
    if html is not None:
        _note_missing_crops(truth, issues)
    records = issue_records(issues.top(top), truth, xywh=xywh)  # the ones shown; ISSUES.json has them all
    if as_json:
        print_json({"n_issues": len(issues), "counts": issues.counts(), "out": str(out),
                    "html": None if html is None else str(html), "iou_type": kind or None, "notes": notes,
                    "unpredicted": unpredicted, "crossval": crossval, **summary.to_dict(), "top": records})
        return
    if crossval is not None:
        from maslow.cli.models import render_folds

        render_folds(scores, truth.n_images, f"Out-of-fold predictions of {crossval['model']} ({folds} folds)",
                     crossval["weights"])
    if not len(issues):
        n_ann = truth.n_annotations
        console.print(f"[green]No label issues found[/green] in {lit(gt)} ({truth.n_images} images, {n_ann} "
                      f"annotation{'' if n_ann == 1 else 's'}).")
    else:
        console.print(table(f"Label issues ({len(issues)})", ["type", "count"], list(issues.counts().items())))
        rows = [(f"{r['score']:.3f}", r["type"], r["file_name"] or "", "" if r["annotation_id"] is None
                 else str(r["annotation_id"]), r["class"] or "", (r["suggestion"] or {}).get("text", ""))
                for r in records]
        console.print(fold_columns(table(f"Top {len(rows)} issues", ["score", "type", "image", "annotation", "class",
                                                                  "suggestion"], rows, justify_numbers=False),
                                   "type", "image"))
        rate_rows = [(c, *(f"{100 * v:.1f}%" for v in r.values())) for c, r in summary.error_rate.items()]
        console.print(table("Estimated error rate per class (sum of scores / annotations)",
                            ["class", *next(iter(summary.error_rate.values())).keys()], rate_rows))
    console.print(f"Issues written to {lit(out)}" + ("" if html is None else f"; report: {lit(html)}"))


def register(app: typer.Typer) -> None:
    app.command("qa")(qa_command)
