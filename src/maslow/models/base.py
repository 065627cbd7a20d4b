"""The model contract: ``Model`` protocol, ``TrainConfig``, the model folder, the adapter registry, the epoch loop.

A model on disk is a folder::

    model.json     {"format": "maslow-model/1", "adapter": ..., "config": {...}, "schema": {...},
                    "history": {...}, "weights": "<what the backbone started from>", "extra": {...}}
    <weights>      the adapter's own files (``weights.pt``, ``classifier.skops``, ...)

``load_model(path)`` reads ``model.json`` and hands the folder to the adapter named there.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from maslow.core.atomic import write_text
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.yamlfile import read_yaml
from maslow.errors import FormatError, MaslowError, ModelError

MODEL_FORMAT = "maslow-model/1"
MODEL_JSON = "model.json"

# adapter name -> "module:Class"; imported only when asked for
ADAPTERS: dict[str, str] = {
    "embed-logreg": "maslow.models.classify:EmbeddingClassifier",
    "torchvision-classifier": "maslow.models.classify_torch:TorchvisionClassifier",
    "fasterrcnn": "maslow.models.detect:TorchvisionDetector",
    "retinanet": "maslow.models.detect:TorchvisionDetector",
    "fcos": "maslow.models.detect:TorchvisionDetector",
    "ssdlite": "maslow.models.detect:TorchvisionDetector",
    "maskrcnn": "maslow.models.detect:TorchvisionDetector",
    "deeplabv3": "maslow.models.semantic:TorchvisionSegmenter",
    "fcn": "maslow.models.semantic:TorchvisionSegmenter",
    "lraspp": "maslow.models.semantic:TorchvisionSegmenter",
}

# the key metric each task is judged (and early-stopped) on, as named by maslow.metrics results
DEFAULT_METRIC: dict[Task, str] = {
    Task.CLASSIFICATION: "accuracy",
    Task.MULTILABEL: "f1_micro",
    Task.DETECTION: "map_50_95",
    Task.INSTANCE_SEGMENTATION: "map_50_95",
    Task.KEYPOINTS: "map_50_95",
    Task.SEMANTIC_SEGMENTATION: "miou",
}

# TrainConfig's text fields -> whether null is allowed (a number or a list there failed deep inside training)
_TEXT_FIELDS: dict[str, bool] = {"data": False, "format": True, "images_root": True, "model": False,
                                 "backbone": False, "metric": True, "train_split": False, "val_split": False,
                                 "device": True, "out": False, "experiment": False}
# the torch devices a config may name (torch.device refuses others with a traceback, after the data is read)
_DEVICE = re.compile(r"(cpu|cuda|mps|xpu)(:\d+)?")
# a number in exponent notation without a dot (3e-4, 1E5): YAML 1.1 (PyYAML) reads it as a string, YAML 1.2 as a float
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def as_number(value: Any) -> Any:
    """``value`` as a float when it is a string in exponent notation (``"3e-4"``, as PyYAML reads ``lr: 3e-4``
    and ``--set lr=3e-4``), else unchanged: numeric settings are refused when they are strings."""
    return float(value) if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()) else value


@dataclass(frozen=True)
class TrainConfig:
    """What to train, on what, and how; read from YAML (``read_config``), every field optional but ``data``.

    Attributes:
        data: the dataset: a file/folder read with ``format``, or a workspace dataset/version when ``format`` is None.
        format: the reader (``coco``, ``yolo``, ``imagefolder``, ...), or None for a workspace reference.
        images_root: image folder when the annotation file does not sit beside the images.
        model: adapter name (``ADAPTERS``).
        backbone: ``auto`` (the adapter's default), ``efficientnet-lite0``, a torchvision arch (``resnet18``), or an
            embedder name for ``embed-logreg``.
        pretrained: ``auto`` (offline weights when present, else from scratch; the output says which), ``yes``
            (fail without weights) or ``no`` (from scratch).
        epochs, batch_size, lr, weight_decay, image_size: the optimisation; ``image_size`` is the longer side.
        seed: makes training deterministic (data order, initialisation, augmentation).
        metric: key metric for early stopping and tuning; None = the task's default (``DEFAULT_METRIC``).
        patience: epochs without improvement of ``metric`` before stopping; 0 = never stop early.
        train_split, val_split: the ``images.split`` values used; without a ``val_split`` split there is no
            validation (or ``val_fraction`` of the train images is held out when > 0).
        val_fraction: share of train images held out for validation when the data has no ``val_split``.
        device: ``cpu``, ``cuda``, ``cuda:1``; None = cuda when available.
        threads: torch CPU threads; None = torch's default.
        params: adapter-specific settings (``C`` for logistic regression, ``score_threshold`` for detectors, ...).
        out: where ``maslow train`` writes the model folder.
        tracking: MLflow tracking URI; None = ``.maslow/mlruns`` in the workspace (or ``./mlruns``); ``off`` = none.
        experiment: MLflow experiment name.
    """

    data: str
    format: str | None = None
    images_root: str | None = None
    model: str = "embed-logreg"
    backbone: str = "auto"
    pretrained: str = "auto"
    epochs: int = 10
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    image_size: int = 320
    seed: int = 0
    metric: str | None = None
    patience: int = 3
    train_split: str = "train"
    val_split: str = "val"
    val_fraction: float = 0.0
    device: str | None = None
    threads: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    out: str = "runs/model"
    tracking: str | None = None
    experiment: str = "maslow"

    _CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"pretrained": ("auto", "yes", "no")}

    def __post_init__(self) -> None:
        if isinstance(self.pretrained, bool):  # YAML 1.1 reads the documented `pretrained: yes` / `no` as booleans
            object.__setattr__(self, "pretrained", "yes" if self.pretrained else "no")
        for name in ("lr", "weight_decay", "val_fraction"):  # YAML 1.1 reads `lr: 3e-4` as a string
            object.__setattr__(self, name, as_number(getattr(self, name)))  # (params: each adapter's own checks)
        for name, optional in _TEXT_FIELDS.items():
            v = getattr(self, name)
            if not (isinstance(v, str) or (optional and v is None)):
                raise MaslowError(f"config field {name!r} must be a string{' or null' if optional else ''}, "
                                  f"got {v!r} ({type(v).__name__})")
        if self.tracking is not None and not isinstance(self.tracking, str | bool):  # YAML reads a bare off as false
            raise MaslowError(f"config field 'tracking' must be a tracking URI, a folder or off, got {self.tracking!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise MaslowError(f"config field 'threads' must be an integer >= 1 or null, got {self.threads!r}")
        if self.device is not None and not _DEVICE.fullmatch(self.device):
            raise MaslowError(f"config field 'device' must be cpu, cuda, cuda:N, mps, xpu or null (cuda when "
                              f"available), got {self.device!r}")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("epochs", "batch_size", "image_size", "seed", "patience") and (
                    isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise MaslowError(f"config field {f.name!r} must be an integer >= 0, got {v!r}")
            if f.name in ("lr", "weight_decay", "val_fraction") and (
                    isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf")):
                raise MaslowError(f"config field {f.name!r} must be a number >= 0, got {v!r}")
        if not isinstance(self.params, Mapping):
            raise MaslowError(f"config field 'params' must be a mapping of adapter settings, got "
                              f"{type(self.params).__name__}")
        if self.model not in ADAPTERS:
            raise MaslowError(f"config field 'model' must be one of {sorted(ADAPTERS)}, got {self.model!r}")
        if self.format is not None:
            from maslow.io.registry import get_format

            get_format(str(self.format), where="config field 'format'")
        for name, allowed in self._CHOICES.items():
            if getattr(self, name) not in allowed:
                raise MaslowError(f"config field {name!r} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if not self.val_fraction < 1:
            raise MaslowError(f"config field 'val_fraction' must be < 1, got {self.val_fraction!r}")
        for name, low in (("batch_size", 1), ("image_size", 16)):
            if getattr(self, name) < low:
                raise MaslowError(f"config field {name!r} must be an integer >= {low}, got {getattr(self, name)!r}")
        object.__setattr__(self, "params", dict(self.params))

    def key_metric(self, task: Task) -> str:
        """The metric early stopping and tuning watch: ``metric`` or the task's default.

        Raises:
            MaslowError: ``metric`` is not one ``maslow.models.evaluate.evaluate`` gives for ``task`` (a misspelt
                metric failed only after the first epoch had trained, or never without validation).
        """
        from maslow.models.evaluate import METRICS

        if self.metric is not None and self.metric not in METRICS[Task(task)]:
            raise MaslowError(f"config field 'metric' must be one of {', '.join(METRICS[Task(task)])} for task "
                              f"{Task(task).value}, got {self.metric!r}")
        return self.metric or DEFAULT_METRIC[Task(task)]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (dict(v) if isinstance(v := getattr(self, f.name), Mapping) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "config") -> TrainConfig:
        """A config from a mapping; unknown keys are refused (a typo must not train the wrong model)."""
        if not isinstance(d, Mapping):
            raise MaslowError(f"{where}: must be a mapping of settings, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise MaslowError(f"{where}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(names))}")
        if "data" not in d:
            raise MaslowError(f"{where}: the setting 'data' (the dataset to train on) is required")
        return cls(**dict(d))

    def with_overrides(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed; ``params`` entries are merged, not replaced."""
        if "params" in changes:
            changes["params"] = {**self.params, **changes["params"]}
        return dataclasses.replace(self, **changes)


def read_config(path: str | Path, *, device_check: bool = True, **overrides: Any) -> TrainConfig:
    """The ``TrainConfig`` in the YAML file ``path``; ``data`` and ``images_root`` are relative to the file. A
    ``search:`` mapping (the tuner's search space, ``maslow.models.tune.read_tune_config``) is left out.
    ``overrides`` change fields; then the ``device`` is checked (``check_device``) unless ``device_check`` is False:
    the CLI checks it once its ``--set`` overrides are applied (``maslow.cli.train.read_train_config``).

    Raises:
        FormatError: the file is unreadable or malformed, or a setting is wrong (names the file and the setting).
    """
    path = Path(path)
    raw = read_yaml(path, what="training config")
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != "search"}  # the search space of `maslow tune` (read_tune_config)
    try:
        cfg = TrainConfig.from_dict(raw if raw is not None else {}, where=str(path))
    except (MaslowError, TypeError) as e:
        raise FormatError(str(e).removeprefix(f"{path}: "), path=path) from None
    twice = _duplicate_key(path)
    if twice is not None:  # YAML keeps the last value silently: `epochs: 1` ... `epochs: 0` trained 0 epochs
        name, first, again = twice
        raise FormatError(f"setting {name!r} must be given once, got it on lines {first} and {again} (the last one "
                          "would win silently); keep one", path=path, record=f"line {again}")
    for name in ("data", "images_root"):
        value = getattr(cfg, name)
        if value is not None and (name != "data" or cfg.format is not None) and not Path(value).is_absolute():
            changes: dict[str, Any] = {name: str(path.parent / value)}
            cfg = dataclasses.replace(cfg, **changes)
    cfg = cfg.with_overrides(**overrides) if overrides else cfg
    if not device_check:
        return cfg
    try:  # before any data is read: the adapters find a missing device only when they build the network
        check_device(cfg.device)
    except MaslowError as e:
        raise FormatError(str(e), path=path) from None
    return cfg


