"""Shared plotting plumbing: a matplotlib Figure without pyplot's global state (lazy import)."""

from __future__ import annotations

from typing import Any

from maslow.errors import MissingDependencyError


def figure(width: float, height: float, *, dpi: int = 100) -> Any:
    """A ``matplotlib.figure.Figure`` (constrained layout); MissingDependencyError names ``maslow[reports]``."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingDependencyError(
            f"plots need matplotlib, which is not installed ({e}): pip install 'maslow[reports]'"
        ) from None
    return Figure(figsize=(width, height), dpi=dpi, layout="constrained")
