"""Shared plotting plumbing: a matplotlib Figure without pyplot's global state (lazy import)."""

from __future__ import annotations

import functools
from typing import Any

from maslow.errors import MissingDependencyError


def figure(width: float, height: float, *, dpi: int = 100) -> Any:
    """A ``matplotlib.figure.Figure`` (constrained layout) that draws every text as written: a ``$`` in a class,
    split or file name is a dollar sign, not mathtext (which fails to parse most such names). MissingDependencyError
    names ``maslow[reports]``."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise MissingDependencyError(
            f"plots need matplotlib, which is not installed ({e}): pip install 'maslow[reports]'"
        ) from None
    return _plain_text(Figure)(figsize=(width, height), dpi=dpi, layout="constrained")


@functools.cache
def _plain_text(figure_class: type) -> type:
    from matplotlib import rc_context
    from matplotlib.text import Text

    class PlainTextFigure(figure_class):  # type: ignore[misc]
        def draw(self, renderer: Any) -> None:
            for t in self.findobj(Text):
                t.set_parse_math(False)
            with rc_context({"text.parse_math": False}):  # and the tick labels made while drawing
                super().draw(renderer)

    return PlainTextFigure
