"""Models: one protocol, adapters behind it, out-of-fold predictions, tuning, tracking, ONNX export.

Every adapter follows ``maslow.models.base.Model``: ``fit(train, *, val) -> Model``, ``predict(images) ->
Dataset`` (predictions ARE a Dataset: ``source="model"``, ``score``, and per-class probabilities in
``annotations.extra["probs"]`` for classification), ``save(path)`` and ``load(path)``. A model on disk is a folder
with ``model.json`` (adapter, config, schema, training history) and the adapter's weights.

Adapters (``ADAPTERS``, ``get_adapter(name)``), chosen by ``TrainConfig.model``:
    ``embed-logreg``: image embeddings (``maslow.embed``) + scikit-learn logistic regression; seconds on a CPU.
    ``torchvision-classifier``: a torchvision classifier fine-tuned end to end.
    ``fasterrcnn``, ``retinanet``, ``fcos``, ``ssdlite``: torchvision detectors.
    ``maskrcnn``: instance segmentation. ``deeplabv3``, ``fcn``, ``lraspp``: semantic segmentation.

torch, optuna, mlflow and onnxruntime are imported only inside the functions that need them.
"""

from maslow.models.base import (
    ADAPTERS,
    EpochResult,
    Model,
    TrainConfig,
    TrainHistory,
    get_adapter,
    load_model,
    read_config,
    register_adapter,
)
from maslow.models.crossval import fold_assignments, out_of_fold
from maslow.models.evaluate import evaluate
from maslow.models.onnx import OnnxReport, export_onnx
from maslow.models.train import TrainResult, train
from maslow.models.tune import TuneResult, tune

__all__ = [
    "ADAPTERS",
    "EpochResult",
    "Model",
    "OnnxReport",
    "TrainConfig",
    "TrainHistory",
    "TrainResult",
    "TuneResult",
    "evaluate",
    "export_onnx",
    "fold_assignments",
    "get_adapter",
    "load_model",
    "out_of_fold",
    "read_config",
    "register_adapter",
    "train",
    "tune",
]
