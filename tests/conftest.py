"""Shared fixtures. Tests that read ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow.core.dataset import Dataset
from maslow.sample import shapes

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (../shared/data is not on this machine)")
    return p


@pytest.fixture
def shapes_ds() -> Dataset:
    """The generated shapes dataset in memory: boxes, polygons, masks, keypoints, crowd, attributes, splits."""
    return shapes(24, seed=0)


@pytest.fixture
def shapes_on_disk(tmp_path: Path) -> Dataset:
    """The shapes dataset with its PNG files written under tmp_path."""
    from maslow.sample import write_shapes

    return write_shapes(tmp_path / "shapes", 12, seed=1)
