"""The Label Studio reader's rows (one per region, standalone keypoint or chosen class) gathered into columns a
task at a time, and the Dataset built from the columns (see labelstudio.py for the mapping).

A row object lives only while its task is read; the columns hold numbers in typed arrays and strings shared
between rows (``from_name``, ``to_name``, annotators and attribute values repeat), so memory grows by about 100
bytes per annotation instead of the ~1 KB of a row object kept to the end.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import StringPool, obj_array
from maslow.io._labelstudio_export import EXTRA

_LABEL_TYPE = {"box": "box", "polygon": "polygon", "keypoint": "keypoints", "brush": "mask", "choices": "tag",
               "ellipse": "polygon"}
_SOURCES = ("human", "model")


@dataclass
class Row:
    image: int
    label: str
    box: list[float]
    polygon: list[np.ndarray] | None = None
    mask: dict[str, Any] | None = None
    kps: list[tuple[str, float, float]] = field(default_factory=list)
    standalone_kp: bool = False
    score: float = math.nan
    attrs: dict[str, Any] = field(default_factory=dict)
    annotator: str | None = None
    source: str = "human"
    extra: dict[str, Any] = field(default_factory=dict)


class Columns:
    """Rows appended in image order, as columns."""

    def __init__(self) -> None:
        self.n = 0
        self.image, self.label, self.source = array("q"), array("q"), array("b")
        self.box, self.score, self.rotation = array("d"), array("d"), array("d")
        self.rotated = False  # a row has extra["ls_rotation"]
        self.names: dict[str, int] = {}  # label -> code, in order of first use
        self.annotator: list[Any] = []
        self.objects: dict[str, list[Any]] = {}  # extra columns and "attr:<name>" columns, made on first value
        self.polygon: dict[int, list[np.ndarray]] = {}  # sparse: row -> rings
        self.mask: dict[int, dict[str, Any]] = {}
        self.kps: dict[int, tuple[str, bool, list[tuple[str, float, float]]]] = {}  # row -> label, standalone, kps
        self.shared = StringPool()  # one object per distinct string

    def _share(self, v: Any) -> Any:
        return self.shared.share(v)

    def _set(self, key: str, r: int, v: Any) -> None:
        col = self.objects.get(key)
        if col is None:
            col = self.objects[key] = [None] * self.n
        col[r] = v

    def add(self, rows: list[Row]) -> None:
        for row in rows:
            r = self.n
            self.n += 1
            for col in self.objects.values():
                col.append(None)
            self.image.append(row.image)
            self.label.append(self.names.setdefault(row.label, len(self.names)))
            self.source.append(_SOURCES.index(row.source))
            self.box.extend(row.box)
            self.score.append(row.score)
            self.rotation.append(float(row.extra.get("ls_rotation") or 0.0))
            self.rotated |= row.extra.get("ls_rotation") is not None
            self.annotator.append(self._share(row.annotator))
            for k, v in row.extra.items():
                if v is not None and k != "ls_rotation":
                    self._set(k, r, v if k == "ls_result_id" else self._share(v))
            for k, v in row.attrs.items():
                if v is not None:
                    self._set("attr:" + k, r, self._share(v))
            if row.polygon:
                self.polygon[r] = row.polygon
            if row.mask is not None:
                self.mask[r] = row.mask
            if row.kps:
                self.kps[r] = (row.label, row.standalone_kp, row.kps)

    def build(self, classes: dict[str, set[str]], attributes: dict[str, AttributeDef], colors: dict[str, str],
              images: Images, root: Path) -> Dataset:
        """The Dataset: ``classes`` (name -> region kinds, in schema order) and ``attributes`` as the reader found
        them, ``colors`` from the labeling config."""
        n = self.n
        label_codes = _view(self.label, np.int64)
        names = list(self.names)
        kp_names: dict[str, list[str]] = {}
        for label, standalone, points in self.kps.values():
            if not standalone:
                kn = kp_names.setdefault(label, [])
                kn.extend(x for x, _, _ in points if x not in kn)
        k = max([len(v) for v in kp_names.values()] + [1 if self.kps else 0])
        kps = np.full((n, k, 3), np.nan) if k else None
        if kps is not None:
            for r, (label, standalone, points) in self.kps.items():
                kps[r] = 0.0
                for name, x, y in points:
                    kps[r, 0 if standalone else kp_names[label].index(name)] = (x, y, 2.0)
        defs = [ClassDef(name, label_types=tuple(sorted({_LABEL_TYPE[t] for t in types if t in _LABEL_TYPE})),
                         color=colors.get(name, ""), keypoints=tuple(kp_names.get(name, ())))
                for name, types in classes.items()]
        index = {c.name: i for i, c in enumerate(defs)}
        box = _view(self.box, np.float64).reshape(n, 4)
        source = _view(self.source, np.int8)
        kinds = set().union(*classes.values()) if classes else set()
        tasks = [t for t, ks in ((Task.INSTANCE_SEGMENTATION, {"polygon", "brush", "ellipse"}),
                                 (Task.DETECTION, {"box", "polygon", "brush", "ellipse"}), (Task.KEYPOINTS, {"keypoint"}))
                 if kinds & ks or (t is Task.KEYPOINTS and k)]
        if "choices" in kinds:
            tag = np.flatnonzero(np.isnan(box[:, 0]))
            image = _view(self.image, np.int64)
            per = Counter((int(image[r]), self.annotator[r], int(source[r])) for r in tag.tolist() if r not in self.kps)
            tasks.append(Task.MULTILABEL if per and max(per.values()) > 1 else Task.CLASSIFICATION)
        extra: dict[str, np.ndarray] = {}
        for e in EXTRA:
            if e == "ls_rotation":
                if self.rotated:
                    extra[e] = _view(self.rotation, np.float64)
            elif e in self.objects:
                extra[e] = obj_array(self.objects.pop(e))
        ann = Annotations(
            image=_view(self.image, np.int64),
            label=np.asarray([index[x] for x in names], np.int64)[label_codes] if n else label_codes,
            box=box,
            score=_view(self.score, np.float64) if np.any(source == 1) else None,
            polygon=Polygons.from_rows([self.polygon.get(r) for r in range(n)]) if self.polygon else None,
            mask=obj_array([self.mask.get(r) for r in range(n)]) if self.mask else None,
            keypoints=kps,
            attributes={a: obj_array(self.objects.pop("attr:" + a, None) or [None] * n) for a in attributes},
            annotator=obj_array(self.annotator) if any(self.annotator) else None,
            source=obj_array([_SOURCES[s] for s in source.tolist()]),
            extra=extra,
        )
        schema = LabelSchema(classes=tuple(defs), tasks=tuple(tasks) or (Task.DETECTION,),
                             attributes=tuple(attributes.values()))
        return Dataset(schema=schema, images=images, annotations=ann, root=root)


def _view(values: array[Any], dtype: type) -> np.ndarray:
    """The numbers of a typed array as a numpy array, without a copy (the array can't grow while it exists)."""
    return np.frombuffer(values, dtype) if len(values) else np.zeros(0, dtype)
