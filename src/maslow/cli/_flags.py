"""Library refusals re-raised naming the CLI flag: a library function names its parameter (``outliers: min_ratio
must be ...``, ``IssueRules.dark must be ...``), which a user of ``maslow outliers --min-ratio`` never wrote."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

from maslow.errors import MaslowError


@contextlib.contextmanager
def flags_named(names: Mapping[str, str]) -> Iterator[None]:
    """Within the block, a ``MaslowError`` whose message starts with a key of ``names`` (the library's prefix, up
    to and including the parameter: ``"outliers: min_ratio"``) is raised again, as a ``MaslowError``, with that
    prefix replaced by its value (``"outliers: --min-ratio"``); other errors pass as they are.

    Example:
        >>> with flags_named({"shapes: n_images": "sample: --n-images"}):  # doctest: +SKIP
        ...     write_shapes(dst, -3)    # error: sample: --n-images must be >= 0, got -3
    """
    try:
        yield
    except MaslowError as e:
        text = str(e)
        for old, new in names.items():
            if text.startswith(old) and text[len(old):len(old) + 1] in (" ", ":", ""):
                raise MaslowError(new + text[len(old):]) from None
        raise

