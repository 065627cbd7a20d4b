"""Training commands: train (a YAML config), tune (Optuna search), runs (MLflow), and ONNX export of a model."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from maslow.cli.render import console, either, err_console, lit, print_json, progress_bar, table
from maslow.errors import FormatError, MaslowError, MissingDependencyError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
ConfigArg = Annotated[Path, typer.Argument(metavar="CONFIG", help="Training config (YAML; see docs/models.md).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KEY=VALUE",
                                                  help="Override a config setting (repeatable): --set epochs=5, "
                                                       "--set params.C=0.5.")]


def apply_sets(cfg: Any, sets: Sequence[str] | None) -> Any:
    """The config with ``key=value`` overrides applied (values parsed as YAML; ``params.X`` sets a param)."""
    import yaml

    from maslow.models.base import TrainConfig

    if not sets:
        return cfg
    d = cfg.to_dict()
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MaslowError(f"--set {item!r}: must be KEY=VALUE, e.g. --set epochs=5")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise MaslowError(f"--set {key}: value {text!r} is not valid YAML: {e}") from None
        if key.startswith("params."):
            d["params"] = {**d["params"], key.removeprefix("params."): value}
        else:
            d[key] = value
    try:
        return TrainConfig.from_dict(d, where="--set")
    except (TypeError, MaslowError) as e:  # a wrong value names the override, as an unknown key does
        raise MaslowError(f"--set: {str(e).removeprefix('--set: ')}") from None


def read_train_config(config: Path, sets: Sequence[str] | None, *, search: bool = False,
                      check_search: bool = False) -> tuple[Any, Any]:
    """The config of ``train``, ``tune``, ``crossval`` and ``qa --model``, and its search space (``search``: as
    ``read_tune_config`` reads it, else None): the file read, the ``--set`` overrides applied, then its ``device``
    checked before any data is read. After the overrides: ``--set device=cpu`` runs a config saying ``device: cuda``
    on a machine without CUDA. A device this machine lacks names ``--set`` when an override gave it, else the config
    file (exit 2). Then the settings the adapter checks when it is built (``params``, ``backbone``; with
    ``check_search``, ``tune``'s, the search space's keys and values too), and that ``data`` and ``images_root``
    exist: each names the config file and the field, or ``--set``."""
    from maslow.models.base import build_model, check_device, read_config
    from maslow.models.tune import check_keys, read_tune_config

    cfg, space = (read_tune_config(config, device_check=False) if search
                  else (read_config(config, device_check=False), None))
    cfg = apply_sets(cfg, sets)

    def given(key: str) -> bool:  # by an override rather than the config file
        return any(item.partition("=")[0].strip() == key for item in sets or ())

    try:
        check_device(cfg.device)
    except MaslowError as e:
        if given("device"):
            raise MaslowError(f"--set: {e}") from None
        raise FormatError(str(e), path=config) from None
    with _config_errors(config):  # the settings the adapter checks (params, backbone), before any path is looked at
        build_model(cfg)
        if check_search and space is not None:  # tune: its search keys too (`tune` checks them again)
            check_keys(cfg, space)
    for key in ("data", "images_root"):  # a missing one was said by the reader, without "not found" or the field
        value = getattr(cfg, key)
        if value is None or (key == "data" and cfg.format is None) or Path(value).exists():
            continue  # format None: data names a workspace dataset or version
        why = (f"config field {key!r} must be an existing file or folder, got {value} (not found"
               + ("" if given(key) else "; a relative path is relative to the config file's folder") + ")")
        if given(key):
            raise MaslowError(f"--set: {why}")
        raise FormatError(why, path=config)
    return cfg, space


@contextlib.contextmanager
def _epoch_bar(epochs: int, metric: str, *, enabled: bool, done: int = 0) -> Iterator[
        tuple[Callable[[Any], None], Callable[[int, int, float], None]]]:
    """``on_epoch`` and ``on_batch`` callbacks drawing a bar with the loss and the key metric of each epoch, and
    the batch within the epoch for adapters that train in batches; ``done``: epochs a resumed run had trained."""
    if not enabled:
        yield (lambda e: None), (lambda i, n, loss: None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    label = f"training (resumed from epoch {done} of {epochs})" if done else "training"
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=err_console) as bar:
        task = bar.add_task("train", total=epochs, info="", completed=done)

        def on_epoch(e: Any) -> None:
            value = e.metrics.get(metric)
            info = f"loss {e.loss:.4f}" + (f"  {metric} {value:.4f}" if value is not None else "")
            last[0] = info
            bar.update(task, completed=e.epoch + 1, info=info)

        def on_batch(i: int, n: int, loss: float) -> None:
            bar.update(task, info=f"{last[0]}  batch {i}/{n} loss {loss:.4f}".strip())

        last = [""]
        yield on_epoch, on_batch
        end = bar.tasks[0].completed  # early stopping, or an adapter that fits in one pass: the bar ends full
        bar.update(task, total=max(end, 1), completed=max(end, 1))


def _quiet_libraries(cfg: Any) -> None:
    """The bars and tables say what happens: keep MLflow's and Optuna's info lines out of the terminal (both
    reset their loggers when imported, so they are imported here first, when they will be used anyway)."""
    import importlib.util
    import logging

    from maslow.models.tracking import tracking_uri

    # an install that fails to import (a dependency missing) is said where it is used, naming the extra
    if tracking_uri(cfg.tracking) is not None and importlib.util.find_spec("mlflow") is not None:
        with contextlib.suppress(ImportError):
            import mlflow  # noqa: F401

            logging.getLogger("mlflow").setLevel(logging.WARNING)
    if importlib.util.find_spec("optuna") is not None:
        with contextlib.suppress(ImportError):
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)


@contextlib.contextmanager
def _config_errors(config: Path) -> Iterator[None]:
    """A MaslowError raised inside (a setting of the config is wrong) as a FormatError naming the config file; a
    missing extra is not the config's fault and stays as it is."""
    try:
        yield
    except MissingDependencyError:
        raise
    except MaslowError as e:
        raise FormatError(str(e), path=config) from None


