"""The error tree of maslow.

MaslowError
 ├─ InvalidDatasetError (ValueError)     bad shape / dtype / range / row link inside a Dataset
 │   └─ KeypointSigmasError              keypoints that OKS can't score without kpt_sigmas (not COCO's 17)
 ├─ FormatError (ValueError)             a file can't be read or written; has .path and .record
 ├─ SchemaError (ValueError) ── UnknownLabelError (KeyError), MigrationError
 ├─ ModelError (RuntimeError)            a model adapter failed to load or predict
 └─ MissingDependencyError (ImportError) names the extra: pip install 'maslow[torch]'
MaslowWarning (UserWarning)              legal but suspicious data

Message recipe: ``<where>: <what> must be <expected>, got <actual>[. <fix>]``.
"""

from __future__ import annotations

from pathlib import Path


class MaslowError(Exception):
    """Base class of every error maslow raises on purpose."""


class InvalidDatasetError(MaslowError, ValueError):
    """A Dataset table has a bad shape, dtype, range or row link."""


class KeypointSigmasError(InvalidDatasetError):
    """Keypoints whose count doesn't match the OKS sigmas (COCO's 17 person sigmas by default): pass
    ``kpt_sigmas``, one per keypoint (the CLI's ``--kpt-sigmas``)."""


class FormatError(MaslowError, ValueError):
    """A file can't be read or written.

    Attributes:
        path: the file, when known.
        record: the record inside the file (e.g. ``annotations[12] (id=45)``), when known.
        field: the field of the record, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        record: str | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.record = record
        self.field = field
        where = ", ".join(
            p for p in (self.path, record, None if field is None else f"field {field!r}") if p
        )
        super().__init__(f"{where}: {message}" if where else message)


class NoRoomError(FormatError):
    """An output could not be written: the disk is full, a file size limit or quota was reached, or the folder is
    read-only (nothing was left half-written). ``errno`` is the OS error number."""

    def __init__(self, message: str, *, errno: int, path: str | Path | None = None) -> None:
        super().__init__(message, path=path)
        self.errno = errno


class SchemaError(MaslowError, ValueError):
    """A label schema is invalid, or data does not fit it."""


class UnknownLabelError(SchemaError, KeyError):
    """A class or attribute name is not in the schema."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class MigrationError(SchemaError):
    """A schema migration can't be applied."""


class ModelError(MaslowError, RuntimeError):
    """A model adapter failed to load, train or predict."""


class MissingDependencyError(MaslowError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class MaslowWarning(UserWarning):
    """Legal but suspicious data."""


def require(module: str, extra: str) -> None:
    """Raise MissingDependencyError naming the extra when ``module`` can't be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"{module} is not installed: pip install 'maslow[{extra}]'"
        )
