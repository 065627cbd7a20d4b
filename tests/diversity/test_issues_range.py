"""``issues``' low-information *range* is measured on the picture reduced to at most 64 pixels a side (sensor noise
averages out), not the p99 - p01 reported beside it: the rule text, the option's help and the docs say so (they
said "p99 - p01", which a noisy blank frame visibly exceeds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers import flat_text, run_cli, run_cli_streams


def test_a_noisy_blank_frame_has_a_small_range_but_a_wide_p01_p99(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(tmp_path / f"photo{i}.png")
    grey = np.clip(128 + rng.normal(0, 4, (256, 256)), 0, 255).astype(np.uint8)
    Image.fromarray(grey).convert("RGB").save(tmp_path / "blank_noise.png")
    code, out, err = run_cli_streams(["diversity", "issues", str(tmp_path), "--json"])
    assert code == 0, err
    (img,) = json.loads(out)["issues"]["low_information"]["images"]
    assert img["path"] == "blank_noise.png"
    assert img["p99"] - img["p01"] > 0.05 > img["range"]  # flagged by the 64-px range, as documented
    code, out = run_cli(["diversity", "issues", str(tmp_path)])
    assert code == 0 and "at 64 px < 0.05" in out  # the rule column: "1st-99th percentile range at 64 px < 0.05"
    code, out = run_cli(["diversity", "issues", "--help"])
    assert "64 pixels a side" in flat_text(out) and "not p99 - p01" in flat_text(out)


def test_the_docs_say_where_range_is_measured() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "diversity.md").read_text(encoding="utf-8")
    row = next(line for line in docs.splitlines() if line.startswith("| low_information |"))
    assert "64 pixels" in row and "range" in row
