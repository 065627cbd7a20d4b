"""What the torchvision detector and segmenter adapters share: device and threads, building the network with the
weights the config asks for, the epoch loop with validation (checkpointed after each epoch when ``fit`` is given
``checkpoint=``, resumable with ``resume=``: ``maslow.models.checkpoint``), and the model folder (``weights.pt`` +
``model.json``, and ``last.pt`` when a checkpoint was written).

Importable without torch: torch is reached through ``_torchdata.require_torch`` inside the methods.
"""

from __future__ import annotations

import dataclasses
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
from maslow.models import checkpoint as C
from maslow.models.base import EpochResult, TrainConfig, TrainHistory, read_model_json, write_model_json

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.pt"

#: a ``params`` setting: (kind, low, high); kind ``float``/``int`` (a number in [low, high]), ``choice`` (one of
#: low), ``sizes`` (a list of integers >= 1, or null)
ParamSpec = tuple[str, Any, Any]
#: the settings of the shared training loop (``_torchnets.train_loop``), for every torch adapter but the classifier
LOOP_PARAMS: dict[str, ParamSpec] = {
    "optimizer": ("choice", ("sgd", "adamw"), None), "momentum": ("float", 0.0, 1.0),
    "warmup_steps": ("int", 0, None), "flip": ("float", 0.0, 1.0), "grad_clip": ("float", 0.0, None),
    "cpu_budget_s": ("float", 0.0, None),
}


def check_params(config: TrainConfig, spec: dict[str, ParamSpec]) -> TrainConfig:
    """``config`` with its ``params`` checked against ``spec`` (numbers written ``1e-3`` as numbers).

    Raises:
        MaslowError: an unknown setting (a typo must not train another model than the config says) or a value of
            the wrong type or range, naming ``params.<key>``.
    """
    from maslow.errors import MaslowError
    from maslow.models.base import as_number

    params = {k: as_number(v) for k, v in config.params.items()}
    for key, value in params.items():
        if key not in spec:
            raise MaslowError(f"config field 'params.{key}' is not a setting of {config.model}; known: "
                              f"{', '.join(sorted(spec))}")
        kind, low, high = spec[key]
        if kind == "choice":
            ok, want = value in low, f"one of {', '.join(map(repr, low))}"
        elif kind == "sizes":
            ok = value is None or (isinstance(value, list) and bool(value) and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))
            want = "a list of integers >= 1 or null"
        else:
            number = (int,) if kind == "int" else (int, float)
            ok = (isinstance(value, number) and not isinstance(value, bool) and value == value and value >= low
                  and (high is None or value <= high))
            want = f"{'an integer' if kind == 'int' else 'a number'} >= {low}" + ("" if high is None else
                                                                                  f" and <= {high}")
            if key == "cpu_budget_s" and value is None:
                ok = True  # null: no budget
        if not ok:
            raise MaslowError(f"config field 'params.{key}' must be {want}, got {value!r}")
    return config.with_overrides(params=params)


def torchvision_classifiers() -> frozenset[str] | None:
    """The names of torchvision's classification networks (``torchvision.models.list_models``); None without
    torchvision (the adapter that needs it says so when it builds its network)."""
    try:
        import torchvision.models as tvm
    except ImportError:
        return None
    return frozenset(tvm.list_models(module=tvm))


def check_backbone(config: TrainConfig, allowed: Callable[[str], bool] | None, want: str | None) -> None:
    """Refuse ``config.backbone`` when the adapter is built, before any data is read (an unknown one failed only
    once training started): ``auto`` and ``efficientnet-lite0`` always pass, other names when ``allowed`` says so
    (None: nothing to check against). ``want`` says what else is accepted (None: nothing else).

    Raises:
        MaslowError: ``config field 'backbone' must be ...``, naming the value.
    """
    from maslow.errors import MaslowError

    name = config.backbone
    if name in ("auto", "efficientnet-lite0") or (want is not None and (allowed is None or allowed(name))):
        return
    accepted = "'auto' or 'efficientnet-lite0'" if want is None else f"'auto', 'efficientnet-lite0' or {want}"
    raise MaslowError(f"config field 'backbone' must be {accepted} for {config.model}, got {name!r}")


