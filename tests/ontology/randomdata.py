"""Random label schemas and datasets for the property tests of ``maslow.ontology`` (seeded numpy generators).

``random_schema`` draws classes (kinds, label types, keypoint names), attributes (every type, required, limited to
some classes), tasks, guidelines and a version. ``random_dataset`` draws annotations under a schema: with
``valid=True`` every row follows the schema's rules (the docs' validation table); otherwise rows carry any
geometry, wrong values, unknown attribute columns and visibilities outside 0/1/2. ``records`` turns a dataset into
one plain dict per annotation (class by name), the form the brute-force references in the tests work on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maslow.core import Annotations, AttributeDef, ClassDef, Dataset, Images, LabelSchema
from maslow.core import masks as M
from maslow.core.types import obj_array

CLASS_NAMES = ("cat", "dog", "bird", "ñandú", "猫", "it's", 'say "hi"', "a: b", "yes", "null", "1", "#x")
ATTR_NAMES = ("pose", "occluded", "size", "note", "colour", "kind")
ENUM_POOL = ("up", "down", "left", "ré", "yes", "1")
GEOMETRY = ("box", "mask", "polygon", "keypoints")
LABEL_TYPES = (*GEOMETRY, "tag")
TASKS = ("detection", "instance_segmentation", "semantic_segmentation", "keypoints", "classification", "multilabel")
W, H = 16, 12


def _pick(rng: np.random.Generator, pool: tuple[str, ...], k: int) -> tuple[str, ...]:
    return tuple(str(pool[i]) for i in rng.choice(len(pool), size=k, replace=False))


def random_class(rng: np.random.Generator, name: str) -> ClassDef:
    types = _pick(rng, LABEL_TYPES, int(rng.integers(1, 4))) if rng.random() < 0.6 else ()
    kind = "semantic" if rng.random() < 0.2 else "object"
    if kind == "semantic" and types and not {"mask", "polygon"} & set(types):
        types = (*types, "mask")  # a semantic class is a region (the schema loader refuses one without)
    kps: tuple[str, ...] = ()
    skel: tuple[tuple[int, int], ...] = ()
    if rng.random() < 0.35:
        kps = tuple(f"p{i}" for i in range(int(rng.integers(1, 4))))
        skel = tuple((int(a), int(b)) for a, b in rng.integers(0, len(kps), (int(rng.integers(0, 3)), 2)) if a != b)
    return ClassDef(name, kind=kind, label_types=types,
                    supercategory=str(rng.choice(["", "animal", "thing"])), keypoints=kps, skeleton=skel,
                    color=str(rng.choice(["", "#ff0000", "#00aa11"])), id=None if rng.random() < 0.5 else
                    int(rng.integers(0, 100)))


def random_attribute(rng: np.random.Generator, name: str, classes: tuple[str, ...]) -> AttributeDef:
    type_ = str(rng.choice(["bool", "enum", "number", "text"]))
    values = _pick(rng, ENUM_POOL, int(rng.integers(1, 4))) if type_ == "enum" else ()
    on = _pick(rng, classes, int(rng.integers(1, len(classes) + 1))) if classes and rng.random() < 0.5 else ()
    return AttributeDef(name, type=type_, values=values, required=bool(rng.random() < 0.4), classes=on)


def random_schema(rng: np.random.Generator, *, n_classes: int | None = None) -> LabelSchema:
    k = int(rng.integers(0, 6)) if n_classes is None else n_classes
    names = _pick(rng, CLASS_NAMES, k)
    classes = tuple(random_class(rng, n) for n in names)
    attrs = tuple(random_attribute(rng, a, names) for a in _pick(rng, ATTR_NAMES, int(rng.integers(0, 4))))
    tasks = _pick(rng, TASKS, int(rng.integers(1, 3)))
    guidelines = str(rng.choice(["", "Box every cell.", "It's \"quoted\": yes\n- not a list\n", "猫 ñ\ttab"]))
    return LabelSchema(classes=classes, tasks=tasks, attributes=attrs, guidelines=guidelines,
                       version=int(rng.integers(1, 6)))


def _mask(rng: np.random.Generator) -> dict[str, Any]:
    m = np.zeros((H, W), bool)
    x0, y0 = int(rng.integers(0, W - 2)), int(rng.integers(0, H - 2))
    m[y0:y0 + int(rng.integers(1, 5)), x0:x0 + int(rng.integers(1, 5))] = True
    return M.encode(m)


def _polygon(rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.uniform(0, W, 2 * int(rng.integers(3, 6))).round(1) for _ in range(int(rng.integers(1, 3)))]


def _box(rng: np.random.Generator) -> list[float]:
    x, y = rng.uniform(0, W - 4), rng.uniform(0, H - 4)
    return [x, y, x + rng.uniform(0, 4), y + rng.uniform(0, 4)]


def _value(rng: np.random.Generator, a: AttributeDef | None, valid: bool) -> object:
    if a is not None and (valid or rng.random() < 0.7):
        if a.type == "bool":
            return bool(rng.random() < 0.5)
        if a.type == "number":
            return [int(rng.integers(0, 9)), float(rng.uniform(0, 1))][int(rng.integers(0, 2))]
        if a.type == "enum":
            return str(rng.choice(a.values))
        return str(rng.choice(["", "a note", "ü"]))
    return [True, 3, 2.5, "up", "other", "", np.int64(1)][int(rng.integers(0, 7))]


def random_dataset(rng: np.random.Generator, schema: LabelSchema, *, valid: bool = False,
                   n_max: int = 14) -> Dataset:
    """Annotations under ``schema`` (valid under it when ``valid``); none when the schema has no class."""
    m = int(rng.integers(1, 5))
    n = int(rng.integers(0, n_max + 1)) if schema.classes else 0
    image = np.sort(rng.integers(0, m, n))
    label = rng.integers(0, max(len(schema.classes), 1), n)
    k_kp = max([len(c.keypoints) for c in schema.classes] + [0]) + (0 if valid else int(rng.integers(0, 2)))
    box = np.full((n, 4), np.nan)
    mask = [None] * n
    poly: list[Any] = [None] * n
    kp = np.full((n, k_kp, 3), np.nan)
    attrs: dict[str, list[object]] = {a.name: [None] * n for a in schema.attributes if valid or rng.random() < 0.8}
    if not valid and rng.random() < 0.3:
        attrs["extra_col"] = [None] * n
    keep = np.ones(n, bool)
    for r in range(n):
        c = schema.classes[label[r]]
        if valid:
            allowed = [t for t in (c.label_types or LABEL_TYPES) if t != "keypoints" or c.keypoints]
            if c.kind == "semantic":
                allowed = [t for t in allowed if t in ("mask", "polygon", "tag")]
                if (set(c.label_types) == {"keypoints"} and c.keypoints) or (label[:r][image[:r] == image[r]]
                                                                           == label[r]).any():
                    keep[r] = False  # semantic: one region per image, and a mask, not points
                    continue
            if not allowed:  # keypoints only, without keypoint names: no row can be valid
                keep[r] = False
                continue
            has = set(_pick(rng, tuple(allowed), int(rng.integers(1, len(allowed) + 1))))
            if "tag" in has and len(has) > 1:
                has.discard("tag")
            if c.keypoints and set(c.label_types) == {"keypoints"}:
                has = {"keypoints"}
        else:
            has = {t for t in GEOMETRY if rng.random() < 0.4}
        if "box" in has:
            box[r] = _box(rng)
        if "mask" in has:
            mask[r] = _mask(rng)
        if "polygon" in has:
            poly[r] = _polygon(rng) if valid or rng.random() < 0.9 else []
        if "keypoints" in has and k_kp:
            k = len(c.keypoints) if valid else k_kp
            pts = np.column_stack([rng.uniform(0, W, k), rng.uniform(0, H, k), rng.integers(0, 3, k)])
            if not valid and rng.random() < 0.2:
                pts[0, 2] = 3.0
            pts[rng.random(k) < 0.3] = np.nan
            if np.isnan(pts[:, 0]).all():
                pts[0] = [1.0, 1.0, 2.0]
            kp[r, :k] = pts
        for a in schema.attributes:
            if a.name not in attrs:
                continue
            applies = not a.classes or c.name in a.classes
            if valid and not applies:
                continue
            if (valid and a.required) or rng.random() < 0.6:
                attrs[a.name][r] = _value(rng, a, valid)
        if "extra_col" in attrs and rng.random() < 0.5:
            attrs["extra_col"][r] = _value(rng, None, False)
    idx = np.flatnonzero(keep)
    masks = [mask[i] for i in idx]
    ann = Annotations(  # the mask and keypoints columns may be absent when no row needs them
        image=image[idx], label=label[idx], box=box[idx],
        mask=obj_array(masks) if any(x is not None for x in masks) or rng.random() < 0.5 else None,
        polygon=[poly[i] for i in idx], keypoints=kp[idx] if k_kp or rng.random() < 0.5 else None,
        iscrowd=rng.random(len(idx)) < 0.1, attributes={k: obj_array([v[i] for i in idx]) for k, v in attrs.items()},
    )
    images = Images(path=[f"im{i}.png" for i in range(m)], width=[W] * m, height=[H] * m)
    return Dataset(schema=schema, images=images, annotations=ann)


def records(ds: Dataset) -> list[dict[str, Any]]:
    """One dict per annotation: class name, geometry (None where absent) and attribute values (set ones only)."""
    a = ds.annotations
    out = []
    for r in range(len(a)):
        kp = None if a.keypoints is None else a.keypoints[r]
        out.append({
            "image": int(a.image[r]), "class": ds.schema.names[a.label[r]],
            "box": None if np.isnan(a.box[r, 0]) else a.box[r].tolist(),
            "mask": None if a.mask is None else a.mask[r],
            "polygon": None if a.polygon is None else a.polygon[r],
            "keypoints": None if kp is None or np.isnan(kp[:, 0]).all() else kp,
            "iscrowd": bool(a.iscrowd[r]),
            "attrs": {k: v[r] for k, v in a.attributes.items() if v[r] is not None},
        })
    return out
