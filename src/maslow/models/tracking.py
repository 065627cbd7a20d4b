"""Experiment tracking with MLflow: every training run logs its config, per-epoch metrics, evaluation and model.

Glossary:
    store: where runs are kept. ``TrainConfig.tracking`` (or the ``MLFLOW_TRACKING_URI`` environment variable)
        is a tracking URI (``sqlite:///...``, ``http://host:5000``, ...) or a local folder; unset = the local
        store of the workspace, ``.maslow/mlruns`` (``./mlruns`` outside a workspace). A local folder holds an
        SQLite database ``mlflow.db`` and the logged files under ``artifacts/`` (MLflow 3 has retired plain
        file stores). ``off`` disables tracking.
    params: the config, flattened (``params.C``, ``lr``, ...); values as strings, as MLflow keeps them.
    metrics: per epoch (``step`` = epoch): ``loss`` and ``val_<metric>``; after training: ``final_val_<metric>`` and
        ``test_<metric>`` (the evaluation of the saved model); ``best_epoch``. NaN and +-inf are logged as they are
        (MLflow's SQL store keeps +-inf as +-float max; ``list_runs`` gives them back as +-inf).
    tags: ``maslow.adapter``, ``maslow.weights`` (what the backbone started from), ``maslow.task``,
        ``maslow.model_path``, and ``maslow.resumed_from_epoch`` for a resumed run (whose earlier epochs are logged
        again, so its curve is whole); the model folder is logged as the artifact folder ``model`` (but for the
        checkpoint ``last.pt``).

mlflow is imported lazily; without it, training works and tracking is reported as off.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maslow.errors import FormatError, MaslowError, MissingDependencyError
from maslow.models.base import EpochResult, TrainConfig

log = logging.getLogger(__name__)

OFF = "off"
DB_FILE = "mlflow.db"


def mlflow_missing() -> str | None:
    """None when mlflow can be imported; else why not, naming the extra that installs it."""
    try:
        import mlflow  # noqa: F401
    except ImportError as e:  # not installed, or installed without a dependency it imports
        if getattr(e, "name", None) == "mlflow":
            return "mlflow is not installed: pip install 'maslow[models]'"
        return f"mlflow could not be imported ({e}): pip install 'maslow[models]'"
    return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's SQL store triggers deprecation warnings of its own dependencies; they are not the caller's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def default_folder(start: str | Path = ".") -> Path:
    """``.maslow/mlruns`` of the workspace containing ``start``, else ``./mlruns``."""
    from maslow.store import Workspace

    try:
        return Workspace.find(start).state / "mlruns"
    except MaslowError:
        return Path(start).resolve() / "mlruns"


def tracking_uri(setting: str | bool | None = None) -> str | None:
    """The tracking URI a config's ``tracking`` setting means (None = tracking off).

    ``setting`` or ``$MLFLOW_TRACKING_URI``; ``off`` = None; a URI (``scheme://...``) as given; a folder =
    SQLite store in it; nothing = ``default_folder()``. YAML reads a bare ``off`` as false: that is off too.
    """
    if isinstance(setting, bool):
        return tracking_uri() if setting else None
    value = setting if setting is not None else os.environ.get("MLFLOW_TRACKING_URI")
    if value is not None and value.strip().lower() == OFF:
        return None
    if value and "://" in value:
        return value
    folder = Path(value) if value else default_folder()
    return f"sqlite:///{folder.resolve() / DB_FILE}"


def _artifact_root(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None


def _client(uri: str) -> Any:
    """An MlflowClient for ``uri``; a local store's folder is created first.

    Raises:
        FormatError: the local store's folder can't be created (a file in the way, no permission).
    """
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
            got = f"{blocker}, a file where a folder must be" if blocker else (e.strerror or str(e)).lower()
            raise FormatError(f"tracking store must be a folder that can be created, got {got}",
                              path=folder) from None
    with _quiet():
        return MlflowClient(tracking_uri=uri)


def _store_errors() -> tuple[type[BaseException], ...]:
    """What MLflow raises for a store it can't use: its own exception, or SQLAlchemy's (a corrupt database)."""
    from mlflow.exceptions import MlflowException

    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # mlflow-skinny: no SQL store
        return (MlflowException,)
    return (MlflowException, SQLAlchemyError)


def _why(e: BaseException) -> str:
    """The store error's own words: MLflow's message, or the database driver's (without SQLAlchemy's SQL)."""
    msg = getattr(e, "message", None) or getattr(e, "orig", None) or e
    return str(msg).strip()


def _metric(value: float) -> float:
    """A metric as logged: MLflow's SQL store keeps +-inf as +-float max."""
    return math.copysign(math.inf, value) if abs(value) == sys.float_info.max else float(value)