class TorchAdapter:
    """Base of the torch adapters: subclasses set ``NAMES`` (the ``cfg.model`` values they build), ``task`` and
    ``_network(num_classes, arch, pretrained)``, and may extend ``_extra``/``_restore`` for what else they save."""

    NAMES: ClassVar[tuple[str, ...]] = ()
    #: the ``params`` settings the adapter reads (others are refused when it is built)
    PARAMS: ClassVar[dict[str, ParamSpec]] = LOOP_PARAMS
    reads_images = True  # train / out_of_fold check every image file exists first
    task: Task

    def __init__(self, config: TrainConfig) -> None:
        if config.model not in self.NAMES:
            raise ModelError(f"config model must be one of {', '.join(self.NAMES)} for {type(self).__name__}, "
                             f"got {config.model!r}")
        self.config = check_params(config, self.PARAMS)
        self._check_backbone()
        self.schema: LabelSchema | None = None
        self.history = TrainHistory()
        self._net: Any = None
        self._arch = ""
        self._pretrained = False
        self._checkpoint: Path | None = None  # the checkpoint fit wrote: save keeps it in the model folder

    def _network(self, num_classes: int, *, arch: str, pretrained: bool) -> Any:
        raise NotImplementedError

    def _check_backbone(self) -> None:
        """Refuse a ``backbone`` the adapter can't build (``check_backbone``), when it is built."""

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

    def _train(self, train: Dataset, batch_loss: Callable[[list[int], list[bool]], Any], *, val: Dataset | None,
               weights: str, on_epoch: Callable[[EpochResult], None] | None,
               progress: Callable[[int, int, float], None] | None, checkpoint: str | Path | None = None,
               resume: C.Checkpoint | None = None) -> None:
        """Run the shared optimisation loop, validating on ``val`` after each epoch; sets ``history``. With
        ``checkpoint`` the state is written there after each epoch; ``resume`` continues a run from its checkpoint
        (checked against this config, the data and the network first; ``maslow.models.checkpoint``)."""
        from maslow.models import _torchnets as N

        writer = C.writer_for(self.config, train, val, checkpoint=checkpoint, resume=resume, weights=weights)
        self._checkpoint = None if writer is None else writer.path

        evaluate = None
        if val is not None and val.n_images:
            from maslow.models.evaluate import evaluate as evaluate_fn

            def evaluate() -> dict[str, float]:
                return evaluate_fn(val, self.predict(val), task=self.task)  # type: ignore[attr-defined]

        cfg = self.config
        self.history = N.train_loop(cfg, self._net, train.n_images, batch_loss, evaluate=evaluate,
                                    metric=cfg.key_metric(self.task), weights=weights, on_epoch=on_epoch,
                                    progress=progress, checkpoint=writer, resume=resume)
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
        """Write ``weights.pt`` (state dict) and ``model.json`` into folder ``path`` (atomically), with the
        checkpoint ``fit`` wrote (``last.pt``), if any."""
        torch, _ = TD.require_torch()
        if self._net is None:
            raise ModelError(f"{self.config.model}: nothing to save (call fit first)")
        path = Path(path)
        with atomic_dir(path) as tmp:
            torch.save(self._net.state_dict(), tmp / WEIGHTS_FILE)
            write_model_json(tmp, adapter=self.config.model, config=self.config, schema=self.schema,
                             history=self.history, extra=self._extra())
            C.carry(self._checkpoint, tmp)
        return path

    @classmethod
    def _load(cls, path: str | Path) -> Any:
        """The model saved in folder ``path``, rebuilt from its config (no pretrained weights needed)."""
        TD.require_torch()  # a clear error without torch
        doc = read_model_json(path)
        config: TrainConfig = doc["config"]
        unused = sorted(set(config.params) - set(cls.PARAMS))
        if unused:  # saved before settings were checked: training never read them, so neither does the model
            log.warning("%s: params %s are not settings of %s and were not used; ignored", path, unused, config.model)
            config = dataclasses.replace(config, params={k: v for k, v in config.params.items() if k in cls.PARAMS})
        self = cls(config)
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
