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

__all__ = [
    "ADAPTERS",
    "EpochResult",
    "Model",
    "TrainConfig",
    "TrainHistory",
    "get_adapter",
    "load_model",
    "read_config",
    "register_adapter",
]
