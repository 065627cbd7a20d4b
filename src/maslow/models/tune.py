"""Hyperparameter search with Optuna: TPE sampling, median pruning, a resumable SQLite study.

Glossary:
    study: the named search (``study_name``, default ``<experiment>-<model>``) kept in ``storage`` (default
        ``sqlite:///.maslow/optuna.db`` in the workspace, ``./optuna.db`` outside one). Calling ``tune`` again with
        the same name adds trials to it; several processes can share it (``load_if_exists``).
    trial: one ``train()`` run with sampled settings, its own model folder ``<cfg.out>/trial-<number>`` and its
        own tracked MLflow run (``<study>-trial-<number>``). Its value is the key metric on the validation set
        (higher is better), so tuning needs validation (a ``val`` split or ``val_fraction``).
    pruning: each epoch reports the key metric; a trial below the median of earlier trials at the same epoch
        stops (``MedianPruner``: after 2 complete trials and from epoch 1 on).
    search space: ``{name: spec}``; ``name`` is a ``TrainConfig`` field (``lr``, ``batch_size``, ``image_size``,
        ...) or else an adapter ``params`` entry, written ``C`` or ``params.C`` (as ``--set params.C=0.5`` writes
        it); a params entry the adapter does not read is refused before any trial (``check_keys``). ``spec`` is
        ``{low, high}`` (floats: uniform, ints: integers) with optional ``log: true`` and ``step``, a list (one of
        these values) or a scalar (fixed). YAML, in the training config under ``search:`` (``read_tune_config``)::

            search:
              lr: {low: 1.0e-4, high: 1.0e-1, log: true}
              batch_size: [8, 16]
              params.C: {low: 0.01, high: 100, log: true}
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maslow.core.atomic import write_text
from maslow.core.yamlfile import read_yaml
from maslow.errors import FormatError, MaslowError, MissingDependencyError
from maslow.models.base import EpochResult, TrainConfig, as_number, build_model, load_data
from maslow.models.evaluate import task_of

log = logging.getLogger(__name__)

_LR = {"low": 1e-4, "high": 1e-2, "log": True}
_WD = {"low": 1e-6, "high": 1e-2, "log": True}
#: the search space used when none is given, per adapter
DEFAULT_SPACES: dict[str, dict[str, Any]] = {
    "embed-logreg": {"C": {"low": 1e-3, "high": 1e2, "log": True}},
    "torchvision-classifier": {"lr": _LR, "weight_decay": _WD, "batch_size": [8, 16, 32]},
    **{m: {"lr": {"low": 1e-4, "high": 2e-2, "log": True}, "weight_decay": _WD, "batch_size": [2, 4]}
       for m in ("fasterrcnn", "retinanet", "fcos", "ssdlite", "maskrcnn")},
    **{m: {"lr": _LR, "weight_decay": _WD, "batch_size": [4, 8]} for m in ("deeplabv3", "fcn", "lraspp")},
}
_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
#: the config fields a search space may not name (they pick the data, the model and where outputs go)
_FIXED = ("data", "format", "model", "out", "tracking", "experiment", "params")


@dataclass(frozen=True)
class TuneResult:
    """The outcome of a search.

    Attributes:
        study_name, storage: where the study lives (resume with the same values).
        metric: the key metric maximised.
        best_params: the best trial's sampled settings; ``best_value`` its metric; ``best_trial`` its number.
        best_model: the best trial's model folder; ``best_config``: the YAML config that retrains it.
        trials: every trial of the study (this call's and earlier ones): number, state, value, params, seconds,
            model folder, MLflow run id and ``weights`` (what its model started from; None for a trial that did not
            finish).
    """

    study_name: str
    storage: str
    metric: str
    best_params: Mapping[str, Any]
    best_value: float | None
    best_trial: int | None
    best_model: Path | None
    best_config: Path | None
    trials: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    def to_dict(self) -> dict[str, Any]:
        return {"study_name": self.study_name, "storage": self.storage, "metric": self.metric,
                "best_params": dict(self.best_params), "best_value": self.best_value, "best_trial": self.best_trial,
                "best_model": None if self.best_model is None else str(self.best_model),
                "best_config": None if self.best_config is None else str(self.best_config),
                "n_trials": self.n_trials, "trials": [dict(t) for t in self.trials]}


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError("optuna is not installed: pip install 'maslow[models]'") from None
    return optuna


def default_storage(start: str | Path = ".") -> str:
    """``sqlite:///<workspace>/.maslow/optuna.db``, or ``sqlite:///./optuna.db`` outside a workspace."""
    from maslow.store import Workspace

    try:
        folder = Workspace.find(start).state
    except MaslowError:
        folder = Path(start).resolve()
    return f"sqlite:///{folder / 'optuna.db'}"


def read_tune_config(path: str | Path, *, device_check: bool = True,
                     **overrides: Any) -> tuple[TrainConfig, dict[str, Any] | None]:
    """A training config YAML that may carry a ``search:`` mapping: (config, search space or None); ``device_check``
    and ``overrides`` as ``read_config`` takes them.

    Raises:
        FormatError: the file or a setting is wrong (names the file and the setting).
    """
    from maslow.models.base import read_config

    path = Path(path)
    raw = read_yaml(path, what="training config")
    space = raw.get("search") if isinstance(raw, dict) else None
    if space is not None:
        if not isinstance(space, Mapping):
            raise FormatError(f"field 'search' must be a mapping of setting -> range, got {type(space).__name__}",
                              path=path)
        space = _numbers(space)
        check_space(space, where=f"{path}: search")
    return read_config(path, device_check=device_check, **overrides), None if space is None else dict(space)


def _numbers(space: Mapping[str, Any]) -> dict[str, Any]:
    """The space with its numbers in exponent notation as floats (``low: 1e-4``: a string to PyYAML)."""
    def one(spec: Any) -> Any:
        if isinstance(spec, Mapping):
            return {k: as_number(v) for k, v in spec.items()}
        return [as_number(v) for v in spec] if isinstance(spec, list) else as_number(spec)

    return {name: one(spec) for name, spec in space.items()}


def check_space(space: Mapping[str, Any], *, where: str = "search") -> None:
    """Raise MaslowError naming the first malformed entry of a search space."""
    seen: dict[str, str] = {}
    for name, spec in space.items():
        if name in _FIXED:
            raise MaslowError(f"{where}.{name}: this setting cannot be searched")
        kind, key = _setting(name)
        if kind == "params" and not key:
            raise MaslowError(f"{where}.{name}: a params entry must be named, e.g. params.C")
        target = key if kind == "field" else f"params.{key}"
        if target in seen:
            raise MaslowError(f"{where}.{name}: sets {target} as {where}.{seen[target]} does; give one of them")
        seen[target] = name
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"low", "high", "log", "step"}
            if unknown or "low" not in spec or "high" not in spec:
                raise MaslowError(f"{where}.{name}: a range must be {{low, high[, log][, step]}}, got {dict(spec)}")
            lo, hi = spec["low"], spec["high"]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lo, hi)) or lo > hi:
                raise MaslowError(f"{where}.{name}: low and high must be numbers with low <= high, got {lo!r}, {hi!r}")
            if spec.get("log") and lo <= 0:
                raise MaslowError(f"{where}.{name}: a log range must have low > 0, got {lo!r}")
        elif isinstance(spec, list) and not spec:
            raise MaslowError(f"{where}.{name}: a list of choices must not be empty")