def _where(config: Path, *, given: bool) -> contextlib.AbstractContextManager[None]:
    """Errors about the model folder name the config file when its field ``out`` gave the folder."""
    return contextlib.nullcontext() if given else _config_errors(config)


def _check_model_folder(config: Path, cfg: Any, *, given: bool, resume: bool, overwrite: bool) -> tuple[Path, str]:
    """Refuse, before any data is read, a model folder (``cfg.out``) whose replacing when the run ends (as a whole,
    ``atomic_dir``) would delete data: for a new run, without ``--overwrite``, the checkpoint of an interrupted run
    beside it or a model another run saved (``check_out``); then, as ``export`` and ``crossval`` check their --out
    (``check_folder``), a file, a folder that is not empty without ``--overwrite``, and even with it the config, the
    data it names, a workspace or the current folder. A resumed run replaces its own folder: the last ones only.
    Gives the folder and how messages name it (``--out``, ``--resume`` or the config's field), for
    ``check_images_kept`` once the data is read."""
    from maslow.cli._destination import check_folder, read_paths
    from maslow.models.train import check_out

    folder = Path(cfg.out)
    flag = "--resume" if resume else "--out" if given else "config field 'out'"
    root = Path(cfg.images_root) if cfg.images_root else None
    sources = [config, *read_paths(Path(cfg.data), cfg.format, images_root=root)]
    with _where(config, given=given):
        if not resume:
            check_out(folder, overwrite=overwrite, where=flag)
        check_folder(folder, overwrite=overwrite or resume, sources=sources, what="the model", flag=flag)
    return folder, flag


def _tracking_line(run_id: str | None, uri: str | None, off: str | None) -> str:
    if run_id is None:  # why: the config (or MLFLOW_TRACKING_URI) says off, or mlflow is missing (names the extra)
        return f"MLflow: tracking off ({lit(off or 'tracking: off')})"
    return f"MLflow run {lit(run_id)} in {lit(uri)}"


