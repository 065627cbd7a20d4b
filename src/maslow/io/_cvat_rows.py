"""CVAT XML reading: the annotation rows kept as columns while the file streams by (see ``maslow.io.cvat``).

Each shape is added once its image (or track) is read, so only one image's ``Shape`` objects are alive at a
time. Rows come in reading order: every ``<image>``'s shapes, then the frames of the ``<track>`` elements; the
Dataset orders them by image (stable), so an image's own shapes come before the track frames on it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.polygons import Polygons
from maslow.core.schema import AttributeDef, ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import StringPool, obj_array
from maslow.io._common import Collector
from maslow.io._cvat_read import Shape
from maslow.io._cvat_write import _KNOWN_EXTRA, _SOURCE_IN

EXTRA_DEFAULT: dict[str, Any] = {"cvat_shape": "", "cvat_rotation": 0.0, "cvat_z_order": 0, "cvat_group_id": 0,
                                 "cvat_track_id": -1, "cvat_keyframe": True}
EXTRA_DTYPE: dict[str, Any] = {"cvat_rotation": np.float64, "cvat_group_id": np.int64, "cvat_z_order": np.int64,
                               "cvat_track_id": np.int64, "cvat_keyframe": bool}
_SHORT = 64  # attribute and source strings up to this length are shared between rows (one object per value)
_MAX_SHARED = 1 << 16


class Rows:
    """The annotation rows read so far, as columns."""

    def __init__(self, declared: Iterable[str]) -> None:
        self.declared = set(declared)  # class names <meta> declares
        self.image = array("q")
        self.label = array("q")
        self.kind = array("q")
        self.box = array("d")
        self.labels: dict[str, int] = {}  # label -> code, in order of first appearance
        self.kinds: dict[str, int] = {}
        self.polygon: list[list[np.ndarray] | None] = []
        self.mask: list[dict[str, Any] | None] = []
        self.keypoints: list[np.ndarray | None] = []
        self.attrs: dict[str, list[Any]] = {}
        self.extra: dict[str, list[Any]] = {}
        self.unknown: dict[str, tuple[int, int, str]] = {}  # undeclared label -> (image, row, record) of its first
        self.n_keypoints = 0
        self._shared = StringPool(_MAX_SHARED)

    def __len__(self) -> int:
        return len(self.image)

    def add(self, image: int, s: Shape) -> None:
        r = len(self.image)
        self.image.append(image)
        self.label.append(self.labels.setdefault(s.label, len(self.labels)))
        self.kind.append(self.kinds.setdefault(s.kind, len(self.kinds)))
        self.box.extend(s.box)
        self.polygon.append(s.polygon)
        self.mask.append(s.mask)
        self.keypoints.append(s.keypoints)
        if s.keypoints is not None:
            self.n_keypoints = max(self.n_keypoints, s.keypoints.shape[0])
        if s.label not in self.declared:  # keep its first row in the Dataset's order: by image, then as read
            first = self.unknown.get(s.label)
            if first is None or image < first[0]:
                self.unknown[s.label] = (image, r, s.record)
        for name, v in s.attrs.items():
            self._put(self.attrs, name, r, v, None)
        for name, v in s.extra.items():
            self._put(self.extra, name, r, v, EXTRA_DEFAULT.get(name))

    def _put(self, columns: dict[str, list[Any]], name: str, r: int, v: Any, fill: Any) -> None:
        col = columns.get(name)
        if col is None:
            col = columns[name] = [fill] * r
        elif len(col) < r:
            col.extend([fill] * (r - len(col)))
        if type(v) is str and len(v) <= _SHORT:
            v = self._shared.share(v)
        col.append(v)

    def column(self, columns: dict[str, list[Any]], name: str, fill: Any, order: np.ndarray) -> list[Any]:
        col = columns.get(name, [])
        col.extend([fill] * (len(self) - len(col)))
        return [col[r] for r in order.tolist()]


def build(src: Path, rows: Rows, classes: list[ClassDef], specs: dict[str, AttributeDef], col: Collector,
          root: Path, kp_names: dict[str, list[str]], images: Images) -> tuple[Dataset, Report]:
    """The Dataset of the rows read; labels <meta> does not declare are reported and added to the schema."""
    n = len(rows)
    image = np.frombuffer(rows.image, np.int64)
    order = np.argsort(image, kind="stable")  # by image: an image's own shapes, then the track frames on it
    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)
    names = {c.name: i for i, c in enumerate(classes)}
    for label, (i, r, record) in sorted(rows.unknown.items(), key=lambda kv: pos[kv[1][1]]):
        col.add("unknown_label", f"label {label!r} is not declared in <meta><labels>; added to the schema",
                severity="error", file=src, record=record, field="label", image=i, annotation=int(pos[r]))
        names[label] = len(classes)
        classes.append(ClassDef(label))
    code_to_id = np.asarray([names[label] for label in rows.labels], np.int64)
    label_codes = np.frombuffer(rows.label, np.int64)
    kind = np.frombuffer(rows.kind, np.int64)
    code_of = rows.kinds
    labels_of = list(rows.labels)
    skeletons = ({labels_of[c] for c in np.unique(label_codes[kind == code_of["skeleton"]]).tolist()}
                 if "skeleton" in code_of else set())
    classes = [replace(c, keypoints=tuple(kp_names[c.name])) if c.name in skeletons and not c.keypoints
                  and kp_names.get(c.name) else c for c in classes]
    k = rows.n_keypoints
    kps = np.full((n, k, 3), np.nan)
    for r, kp in enumerate(rows.keypoints):
        if kp is not None:
            kps[pos[r]] = 0.0
            kps[pos[r], : len(kp)] = kp
    attr_names = list(specs)
    if set(code_of) - {"tag"} and "occluded" not in specs:
        specs["occluded"] = AttributeDef("occluded", type="bool")
        attr_names.append("occluded")
    kinds = set(code_of)
    regions = {"polygon", "polyline", "mask", "ellipse"}
    tasks = [t for t, ks in ((Task.INSTANCE_SEGMENTATION, regions), (Task.DETECTION, {"box", "cuboid", *regions}),
                             (Task.KEYPOINTS, {"points", "skeleton"})) if kinds & ks or (t is Task.KEYPOINTS and k)]
    if "tag" in kinds:
        n_tags = np.bincount(image[kind == code_of["tag"]])
        tasks.append(Task.MULTILABEL if n_tags.max() > 1 else Task.CLASSIFICATION)
    sources = rows.column(rows.extra, "cvat_source", None, order)
    ann = Annotations(
        image=image[order],
        label=code_to_id[label_codes[order]],
        box=np.frombuffer(rows.box, np.float64).reshape(n, 4)[order],
        polygon=Polygons.from_rows([rows.polygon[r] for r in order.tolist()])
        if any(p for p in rows.polygon) else None,
        mask=obj_array([rows.mask[r] for r in order.tolist()]) if any(m is not None for m in rows.mask) else None,
        keypoints=kps if k else None,
        attributes={a: obj_array(rows.column(rows.attrs, a, None, order)) for a in attr_names},
        source=obj_array([_SOURCE_IN.get(str(s), "human") for s in sources]),
        extra={e: np.asarray(rows.column(rows.extra, e, EXTRA_DEFAULT.get(e), order),
                             dtype=EXTRA_DTYPE.get(e, object)) for e in _KNOWN_EXTRA if e in rows.extra},
    )
    schema = LabelSchema(classes=tuple(classes), tasks=tuple(tasks) or (Task.DETECTION,),
                         attributes=tuple(specs[a] for a in attr_names))
    return Dataset(schema=schema, images=images, annotations=ann, root=root), col.report()
