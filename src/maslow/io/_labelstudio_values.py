"""Image-level values of a Label Studio export: ``textarea``, ``number``, ``rating`` and ``datetime`` results not
tied to a region (their ``id`` is no region's), and ``choices`` of the controls named in ``choice_columns``, read
into one ``images.extra`` column per control (``maslow eval --slice-by <control>``) and written back into the
results they came from (see labelstudio.py for the rest of the mapping).

- A column holds one value per image: that of the task's ``ground_truth`` annotation, else of its first annotation
  (export order) that has one; the values of predictions are not in it (they stay as results). Text: the string
  (several texts joined by a newline); choices: the choice (several joined by a comma); number and rating: the
  number; datetime: the string as Label Studio formats it (``2024-05-01T10:30``, ``2024-05-01``, ``10:30``...).
  Images without a value hold None.
- The result a value came from stays in ``images.extra["ls_annotations"]`` (``_labelstudio_keep``) marked
  ``"_value": true``. The writer puts the column's value back into it: the result as read while the value is
  unchanged, the new value when it was changed, no result when it was removed; a value without a result goes into
  the task's first annotation (a new one when there is none). The other annotators' results stay as read.
- ``Dataset.info["labelstudio"]["image_values"]``: control name -> ``{"column", "type", "to_name"}``; a column
  named like a task ``data`` key or one of maslow's image columns is named ``<control>_<type>`` instead.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.errors import FormatError
from maslow.io._coco_columns import to_column
from maslow.io._common import Collector
from maslow.io._labelstudio_keep import OWN_IMAGE_EXTRA, json_value

#: image-level result types read into columns (``choices`` only for the controls named in ``choice_columns``)
VALUE_TYPES = ("textarea", "number", "rating", "datetime")
#: the value key of each type
KEY = {"textarea": "text", "number": "number", "rating": "rating", "datetime": "datetime", "choices": "choices"}
#: the labeling config tag of each type
TAG = {"textarea": "TextArea", "number": "Number", "rating": "Rating", "datetime": "DateTime", "choices": "Choices"}
_JOIN = {"textarea": "\n", "choices": ","}
#: names an images.extra column can't take (Images' own columns, which ``--slice-by`` would read instead)
_RESERVED = frozenset({"path", "width", "height", "split"})


def scalar(rtype: str, value: Any) -> Any:
    """The column value of a result's ``value`` (None when it holds none maslow can use)."""
    v = value.get(KEY[rtype]) if isinstance(value, dict) else None
    if rtype in _JOIN:
        if isinstance(v, str):
            return v
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            return v[0] if len(v) == 1 else _JOIN[rtype].join(v)
        return None
    if rtype == "datetime":
        return v if isinstance(v, str) and v else None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        return None
    return v


@dataclass
class _Offer:
    res: dict[str, Any]
    rtype: str
    value: Any
    human: bool
    truth: bool
    where: list[Any]  # the list of results (kept for the header) that holds res