def check_device(device: str | None) -> None:
    """Refuse a config's ``device`` this machine lacks (``cuda`` without CUDA, ``cuda:1`` with one GPU), as the torch
    adapters would (``maslow.embed.backbones.torch_device``), but before any data is read or work starts. ``cpu``
    and None (cuda when available) always pass; without torch nothing is checked (the adapters that need it say so).

    Raises:
        MaslowError: ``config field 'device' must be a device of this machine, got ...``.
    """
    if device is None or device == "cpu":
        return
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return
    try:
        import torch
    except ImportError:  # a broken install: the adapter that needs torch says so, naming the extra
        return
    from maslow.embed.backbones import torch_device

    try:
        torch_device(torch, device)
    except ModelError as e:
        raise MaslowError(str(e)) from None


def _duplicate_key(path: Path) -> tuple[str, int, int] | None:
    """The first setting given twice in one mapping of the YAML file ``path`` (dotted for nested ones,
    ``params.C``), with the lines of its first and second occurrence; None when each is given once."""
    import yaml

    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    seen_nodes: set[int] = set()

    def walk(node: Any, prefix: str) -> tuple[str, int, int] | None:
        if node is None or id(node) in seen_nodes:
            return None
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in lines:
                        return prefix + key.value, lines[key.value], key.start_mark.line + 1
                    lines[key.value] = key.start_mark.line + 1
                found = walk(value, f"{prefix}{key.value}." if isinstance(key, yaml.ScalarNode) else prefix)
                if found is not None:
                    return found
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                found = walk(item, prefix)
                if found is not None:
                    return found
        return None

    return walk(root, "")


