"""The ranked issues table every quality check returns (rule checks now, model-based consensus scoring later).

One row per finding, as parallel columns:

- ``image``: row of ``Dataset.images``, or -1 for a finding about the whole dataset (a bias, an annotator);
- ``annotation``: row of ``Dataset.annotations``, or -1 for an image-level or dataset-level finding;
- ``other``: the second annotation of a pair (duplicate, class conflict, disagreement), or -1;
- ``type``: machine-readable kind (``zero_area_box``, ``duplicate_box``, ...); ``severity``: error/warning/info;
- ``score``: in [0, 1], higher = more likely a real error; rows are sorted by it (descending, stable);
- ``reason``: what is wrong, for a person; ``suggestion``: what to do about it;
- optional, for model-based findings (``maslow.quality.consensus``): ``box``, (n, 4) xyxy suggested box (NaN rows:
  none), ``label``, the suggested class (a row of the dataset's schema, -1: none), and ``keypoints``, (n, K, 3)
  suggested keypoints ``x, y, v`` in pixels (the model's, as it predicted them; all-NaN rows: none; K is 0 when no
  row has keypoints), and ``polygon``, (n, V, 2) the vertices of a suggested outline, one ring in order (an oriented
  box: its V = 4 corners; all-NaN rows: none; V is 0 when no row has one).

``rows()`` and ``to_dict()`` give ``suggestion`` as ``maslow qa`` writes it in ISSUES.json: ``{"class": name or None,
"box_xyxy": [x1, y1, x2, y2] or None, "keypoints": [[x, y, v], ...] or None, "text": str}`` (a NaN value of a row's
keypoints as None), plus ``"polygon": [[x1, y1, ..., xV, yV]]`` (one ring, as COCO writes a segmentation) on the
rows that suggest one (the other rows have no such key), or None when a row suggests nothing (no class, no box, no
keypoints, no polygon, no text). Naming the class
needs the schema's names (``names=ds.schema.names``). ``row_chunks()`` gives the same dicts a few thousand at a
time, to write a long table (900,000 findings) without a dict per row in memory at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from maslow.core.issues import SEVERITIES
from maslow.core.types import FloatArray, IntArray, StrArray, StringPool, frozen, str_array

COLUMNS = ("image", "annotation", "other", "type", "severity", "score", "reason", "suggestion")
SUGGESTION_COLUMNS = ("box", "label", "keypoints", "polygon")


def _col(values: Any, n: int, *, dtype: Any) -> np.ndarray:
    if dtype is object:
        if isinstance(values, str):
            return str_array(values, n)
        # equal texts kept as one object: a reason is mostly one of a few per class pair (276,148 consensus
        # findings, 3,647 distinct reasons; 28 MB of strings as made, 2 MB kept)
        return str_array(list(map(StringPool().share, values)))
    return np.broadcast_to(np.asarray(values, dtype=dtype), (n,)).copy()


@dataclass(frozen=True, eq=False)
class QualityIssues:
    """Findings of the quality checks, ranked by ``score`` (descending; ties keep the order found).

    Attributes:
        image: (n,) int64 image row, -1 for dataset-level findings.
        annotation: (n,) int64 annotation row, -1 for image- or dataset-level findings.
        other: (n,) int64 second annotation of a pair, -1 otherwise.
        type: (n,) str issue kind. severity: (n,) str ``error``/``warning``/``info``.
        score: (n,) float64 in [0, 1], higher = more likely an error.
        reason: (n,) str explanation. suggestion: (n,) str what to do.
        box: (n, 4) float64 suggested xyxy box, NaN rows where none (filled when not given).
        label: (n,) int64 suggested class (schema row), -1 where none (filled when not given).
        keypoints: (n, K, 3) float64 suggested keypoints (x, y, v; pixels), all-NaN rows where none; (n, 0, 3) when
            not given.
        polygon: (n, V, 2) float64 suggested outline, one ring of V vertices (an oriented box: its 4 corners in
            order), all-NaN rows where none; (n, 0, 2) when not given.
    """

    image: IntArray
    annotation: IntArray
    other: IntArray
    type: StrArray
    severity: StrArray
    score: FloatArray
    reason: StrArray
    suggestion: StrArray
    box: FloatArray | None = None
    label: IntArray | None = None
    keypoints: FloatArray | None = None
    polygon: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.image)
        if self.box is None:
            object.__setattr__(self, "box", np.full((n, 4), np.nan))
        if self.label is None:
            object.__setattr__(self, "label", np.full(n, -1, np.int64))
        object.__setattr__(self, "box", np.asarray(self.box, dtype=np.float64).reshape(-1, 4))
        object.__setattr__(self, "label", np.asarray(self.label, dtype=np.int64))
        kp = np.zeros((n, 0, 3)) if self.keypoints is None else np.asarray(self.keypoints, dtype=np.float64)
        if kp.ndim != 3 or kp.shape[2] != 3:
            raise ValueError(f"QualityIssues.keypoints: shape must be (n, K, 3), got {kp.shape}")
        object.__setattr__(self, "keypoints", kp)
        pg = np.zeros((n, 0, 2)) if self.polygon is None else np.asarray(self.polygon, dtype=np.float64)
        if pg.ndim != 3 or pg.shape[2] != 2:
            raise ValueError(f"QualityIssues.polygon: shape must be (n, V, 2), got {pg.shape}")
        object.__setattr__(self, "polygon", pg)
        for name in COLUMNS + SUGGESTION_COLUMNS:
            col = getattr(self, name)
            if len(col) != n:
                raise ValueError(f"QualityIssues.{name}: length must be {n}, got {len(col)}")
            object.__setattr__(self, name, frozen(col))
        if n and (np.any(~np.isfinite(self.score)) or self.score.min() < 0 or self.score.max() > 1):
            raise ValueError("QualityIssues.score: must be in [0, 1]")

    @classmethod
    def empty(cls) -> QualityIssues:
        return cls.build([])

    @classmethod
    def block(
        cls,
        type: str,
        severity: str,
        *,
        image: Any,
        score: Any,
        reason: Sequence[str] | str,
        suggestion: Sequence[str] | str = "",
        annotation: Any = -1,
        other: Any = -1,
        box: Any = None,
        label: Any = -1,
        keypoints: Any = None,
        polygon: Any = None,
    ) -> QualityIssues:
        """Rows of one issue type (vectorised): array columns, or scalars broadcast to the length of ``image``
        (``keypoints``: (n, K, 3), or one (K, 3) for every row; ``polygon``: (n, V, 2), or one (V, 2))."""
        if severity not in SEVERITIES:
            raise ValueError(f"issue severity must be one of {SEVERITIES}, got {severity!r}")
        img = np.atleast_1d(np.asarray(image, dtype=np.int64))
        n = len(img)
        return cls(
            image=img,
            annotation=_col(annotation, n, dtype=np.int64),
            other=_col(other, n, dtype=np.int64),
            type=_col(type, n, dtype=object),
            severity=_col(severity, n, dtype=object),
            score=np.clip(_col(score, n, dtype=np.float64), 0.0, 1.0),
            reason=_col(reason, n, dtype=object),
            suggestion=_col(suggestion, n, dtype=object),
            box=None if box is None else np.broadcast_to(np.asarray(box, dtype=np.float64), (n, 4)).copy(),
            label=_col(label, n, dtype=np.int64),
            keypoints=None if keypoints is None else _keypoints_col(keypoints, n),
            polygon=None if polygon is None else _points_col(polygon, n, 2, "polygon"),
        )

    @classmethod
    def build(cls, parts: Iterable[QualityIssues]) -> QualityIssues:
        """Concatenate and rank (score descending, stable)."""
        parts = list(parts)
        cols: dict[str, np.ndarray] = {}
        for name in COLUMNS:
            arrs = [getattr(p, name) for p in parts]
            if name in ("image", "annotation", "other"):
                cols[name] = np.concatenate(arrs) if arrs else np.zeros(0, np.int64)
            elif name == "score":
                cols[name] = np.concatenate(arrs) if arrs else np.zeros(0, np.float64)
            else:
                cols[name] = np.concatenate(arrs) if arrs else np.zeros(0, dtype=object)
        cols["box"] = np.concatenate([p.box for p in parts]) if parts else np.zeros((0, 4))
        cols["label"] = np.concatenate([p.label for p in parts]) if parts else np.zeros(0, np.int64)
        cols["keypoints"] = _concat_keypoints(parts)
        cols["polygon"] = _concat_points([p.polygon for p in parts], 2, "polygon")
        order = np.argsort(-cols["score"], kind="stable")
        return cls(**{k: v[order] for k, v in cols.items()})

    def __len__(self) -> int:
        return len(self.image)

    def take(self, idx: IntArray | np.ndarray) -> QualityIssues:
        """Rows ``idx`` (a boolean mask or indexes), order kept."""
        return QualityIssues(**{k: getattr(self, k)[idx] for k in COLUMNS + SUGGESTION_COLUMNS})

    def top(self, n: int) -> QualityIssues:
        """The ``n`` highest-scored rows."""
        return self.take(np.arange(min(max(n, 0), len(self))))

    def on_rows(self, images: IntArray, annotations: IntArray) -> QualityIssues:
        """The findings of a part of a dataset as rows of the whole: ``images`` and ``annotations`` are the whole's
        rows of the part's (``Dataset.select_images(images)`` keeps ``annotations``, the rows on those images);
        -1 (no row) stays -1."""
        img, ann = np.asarray(images, np.int64), np.asarray(annotations, np.int64)

        def of(rows: IntArray, col: IntArray) -> IntArray:
            return np.where(col >= 0, rows[np.maximum(col, 0)] if len(rows) else -1, -1)

        cols = {k: getattr(self, k) for k in COLUMNS + SUGGESTION_COLUMNS}
        return QualityIssues(**{**cols, "image": of(img, self.image), "annotation": of(ann, self.annotation),
                                "other": of(ann, self.other)})

    def of_type(self, type_: str) -> QualityIssues:
        """Rows of one issue type."""
        return self.take(self.type == type_)

    def counts(self) -> dict[str, int]:
        """Number of rows per type, most frequent first."""
        return dict(Counter(self.type.tolist()).most_common())

    def severity_of(self) -> dict[str, str]:
        """Issue type -> its severity (the first row's)."""
        out: dict[str, str] = {}
        for t, s in zip(self.type.tolist(), self.severity.tolist(), strict=True):
            out.setdefault(t, s)
        return out

    def rows(self, *, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One JSON-safe dict per row: the columns, ``suggestion`` as ``maslow qa`` writes it (see the module
        docstring).

        Args:
            names: the schema's class names (``ds.schema.names``), to name the suggested classes; needed only
                when a row suggests one.

        Raises:
            ValueError: a row suggests a class and ``names`` is None or has no such row.
        """
        return [r for chunk in self.row_chunks(names=names, size=max(len(self), 1)) for r in chunk]

    def row_chunks(self, *, names: Sequence[str] | None = None, size: int = 4096) -> Iterator[list[dict[str, Any]]]:
        """``rows()`` a chunk of ``size`` rows at a time (the last one shorter; none for an empty table), to
        write a long table without holding a dict per row.

        Raises:
            ValueError: ``size`` is below 1; ``names`` as in ``rows`` (before the first chunk).
        """
        if size < 1:
            raise ValueError(f"QualityIssues.row_chunks: size must be >= 1, got {size}")
        assert self.label is not None
        _check_names(self.label, names)
        for lo in range(0, len(self), size):
            yield self._rows(slice(lo, lo + size), names)

    def _rows(self, sl: slice, names: Sequence[str] | None) -> list[dict[str, Any]]:
        label = self.label
        box = self.box
        assert label is not None and box is not None
        named = [None if c < 0 or names is None else names[c] for c in label[sl].tolist()]
        has_box = [bool(v) for v in np.asarray(np.isfinite(box[sl]).all(axis=1)).tolist()]
        points = _point_lists(self.keypoints, sl)
        rings = _rings(self.polygon, sl)
        cols = {k: getattr(self, k)[sl].tolist() for k in COLUMNS}
        out = [dict(zip(COLUMNS, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
        for r, row, cls, b, ok, kp, ring in zip(out, cols["suggestion"], named, box[sl].tolist(), has_box, points,
                                                rings, strict=True):
            text = str(row)
            sug: dict[str, Any] | None = ({"class": cls, "box_xyxy": b if ok else None, "keypoints": kp, "text": text}
                                          if cls is not None or ok or kp is not None or ring is not None or text
                                          else None)
            if ring is not None and sug is not None:  # only rows with one: the other records keep their bytes
                sug["polygon"] = [ring]
            r["suggestion"] = sug
        return out

    def to_dict(self, *, limit: int | None = None, names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-safe: counts per type and severity, and the rows (the first ``limit`` when given; ``names`` as in
        ``rows``)."""
        rows = self.top(limit).rows(names=names) if limit is not None else self.rows(names=names)
        return {
            "n_issues": len(self),
            "counts": self.counts(),
            "severity": dict(Counter(self.severity.tolist()).most_common()),
            "issues": rows,
        }

    def to_pandas(self) -> Any:
        """A pandas DataFrame with one row per issue (lazy import)."""
        import pandas as pd

        return pd.DataFrame({k: getattr(self, k) for k in COLUMNS})


def _keypoints_col(keypoints: Any, n: int) -> np.ndarray:
    """``block``'s keypoints as (n, K, 3) float64: (n, K, 3) given, or one (K, 3) broadcast."""
    return _points_col(keypoints, n, 3, "keypoints")


def _points_col(values: Any, n: int, d: int, name: str) -> np.ndarray:
    """``block``'s keypoints or polygon as (n, K, d) float64: (n, K, d) given, or one (K, d) broadcast."""
    kp = np.asarray(values, dtype=np.float64)
    if kp.ndim == 2:
        kp = np.broadcast_to(kp, (n, *kp.shape))
    if kp.ndim != 3 or kp.shape[0] != n or kp.shape[2] != d:
        raise ValueError(f"QualityIssues.{name}: shape must be ({n}, K, {d}), got {kp.shape}")
    return np.array(kp)


def _concat_points(cols: list[np.ndarray | None], d: int, name: str) -> np.ndarray:
    """(n, K, d) columns as one: columns of K = 0 as NaN rows.

    Raises:
        ValueError: two columns have different numbers K (both > 0).
    """
    kps = [k for k in cols if k is not None]
    widths = sorted({k.shape[1] for k in kps if k.shape[1]})
    if len(widths) > 1:
        raise ValueError(f"QualityIssues.build: {name} must have one width {'K' if d == 3 else 'V'} across the "
                         f"parts, got {widths}")
    k = widths[0] if widths else 0
    if not k:
        return np.zeros((sum(len(x) for x in kps), 0, d))
    return np.concatenate([x if x.shape[1] else np.full((len(x), k, d), np.nan) for x in kps])


def _rings(polygon: np.ndarray | None, sl: slice) -> list[list[float] | None]:
    """Rows ``sl`` of ``polygon`` as flat ``[x1, y1, ...]`` rings, None for a row with a NaN (or V 0)."""
    assert polygon is not None
    pg = polygon[sl]
    if not pg.shape[1]:
        return [None] * len(pg)
    ok = np.isfinite(pg).all(axis=(1, 2)).tolist()
    return [v if o else None for v, o in zip(pg.reshape(len(pg), -1).tolist(), ok, strict=True)]


def _concat_keypoints(parts: list[QualityIssues]) -> np.ndarray:
    """The parts' keypoints, one (n, K, 3) array: parts without keypoints (K = 0) as NaN rows.

    Raises:
        ValueError: two parts have keypoints of different numbers K.
    """
    return _concat_points([p.keypoints for p in parts], 3, "keypoints")


def _point_lists(keypoints: np.ndarray | None, sl: slice) -> list[list[list[float | None]] | None]:
    """Rows ``sl`` of ``keypoints`` as ``[[x, y, v], ...]`` (NaN values as None), None for an all-NaN row (or K 0)."""
    assert keypoints is not None
    kp = keypoints[sl]
    n = len(kp)
    if not kp.shape[1]:
        return [None] * n
    nan = np.isnan(kp)
    has = ~nan.all(axis=(1, 2))
    values = kp.tolist()
    if nan.any():
        for r, c, j in zip(*np.nonzero(nan & has[:, None, None]), strict=True):
            values[r][c][j] = None
    return [v if h else None for v, h in zip(values, has.tolist(), strict=True)]


def _check_names(label: np.ndarray, names: Sequence[str] | None) -> None:
    """Raise unless every suggested class (``label >= 0``) is a row of ``names``."""
    sug = np.flatnonzero(label >= 0)
    if not sug.size:
        return
    if names is None:
        raise ValueError(f"QualityIssues.rows: names must be given to name the suggested classes, got None (row "
                         f"{sug[0]} suggests class {label[sug[0]]}; {sug.size} rows suggest one). Pass "
                         "names=ds.schema.names")
    bad = sug[label[sug] >= len(names)]
    if bad.size:
        raise ValueError(f"QualityIssues.rows: suggested class must be a row of names (0..{len(names) - 1}), got "
                         f"{label[bad[0]]} in row {bad[0]} ({bad.size} rows)")
