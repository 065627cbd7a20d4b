"""Detector and segmenter settings (``params``) are checked when the adapter is built, as the classifiers' are: a
misspelt key trained a model without it, a value of the wrong type failed with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow.errors import MaslowError
from maslow.models.base import TrainConfig, build_model
from tests.helpers import run_cli


def _build(model: str, **params: object) -> object:
    return build_model(TrainConfig(data="unused", model=model, params=params))


@pytest.mark.parametrize("model", ["fasterrcnn", "ssdlite", "maskrcnn", "deeplabv3", "lraspp"])
def test_a_misspelt_setting_is_refused(model: str) -> None:
    with pytest.raises(MaslowError, match=r"'params\.warmup_step' is not a setting of " + model + r"; known: .*"
                                          r"warmup_steps"):
        _build(model, warmup_step=10)


@pytest.mark.parametrize(("params", "match"), [
    pytest.param({"score_threshold": "abc"}, r"'params\.score_threshold' must be a number >= 0\.0 and <= 1\.0, "
                                             r"got 'abc'", id="text"),
    pytest.param({"max_detections": 2.5}, r"'params\.max_detections' must be an integer >= 1", id="float-for-int"),
    pytest.param({"flip": 1.5}, r"'params\.flip' must be a number >= 0\.0 and <= 1\.0, got 1\.5", id="range"),
    pytest.param({"optimizer": "adam"}, r"'params\.optimizer' must be one of 'sgd', 'adamw', got 'adam'",
                 id="choice"),
    pytest.param({"anchor_sizes": [16, 0]}, r"'params\.anchor_sizes' must be a list of integers >= 1",
                 id="sizes"),
    pytest.param({"grad_clip": True}, r"'params\.grad_clip' must be a number", id="bool"),
])
def test_a_wrong_value_is_refused(params: dict[str, object], match: str) -> None:
    with pytest.raises(MaslowError, match=match):
        _build("fasterrcnn", **params)


def test_the_documented_settings_are_accepted() -> None:
    params = {"optimizer": "adamw", "momentum": 0.9, "warmup_steps": 50, "flip": 0.0, "grad_clip": 0,
              "cpu_budget_s": None, "score_threshold": "5e-2", "nms_threshold": 0.5, "max_detections": 100,
              "fpn_channels": 64, "anchor_sizes": [8, 16, 32], "proposals": 50, "box_batch_size": 64}
    assert _build("fasterrcnn", **params).config.params == {**params, "score_threshold": 0.05}  # type: ignore[attr-defined]
    assert _build("fcn", cpu_budget_s=300, warmup_steps=0).config.params["cpu_budget_s"] == 300  # type: ignore[attr-defined]


def test_cli_names_the_config_and_the_setting_before_reading_data(tmp_path: Path) -> None:
    (tmp_path / "det.yaml").write_text("data: missing.json\nformat: coco\nmodel: fasterrcnn\n"
                                       "params: {score_treshold: 0.5}\n")
    code, err = run_cli(["train", str(tmp_path / "det.yaml")])
    flat = " ".join(err.split())
    assert code == 2 and "det.yaml" in flat and "'params.score_treshold' is not a setting of fasterrcnn" in flat


def test_a_model_saved_with_an_unused_setting_still_loads(tmp_path: Path) -> None:
    pytest.importorskip("torchvision")
    pytest.importorskip("efficientnet_lite_pytorch")
    import json

    from maslow.models.base import load_model
    from maslow.sample import write_shapes

    ds = write_shapes(tmp_path / "shapes", 2, seed=1, width=48, height=32)
    cfg = TrainConfig(data="unused", model="fcos", image_size=32, epochs=1, threads=1, pretrained="no")
    folder = build_model(cfg).fit(ds).save(tmp_path / "model")
    doc = json.loads((folder / "model.json").read_text())
    doc["config"]["params"] = {"score_treshold": 0.5}  # written before settings were checked, never read
    (folder / "model.json").write_text(json.dumps(doc))
    model = load_model(folder)
    assert model.config.params == {} and model.predict(ds).n_images == 2