def load_data(cfg: TrainConfig) -> Dataset:
    """The Dataset a config names (a file read with ``cfg.format``, or a workspace dataset/version)."""
    if cfg.format is not None:
        from maslow import io

        for key in ("data", "images_root"):  # the readers' own words named neither the setting nor "not found"
            value = getattr(cfg, key)
            if value is not None and not Path(value).exists():
                raise FormatError(f"config field {key!r} must be an existing file or folder, got nothing there (not "
                                  "found)", path=value)

        return io.read(cfg.data, cfg.format, **({"images_root": cfg.images_root} if cfg.images_root else {}))
    from maslow.store import Workspace

    return Workspace.find().load(cfg.data)


def reads_images(model: Any) -> bool:
    """Whether an adapter (class or instance) reads image files (``reads_images = True``; see ``Model``)."""
    return getattr(model, "reads_images", False) is True


def require_image_files(ds: Dataset, *, what: str = "images") -> None:
    """Check that every image file of ``ds`` exists, before anything trains (a missing file otherwise stopped a
    detector mid-epoch, or a cross-validation at its third fold).

    Args:
        ds: the images to check.
        what: what they are, for the message (``"training images"``).

    Raises:
        FormatError: naming the first missing file and how many of ``what`` are missing.
    """
    from maslow.io.images import idx_member, image_path

    missing = [i for i in range(ds.n_images) if not idx_member(image_path(ds, i))[0].is_file()]
    if missing:
        first = "" if len(missing) == 1 else ", the first named"
        raise FormatError(f"image file not found ({len(missing)} of the {ds.n_images} {what} missing{first}); "
                          "nothing was trained", path=image_path(ds, missing[0]))


