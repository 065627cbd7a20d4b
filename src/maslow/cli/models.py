"""Model commands: predict (a saved model on images), crossval (out-of-fold predictions of a config)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from maslow.cli._destination import OverwriteOpt
from maslow.cli.render import (
    console,
    err_console,
    format_name,
    lit,
    load_dataset,
    no_images,
    print_json,
    progress_bar,
    render_export,
    table,
)
from maslow.core.dataset import Dataset
from maslow.core.schema import Task

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
ToOpt = Annotated[str, typer.Option("--to", "-t", help="Output format (parquet keeps everything, probabilities "
                                                       "included; coco-results for detections).")]


def _summary(pred: Dataset) -> dict[str, Any]:
    a = pred.annotations
    names = pred.schema.names
    counts = np.bincount(a.label, minlength=len(names)) if len(a) else np.zeros(len(names), np.int64)
    score = a.score if a.score is not None else np.full(len(a), np.nan)
    per_class = []
    for j, name in enumerate(names):
        s = score[a.label == j]
        s = s[~np.isnan(s)]
        per_class.append({"name": name, "predictions": int(counts[j]),
                          "mean_score": float(s.mean()) if s.size else float("nan")})
    return {"n_images": pred.n_images, "n_predictions": len(a), "task": pred.schema.task.value,
            "per_class": per_class}


#: tasks whose predictions are objects a model may find none of (a classifier labels every image)
_OBJECT_TASKS = ("detection", "instance_segmentation", "keypoints")


def _warn_if_empty(pred: Dataset, task: str | None, config: Any = None) -> None:
    """Say on stderr when a detector found nothing on any image: a model trained too briefly (or with a high
    ``score_threshold``) writes an empty file that mAP scores 0 and ``maslow qa`` would read as "every object is
    extra". ``config``: the model's ``TrainConfig``, whose ``params.score_threshold`` is said."""
    if pred.n_annotations or not pred.n_images or (task or pred.schema.task.value) not in _OBJECT_TASKS:
        return
    from maslow.models.detect import SCORE_THRESHOLD

    given = None if config is None else config.params.get("score_threshold")
    threshold = (f"{given:g} in the model's config" if isinstance(given, int | float) and not isinstance(given, bool)
                 else f"{SCORE_THRESHOLD:g}, the default")
    err_console.print(f"warning: the model predicted no object on any of the {pred.n_images} images: train it "
                      f"longer, or lower params.score_threshold (now {threshold}); maslow qa refuses predictions "
                      "that hold none", markup=False, highlight=False)


def _input_category_ids(names: tuple[str, ...], ds: Dataset, *, fmt_in: str | None, fmt_out: str,
                        src: Path) -> dict[str, int] | None:
    """For ``--to coco-results`` from a COCO file: the file's category id of each class name, so the results pair
    with that file (not the ids of the model's training file); None for other formats, or a file without categories
    (the model's ids are written).

    Raises:
        FormatError: a class of the model (``names``) is not a category of the file: its predictions would have no
            category id there (names them and the file's categories).
    """
    if fmt_out != "coco-results" or fmt_in != "coco":
        return None
    ids = {c.name: int(c.id) for c in ds.schema.classes if c.id is not None}
    if not ids:
        return None
    missing = [n for n in names if n not in ids]
    if missing:
        from maslow.errors import FormatError

        raise FormatError(f"--to coco-results: the model's classes must be categories of this file, so that the "
                          f"results carry its category ids; got {len(missing)} it lacks: "
                          f"{', '.join(map(repr, missing[:10]))}{' ...' if len(missing) > 10 else ''} (its "
                          f"categories: {', '.join(map(repr, list(ids)[:10]))}{' ...' if len(ids) > 10 else ''}); "
                          "write --to parquet or coco instead", path=src)
    return ids


def _with_category_ids(pred: Dataset, ids: dict[str, int]) -> Dataset:
    """``pred`` with each class's COCO id (``ClassDef.id``, what the writers use) taken from ``ids`` by name."""
    import dataclasses

    classes = tuple(dataclasses.replace(c, id=ids[c.name]) for c in pred.schema.classes)
    return pred.replace(schema=dataclasses.replace(pred.schema, classes=classes))


