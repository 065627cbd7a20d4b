"""The base of migration steps and the helpers they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema
from maslow.core.types import BoolArray, IntArray
from maslow.errors import MigrationError


@dataclass(frozen=True)
class StepResult:
    dataset: Dataset
    touched: int
    lost: int = 0


def remap_classes(ds: Dataset, classes: Sequence[ClassDef], old_to_new: IntArray, keep: BoolArray | None = None,
           **schema_changes: Any) -> Dataset:
    """New classes; label i -> old_to_new[i]; rows with keep False are dropped."""
    schema = replace(ds.schema, classes=tuple(classes), **schema_changes)
    ann = ds.annotations
    label = old_to_new[ann.label] if len(ann) else ann.label
    new = ann.with_columns(label=label)
    if keep is not None and not keep.all():
        new = new.take(np.flatnonzero(keep))
    return Dataset(schema=schema, images=ds.images, annotations=new, root=ds.root)


def need_class(ds: Dataset, name: str, step: str) -> int:
    if name not in ds.schema:
        raise MigrationError(f"{step}: class {name!r} must be in the schema; known: {', '.join(ds.schema.names)}")
    return ds.schema.index(name)


def attr_defs(schema: LabelSchema, drop: str | None = None, add: AttributeDef | None = None) -> tuple[AttributeDef, ...]:
    out = [a for a in schema.attributes if a.name != drop and (add is None or a.name != add.name)]
    return tuple(out + ([add] if add is not None else []))


@dataclass(frozen=True)
class Step:
    """Base of the migration steps; ``op`` is the name used in migration files."""

    op: ClassVar[str] = ""

    def apply(self, ds: Dataset) -> StepResult:
        raise NotImplementedError

    def describe(self) -> str:
        args = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"{self.op}({args})"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.op}
        for f in fields(self):
            d[f.name] = plain(getattr(self, f.name))
        return d


def plain(v: Any) -> Any:
    """Tuples to lists and mappings to dicts, recursively (what YAML and JSON can hold)."""
    if isinstance(v, tuple | list):
        return [plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: plain(x) for k, x in v.items()}
    return v