@dataclass(frozen=True)
class EpochResult:
    """One epoch: mean training loss, validation metrics (empty without validation), CPU and wall seconds;
    ``epoch`` is its index, from 0 (the first epoch is 0: ``maslow train`` prints it as epoch 1)."""

    epoch: int
    loss: float
    metrics: Mapping[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "loss": self.loss, "metrics": dict(self.metrics), "seconds": self.seconds}


@dataclass(frozen=True)
class TrainHistory:
    """What happened during ``fit``: per-epoch results, the best epoch, whether it stopped early, the weights used.

    ``best_epoch`` is an index into ``epochs`` (from 0; -1 without validation): ``maslow train`` prints
    ``best_epoch + 1``, as ``TrainResult.best_epoch`` gives it.
    """

    epochs: tuple[EpochResult, ...] = ()
    metric: str = ""
    best_epoch: int = -1
    stopped_early: bool = False
    weights: str = ""

    @property
    def best(self) -> float | None:
        """The key metric at the best epoch (None without validation)."""
        if self.best_epoch < 0 or not self.metric:
            return None
        return self.epochs[self.best_epoch].metrics.get(self.metric)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": [e.to_dict() for e in self.epochs], "metric": self.metric, "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early, "weights": self.weights}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainHistory:
        return cls(tuple(EpochResult(int(e["epoch"]), float(e["loss"]), dict(e["metrics"]), float(e["seconds"]))
                         for e in d.get("epochs", [])),
                   str(d.get("metric", "")), int(d.get("best_epoch", -1)), bool(d.get("stopped_early", False)),
                   str(d.get("weights", "")))