def _render_summary(d: dict[str, Any], title: str) -> None:
    console.print(f"[bold]{d['n_predictions']}[/bold] predictions on [bold]{d['n_images']}[/bold] images "
                  f"(task {d['task']})")
    console.print(table(title, ["class", "predictions", "mean score"],
                        [(c["name"], c["predictions"], "-" if c["mean_score"] != c["mean_score"] else c["mean_score"])
                         for c in d["per_class"]]))  # "-": nothing predicted as that class (null in --json)


def out_of_fold_run(truth: Dataset, cfg: Any, *, folds: int, seed: int, task: Any, label: str, enabled: bool,
                    groups: np.ndarray | None = None, dedupe: bool = False) -> tuple[Dataset, Any, str]:
    """``out_of_fold`` with a progress bar (``maslow crossval``, ``maslow qa --model``): the predictions, their
    ``CrossvalScores`` (per fold and overall; ``task``: the adapter's) and what the fold models started from (each
    fold's ``history.weights``, in fold order, once each, joined by ``; ``)."""
    from maslow.models.crossval import crossval_scores, out_of_fold

    weights: dict[str, None] = {}
    with progress_bar(label, enabled=enabled) as progress:
        oof = out_of_fold(truth, cfg, folds=folds, seed=seed, groups=groups, progress=progress, dedupe=dedupe,
                          on_fold=lambda f, model: weights.setdefault(model.history.weights))
    return oof, crossval_scores(truth, oof, task=task), "; ".join(weights)


def fold_summary(config: Path, cfg: Any, *, folds: int, seed: int, weights: str, scores: Any) -> dict[str, Any]:
    """The JSON of a cross-validation's models: config, adapter, what they started from, folds, metrics."""
    return {"config": str(config), "model": cfg.model, "weights": weights, "folds": folds, "seed": seed,
            "scores": scores.to_dict()}


def render_folds(scores: Any, n_images: int, title: str, weights: str) -> None:
    """The metrics per fold and out of fold, and the ``weights:`` line (what the fold models started from)."""
    metrics = list(scores.overall)
    rows: list[list[Any]] = [[f"fold {f}", n, *[s.get(k, float("nan")) for k in metrics]]
                             for f, (n, s) in enumerate(zip(scores.n_images, scores.per_fold, strict=True))]
    rows.append(["all (out of fold)", n_images, *[scores.overall[k] for k in metrics]])
    console.print(table(title, ["fold", "images", *metrics], rows))
    console.print(f"weights: {lit(weights or 'not recorded')}")