class ValueReader:
    """Image-level values of the tasks, gathered a task at a time (``offer`` per result, ``end_task`` per task)."""

    def __init__(self, choice_columns: frozenset[str]) -> None:
        self.choice_columns = choice_columns
        self.controls: dict[str, dict[str, str]] = {}  # control -> type, to_name (in order of first value)
        self.rows: list[dict[str, Any] | None] = []  # per image: control -> value (None: no value)
        self.offers: list[_Offer] = []
        self.disagree: dict[str, list[int]] = {}  # control -> images whose annotators gave different values

    def wants(self, rtype: str, res: dict[str, Any]) -> bool:
        return rtype in VALUE_TYPES or (rtype == "choices" and res.get("from_name") in self.choice_columns)

    def offer(self, res: dict[str, Any], rtype: str, common: dict[str, Any], where: list[Any]) -> bool:
        """Take image-level result ``res`` (already in ``where``) as a candidate value of its image; False when it
        has no usable value or control name (it stays a kept result only)."""
        value, name = scalar(rtype, res.get("value")), res.get("from_name")
        if value is None or not isinstance(name, str) or not name:
            return False
        spec = self.controls.get(name)
        if spec is not None and spec["type"] != rtype:
            return False
        self.offers.append(_Offer(res, rtype, value, common["source"] == "human", bool(common.get("ground_truth")),
                                  where))
        return True

    def end_task(self, image: int) -> list[dict[str, Any]]:
        """Choose the values of image ``image`` and mark their results; returns the offered results not chosen."""
        chosen: dict[str, _Offer] = {}
        for o in sorted((o for o in self.offers if o.human), key=lambda o: not o.truth):  # stable: export order
            name = o.res["from_name"]
            if name not in chosen:
                chosen[name] = o
            elif o.value != chosen[name].value and image not in self.disagree.get(name, ()):
                self.disagree.setdefault(name, []).append(image)
        row: dict[str, Any] = {}
        for name, o in chosen.items():
            self.controls.setdefault(name, {"type": o.rtype, "to_name": str(o.res.get("to_name") or "image")})
            row[name] = o.value
            k = next(j for j, r in enumerate(o.where) if r is o.res)
            o.where[k] = {**o.res, "_value": True}
        self.rows.append(row or None)
        rest = [o.res for o in self.offers if chosen.get(o.res["from_name"]) is not o]
        self.offers = []
        return rest

    def columns(self, taken: set[str]) -> tuple[dict[str, np.ndarray], dict[str, dict[str, str]]]:
        """The columns (one per control) and ``info["labelstudio"]["image_values"]``; ``taken``: the names of the
        other image columns."""
        cols: dict[str, np.ndarray] = {}
        specs: dict[str, dict[str, str]] = {}
        for name, spec in self.controls.items():
            col = name
            while col in taken or col in _RESERVED or col in cols:
                col = f"{col}_{spec['type']}"
            cols[col] = to_column([row.get(name) if row else None for row in self.rows])
            specs[name] = {"column": col, **spec}
        return cols, specs


def _encode(rtype: str, v: Any, original: Any) -> dict[str, Any] | None:
    """A result's ``value`` holding column value ``v``: ``original`` while ``v`` is its value; None when ``v`` can't
    be a value of this type."""
    orig = original if isinstance(original, dict) else {}
    old = scalar(rtype, orig)
    if old is not None and type(old) is type(v) and old == v:
        return orig
    rest = {k: x for k, x in orig.items() if k != KEY[rtype]}
    if rtype in ("number", "rating"):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return None
        if isinstance(v, float) and v.is_integer() and isinstance(old, int):
            v = int(v)  # an integer column read back as float (NaN where an image has none)
        return {**rest, KEY[rtype]: v}
    if not isinstance(v, str):
        return None
    return {**rest, KEY[rtype]: [v] if rtype in _JOIN else v}


