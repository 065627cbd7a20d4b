"""ImageNet weights already in the local torch cache are found under every name torchvision gives them.

maslow never downloads weights; it must use the file ``torchvision.models.<arch>(weights=...)`` left in
``$TORCH_HOME/hub/checkpoints`` (resnet34's, resnet50's V1 as well as its V2, ...) and say so, and when there is
none, say which file names it looked for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow.errors import ModelError

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    assert Path(torch.hub.get_dir()) / "checkpoints" == folder
    return folder


def test_classifier_loads_a_cached_file_of_an_arch_and_version_torchvision_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow.models.classify_torch import build_network

    folder = _cache(tmp_path, monkeypatch)
    # mobilenet_v2's V1 ImageNet file (V2 is torchvision's default), as torchvision names it
    v1 = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    state = torchvision.models.mobilenet_v2(weights=None).state_dict()
    torch.save(state, folder / v1)

    net, weights = build_network("mobilenet_v2", 3, pretrained="auto")
    assert weights == f"imagenet (torch cache: {v1})"
    got = net.body.state_dict()
    assert torch.equal(got["features.0.0.weight"], state["features.0.0.weight"])  # the file's weights, not random
    assert got["classifier.1.weight"].shape == (3, 1280)  # the head replaced
    assert build_network("mobilenet_v2", 3, pretrained="yes")[1] == weights
    assert build_network("mobilenet_v2", 3, pretrained="no")[1] == "from scratch (mobilenet_v2; pretrained: no)"


def test_without_a_cached_file_the_names_looked_for_are_said(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow.models._torchnets import scratch_reason
    from maslow.models.classify_torch import build_network

    folder = _cache(tmp_path, monkeypatch)
    names = [w.url.rsplit("/", 1)[1] for w in torchvision.models.get_model_weights("mobilenet_v2")]
    why = scratch_reason("mobilenet_v2", "auto")
    assert why.startswith(f"no ImageNet weights for it in {folder} (looked for ")
    assert all(n in why for n in names)
    assert build_network("mobilenet_v2", 2, pretrained="auto")[1] == f"from scratch (mobilenet_v2; {why})"
    with pytest.raises(ModelError, match="never downloads") as e:
        build_network("mobilenet_v2", 2, pretrained="yes")
    assert all(n in str(e.value) for n in names)


def test_detector_backbone_finds_resnet50_v1_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maslow.models._torchnets import resolve
    from maslow.models.base import TrainConfig

    folder = _cache(tmp_path, monkeypatch)
    cfg = TrainConfig(data="x", model="fasterrcnn", backbone="resnet50")
    assert not resolve(cfg).pretrained  # nothing cached yet
    v1 = folder / torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[1]
    v1.write_bytes(b"")  # which file is found is all this test asks (loading it is test_pretrained's)
    choice = resolve(cfg)
    assert choice.pretrained and choice.weights == f"imagenet resnet50 (torch cache: {v1.name})"
    assert resolve(cfg.with_overrides(pretrained="no")).weights == "from scratch (resnet50; pretrained: no)"