def train_command(
    config: ConfigArg,
    sets: SetOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Model folder (default: the config's out).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", metavar="RUN_DIR",
                                                help="Continue the run in RUN_DIR (a model folder) from its last "
                                                     "checkpoint, last.pt: same config, more epochs allowed.")]
    = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the model folder when it is not empty "
                                                                "(a model another run saved), and the checkpoint of "
                                                                "an interrupted run beside it (FOLDER.partial).")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a model from a YAML config: progress per epoch, final metrics, the model folder and the MLflow run."""
    from maslow.cli._destination import check_images_kept
    from maslow.core.atomic import walked
    from maslow.models.base import build_model, load_data
    from maslow.models.checkpoint import CHECKPOINT_FILE, checkpoint_file, partial_folder, read_checkpoint, run_folder
    from maslow.models.evaluate import task_of
    from maslow.models.train import check_epochs, split_for_training, train

    cfg = read_train_config(config, sets, search=True)[0]
    _quiet_libraries(cfg)
    if resume is not None:
        run_dir = run_folder(resume)
        work = partial_folder(run_dir) / CHECKPOINT_FILE
        if not overwrite and work.is_file() and checkpoint_file(resume).resolve() != work.resolve():
            raise MaslowError(f"--resume {resume}: {work} holds the checkpoint of an interrupted run, which resuming "
                              f"another checkpoint into {run_dir} would overwrite. Pass --resume {run_dir} to continue "
                              "the interrupted run, or --overwrite to go on from the one given")
        if out is not None and out.resolve() != run_dir.resolve():
            raise MaslowError(f"--out must be the --resume folder {str(run_dir)!r} (a resumed run is saved where it "
                              f"ran), got {str(out)!r}")
        out = run_dir
    given = out is not None
    if out is not None:
        cfg = cfg.with_overrides(out=str(out))
    # adapter settings (params) are checked when the adapter is built: before any data is read
    with _config_errors(config):
        adapter = build_model(cfg)
        check_epochs(cfg, adapter, resuming=resume is not None)  # epochs: 0 saved an untrained model
    ckpt = None  # read before the data: a missing or damaged checkpoint exits 2 naming the file
    if resume is not None and "resume" in inspect.signature(adapter.fit).parameters:  # else train says it has none
        ckpt = read_checkpoint(resume)
    # (an adapter that writes no checkpoints has no run to resume: train says so, before anything is written)
    checked = None if resume is not None and ckpt is None else _check_model_folder(
        config, cfg, given=given, resume=resume is not None, overwrite=overwrite)
    # the check looked through the model folder for a workspace: saving the model doesn't again (unless it changed)
    walked_out = walked([] if checked is None else [checked[0]])
    ds = load_data(cfg)
    if checked is not None:
        with _where(config, given=given):  # its images are where the model goes
            check_images_kept([checked[0]], ds, flag=checked[1])
    with _config_errors(config):  # the splits the config names must be in the data, the metric one of the task's
        split_for_training(ds, cfg)
        metric = cfg.key_metric(getattr(adapter, "task", None) or task_of(ds))
    epochs = 1 if getattr(adapter, "one_pass", False) else cfg.epochs  # embed-logreg: one fit, not cfg.epochs
    done = 0 if ckpt is None else min(ckpt.epochs_done, epochs)
    bar = not as_json and (resume is None or (ckpt is not None and ckpt.finished(adapter.config) is None))
    with _epoch_bar(epochs, metric, enabled=bar, done=done) as (on_epoch, on_batch), walked_out:
        result = train(cfg, on_epoch=on_epoch, dataset=ds, on_batch=on_batch,
                       resume=ckpt if ckpt is not None else resume)
    if as_json:
        print_json(result.to_dict())
        return
    h = result.history
    if result.already_finished is not None:
        console.print(lit(finished_line(result)))
        console.print(f"model: {lit(result.path.resolve())}")
        return
    console.print(f"Trained [bold]{lit(cfg.model)}[/bold] on {result.n_train} images ({result.n_val} val, "
                  f"{result.n_test} test) for {len(h.epochs)} epoch{'' if len(h.epochs) == 1 else 's'}"
                  + ("" if result.resumed_from is None else f", resumed from epoch {result.resumed_from} of "
                                                            f"{cfg.epochs}")
                  + (" (stopped early)" if h.stopped_early else "")
                  + (f"; best epoch {h.best_epoch + 1}" if h.best_epoch >= 0 else ""))
    console.print(f"weights: {lit(result.weights)}")
    names = sorted(set(result.metrics) | set(result.test_metrics))
    parts = [(name, d) for name, d in (("val", result.metrics), ("test", result.test_metrics)) if d]
    if names:
        console.print(table("Final metrics", ["metric", *[p for p, _ in parts]],
                            [(n, *[d.get(n, float("nan")) for _, d in parts]) for n in names]))
    else:
        console.print("[dim]no validation or test images: no metrics (add a val split or val_fraction)[/dim]")
    console.print(f"model: {lit(result.path.resolve())}")
    console.print(_tracking_line(result.run_id, result.tracking_uri, result.tracking_off))


def finished_line(result: Any) -> str:
    """What ``train --resume`` prints for a run with nothing left to train (``result.already_finished``): why, and
    the override that would train on (more epochs, or a patience the run has not used up)."""
    h, why = result.history, result.already_finished
    hint = (f" (--set epochs=N with N > {len(h.epochs)} trains on)" if why.startswith("trained")
            else f" (--set patience=0, or a patience above {len(h.epochs) - 1 - h.best_epoch}, trains on)"
            if why.startswith("stopped early") else "")
    return f"{result.path}: finished ({why}); nothing to resume{hint}"


def tune_command(
    config: ConfigArg,
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="Trials to run now (added to the study).")],
    metric: Annotated[str | None, typer.Option("--metric", help="Key metric to maximise (default: the task's).")]
    = None,
    storage: Annotated[str | None, typer.Option("--storage", help="Optuna storage URL (default: SQLite in "
                                                                  ".maslow/ or ./optuna.db).")] = None,
    study: Annotated[str | None, typer.Option("--study", help="Study name (default: EXPERIMENT-MODEL).")] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Stop starting trials after SECONDS.")] = None,
    sets: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search hyperparameters with Optuna (TPE, median pruning); resumable, shareable SQLite study."""
    from maslow.models.tune import tune

    cfg, space = read_train_config(config, sets, search=True, check_search=True)  # before the data is looked at
    if storage is not None:
        check_storage(storage)
    _quiet_libraries(cfg)
    with progress_bar("trials", enabled=not as_json) as progress:
        result = tune(cfg, trials=trials, metric=metric, space=space, storage=storage, study_name=study,
                      timeout=timeout, progress=progress, where=f"{config}: search" if space is not None else "search")
    if as_json:
        print_json(result.to_dict())
        return
    param_names = sorted({k for t in result.trials for k in t["params"]})
    rows = [(t["number"], t["state"], float("nan") if t["value"] is None else t["value"],
             *[_fmt(t["params"].get(k)) for k in param_names]) for t in result.trials]
    console.print(table(f"Study {result.study_name} ({result.n_trials} trials, {result.metric})",
                        ["trial", "state", result.metric, *param_names], rows))
    if result.best_trial is None:
        console.print("[yellow]no trial completed[/yellow]")
        return
    console.print(f"best: trial {result.best_trial}, {result.metric} = {result.best_value:.4g}, "
                  + ", ".join(f"{k} = {_fmt(v)}" for k, v in result.best_params.items()))
    weights = dict.fromkeys(t["weights"] for t in result.trials if t.get("weights"))  # in trial order, once each
    console.print(f"best model: {lit(result.best_model)}\nbest config: {lit(result.best_config)}\n"
                  f"weights: {lit('; '.join(weights) or 'not recorded')}\nstorage: {lit(result.storage)}")