def predict(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="A model folder (maslow train's output).")],
    images: Annotated[Path, typer.Argument(metavar="IMAGES", help="A folder of images, or a dataset read with "
                                                                  "--from (its annotations are ignored).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the predictions.")],
    fmt_in: Annotated[str | None, typer.Option("--from", "-f", help="Format of IMAGES when it is a dataset.")] = None,
    images_root: Annotated[Path | None, typer.Option("--images-root", help="Folder the image paths are "
                                                                            "relative to.")] = None,
    fmt_out: ToOpt = "parquet",
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, help="Images per forward pass "
                                                                                "(default: the model's).")] = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Predict with a saved model on a folder of images or a dataset; writes a predictions dataset. An OUT folder that
    is not empty needs --overwrite; the model and the images or dataset read are never replaced."""
    from maslow import io
    from maslow.cli._destination import (
        check_destination,
        check_images_kept,
        check_not_in_model,
        read_paths,
    )
    from maslow.core.atomic import walked
    from maslow.models import load_model

    # formats checked before the model is loaded and run: a misspelt --to failed only after predicting every image
    fmt_out = format_name(fmt_out, "--to")
    if fmt_in is not None:
        fmt_in = format_name(fmt_in, "--from")
    # and OUT: a folder not empty (without --overwrite), the model or data read, a workspace, the current folder
    folders = check_destination(out, fmt_out, overwrite=overwrite, options={}, flag="--out", sources=[
        model_path, *read_paths(images, fmt_in, images_root=images_root)])
    check_not_in_model(out, model_path, flag="--out")  # --out MODEL/model.json replaced the model
    checked = walked(folders)  # the check looked through them for a workspace: the writer doesn't again
    model = load_model(model_path)
    ds = load_dataset(images, fmt_in, images_root=images_root, folders=True)
    check_images_kept(folders, ds, flag="--out", dst=out)  # --out IMAGES/a.png --to coco replaced the image
    if not ds.n_images:  # as select, embed, outliers say it: the (empty) predictions are still written, exit 0
        no_images(str(images), fmt_in)
    schema = getattr(model, "schema", None)  # before predicting: a class the COCO file lacks is said first
    ids = None if schema is None else _input_category_ids(schema.names, ds, fmt_in=fmt_in, fmt_out=fmt_out,
                                                          src=images)
    with progress_bar("predicting", enabled=not as_json) as progress:
        pred = model.predict(ds, batch_size=batch_size, progress=progress)
    if schema is None:
        ids = _input_category_ids(pred.schema.names, ds, fmt_in=fmt_in, fmt_out=fmt_out, src=images)
    if ids is not None:
        pred = _with_category_ids(pred, ids)
    with checked:
        rep = io.write(pred, out, fmt_out)
    d = {"model": str(model_path), "adapter": model.config.model, "weights": model.history.weights,
         **_summary(pred), "export": rep.to_dict()}
    d["task"] = str(getattr(model, "task", None) or d["task"])  # a detector trained on data that also has keypoints
    _warn_if_empty(pred, d["task"], model.config)
    if as_json:
        print_json(d)
        return
    console.print(f"Model {lit(model_path)} ({lit(model.config.model)}; "
                  f"{lit(model.history.weights or 'weights not recorded')})")
    _render_summary(d, "Predictions per class")
    render_export(rep)


def crossval(
    config: Annotated[Path, typer.Argument(metavar="CONFIG", help="Training config (YAML).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the out-of-fold predictions.")],
    folds: Annotated[int, typer.Option("--folds", "-k", min=2, help="Number of folds.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the fold assignment.")] = 0,
    dedupe: Annotated[bool, typer.Option("--dedupe/--no-dedupe", help="Keep near-duplicate images (pHash) in one "
                                                                       "fold too.")] = False,
    group_by: Annotated[str | None, typer.Option("--group-by", metavar="COLUMN", help="images.extra column whose "
                                                 "equal values share a fold (a patient, a site, a video; default: "
                                                 "sequence, when the data has it).")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE", help="Override a config "
                                                   "setting (repeatable): --set epochs=5, --set params.C=0.5.")]
    = None,
    fmt_out: ToOpt = "parquet",
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Out-of-fold predictions: every image predicted by a model that did not train on it; metrics per fold.

    Frames of one sequence (images.extra "sequence", or the --group-by column) always share a fold. For
    classification OUT's stem + ".probs.npy" ((n_images, K) probabilities, rows in image order) is written beside
    OUT. An OUT folder that is not empty needs --overwrite; the config and the data it names are never replaced.
    """
    import contextlib

    from maslow import io
    from maslow.cli._destination import (
        check_destination,
        check_file_not_image,
        check_images_kept,
        check_side_file,
        read_paths,
    )
    from maslow.cli.train import read_train_config
    from maslow.core.atomic import atomic_path, walked
    from maslow.errors import FormatError, MaslowError, MissingDependencyError
    from maslow.models.base import build_model, load_data
    from maslow.models.classify import probabilities

    fmt_out = format_name(fmt_out, "--to")  # before training: a misspelt --to failed after every fold
    cfg = read_train_config(config, sets)[0]  # --set device=cpu overrides a config's device: cuda
    # before any training: OUT and the probabilities beside it must not replace the config or the data it names
    read = [config, *(read_paths(Path(cfg.data), cfg.format) if cfg.format is not None else []),
            *([Path(cfg.images_root)] if cfg.images_root else [])]
    folders = check_destination(out, fmt_out, overwrite=overwrite, sources=read, options={}, flag="--out")
    check_side_file(_probs_path(out), dst=out, what="the probabilities file", sources=read, flag="--out")
    checked = walked(folders)  # the check looked through them for a workspace: the writer doesn't again
    try:  # adapter settings (params) are checked when the adapter is built: before any data is read
        adapter = build_model(cfg)
    except MissingDependencyError:
        raise
    except MaslowError as e:
        raise FormatError(str(e), path=config) from None
    truth = load_data(cfg)
    check_images_kept(folders, truth, flag="--out", dst=out)  # before training: --out a training image replaced it
    check_file_not_image(_probs_path(out), truth, flag="--out")
    task = getattr(adapter, "task", None) or truth.schema.task  # a classifier's probabilities go beside OUT
    _check_probs_file(_probs_path(out), out=out, overwrite=overwrite,
                      writes=Task(task).value in ("classification", "multilabel"))
    groups = None
    if group_by is not None:  # a misspelt column must not leave each image on its own: a leak across folds
        if group_by not in truth.images.extra:
            raise MaslowError(f"--group-by: must be a column of the images table's extra fields, got {group_by!r}; "
                              f"the columns are {', '.join(map(repr, truth.images.extra)) or 'none'}")
        groups = np.asarray(truth.images.extra[group_by], dtype=object)
    # the model's task: a detector on a dataset whose main task is keypoints is scored as detection
    oof, scores, weights = out_of_fold_run(truth, cfg, folds=folds, seed=seed, task=getattr(adapter, "task", None),
                                           label=f"crossval ({cfg.model}, {folds} folds)", enabled=not as_json,
                                           groups=groups, dedupe=dedupe)
    _warn_if_empty(oof, getattr(adapter, "task", None), cfg)
    # named after OUT: two runs into one folder keep their own unless their OUTs share a stem (a.parquet and
    # a.json), and then the other one's is only replaced with --overwrite (checked before training too)
    probs_path = _probs_path(out) if oof.schema.task.value in ("classification", "multilabel") else None
    # the predictions and the probabilities together or neither: the .npy waits under a temporary name until the
    # predictions are written (a folder in its place left new predictions behind an exit code 2)
    if probs_path is not None:
        _check_probs_file(probs_path, out=out, overwrite=overwrite, writes=True)
    with contextlib.ExitStack() as stack:
        if probs_path is not None:
            with open(stack.enter_context(atomic_path(probs_path)), "wb") as f:
                np.save(f, probabilities(oof))
        with checked:
            rep = io.write(oof, out, fmt_out)
    d = {**fold_summary(config, cfg, folds=folds, seed=seed, weights=weights, scores=scores), "group_by": group_by,
         "n_images": truth.n_images, "probs": None if probs_path is None else str(probs_path),
         "export": rep.to_dict()}
    if as_json:
        print_json(d)
        return
    render_folds(scores, truth.n_images, f"Cross-validation of {cfg.model} on {cfg.data}", weights)
    render_export(rep)
    if probs_path is not None:
        console.print(f"Probabilities ({truth.n_images} x {len(oof.schema.classes)}) written to {lit(probs_path)}")


