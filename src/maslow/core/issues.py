"""Findings about data: one row each, with severity and location (file, record, field)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Issue:
    """One finding.

    Attributes:
        type: machine-readable kind, e.g. ``missing_image``, ``yolo_not_normalized``.
        severity: ``error`` (data is wrong or was not imported), ``warning`` (suspicious), ``info``.
        message: what is wrong and what to do, for a person.
        file: the file it was found in.
        record: the record in the file, e.g. ``annotations[12] (id=45)`` or ``line 7``.
        field: the field of that record, e.g. ``bbox``.
        image: row of ``Dataset.images`` when known.
        annotation: row of ``Dataset.annotations`` when known.
    """

    type: str
    severity: str
    message: str
    file: str | None = None
    record: str | None = None
    field: str | None = None
    image: int | None = None
    annotation: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"issue severity must be one of {SEVERITIES}, got {self.severity!r}")

    def where(self) -> str:
        parts = [p for p in (self.file, self.record, None if self.field is None else f"field {self.field!r}") if p]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    """The findings of an import or a check, in the order found."""

    issues: tuple[Issue, ...] = ()

    def __iter__(self) -> Iterator[Issue]:
        return iter(self.issues)

    def __len__(self) -> int:
        return len(self.issues)

    def __add__(self, other: Report) -> Report:
        return Report(self.issues + other.issues)

    @property
    def n_errors(self) -> int:
        return sum(i.severity == "error" for i in self.issues)

    def counts(self) -> dict[str, int]:
        """Number of issues per type, most frequent first."""
        return dict(Counter(i.type for i in self.issues).most_common())

    def of_type(self, type_: str) -> list[Issue]:
        return [i for i in self.issues if i.type == type_]

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_issues": len(self.issues),
            "n_errors": self.n_errors,
            "counts": self.counts(),
            "issues": [i.to_dict() for i in self.issues],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        return cls(tuple(Issue(**i) for i in d.get("issues", ())))

    @classmethod
    def of(cls, issues: Iterable[Issue]) -> Report:
        return cls(tuple(issues))