def check_storage(url: str) -> None:
    """Refuse a ``--storage`` Optuna can't use, before any data is read (it raised SQLAlchemy's traceback, exit 1):
    a URL SQLAlchemy can't read or has no driver for (the check ``review --db`` makes), a SQLite path that is a
    folder, and a database that can't be opened (a file that is not SQLite, a server that refuses). A SQLite file
    that does not exist yet passes: the study makes it."""
    import importlib.util

    if importlib.util.find_spec("optuna") is None:  # tune says what to install
        return
    import sqlalchemy as sa

    from maslow.store.reviews import open_engine, safe_url, sqlite_file, sqlite_url_parts

    try:
        engine = open_engine(url, create=False)
    except MaslowError as e:
        raise MaslowError(f"tune: --storage: {e}") from None
    try:
        file = sqlite_file(url)
        if file is not None and file.exists() and not file.is_file():
            raise MaslowError(f"tune: --storage {safe_url(url)}: {file} is a folder, not a SQLite database file")
        if sqlite_url_parts(url) is not None and (file is None or not file.exists()):
            return  # in memory, or a new file the study makes (with its folders)
        try:
            with engine.connect() as conn:
                sa.inspect(conn).get_table_names()
        except sa.exc.SQLAlchemyError as e:
            raise MaslowError(f"tune: --storage {safe_url(url)}: could not open the database "
                              f"({type(e).__name__}: {getattr(e, 'orig', None) or e})") from None
    finally:
        engine.dispose()