def _check_probs_file(path: Path, *, out: Path, overwrite: bool, writes: bool) -> None:
    """Refuse (exit 2) where ``crossval`` is to write the probabilities (``writes``): a folder (``atomic_path`` finds
    it only when renaming, after the predictions are written), or without ``--overwrite`` a file there already
    while OUT itself does not exist: the probabilities of another OUT with the same stem (``run.parquet``, then
    ``run.json``), which they pair with. Beside an existing OUT they are its own, replaced with it as ``cp`` would."""
    from maslow.errors import FormatError, MaslowError

    if not writes:
        return
    if path.is_dir():
        raise FormatError("output must be a writable path, got a folder where the probabilities go", path=path)
    if path.exists() and not out.exists() and not overwrite:
        raise MaslowError(f"--out {out}: the probabilities are written beside it, to {path}, which holds an earlier "
                          f"run's, and {out.name} is not there: they pair with predictions written elsewhere "
                          "(another OUT of the same stem) or removed since; pass --overwrite to replace them, or give "
                          "another --out")


def _probs_path(out: Path) -> Path:
    """Where ``crossval`` writes the probabilities of a classifier: OUT's stem + ``.probs.npy``, beside OUT."""
    return out.with_name(f"{out.stem}.probs.npy")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("crossval")(crossval)
