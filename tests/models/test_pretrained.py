"""Pretrained backbone weights from the local torch cache load completely or not at all: only the dropped (or
replaced) classifier head may be missing or different; a partial, renamed, reshaped or damaged file is a ModelError
naming the file (it used to load what fitted and call the run pretrained)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maslow.errors import ModelError

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from maslow.embed.backbones import TORCHVISION  # noqa: E402
from maslow.models import _torchnets as N  # noqa: E402
from maslow.models.base import TrainConfig  # noqa: E402


def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arch: str,
           change: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> tuple[Path, dict[str, Any]]:
    """A temp TORCH_HOME whose cache holds a randomly initialised ``arch`` (changed by ``change``)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() follows TORCH_HOME
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.manual_seed(1)
    state = getattr(torchvision.models, arch)(weights=None).state_dict()
    file = folder / TORCHVISION[arch][0]
    torch.save(change(dict(state)) if change else state, file)
    return file, state


def _same(net_state: dict[str, Any], ref: dict[str, Any], keys: Any) -> None:
    for k in keys:
        assert torch.equal(net_state[k], ref[k]), k


DAMAGE: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "partial": lambda s: {k: v for k, v in s.items() if not k.startswith("layer4.")},
    "renamed": lambda s: {f"module.{k}": v for k, v in s.items()},
    "reshaped": lambda s: {**s, "conv1.weight": torch.zeros(64, 3, 3, 3)},
    "extra": lambda s: {**s, "layer5.weight": torch.zeros(3)},
}


def test_a_complete_file_loads_every_backbone_weight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, ref = _cache(tmp_path, monkeypatch, "resnet18")
    net = N.torchvision_body("resnet18", pretrained=True)
    own = net.state_dict()
    _same(own, ref, [k for k in own if not k.startswith("fc.")])
    fpn = N.torchvision_fpn("resnet18", pretrained=True, extra=None)  # as the detectors build it
    body = fpn.body.state_dict()
    _same(body, ref, body)


@pytest.mark.parametrize("head", [pytest.param(lambda s: {k: v for k, v in s.items() if not k.startswith("fc.")},
                                               id="no-head"),
                                  pytest.param(lambda s: {**s, "fc.weight": torch.zeros(10, 512),
                                                          "fc.bias": torch.zeros(10)}, id="other-head")])
def test_the_dropped_head_may_be_missing_or_different(head: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _, ref = _cache(tmp_path, monkeypatch, "resnet18", head)
    own = N.torchvision_body("resnet18", pretrained=True).state_dict()
    _same(own, ref, [k for k in own if not k.startswith("fc.")])


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=list(DAMAGE))
def test_a_mismatched_file_is_a_model_error_naming_it(damage: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    file, _ = _cache(tmp_path, monkeypatch, "resnet18", damage)
    with pytest.raises(ModelError, match=file.name):
        N.torchvision_body("resnet18", pretrained=True)


@pytest.mark.parametrize("cut", [pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
                                 pytest.param(lambda b: b"", id="empty"),
                                 pytest.param(lambda b: b"not a checkpoint", id="text"),
                                 pytest.param(lambda b: b[:1000] + bytes(5000) + b[6000:], id="zeroed")])
def test_a_damaged_file_is_a_model_error_naming_it(cut: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file, _ = _cache(tmp_path, monkeypatch, "resnet18")
    file.write_bytes(cut(file.read_bytes()))
    with pytest.raises(ModelError, match=f"{file.name}: torchvision resnet18 weights file must be"):
        N.torchvision_body("resnet18", pretrained=True)


def test_semantic_backbone_gets_every_weight_or_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow.models.semantic import build_network

    cfg = TrainConfig(data="x", model="lraspp", backbone="mobilenet_v3_large")
    _, ref = _cache(tmp_path / "ok", monkeypatch, "mobilenet_v3_large")
    net = build_network(cfg, 3, arch="mobilenet_v3_large", pretrained=True)
    own = net.seg.backbone.state_dict()
    assert own and all(torch.equal(v, ref[f"features.{k}"]) for k, v in own.items())
    file, _ = _cache(tmp_path / "bad", monkeypatch, "mobilenet_v3_large",
                     lambda s: {k: v for k, v in s.items() if not k.startswith("features.16.")})
    with pytest.raises(ModelError, match=file.name):
        build_network(cfg, 3, arch="mobilenet_v3_large", pretrained=True)


def test_classifier_backbone_replaces_only_its_last_linear_layer(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow.models.classify_torch import build_network

    # mobilenet_v3_small's classifier is Linear, Hardswish, Dropout, Linear: only the last one is replaced
    file, ref = _cache(tmp_path / "ok", monkeypatch, "mobilenet_v3_small",
                       lambda s: {**s, "classifier.3.weight": torch.zeros(7, 1024), "classifier.3.bias": torch.zeros(7)})
    net, weights = build_network("mobilenet_v3_small", 3, pretrained="yes")
    assert file.name in weights
    own = net.body.state_dict()
    _same(own, ref, [k for k in own if not k.startswith("classifier.3.")])
    assert own["classifier.3.weight"].shape == (3, 1024)
    file, _ = _cache(tmp_path / "bad", monkeypatch, "mobilenet_v3_small",
                     lambda s: {k: v for k, v in s.items() if not k.startswith("classifier.0.")})
    with pytest.raises(ModelError, match=file.name):
        build_network("mobilenet_v3_small", 3, pretrained="auto")
    file.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=file.name):
        build_network("mobilenet_v3_small", 3, pretrained="auto")