def _suggest(trial: Any, name: str, spec: Any) -> Any:
    if isinstance(spec, Mapping):
        lo, hi, log_ = spec["low"], spec["high"], bool(spec.get("log", False))
        if isinstance(lo, int) and isinstance(hi, int) and not isinstance(spec.get("step", 1), float):
            return trial.suggest_int(name, lo, hi, step=int(spec.get("step", 1)), log=log_)
        return trial.suggest_float(name, float(lo), float(hi), log=log_, step=spec.get("step"))
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    return spec


def _setting(name: str) -> tuple[str, str]:
    """What a search key sets: ``("field", name)`` for a ``TrainConfig`` field, else ``("params", key)``, an
    adapter ``params`` entry written ``key`` or ``params.key``."""
    if name.startswith("params."):
        return "params", name.removeprefix("params.")
    return ("field", name) if name in _FIELDS else ("params", name)


def overrides_for(cfg: TrainConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    """``with_overrides`` arguments for sampled values: config fields as such, anything else (``C`` or
    ``params.C``) into ``params``."""
    changes: dict[str, Any] = {}
    params: dict[str, Any] = {}
    for name, value in values.items():
        kind, key = _setting(name)
        if kind == "field":
            changes[key] = value
        else:
            params[key] = value
    if params:
        changes["params"] = params
    return changes


def _extremes(spec: Any) -> list[Any]:
    """Values a trial can draw from ``spec`` that together show a wrong type or range: a range's ends (as
    ``_suggest`` types them), every choice, the fixed value."""
    if isinstance(spec, Mapping):
        lo, hi = spec["low"], spec["high"]
        if isinstance(lo, int) and isinstance(hi, int) and not isinstance(spec.get("step", 1), float):
            return [lo, hi]
        return [float(lo), float(hi)]
    return list(spec) if isinstance(spec, list) else [spec]


def check_keys(cfg: TrainConfig, space: Mapping[str, Any], *, where: str = "search") -> None:
    """Refuse, before any trial, a search key that names no setting of ``cfg.model`` (a typo such as ``params.c``
    or ``params.params.C``), and a params value the adapter refuses: the model is built with each params entry at
    each end of its range (each choice), as a trial would build it.

    Raises:
        MaslowError: names the search key, what the adapter said and the key forms accepted.
    """
    build_model(cfg)  # a config that does not build says so as such, not as a search key's fault
    for name, spec in space.items():
        kind, key = _setting(name)
        if kind == "field":
            continue
        for value in _extremes(spec):
            try:
                build_model(cfg.with_overrides(params={key: value}))
            except MaslowError as e:
                raise MaslowError(
                    f"{where}.{name}: {e} (the model built with params.{key} = {value!r}, as a trial would be). A "
                    f"search key is a config field ({', '.join(sorted(_FIELDS - set(_FIXED)))}) or a params setting "
                    f"of model {cfg.model!r}, written C or params.C") from None


def tune(cfg: TrainConfig, *, trials: int, metric: str | None = None, space: Mapping[str, Any] | None = None,
         storage: str | None = None, study_name: str | None = None, timeout: float | None = None,
         progress: Callable[[int, int], None] | None = None, where: str = "search") -> TuneResult:
    """Search ``space`` for the settings that maximise ``metric``, ``trials`` more trials of the study.

    Args:
        cfg: the base training config; each trial overrides the sampled settings.
        trials: trials to run in this call (added to those already in the study).
        metric: the key metric (default ``cfg.metric`` or the task's, e.g. ``accuracy``, ``map_50_95``).
        space: the search space (see the module docstring); default ``DEFAULT_SPACES[cfg.model]``.
        storage: Optuna storage URL; default ``default_storage()``.
        study_name: default ``<cfg.experiment>-<cfg.model>``.
        timeout: stop starting new trials after this many seconds.
        progress: ``progress(trials_done, trials)`` after each trial.
        where: how messages name the space (``<config file>: search``).

    Raises:
        MissingDependencyError: optuna is absent. MaslowError: a bad space, no validation data, a failed trial, a
            space a resumed study can't take (a key sampled before from other choices or another kind of range).
    """
    optuna = _optuna()
    from maslow.models.train import split_for_training, train

    space = _numbers(DEFAULT_SPACES.get(cfg.model, {}) if space is None else space)
    if not space:
        raise MaslowError(f"tune: the search space is empty (no default for model {cfg.model!r}); give a search: "
                          "mapping")
    check_space(space, where=where)
    check_keys(cfg, space, where=where)
    ds = load_data(cfg)
    if split_for_training(ds, cfg)[1] is None:
        raise MaslowError(f"tune: trials are compared on validation data: the data needs a {cfg.val_split!r} split "
                          "or config field val_fraction > 0")
    if metric is not None:
        cfg = cfg.with_overrides(metric=metric)
    # the model's task (a detector on data whose main task is keypoints), and a metric of it, before any trial
    try:
        metric = cfg.key_metric(getattr(build_model(cfg), "task", None) or task_of(ds))
    except MaslowError as e:  # the metric given here (the CLI's --metric), not the config's field
        if metric is None:
            raise
        raise MaslowError(str(e).replace("config field 'metric'", "tune: metric (--metric)")) from None
    cfg = cfg.with_overrides(metric=metric)
    storage = storage or default_storage()
    if (database := same_storage(storage)).startswith("sqlite:///"):
        Path(database.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    name = study_name or f"{cfg.experiment}-{cfg.model}"
    done_before = (len(optuna.load_study(study_name=name, storage=storage).trials)
                   if name in optuna.get_all_study_names(storage) else 0)
    # a resumed study must not replay the first call's random start-up points: the seed moves on with it
    sampler = optuna.samplers.TPESampler(seed=cfg.seed + done_before)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    root = Path(cfg.out)
    _claim(root, name, storage)
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                direction="maximize", load_if_exists=True)
    check_study_space(study, space, where=where, storage=storage)  # before a trial fails on it (a FAIL trial each)
    finished = [0]

    def objective(trial: Any) -> float:
        values = {k: _suggest(trial, k, spec) for k, spec in space.items()}
        tcfg = cfg.with_overrides(**overrides_for(cfg, values))

        def on_epoch(e: EpochResult) -> None:
            if metric in e.metrics:
                trial.report(float(e.metrics[metric]), e.epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        folder = root / f"trial-{trial.number:04d}"
        trial.set_user_attr("model", str(folder))
        trial.set_user_attr("config", _stored(tcfg))  # what it trains with: best.yaml is the best trial's own
        result = train(tcfg, dataset=ds, on_epoch=on_epoch, out=folder, run_name=f"{name}-trial-{trial.number}",
                       checkpoint=False)  # a trial is not resumed (the study is): no last.pt per trial
        trial.set_user_attr("run_id", result.run_id or "")
        trial.set_user_attr("weights", result.weights)  # what the trial's model started from
        if metric not in result.metrics:
            raise MaslowError(f"tune: trial {trial.number} has no validation {metric!r}; got {sorted(result.metrics)}")
        return float(result.metrics[metric])

    def callback(_study: Any, _trial: Any) -> None:
        finished[0] += 1
        if progress is not None:
            progress(finished[0], trials)

    log.info("study %r in %s: %d trials before, %d more", name, storage, done_before, trials)
    study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[callback], catch=())
    return _result(study, cfg, space, name, storage, metric, root)


def _stored(cfg: TrainConfig) -> dict[str, Any]:
    """``cfg`` as a trial's user attribute (JSON): its data and images_root absolute, as a later call from another
    folder must read them."""
    d = cfg.to_dict()
    for k in ("data", "images_root"):
        if d.get(k) is not None and (k != "data" or cfg.format is not None):
            d[k] = str(Path(d[k]).resolve())
    return d


def _trial_config(trial: Any, name: str, root: Path) -> TrainConfig | None:
    """The config ``trial`` trained with: its ``config`` user attribute, else (a study run before maslow stored it)
    the config in its model folder's ``model.json``; None when neither is there. A trial of an earlier call may
    differ from this call's config in more than the searched values (other fixed values, another base config)."""
    from maslow.models.base import read_model_json

    stored = trial.user_attrs.get("config")
    where = f"study {name!r}: trial {trial.number}'s config"
    if not isinstance(stored, Mapping):
        folder = Path(trial.user_attrs.get("model") or root / f"trial-{trial.number:04d}")
        try:
            stored = read_model_json(folder).get("config")
        except (MaslowError, OSError):
            return None
        where = f"{folder / 'model.json'}: config"
        if not isinstance(stored, Mapping):
            return None
    return TrainConfig.from_dict(stored, where=where)


def _distribution(optuna: Any, spec: Any) -> Any:
    """The Optuna distribution ``_suggest`` samples ``spec`` from; None for a fixed value."""
    d = optuna.distributions
    if isinstance(spec, Mapping):
        lo, hi, log_ = spec["low"], spec["high"], bool(spec.get("log", False))
        if isinstance(lo, int) and isinstance(hi, int) and not isinstance(spec.get("step", 1), float):
            return d.IntDistribution(lo, hi, log=log_, step=int(spec.get("step", 1)))
        return d.FloatDistribution(float(lo), float(hi), log=log_, step=spec.get("step"))
    return d.CategoricalDistribution(spec) if isinstance(spec, list) else None


def _described(dist: Any) -> str:
    """A distribution as a ``search:`` entry writes it: ``[0.5, 1.0]``, ``integers {low: 1, high: 10}``."""
    if not hasattr(dist, "low"):
        return f"choices {list(dist.choices)}"
    step = getattr(dist, "step", None)
    extra = (", log: true" if dist.log else "") + ("" if step in (None, 1) or dist.log else f", step: {step}")
    kind = "integers" if type(dist).__name__ == "IntDistribution" else "floats"
    return f"{kind} {{low: {dist.low}, high: {dist.high}{extra}}}"


def check_study_space(study: Any, space: Mapping[str, Any], *, where: str = "search", storage: str = "") -> None:
    """Refuse (MaslowError), before any trial, a space a resumed study can't sample: a key its trials sampled from
    other choices, or from another kind of range (integers vs floats, log vs not, a range vs choices). Optuna
    raised a ValueError inside each trial instead (a traceback, and a FAIL trial added per attempt). A range of the
    same kind with other ends is allowed (Optuna allows it)."""
    optuna = _optuna()
    stored: dict[str, tuple[int, Any]] = {}
    for t in study.get_trials(deepcopy=False):
        for key, dist in t.distributions.items():
            stored.setdefault(key, (t.number, dist))
    for key, spec in space.items():
        try:
            new = _distribution(optuna, spec)
        except ValueError as e:  # e.g. log with step: each trial failed on it
            raise MaslowError(f"{where}.{key}: {e}") from None
        if key not in stored or new is None:
            continue
        number, old = stored[key]
        try:
            optuna.distributions.check_distribution_compatibility(old, new)
        except ValueError as e:
            raise MaslowError(
                f"{where}.{key}: study {study.study_name!r}{f' ({storage})' if storage else ''} sampled it from "
                f"{_described(old)} (trial {number}), got {_described(new)}; one study can't sample a setting from "
                f"both (Optuna: {str(e).rstrip('.')}). Keep the study's space for {key}, or start a new study: "
                "another --study name (or --storage) and another out folder") from None


#: The file in a tuning folder that names the study its trial folders belong to.
STUDY_FILE = ".maslow-study"


def same_storage(storage: str) -> str:
    """``storage`` as one text for every way of writing the same database: an SQLite URL (``sqlite:///`` with a
    relative or absolute path, ``sqlite+pysqlite:///``, ``./`` or ``..`` in the path, a query after ``?``) as
    ``sqlite:///`` and the file's absolute path (links resolved); any other URL as given. A relative path is
    relative to the current folder, as Optuna (SQLAlchemy) opens it."""
    import re

    m = re.fullmatch(r"sqlite(?:\+\w+)?:///([^?]*)(\?.*)?", storage.strip())
    if m is None or m[1] in ("", ":memory:"):
        return storage
    return f"sqlite:///{Path(m[1]).resolve()}"


def _claim(root: Path, name: str, storage: str) -> None:
    """Mark ``root`` as study ``name``'s (in ``storage``) before its first trial, or check that it is: trial folders
    are numbered per study (``trial-0000`` ...), so a second study in the same folder would replace the first one's
    models. The storage is compared as ``same_storage`` writes it (a relative and an absolute path to one SQLite
    file are one database). Raises MaslowError saying what differs: the study name, the database, or both."""
    marker = root / STUDY_FILE
    mine = same_storage(storage)
    if marker.is_file():
        other, _, where = marker.read_text(encoding="utf-8").partition("\n")
        held = same_storage(where.strip())
        if (other, held) != (name, mine):
            diff = [what for what, same in (("study names", other == name), ("databases", held == mine)) if not same]
            raise MaslowError(f"tune: config field 'out' {str(root)!r} holds the trials of study {other!r} ({held}), "
                              f"got study {name!r} ({mine}): the {' and the '.join(diff)} differ, and its trial "
                              "folders would be replaced: give another out, or the same --study and --storage to add "
                              "trials to it")
        return
    if root.is_dir() and any(root.glob("trial-*")):  # trials of a study run before the marker existed: claimed
        log.info("tune: %s holds trial folders without %s: taken as study %r's", root, STUDY_FILE, name)
    root.mkdir(parents=True, exist_ok=True)
    write_text(marker, f"{name}\n{mine}\n")


def _result(study: Any, cfg: TrainConfig, space: Mapping[str, Any], name: str, storage: str, metric: str,
            root: Path) -> TuneResult:
    rows = []
    for t in study.trials:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": dict(t.params),
                     "seconds": seconds, "model": t.user_attrs.get("model"), "run_id": t.user_attrs.get("run_id"),
                     "weights": t.user_attrs.get("weights")})
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        return TuneResult(name, storage, metric, {}, None, None, None, None, tuple(rows))
    best = study.best_trial
    best_cfg = _trial_config(best, name, root)
    if best_cfg is None:  # a trial of a study run before configs were stored, its model folder gone
        log.warning("tune: trial %d of study %r recorded no config and its model folder has none: best.yaml is this "
                    "call's config with its sampled values", best.number, name)
        fixed = {k: v for k, v in space.items() if not isinstance(v, Mapping | list)}
        best_cfg = cfg.with_overrides(**overrides_for(cfg, {**fixed, **best.params}))
    # read_config resolves data/images_root against best.yaml's folder: write them absolute. The model folder
    # must not be `root` itself: retraining would replace the folder holding every trial and best.yaml.
    paths = {k: str(Path(v).resolve()) for k in ("data", "images_root")
             if (v := getattr(best_cfg, k)) is not None and (k != "data" or best_cfg.format is not None)}
    best_cfg = best_cfg.with_overrides(**paths, out=str(root / "best"))
    config_path = root / "best.yaml"
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    write_text(config_path, f"# best of study {name!r} ({storage}): trial {best.number}, {metric} = {best.value}\n"
               + yaml.safe_dump(best_cfg.to_dict(), sort_keys=False))
    return TuneResult(name, storage, metric, dict(best.params), float(best.value), int(best.number),
                      Path(best.user_attrs.get("model", root / f"trial-{best.number:04d}")), config_path, tuple(rows))