@runtime_checkable
class Model(Protocol):
    """A trainable model behind one contract; predictions are a ``Dataset`` (``source="model"``, with ``score``).

    Attributes:
        config: the ``TrainConfig`` it was built from.
        schema: the label schema it predicts (set by ``fit``).
        history: what happened during ``fit`` (empty before).

    An adapter that reads the image files may say so with a class attribute ``reads_images = True`` (every
    built-in adapter does): ``train`` and ``out_of_fold`` then check that every file exists before anything trains.
    """

    config: TrainConfig
    schema: LabelSchema | None
    history: TrainHistory

    def fit(self, train: Dataset, *, val: Dataset | None = None,
            on_epoch: Callable[[EpochResult], None] | None = None) -> Model:
        """Train on ``train`` (early stopping on ``val``); returns self."""
        ...

    def predict(self, images: Dataset | Sequence[str | Path], *, batch_size: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> Dataset:
        """Predictions for the images of ``images`` (a Dataset, whose annotations are ignored, or image paths):
        a Dataset with the same images, the model's schema, ``source="model"`` and ``score`` per annotation.
        The result never depends on ``batch_size``."""
        ...

    def save(self, path: str | Path) -> Path:
        """Write the model folder (atomically); returns it."""
        ...

    @classmethod
    def load(cls, path: str | Path) -> Model:
        """The model saved in folder ``path``."""
        ...


def register_adapter(name: str, target: str) -> None:
    """Make ``TrainConfig.model == name`` build ``target`` (``"package.module:Class"``)."""
    ADAPTERS[name] = target


def get_adapter(name: str) -> type[Model]:
    """The adapter class for ``name``.

    Raises:
        MaslowError: an unknown name. MissingDependencyError: the adapter's extra is not installed.
    """
    if name not in ADAPTERS:
        raise MaslowError(f"model must be one of {sorted(ADAPTERS)}, got {name!r}")
    module, _, cls = ADAPTERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def build_model(cfg: TrainConfig) -> Model:
    """An untrained model for ``cfg``."""
    return get_adapter(cfg.model)(cfg)  # type: ignore[call-arg]


def write_model_json(folder: Path, *, adapter: str, config: TrainConfig, schema: LabelSchema | None,
                     history: TrainHistory, extra: Mapping[str, Any] | None = None) -> None:
    """Write ``model.json`` into ``folder`` (the folder itself is made atomically by the caller)."""
    doc = {"format": MODEL_FORMAT, "adapter": adapter, "config": config.to_dict(),
           "schema": None if schema is None else schema.to_dict(), "history": history.to_dict(),
           "weights": history.weights, "extra": dict(extra or {})}
    write_text(folder / MODEL_JSON, json.dumps(doc, indent=1, default=_jsonable))


def read_model_json(folder: str | Path) -> dict[str, Any]:
    """The parsed ``model.json`` of a model folder, with ``config``/``schema``/``history`` as objects.

    Raises:
        ModelError: not a model folder, or a model.json of another format.
    """
    path = Path(folder) / MODEL_JSON
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder}: not a maslow model folder (no {MODEL_JSON})") from None
    except (OSError, ValueError) as e:
        raise ModelError(f"{path}: unreadable model file: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path}: field 'format' must be {MODEL_FORMAT!r}, got {doc.get('format')!r}"
                         if isinstance(doc, dict) else f"{path}: must be a JSON object")
    try:
        doc["config"] = TrainConfig.from_dict(doc["config"], where=f"{path} config")
        doc["schema"] = None if doc.get("schema") is None else LabelSchema.from_dict(doc["schema"])
        doc["history"] = TrainHistory.from_dict(doc.get("history") or {})
    except (KeyError, TypeError, MaslowError) as e:
        raise ModelError(f"{path}: malformed model file: {e}") from None
    return doc


