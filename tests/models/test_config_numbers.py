"""Numbers in exponent notation without a dot (``lr: 3e-4``) are numbers in configs, overrides and search spaces.

PyYAML follows YAML 1.1, which reads ``3e-4`` as the string "3e-4" (YAML 1.2 and every ML config reader: a
float); the docs' own ``--set lr=3e-4`` was refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from maslow.cli.train import apply_sets
from maslow.models.base import TrainConfig, build_model, read_config
from maslow.models.tune import read_tune_config


def test_exponent_notation_is_a_number_in_a_config_file(tmp_path: Path) -> None:
    assert yaml.safe_load("lr: 3e-4") == {"lr": "3e-4"}  # why: PyYAML's YAML 1.1
    (tmp_path / "c.yaml").write_text("data: '1e5'\nformat: coco\nlr: 3e-4\nweight_decay: 1E-5\nval_fraction: 2.5e-1\n")
    cfg = read_config(tmp_path / "c.yaml")
    assert (cfg.lr, cfg.weight_decay, cfg.val_fraction) == (3e-4, 1e-5, 0.25)
    assert cfg.data == str(tmp_path / "1e5")  # a text field stays text
    # adapter settings: each adapter reads its own numbers, and leaves a path alone
    built = build_model(cfg.with_overrides(params={"C": "1e2", "cache_dir": "1e5"})).config.params
    assert built == {"C": 100.0, "cache_dir": "1e5"}
    detector = build_model(cfg.with_overrides(model="fasterrcnn", params={"score_threshold": "1e-3"}))
    assert detector.config.params == {"score_threshold": 1e-3}


def test_set_and_search_space_read_exponent_notation(tmp_path: Path) -> None:
    cfg = apply_sets(TrainConfig(data="d"), ["lr=3e-4", "params.C=1e-6"])
    assert cfg.lr == 3e-4 and build_model(cfg).config.params["C"] == 1e-6
    (tmp_path / "t.yaml").write_text("data: d\nformat: coco\nsearch:\n  lr: {low: 1e-5, high: 1e-1, log: true}\n"
                                     "  C: [1e-3, 1e2]\n")
    _, space = read_tune_config(tmp_path / "t.yaml")
    assert space == {"lr": {"low": 1e-5, "high": 1e-1, "log": True}, "C": [1e-3, 100.0]}


@pytest.mark.parametrize("text", ["3e", "e5", "1e-4x", "0x1e5"])
def test_other_strings_are_still_refused(text: str) -> None:
    with pytest.raises(Exception, match="'lr' must be a number"):
        TrainConfig(data="d", lr=text)  # type: ignore[arg-type]