def _fmt(v: Any) -> Any:
    return f"{v:.3g}" if isinstance(v, float) else ("-" if v is None else v)


def runs_command(
    experiment: Annotated[str, typer.Option("--experiment", "-e", help="MLflow experiment.")] = "maslow",
    tracking: Annotated[str | None, typer.Option("--tracking", help="Tracking URI or folder (default: the "
                                                                    "workspace's .maslow/mlruns).")] = None,
    top: Annotated[int | None, typer.Option("--top", "-n", min=1, help="Newest runs to show (default 20; --json "
                                            "lists as many).")] = None,
    as_json: JsonOpt = False,
    limit_old: Annotated[int | None, typer.Option("--limit", min=1, hidden=True)] = None,  # before --top
) -> None:
    """List and compare tracked training runs: key settings and final metrics side by side."""
    from maslow.models.tracking import list_runs, missing_store, tracking_uri

    shown, _ = either(top, limit_old, ("--top", "--limit"))
    limit: int = 20 if shown is None else shown

    runs = list_runs(experiment=experiment, tracking=tracking, max_results=limit)
    if not runs:  # listing nothing is not an error (exit 0); a store that is not there is said as such
        missing = missing_store(tracking)
        why = missing or f"no runs in experiment {experiment!r} in {tracking_uri(tracking)}"
        if as_json:  # `[]` on stdout either way: the note on stderr tells the two apart, as the table's line does
            print_json([])
            err_console.print(f"note: {why}", markup=False, highlight=False, soft_wrap=True)
        else:
            console.print(why, markup=False)
        return
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    # compare what differs: the settings whose values vary between the runs, and the key metric on val and test
    skip = {"data", "out", "tracking", "experiment", "format", "images_root", "params.cache_dir"}
    first = ("lr", "batch_size", "weight_decay", "model", "backbone", "epochs", "image_size")
    keys = sorted({k for r in runs for k in r.params} - skip,
                  key=lambda k: (not k.startswith("params."), first.index(k) if k in first else len(first), k))
    varying = [k for k in keys if len({r.params.get(k) for r in runs}) > 1][:5]
    present = {k.removeprefix("final_val_") for r in runs for k in r.metrics if k.startswith("final_val_")}
    key: str | None = next((m for m in ("map_50_95", "miou", "accuracy", "f1_micro") if m in present), None)
    if key is None and present:
        key = sorted(present)[0]
    metric_cols = [f"{p}{key}" for p in ("final_val_", "test_")
                   if key is not None and any(f"{p}{key}" in r.metrics for r in runs)]
    rows = [(r.run_id[:8], r.name or "-", _short_weights(r.tags.get("maslow.weights", "")),
             *[_short_param(r.params.get(p, "-")) for p in varying],
             *[r.metrics.get(m, float("nan")) for m in metric_cols]) for r in runs]
    console.print(table(f"Runs of {experiment} ({len(runs)}, newest first)",
                        ["run", "name", "weights", *varying,
                         *[m.replace("final_val_", "val ").replace("test_", "test ") for m in metric_cols]], rows))
    failed = [r.run_id[:8] for r in runs if r.status != "FINISHED"]
    if failed:
        console.print(f"[yellow]not finished (failed, pruned or running): {lit(', '.join(failed))}[/yellow]")


