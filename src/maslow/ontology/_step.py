"""The base of migration steps and the helpers they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

import numpy as np
import yaml

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
    return ds.replace(schema=schema, annotations=new)


def need_class(ds: Dataset, name: str, step: str) -> int:
    if name not in ds.schema:
        raise MigrationError(f"{step}: class {name!r} must be in the schema; known: {', '.join(ds.schema.names)}")
    return ds.schema.index(name)


def attr_defs(schema: LabelSchema, drop: str | None = None, add: AttributeDef | None = None) -> tuple[AttributeDef, ...]:
    """The attributes without ``drop``, with ``add`` in place of the one of its name (appended when new)."""
    out = [add if add is not None and a.name == add.name else a for a in schema.attributes if a.name != drop]
    if add is not None and all(a.name != add.name for a in schema.attributes):
        out.append(add)
    return tuple(out)


def narrowed(attrs: Sequence[AttributeDef], classes_of: Any) -> tuple[AttributeDef, ...]:
    """Each attribute with ``classes_of(a)`` as its classes; one whose classes were all removed is dropped (an
    empty list would make it apply to every class)."""
    out = []
    for a in attrs:
        new = tuple(dict.fromkeys(classes_of(a)))
        if a.classes and not new:
            continue
        out.append(replace(a, classes=new))
    return tuple(out)


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
    """Tuples to lists, mappings to dicts and numpy scalars (``np.str_`` names) to Python ones, recursively (what
    YAML and JSON can hold)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple | list):
        return [plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: plain(x) for k, x in v.items()}
    return v


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, v: str) -> yaml.ScalarNode:
    # PyYAML folds NEL (U+0085) in the single-quoted style, so such strings are double-quoted ("\\N")
    return dumper.represent_scalar("tag:yaml.org,2002:str", v, style='"' if "\x85" in v else None)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any) -> str:
    """YAML text of plain data (key order kept) that ``yaml.safe_load`` reads back exactly."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