def load_model(path: str | Path) -> Model:
    """The model saved in folder ``path``, whatever its adapter."""
    doc = read_model_json(path)
    return get_adapter(str(doc["adapter"])).load(path)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (Path, Task)):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (when imported) torch, and ask torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # legacy global state some libraries still read
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)


def run_epochs(train_epoch: Callable[[int], float], *, epochs: int,
               evaluate: Callable[[], Mapping[str, float]] | None = None, metric: str = "",
               patience: int = 0, keep_best: Callable[[], None] | None = None,
               restore_best: Callable[[], None] | None = None,
               on_epoch: Callable[[EpochResult], None] | None = None, weights: str = "",
               start: TrainHistory | None = None,
               on_checkpoint: Callable[[TrainHistory], None] | None = None) -> TrainHistory:
    """The epoch loop every trainable adapter shares: train, evaluate, early-stop on ``metric`` (higher = better).

    Args:
        train_epoch: runs one epoch (0-based index), returns the mean training loss.
        evaluate: validation metrics after each epoch (None = no validation: every epoch runs, the last is kept).
        metric: the key of ``evaluate()``'s result to watch.
        patience: stop after this many epochs without improvement; 0 = run all epochs.
        keep_best: called when an epoch is the best so far (snapshot the weights).
        restore_best: called at the end when a later epoch was worse than the best (put the snapshot back).
        on_epoch: called with each epoch's result (progress bars, experiment tracking).
        weights: what the model started from, for the history (``"imagenet (efficientnet-lite0 package)"``).
        start: the history of a resumed run (its epochs are not trained again; the best so far and the patience
            count go on from it; the caller has restored the weights and ``keep_best``'s snapshot).
        on_checkpoint: called with the history so far at the end of each epoch, once the best epoch and early
            stopping are settled (write a checkpoint); not called for an epoch whose ``on_epoch`` raised.
    """
    results: list[EpochResult] = list(start.epochs) if start is not None else []
    best, best_epoch, stopped = -np.inf, -1, False
    if start is not None and results:
        best_epoch = start.best_epoch if evaluate is not None else len(results) - 1
        if evaluate is not None and 0 <= best_epoch < len(results):
            best = float(results[best_epoch].metrics.get(metric, -np.inf))
    first = len(results)
    if evaluate is not None and patience and 0 <= best_epoch and first - 1 - best_epoch >= patience:
        stopped, first = first < epochs, epochs  # patience had run out when the run was stopped
    for epoch in range(first, epochs):
        t0 = time.perf_counter()
        loss = float(train_epoch(epoch))
        metrics = dict(evaluate()) if evaluate is not None else {}
        results.append(EpochResult(epoch, loss, metrics, time.perf_counter() - t0))
        if on_epoch is not None:
            on_epoch(results[-1])
        out_of_patience = False
        if evaluate is None:
            best_epoch = epoch
        else:
            if metric not in metrics:
                why = "" if metrics else " (nothing could be scored: does the validation set have labels?)"
                raise ModelError(f"validation metrics must include {metric!r}, got {sorted(metrics) or 'none'}{why}")
            value = float(metrics[metric])
            if value > best or best_epoch < 0:
                best, best_epoch = value, epoch
                if keep_best is not None:
                    keep_best()
            elif patience and epoch - best_epoch >= patience:
                out_of_patience = True
                stopped = epoch < epochs - 1  # patience ran out on the last epoch: every epoch ran, nothing was cut
        if on_checkpoint is not None:
            on_checkpoint(TrainHistory(tuple(results), metric if evaluate is not None else "", best_epoch, stopped,
                                       weights))
        if out_of_patience:
            break
    if evaluate is not None and best_epoch != len(results) - 1 and restore_best is not None:
        restore_best()
    return TrainHistory(tuple(results), metric if evaluate is not None else "", best_epoch, stopped, weights)