def _short_param(v: str) -> str:
    if v == "None":  # a setting left unset (MLflow logs it as the text None)
        return "-"
    try:
        f = float(v)
    except ValueError:
        return v
    return v if f.is_integer() and "." not in v and "e" not in v.lower() else f"{f:.3g}"


def _short_weights(w: str) -> str:
    return "scratch" if w.startswith("from scratch") else w.split(" (")[0] or "-"


def export_onnx_command(args: Sequence[str], *, as_json: bool) -> None:
    """``maslow export MODEL [DST] --onnx``: the model folder to ONNX (DST default MODEL/model.onnx), checked."""
    from maslow.models.onnx import export_onnx

    if len(args) not in (1, 2):
        raise MaslowError(f"export --onnx: arguments must be MODEL [DST], got {len(args)} arguments")
    model = Path(args[0])
    dst = Path(args[1]) if len(args) == 2 else model / "model.onnx"
    _check_onnx_destination(dst, model)
    rep = export_onnx(model, dst)
    if as_json:
        print_json(rep)
        return
    console.print(f"Wrote {lit(rep.path)} ({rep.size_bytes / 1e6:.1f} MB, opset {rep.opset}): inputs "
                  f"{', '.join(rep.input_names)} {list(rep.input_shape)}, outputs {', '.join(rep.output_names)}")
    sizes = list(map(str, rep.batch_sizes))
    on = (f"batch size{'' if len(sizes) == 1 else 's'} "
          + (sizes[0] if len(sizes) == 1 else f"{', '.join(sizes[:-1])} and {sizes[-1]}"))
    console.print(f"onnxruntime vs torch: max |diff| {rep.max_abs_diff:.3g} (bound {rep.tolerance:.3g}) on {on}"
                  + ("" if rep.real_rows is None else f", and on {len(rep.real_images)} training image"
                                                      f"{'' if len(rep.real_images) == 1 else 's'} "
                                                      f"({rep.real_rows} detections)"))
    if rep.precise_sigmoid:
        console.print(f"{rep.precise_sigmoid} Sigmoid node{'' if rep.precise_sigmoid == 1 else 's'} written as "
                      "1 / (1 + exp(-x)) (onnxruntime's Sigmoid rounds small probabilities)")


def _check_onnx_destination(dst: Path, model: Path) -> None:
    """Refuse (exit 2), before the model is loaded, an ONNX DST that would replace data: a file of MODEL other than a
    ``.onnx`` one (``export M M/weights.pt --onnx`` wrote ONNX over the weights), a folder, a workspace's own file.
    A file elsewhere is replaced, as ``cp`` does (the other file exports do the same)."""
    from maslow.cli._destination import check_not_in_model, check_side_file

    check_not_in_model(dst, model, allowed_suffix=".onnx")
    if dst.is_dir():
        raise MaslowError(f"{dst} is a folder; export --onnx writes a file: give a file path such as "
                          f"{dst / 'model.onnx'}")
    check_side_file(dst, dst=dst, what="the ONNX file", sources=[model])


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("tune")(tune_command)
    app.command("runs")(runs_command)