class ValueWriter:
    """The image-level values of a dataset written back into results (see the module docstring)."""

    def __init__(self, ds: Dataset, lost: dict[str, int], used: dict[str, tuple[str, list[str]]],
                 multiple: set[str], to_names: set[str]) -> None:
        """``used`` (control -> type and the choices written), ``multiple`` (choices controls with a result of
        several choices) and ``to_names`` are filled as results are written, for the labeling config."""
        held = ds.info.get("labelstudio")
        specs = held.get("image_values") if isinstance(held, dict) else None
        self.ds, self.lost, self.used, self.multiple, self.to_names = ds, lost, used, multiple, to_names
        self.specs: dict[str, dict[str, str]] = {
            name: s for name, s in (specs.items() if isinstance(specs, dict) else ())
            if isinstance(s, dict) and s.get("column") in ds.images.extra and s.get("type") in KEY}
        found: dict[str, dict[str, str] | None] = {}  # marked results' controls without a spec: None if refuted
        heads = ds.images.extra.get("ls_annotations")
        for i, h in enumerate(heads.tolist() if heads is not None else ()):
            # info["labelstudio"] lost on the way (through COCO), or another dataset's: a marked result names the
            # column its value was read into, taken while that column holds the result's value
            for res in (r for g in (h.get("annotations") or [] if isinstance(h, dict) else [])
                        if isinstance(g, dict) for r in g.get("result") or []):
                name = res.get("from_name") if isinstance(res, dict) and res.get("_value") else None
                rtype = str(res.get("type")).lower() if name is not None else ""
                if not isinstance(name, str) or name in self.specs or name not in ds.images.extra or rtype not in KEY:
                    continue
                if scalar(rtype, res.get("value")) != json_value(ds.images.extra[name][i])[0]:
                    found[name] = None
                else:  # (a refuted control stays None)
                    to = str(res.get("to_name") or "image")
                    found.setdefault(name, {"column": name, "type": rtype, "to_name": to})
        self.specs.update({k: v for k, v in found.items() if v is not None})
        self.columns = frozenset(s["column"] for s in self.specs.values())
        self.done: set[str] = set()  # controls of the task being written whose value is in a result

    def _value(self, name: str, i: int) -> tuple[Any, bool]:
        return json_value(self.ds.images.extra[self.specs[name]["column"]][i])

    def _use(self, res: dict[str, Any]) -> dict[str, Any]:
        name, rtype = str(res["from_name"]), str(res["type"])
        labels = self.used.setdefault(name, (rtype, []))[1]
        if rtype == "choices":
            chosen = res["value"].get("choices") or []
            labels.extend(x for x in chosen if x not in labels)
            if len(chosen) > 1:
                self.multiple.add(name)
        self.to_names.add(str(res.get("to_name") or "image"))
        return res

    def fill(self, res: Any, i: int) -> Any:
        """A result kept for image ``i``: as it is, or (marked) with its control's column value; None: removed."""
        if not isinstance(res, dict) or not res.get("_value"):
            return res
        res = {k: v for k, v in res.items() if k != "_value"}
        name = res.get("from_name")
        spec = self.specs.get(name) if isinstance(name, str) else None
        if spec is None or spec["type"] != str(res.get("type", "")).lower():
            return res  # the column is gone (another format's reader): the result as read
        self.done.add(str(name))
        v, present = self._value(str(name), i)
        if not present:
            return None  # the value was removed in maslow
        value = _encode(spec["type"], v, res.get("value"))
        if value is None:
            self.lost[f"images.extra.{spec['column']}"] = self.lost.get(f"images.extra.{spec['column']}", 0) + 1
            return None
        return self._use({**res, "value": value})

    def missing(self, i: int) -> list[dict[str, Any]]:
        """Results for the values of image ``i`` that no kept result held (added in maslow, or read from a file
        without annotation ids)."""
        out = []
        for name, spec in self.specs.items():
            v, present = self._value(name, i)
            if name in self.done or not present:
                continue
            value = _encode(spec["type"], v, None)
            if value is None:
                self.lost[f"images.extra.{spec['column']}"] = self.lost.get(f"images.extra.{spec['column']}", 0) + 1
                continue
            out.append(self._use({"id": f"{name}_{i}", "type": spec["type"], "from_name": name,
                                  "to_name": spec.get("to_name") or "image", "value": value}))
        self.done = set()
        return out


def choice_set(names: Any, controls: dict[str, str] | None, src: Path) -> frozenset[str]:
    """The ``choice_columns`` option checked: names of ``<Choices>`` controls (of the labeling config's
    ``controls``, name -> tag, when given)."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list | tuple | set | frozenset) or not all(isinstance(n, str) and n for n in names):
        raise FormatError(f"choice_columns must be a list of <Choices> control names, got {names!r}", path=src,
                          record="options", field="choice_columns")
    bad = [n for n in names if controls is not None and controls.get(n) != "choices"]
    if bad:
        got = f"<{controls[bad[0]]}>" if controls and bad[0] in controls else "no such control"
        raise FormatError(f"choice_columns: {bad[0]!r} must be a <Choices> control of the labeling config, got {got}",
                          path=src, record="options", field="choice_columns")
    return frozenset(names)


def add_columns(values: ValueReader, extra: dict[str, np.ndarray], col: Collector, src: Path) -> dict[str, Any]:
    """Put the columns of ``values`` into the image columns ``extra`` and report them; returns
    ``info["labelstudio"]["image_values"]``."""
    cols, specs = values.columns(set(extra) | set(OWN_IMAGE_EXTRA))
    extra.update(cols)
    n = Counter(k for row in values.rows if row for k in row)
    for name, spec in specs.items():
        col.add("labelstudio_image_values", f"{n[name]} image-level {spec['type']} values of {name!r} read into "
                f"images.extra[{spec['column']!r}] (--slice-by {spec['column']}): the ground-truth annotation's, "
                "else the first annotation's; written back into their results", severity="info", file=src,
                field=name)
        where = values.disagree.get(name)
        if where:
            col.add("labelstudio_value_disagreement", f"annotators gave different {name!r} values in {len(where)} "
                    f"tasks; images.extra[{spec['column']!r}] holds the ground-truth annotation's, else the first "
                    "annotation's (the others are kept for Label Studio)", severity="info", file=src,
                    record=f"task {where[0]}", field=name, image=where[0])
    return specs
