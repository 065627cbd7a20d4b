"""What the torchvision detector and segmenter adapters share: device and threads, building the network with the
weights the config asks for, the epoch loop with validation, and the model folder (``weights.pt`` + ``model.json``).

Importable without torch: torch is reached through ``_torchdata.require_torch`` inside the methods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.embed.backbones import read_state_dict
from maslow.errors import ModelError
from maslow.models import _torchdata as TD
from maslow.models.base import EpochResult, TrainConfig, TrainHistory, read_model_json, write_model_json

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.pt"


class TorchAdapter:
    """Base of the torch adapters: subclasses set ``NAMES`` (the ``cfg.model`` values they build), ``task`` and
    ``_network(num_classes, arch, pretrained)``, and may extend ``_extra``/``_restore`` for what else they save."""

    NAMES: ClassVar[tuple[str, ...]] = ()
    task: Task

    def __init__(self, config: TrainConfig) -> None:
        if config.model not in self.NAMES:
            raise ModelError(f"config model must be one of {', '.join(self.NAMES)} for {type(self).__name__}, "
                             f"got {config.model!r}")
        self.config = config
        self.schema: LabelSchema | None = None
        self.history = TrainHistory()
        self._net: Any = None
        self._arch = ""
        self._pretrained = False

    def _network(self, num_classes: int, *, arch: str, pretrained: bool) -> Any:
        raise NotImplementedError

    def _frozen_part(self) -> Any:
        """The module whose batch norms were frozen when trained from pretrained weights."""
        raise NotImplementedError

    def _build(self, num_classes: int, *, arch: str | None = None) -> str:
        """Build the network: the config's backbone and weights (``arch`` None), or ``arch`` without pretrained
        weights (a load). Returns what the weights are, for the history."""
        torch, _ = TD.require_torch()
        from maslow.models import _torchnets as N

        if self.config.threads:
            torch.set_num_threads(int(self.config.threads))
        if arch is None:
            choice = N.resolve(self.config)
            arch, pretrained, weights = choice.arch, choice.pretrained, choice.weights
        else:
            pretrained, weights = False, "loaded from weights.pt"
        self._arch, self._pretrained = arch, pretrained
        self._net = self._network(num_classes, arch=arch, pretrained=pretrained)
        return weights

    def _device(self) -> Any:
        torch, _ = TD.require_torch()
        return TD.torch_device(torch, self.config.device)

    def _train(self, n_images: int, batch_loss: Callable[[list[int], list[bool]], Any], *, val: Dataset | None,
               weights: str, on_epoch: Callable[[EpochResult], None] | None,
               progress: Callable[[int, int, float], None] | None) -> None:
        """Run the shared optimisation loop, validating on ``val`` after each epoch; sets ``history``."""
        from maslow.models import _torchnets as N

        evaluate = None
        if val is not None and val.n_images:
            from maslow.models.evaluate import evaluate as evaluate_fn

            def evaluate() -> dict[str, float]:
                return evaluate_fn(val, self.predict(val), task=self.task)  # type: ignore[attr-defined]

        cfg = self.config
        self.history = N.train_loop(cfg, self._net, n_images, batch_loss, evaluate=evaluate,
                                    metric=cfg.key_metric(self.task), weights=weights, on_epoch=on_epoch,
                                    progress=progress)
        log.info("%s trained %d epochs from %s", cfg.model, len(self.history.epochs), weights)

    def _predict_setup(self, images: Dataset | Any) -> tuple[Any, Dataset, Any, Any]:
        """(torch, the images as a Dataset, the network in eval mode on its device, its device)."""
        torch, _ = TD.require_torch()
        if self._net is None or self.schema is None:
            raise ModelError(f"{self.config.model}: predict needs a trained or loaded model (call fit or load)")
        device = self._device()
        return torch, TD.as_dataset(images), self._net.to(device).eval(), device

    # -- files -------------------------------------------------------------------------------------------
    def _extra(self) -> dict[str, Any]:
        return {"arch": self._arch, "pretrained": self._pretrained}

    def _restore(self, extra: dict[str, Any]) -> None:
        """Read back what ``_extra`` added (before the network is built)."""

    def save(self, path: str | Path) -> Path:
        """Write ``weights.pt`` (state dict) and ``model.json`` into folder ``path`` (atomically)."""
        torch, _ = TD.require_torch()
        if self._net is None:
            raise ModelError(f"{self.config.model}: nothing to save (call fit first)")
        path = Path(path)
        with atomic_dir(path) as tmp:
            torch.save(self._net.state_dict(), tmp / WEIGHTS_FILE)
            write_model_json(tmp, adapter=self.config.model, config=self.config, schema=self.schema,
                             history=self.history, extra=self._extra())
        return path

    @classmethod
    def _load(cls, path: str | Path) -> Any:
        """The model saved in folder ``path``, rebuilt from its config (no pretrained weights needed)."""
        TD.require_torch()  # a clear error without torch
        doc = read_model_json(path)
        self = cls(doc["config"])
        self.schema, self.history = doc["schema"], doc["history"]
        if self.schema is None:
            raise ModelError(f"{path}: model.json has no schema; the model was never trained")
        extra = doc.get("extra") or {}
        self._restore(extra)
        self._build(len(self.schema.classes), arch=str(extra.get("arch", "efficientnet-lite0")))
        if extra.get("pretrained"):  # frozen batch norms and frozen stages, as trained
            from maslow.models import _torchnets as N

            N.freeze_bn(self._frozen_part())
            self._pretrained = True
        weights = Path(path) / WEIGHTS_FILE
        state = read_state_dict(weights, must="must be the state dict that save wrote",
                                missing="file not found (save writes it beside model.json)")
        try:
            self._net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as e:
            raise ModelError(f"{weights}: weights must match the {self.config.model} built from model.json: "
                             f"{e}") from None
        self._net.eval()
        return self