def _experiment_id(client: Any, uri: str, name: str, *, create: bool = True) -> str | None:
    from mlflow.exceptions import MlflowException

    with _quiet():
        exp = client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        if not create:
            return None
        root = _artifact_root(uri)
        try:
            return str(client.create_experiment(name, artifact_location=None if root is None else f"{root}/{name}"))
        except MlflowException:  # another worker created it meanwhile
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
            return str(exp.experiment_id)


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested mapping as flat ``a.b`` keys with string values (MLflow params)."""
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = str(v)
    return out


class Run:
    """One tracked training run (a no-op when ``uri`` is None). Methods never raise for a tracking failure
    after the run started; they log a warning, so a flaky tracking server cannot lose a trained model."""

    def __init__(self, uri: str | None, run_id: str | None = None, client: Any = None, *, off: str = "") -> None:
        self.uri = uri
        self.run_id = run_id
        self._client = client
        self.off = off  # why the run is not tracked (empty when it is)

    @property
    def active(self) -> bool:
        return self.run_id is not None

    def _call(self, method: str, *args: Any, **kwargs: Any) -> None:
        if self._client is None or self.run_id is None:
            return
        try:
            with _quiet():
                getattr(self._client, method)(self.run_id, *args, **kwargs)
        except Exception as e:  # noqa: BLE001 - tracking must not break training; the failure is logged
            log.warning("MLflow %s failed for run %s: %s", method, self.run_id, e)

    def log_epoch(self, e: EpochResult) -> None:
        """``loss`` and ``val_<metric>`` at step = epoch."""
        self._call("log_metric", "loss", float(e.loss), step=e.epoch)
        for k, v in e.metrics.items():
            self._call("log_metric", f"val_{k}", float(v), step=e.epoch)

    def log_metrics(self, metrics: Mapping[str, float], *, prefix: str = "") -> None:
        for k, v in metrics.items():
            self._call("log_metric", f"{prefix}{k}", float(v))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for k, v in tags.items():
            self._call("set_tag", k, str(v))

    def log_folder(self, folder: str | Path, artifact_path: str = "model") -> None:
        """The model folder's files as the artifact folder ``artifact_path``, but for the checkpoint ``last.pt``
        (it resumes training in the folder itself, and weighs two or three times the weights)."""
        from maslow.models.checkpoint import CHECKPOINT_FILE

        folder = Path(folder)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder)
            if rel != Path(CHECKPOINT_FILE):
                sub = rel.parent.as_posix()
                self._call("log_artifact", str(path), artifact_path if sub == "." else f"{artifact_path}/{sub}")

    def end(self, status: str = "FINISHED") -> None:
        self._call("set_terminated", status)


def start_run(cfg: TrainConfig, *, run_name: str | None = None, tags: Mapping[str, Any] | None = None) -> Run:
    """Start a tracked run for ``cfg`` (its config logged as params); a no-op ``Run`` when tracking is off or
    mlflow is not installed (logged at info level; ``Run.off`` says which, naming the extra).

    Raises:
        MaslowError: the tracking store cannot be opened (a wrong URI, a corrupt database); FormatError (a
            MaslowError) when its local folder can't be created.
    """
    uri = tracking_uri(cfg.tracking)
    if uri is None:
        return Run(None, off="config tracking: off" if cfg.tracking is not None else "MLFLOW_TRACKING_URI=off")
    missing = mlflow_missing()
    if missing is not None:
        log.info("tracking is off: %s", missing)
        return Run(None, off=missing)
    try:
        client = _client(uri)
        exp = _experiment_id(client, uri, cfg.experiment)
        with _quiet():
            r = client.create_run(exp, run_name=run_name, tags={k: str(v) for k, v in (tags or {}).items()})
    except _store_errors() as e:
        raise MaslowError(f"tracking {uri}: could not start an MLflow run: {_why(e)}") from None
    run = Run(uri, r.info.run_id, client)
    params = flatten(cfg.to_dict())
    items = sorted(params.items())
    for s in range(0, len(items), 100):  # MLflow accepts at most 100 params per batch
        from mlflow.entities import Param

        run._call("log_batch", params=[Param(k, v[:6000]) for k, v in items[s : s + 100]])
    return run


@dataclass(frozen=True)
class RunInfo:
    """A tracked run as ``maslow runs`` lists it."""

    run_id: str
    name: str
    experiment: str
    status: str
    start_time: int
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    artifact_uri: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "name": self.name, "experiment": self.experiment, "status": self.status,
                "start_time": self.start_time, "params": dict(self.params), "metrics": dict(self.metrics),
                "tags": dict(self.tags), "artifact_uri": self.artifact_uri}


def missing_store(tracking: str | bool | None = None) -> str | None:
    """Why a local store holds no runs because it does not exist (its folder, or its database ``mlflow.db``, is not
    there: nothing has been tracked to it yet), naming it and where training tracks by default; None for a store
    that exists, tracking off, and a tracking server's URI."""
    uri = tracking_uri(tracking)
    if uri is None or not uri.startswith("sqlite:///"):
        return None
    db = Path(uri.removeprefix("sqlite:///"))
    if db.is_file():
        return None
    if db.name != DB_FILE:  # a sqlite:/// URI naming its own database file
        where, why = db, "the database file does not exist"
    else:
        where = db.parent
        why = ("the folder does not exist" if not where.exists() else
               "it is a file, not a folder" if not where.is_dir() else f"the folder holds no {DB_FILE}")
    return (f"no tracking store at {where} ({why}): nothing has been tracked there yet; a training run tracks to "
            f"its config's tracking setting, by default {default_folder()}")


