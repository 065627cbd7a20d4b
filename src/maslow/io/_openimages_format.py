"""How the Open Images writers print numbers: fractions that read back as the same pixels, scores and confidences;
each column at once (numpy, and pyarrow's shortest float formatting where it prints what ``repr`` prints).

Private to ``maslow.io._openimages_write`` and ``maslow.io.openimages_results``; see ``openimages`` for the
conventions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maslow.core.types import FloatArray

#: the flags' texts: 1 yes, 0 no, -1 unknown
FLAG_TEXT = {True: "1", False: "0", None: "-1"}
#: where pyarrow's shortest float text is Python's ``repr``: positional notation in both (``repr`` writes 1e-05 and
#: 1e+16, pyarrow 0.00001 and, past 1e10 with 17 digits, 1.0000038218936203e+10; whole numbers: 1.0 and 1)
_ARROW_LOW, _ARROW_HIGH = 1e-4, 1e9
#: values the formatting is checked on before pyarrow's is used (once a process): digits that are hard to print
_PROBE = np.array([0.1, 0.2, 0.3, 1 / 3, 2 / 3, 0.022673031, 0.07103825, 0.9642005, 0.80054647, 0.5 + 2**-52, 1e-4, 2**-13,
                   0.00012345678901234567, 123456789.12345679, 999999999.9999999, 0.7208159565925598,
                   5e-4 + 2**-60, 1 - 2**-53, 0.1 + 2**-56, 4.35, 0.015625, 2**-14, 0.123456789012345678])
_arrow_ok: list[bool] = []


def _arrow_texts(values: FloatArray) -> Any:
    """pyarrow's shortest texts of ``values`` (an object array), or None where pyarrow prints other than ``repr``
    (checked once on ``_PROBE``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from maslow.io._openimages_arrow import arrow_of

    def texts(v: FloatArray) -> Any:
        return _objects(pc.cast(arrow_of(np.asarray(v, np.float64)), pa.string()).to_pylist())

    if not _arrow_ok:
        probe = np.concatenate([_PROBE, -_PROBE, np.nextafter(_PROBE, 2), np.nextafter(_PROBE, -2)])
        probe = probe[_in_range(probe)]
        _arrow_ok.append(texts(probe).tolist() == list(map(repr, probe.tolist())))
    return texts(values) if _arrow_ok[0] else None


def reprs(values: FloatArray) -> list[str]:
    """``[repr(v) for v in values]`` (pyarrow prints the values in ``[1e-4, 1e9)`` that are not whole numbers)."""
    texts: list[str] = _repr_objects(values).tolist()
    return texts


def _repr_objects(values: FloatArray) -> Any:
    """``reprs`` as an object array."""
    v = np.asarray(values, np.float64)
    fast = _in_range(v)
    got = _arrow_texts(v[fast]) if len(v) >= 256 and fast.any() else None
    if got is None:
        return _objects(list(map(repr, v.tolist())))
    out = np.empty(len(v), object)
    out[fast] = got
    rest = np.flatnonzero(~fast)
    if rest.size:
        out[rest] = _objects(list(map(repr, v[rest].tolist())))
    return out


def _in_range(v: FloatArray) -> np.ndarray:
    """Where pyarrow's text is ``repr``'s (when the probe agrees): not whole numbers, in [1e-4, 1e9) in size."""
    a = np.abs(v)
    out: np.ndarray = (a >= _ARROW_LOW) & (a < _ARROW_HIGH) & (v != np.trunc(v))
    return out


def _objects(texts: list[str]) -> Any:
    out = np.empty(len(texts), object)
    out[:] = texts
    return out


def _parse(texts: list[str]) -> FloatArray:
    """``float()`` of each text (pyarrow's parser: the same doubles; numpy's where pyarrow refuses one)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from maslow.io._openimages_arrow import numpy_of, strings_of

    arr = strings_of(texts)
    if arr is not None:
        try:
            return numpy_of(pc.cast(arr, pa.float64())).copy()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    return np.asarray(texts, np.float64)


def exact_fractions(box: FloatArray, scale: FloatArray) -> tuple[FloatArray, np.ndarray]:
    """(n,) values ``x`` with ``x * scale == box`` (how the readers turn a fraction into pixels), searched among
    the floats next to ``box / scale``, and (n,) whether one was found (else ``box / scale``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        x = box / scale
    ok = x * scale == box
    if ok.all():
        return x, ok
    for direction in (np.inf, -np.inf):
        cand = x.copy()
        for _ in range(3):
            cand = np.nextafter(cand, direction)
            hit = ~ok & (cand * scale == box)
            x[hit] = cand[hit]
            ok |= hit
    return x, ok


def fmt_fractions(box: FloatArray, scale: FloatArray, style: dict[str, object] | None = None
                  ) -> tuple[list[str], np.ndarray]:
    """The texts of the fractions of ``box`` (pixels) over ``scale`` (the image's width or height) that read back as
    the same pixels (``float(text) * scale == box``): the fewest decimals that do (so a value read as
    ``0.022673031`` is written so, whichever of the floats next to it the division gives), or the fixed
    ``style["decimals"]``; and (n,) whether the pixels come back exactly (else the nearest fraction)."""
    x, ok = exact_fractions(box, scale)
    style = style or {}
    if isinstance(style.get("decimals"), int):
        return fmt_numbers(x, style, scale=scale, box=box), ok
    n = len(x)
    best = np.full(n, -1, np.int64)
    for d in range(15):  # beyond 14 decimals np.round is not exact: the shortest repr then (best -1)
        todo = best < 0
        if not todo.any():
            break
        r = np.round(x[todo], d)
        hit = r * scale[todo] == box[todo]
        best[np.flatnonzero(todo)[hit]] = d
    texts = np.empty(n, object)
    for d in np.unique(best).tolist():
        idx = np.flatnonzero(best == d)
        if d < 0:  # repr reads back as x: right where x is (ok)
            texts[idx] = _repr_objects(x[idx])
            continue
        fixed = list(map(f"%.{d}f".__mod__, x[idx].tolist()))
        wrong = ok[idx] & (_parse(fixed) * scale[idx] != box[idx])
        texts[idx] = _objects(fixed)
        if wrong.any():
            texts[idx[wrong]] = _repr_objects(x[idx[wrong]])
    out: list[str] = texts.tolist()
    if style.get("int_dot0"):
        out = [t + ".0" if t in ("0", "1") else t for t in out]
    return out, ok


def fmt_numbers(values: FloatArray, style: dict[str, object] | None = None, *, scale: FloatArray | None = None,
                box: FloatArray | None = None) -> list[str]:
    """Each value as text: with the ``decimals`` of ``style`` when the value reads back the same (``scale`` and
    ``box``: when ``float(text) * scale == box``), else the shortest text that reads back as the same float;
    whole numbers without ``.0`` unless ``style["int_dot0"]``."""
    if not len(values):
        return []
    style = style or {}
    d = style.get("decimals")
    if isinstance(d, int):
        fixed = list(map(f"%.{d}f".__mod__, values.tolist()))
        back = _parse(fixed)
        ok = back * scale == box if scale is not None and box is not None else back == values
        if ok.all():
            return fixed
        bad = np.flatnonzero(~ok)
        for i, t in zip(bad.tolist(), reprs(values[bad]), strict=True):
            fixed[i] = t
        return fixed
    texts = reprs(values)
    if not style.get("int_dot0"):  # whole numbers below 1e16: repr's "12.0" -> "12"
        v = np.asarray(values, np.float64)
        for i in np.flatnonzero(v == np.trunc(v)).tolist():
            if texts[i].endswith(".0"):
                texts[i] = texts[i][:-2]
    return texts