def list_runs(*, experiment: str = "maslow", tracking: str | bool | None = None, max_results: int = 100) -> list[RunInfo]:
    """The runs of ``experiment``, newest first (none when the experiment does not exist yet).

    Reading creates nothing: a local store that does not exist yet holds no runs.

    Raises:
        MissingDependencyError: mlflow is not installed. MaslowError: tracking is off, or the store can't be opened.
    """
    uri = tracking_uri(tracking)
    if uri is None:
        raise MaslowError("runs: tracking is off (tracking: off or MLFLOW_TRACKING_URI=off); no runs to list")
    missing = mlflow_missing()
    if missing is not None:
        raise MissingDependencyError(missing)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return []  # opening it would create the database (and its folder)
    try:
        client = _client(uri)
        exp = _experiment_id(client, uri, experiment, create=False)
        if exp is None:
            return []
        with _quiet():
            runs = client.search_runs([exp], max_results=max_results, order_by=["attributes.start_time DESC"])
    except _store_errors() as e:
        raise MaslowError(f"tracking {uri!r}: must be a tracking store MLflow can read: {_why(e)}") from None
    return [RunInfo(r.info.run_id, r.info.run_name or "", experiment, r.info.status, int(r.info.start_time or 0),
                    dict(r.data.params), {k: _metric(v) for k, v in r.data.metrics.items()},
                    {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")}, r.info.artifact_uri or "")
            for r in runs]
