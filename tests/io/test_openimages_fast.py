"""Open Images CSVs: the fast path (pyarrow's CSV reader, numbers and flags by column, pyarrow's float texts) gives
what the exact path gives: the same Datasets, findings, errors (file, line, field) and written bytes.

The exact path is taken through the public API: a quote character anywhere in a file sends it there, so each case
is read twice, once as generated and once with its first header name quoted (``"ImageID"``: the same header)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from maslow.errors import FormatError
from maslow.io import _openimages_format as fmt
from maslow.io import openimages as oi
from maslow.io import openimages_results as res
from maslow.io._export import output_names
from maslow.io._openimages_csv import floats, read_table
from maslow.io._openimages_write import image_ids
from maslow.sample import shapes
from tests.io.test_openimages import HEADER, assert_same

ROW = "{id},xclick,/m/0{k},1,{x0},{x1},{y0},{y1},0,1,0,-1,0"


def _pair(tmp_path: Path, text: str, name: str = "boxes.csv", nl: str = "\n") -> tuple[Path, Path]:
    """The text as given (the fast path) and with its first header name quoted (the exact path)."""
    fast, exact = tmp_path / "fast", tmp_path / "exact"
    fast.mkdir(exist_ok=True)
    exact.mkdir(exist_ok=True)
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom):]
    first = re.split(r"[,\r\n]", body, maxsplit=1)[0]
    (fast / name).write_bytes(text.replace("\n", nl).encode())
    (exact / name).write_bytes((bom + f'"{first}"' + body[len(first):]).replace("\n", nl).encode())
    return fast / name, exact / name


def _issues(report: object) -> list[tuple[str, str | None, str | None, str]]:
    return [(i.type, i.record, i.field, i.message) for i in report]  # type: ignore[attr-defined]


def _numbers(rng: np.random.Generator, n: int) -> list[str]:
    """Coordinates printed every way a file prints them: float32 and float64 reprs, fixed decimals, 0/1, 1e-05."""
    v = np.sort(rng.random((2, n)), axis=0)
    out = []
    for k, x in enumerate(v.T.tolist()):
        kind = k % 7
        if kind == 0:
            out.append([repr(float(np.float32(t))) for t in x])
        elif kind == 1:
            out.append([repr(t) for t in x])
        elif kind == 2:
            out.append([f"{t:.6f}" for t in x])
        elif kind == 3:
            out.append(["0", "1"])
        elif kind == 4:
            out.append(["0.0", "1.0"])
        elif kind == 5:
            out.append(["1e-05", "0.5"])
        else:
            out.append(["-0.0", ".5"])
    return [f"{a},{b}" for a, b in out]


def _boxes_text(rng: np.random.Generator, n: int, *, source: str = "xclick") -> str:
    ids = [f"{rng.integers(16**6):06x}" for _ in range(max(1, n // 3))]
    xs, ys = _numbers(rng, n), _numbers(rng, n)
    rows = []
    for r in range(n):
        x0, x1 = xs[r].split(",")
        y0, y1 = ys[(r * 3) % n].split(",")
        flags = ",".join(rng.choice(["0", "1", "-1"], 5).tolist())
        src = source if r % 4 else "activemil"
        rows.append(f"{ids[r % len(ids)]},{src},/m/0{int(rng.integers(5))},1,{x0},{x1},{y0},{y1},{flags}")
    return HEADER + "\n".join(rows) + "\n"


CASES = {
    "generated": lambda rng: _boxes_text(rng, 300),
    "unicode-source": lambda rng: _boxes_text(rng, 40, source="crowd-ü-ß"),
    "bom": lambda rng: "\ufeff" + _boxes_text(rng, 20),
    "no-trailing-newline": lambda rng: _boxes_text(rng, 20).rstrip("\n"),
    "trailing-blank-lines": lambda rng: _boxes_text(rng, 20) + "\n\n",
    "header-only": lambda rng: HEADER,
    "header-without-newline": lambda rng: HEADER.rstrip("\n"),
    "extra-columns-v7": lambda rng: (HEADER.rstrip("\n") + ",XClick1X,Note\n"
                                     "a1,xclick,/m/01,1,0.1,0.5,0.2,0.6,0,0,0,0,0,0.1,some text\n"
                                     "b2,xclick,/m/02,0.5,0.3,0.4,0.5,0.9,0,0,-1,0,1,-1,\n"),
    "challenge-columns-any-case": lambda rng: ("imageid,LabelName,XMin,XMax,YMin,YMax,isgroupof\n"
                                               "a1,/m/01,0,1,0.25,0.75,1\nb2,/m/02,1e-5,0.5,.5,1.,0\n"),
    "odd-numbers": lambda rng: (HEADER + "a,xclick,/m/01,1,0.0,1,-0.0,1.0,0,0,0,0,0\n"
                                "a,xclick,/m/01,1,1E-5,0.10000000000000001,+0.25,0.2500000000000000001,0,0,0,0,0\n"
                                "b,xclick,/m/01,1, 0.5,1_0,0.1,0.2,0,0,0,0,0\n"),  # float() reads ' 0.5' and 1_0
    "out-of-range-and-inverted": lambda rng: (HEADER + "a,xclick,/m/01,1,0.1,1.25,0.3,0.4,0,0,0,0,0\n"
                                              "b,xclick,/m/01,1,0.1,0.2,0.9,0.4,0,0,0,0,0\n"),
    "empty-image-id-field": lambda rng: HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n,x,/m/01,1,0,1,0,1,0,0,0,0,0\n",
}


@pytest.mark.parametrize("nl", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("case", list(CASES))
def test_boxes_read_and_written_alike_by_both_paths(tmp_path: Path, case: str, nl: str) -> None:
    fast, exact = _pair(tmp_path, CASES[case](np.random.default_rng(len(case))), nl=nl)
    try:
        a, ra = oi.parse(fast)
    except FormatError as err:
        with pytest.raises(FormatError) as other:
            oi.parse(exact)
        assert (str(err).replace(str(fast), ""), err.record, err.field) == (
            str(other.value).replace(str(exact), ""), other.value.record, other.value.field)
        return
    b, rb = oi.parse(exact)
    assert_same(a, b)
    assert _issues(ra) == _issues(rb)
    oi.write(a, tmp_path / "out-fast", images=False)
    oi.write(b, tmp_path / "out-exact", images=False)
    for name in (oi.BOXES_FILE, oi.DESCRIPTIONS_FILE):
        assert (tmp_path / "out-fast" / name).read_bytes() == (tmp_path / "out-exact" / name).read_bytes()
    if case == "extra-columns-v7":  # one number style: written back as read
        assert (tmp_path / "out-fast" / oi.BOXES_FILE).read_bytes() == fast.read_bytes().replace(b"\r\n", b"\n"
                                                                                               ).replace(b"\n", nl.encode())


@pytest.mark.parametrize(("text", "match"), [
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\nb,xclick,/m/01,1,0.1,half,0.3,0.4,0,0,0,0,0\n",
                 r"line 3, field 'XMax': XMax must be a number, got 'half'", id="not-a-number"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,inf,0,0,0,0,0\n", r"line 2, field 'YMax'.*finite", id="inf"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\na,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,1.0,0,0\n",
                 r"line 3, field 'IsGroupOf'.*got '1.0'", id="flag-1.0"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\na,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0\n",
                 r"line 3: row must have 13 fields", id="short-row"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0,9\n", r"line 2: row must have 13 fields",
                 id="long-row"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n\nb,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,x\n",
                 r"line 4, field 'IsInside'", id="blank-line-then-bad-flag"),
    pytest.param(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\rb,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,x\n",
                 r"line 3, field 'IsInside'", id="lone-cr"),
    pytest.param(HEADER.replace("YMax", "XMax"), r"column names must be unique", id="repeated-column"),
])
def test_bad_files_raise_the_same_error_on_both_paths(tmp_path: Path, text: str, match: str) -> None:
    fast, exact = _pair(tmp_path, text)
    for path in (fast, exact):
        with pytest.raises(FormatError, match=match) as err:
            oi.parse(path)
        assert err.value.path == str(path)


def test_a_blank_line_keeps_the_line_numbers_of_findings(tmp_path: Path) -> None:
    src = tmp_path / "boxes.csv"
    src.write_text(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n\nb,xclick,/m/01,1,0.1,1.5,0.3,0.4,0,0,0,0,0\n")
    _, report = oi.parse(src)
    (out,) = report.of_type("openimages_out_of_range")
    assert out.record == "line 4"


def test_not_utf8_is_named(tmp_path: Path) -> None:
    src = tmp_path / "boxes.csv"
    src.write_bytes(HEADER.encode() + b"a,x\xff,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n")
    with pytest.raises(FormatError, match="must be UTF-8 text"):
        oi.parse(src)


def test_labels_csv_reads_alike(tmp_path: Path) -> None:
    boxes = tmp_path / "b.csv"
    boxes.write_text(HEADER + "a,xclick,/m/01,1,0.1,0.2,0.3,0.4,0,0,0,0,0\n")
    text = "ImageID,Source,LabelName,Confidence\na,verification,/m/01,1\nc,machine,/m/02,0.7\nc,crowd,/m/01,0\n"
    fast, exact = _pair(tmp_path, text, "labels.csv")
    a, ra = oi.parse(boxes, image_labels=fast)
    b, rb = oi.parse(boxes, image_labels=exact)
    assert_same(a, b)
    assert [i[:3] for i in _issues(ra)] == [i[:3] for i in _issues(rb)]
    assert a.images.extra["pos_category_ids"].tolist() == [[1], []]


# -- detections --------------------------------------------------------------------------------------------------
def _truth(tmp_path: Path) -> object:
    src = tmp_path / "truth.csv"
    src.write_text(HEADER + "".join(ROW.format(id=i, k=k, x0=0.1, x1=0.9, y0=0.2, y1=0.8) + "\n"
                                    for i in ("a1", "b2", "c3") for k in (1, 2)))
    return oi.parse(src)[0]


@pytest.mark.parametrize(("name", "text"), [
    ("csv", "ImageID,LabelName,Score,XMin,XMax,YMin,YMax\na1,/m/01,0.9,0.1,0.2,0.3,0.4\n"
            "c3,/m/02,0.30000001192092896,0,1,0.25,1.0\nzz,/m/02,0.5,0.1,0.2,0.3,0.4\na1,/m/09,0.5,0.1,0.2,0.3,0.4\n"),
    ("csv-confidence-extra", "ImageID,LabelName,Confidence,XMin,XMax,YMin,YMax,Model\n"
                             "a1,/m/01,1e-05,0.1,0.2,0.3,0.4,m1\nb2,/m/01,1,0.1,0.2,0.3,0.4,\n"),
    ("kaggle", "ImageId,PredictionString\na1,/m/01 0.9 0.1 0.3 0.2 0.4 /m/02 0.5 0 0.25 1 1.0\nb2,\n"
               "c3,/m/02 0.30000001192092896 0.1 0.2 0.3 0.4\n"),
    ("kaggle-spaces", "ImageId,PredictionString\na1,  /m/01 0.9  0.1 0.3 0.2 0.4 \nb2, \nc3,/m/02 .5 0.1 0.2 0.3 0.4\n"),
    ("kaggle-tab", "ImageId,PredictionString\na1,/m/01\t0.9 0.1 0.3 0.2 0.4\n"),
])
@pytest.mark.parametrize("nl", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_detections_read_and_written_alike_by_both_paths(tmp_path: Path, name: str, text: str, nl: str) -> None:
    truth = _truth(tmp_path)
    fast, exact = _pair(tmp_path, text, nl=nl)
    a, ra = res.parse(fast, like=truth)  # type: ignore[arg-type]
    b, rb = res.parse(exact, like=truth)  # type: ignore[arg-type]
    assert_same(a, b)
    assert _issues(ra) == _issues(rb)
    res.write(a, tmp_path / "a.csv")
    res.write(b, tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    if name in ("csv-confidence-extra",):  # one number style: written back as read
        assert (tmp_path / "a.csv").read_bytes() == fast.read_bytes()


@pytest.mark.parametrize(("text", "match"), [
    ("ImageId,PredictionString\na,/m/01 0.5 0.1 0.2 0.3\n", r"line 2, field 'PredictionString'.*got 5"),
    ("ImageId,PredictionString\na,\nb,/m/01 0.5 0.1 0.2 0.3 0.4 /m/01 high 0.1 0.2 0.3 0.4\n",
     r"line 3, field 'Score': Score must be a number, got 'high'"),
    ("ImageID,LabelName,Score,XMin,XMax,YMin,YMax\na,/m/01,0.5,0.1,0.2,0.3,nan\n", r"line 2, field 'YMax'.*finite"),
])
def test_bad_detections_raise_the_same_error_on_both_paths(tmp_path: Path, text: str, match: str) -> None:
    for path in _pair(tmp_path, text):
        with pytest.raises(FormatError, match=match):
            res.parse(path)


# -- the pieces, against Python ----------------------------------------------------------------------------------
def test_pyarrow_numbers_are_python_floats(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.random(4000) * 10.0 ** rng.integers(-30, 5, 4000)
    texts = ([repr(v) for v in x.tolist()] + [f"{v:.20e}" for v in x.tolist()] + [f"{v:.25f}" for v in x.tolist()]
             + ["1", "0", "-0", "+1", "1.", ".5", "-.5", "1e5", "1E+05", "1e-7", "00.5", "4.9e-324", "2e-324",
                "1.7976931348623157e308", "0." + "1" * 300, "1e00000000000000000000000001"])
    halfway = np.nextafter(x[:500], 2)  # exactly between two doubles: the round-half-even case
    from decimal import Decimal
    texts += [str((Decimal(a) + Decimal(b)) / 2) for a, b in zip(x[:500].tolist(), halfway.tolist(), strict=True)]
    src = tmp_path / "n.csv"
    src.write_text("ImageID,XMin\n" + "".join(f"a,{t}\n" for t in texts))
    t = read_table(src, what="x")
    assert t.arrow is not None  # the fast path read it
    got = floats(t, "XMin")
    np.testing.assert_array_equal(got.view(np.int64), np.array([float(s) for s in texts]).view(np.int64))


@pytest.mark.parametrize("bad", ["1_0", " 0.5", "0.5 ", "١", "nan", "inf", "-Infinity", "0x10", "1e", "", "."])
def test_what_pyarrow_refuses_or_is_not_finite_is_decided_by_float(tmp_path: Path, bad: str) -> None:
    src = tmp_path / "n.csv"
    src.write_text(f"ImageID,XMin\na,0.5\nb,{bad}\n")
    t = read_table(src, what="x")
    try:
        want = float(bad)
    except ValueError:
        with pytest.raises(FormatError, match=r"line 3, field 'XMin': XMin must be a number"):
            floats(t, "XMin")
        return
    if not np.isfinite(want):
        with pytest.raises(FormatError, match="finite"):
            floats(t, "XMin")
    else:
        assert floats(t, "XMin").tolist() == [0.5, want]


def test_reprs_are_python_reprs() -> None:
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 2**63, 20000, dtype=np.uint64).view(np.float64)
    x = np.concatenate([rng.random(20000), rng.random(20000).astype(np.float32).astype(np.float64),
                        np.round(rng.random(5000), 6), bits[np.isfinite(bits)], rng.random(5000) * 1e12,
                        -rng.random(1000), [0.0, -0.0, 1.0, 1e-4, 9.99e-5, 1e9, 999999999.5, 1e16, 1e-5, 5e-324,
                                            np.nan, np.inf, -np.inf, 0.5, 2.0, 100.0]])
    assert fmt.reprs(x) == [repr(v) for v in x.tolist()]


def _fmt_fractions_reference(box: np.ndarray, scale: np.ndarray, style: dict[str, object] | None = None
                             ) -> tuple[list[str], np.ndarray]:
    """The writer's fractions as it printed them before the fast path: value by value."""
    x, ok = fmt.exact_fractions(box, scale)
    style = style or {}
    if isinstance(style.get("decimals"), int):
        d = style["decimals"]
        fixed = [f"%.{d}f" % v for v in x.tolist()]
        good = np.asarray(fixed, np.float64) * scale == box
        return [t if g else repr(v) for t, v, g in zip(fixed, x.tolist(), good.tolist(), strict=True)], ok
    n = len(x)
    best = np.full(n, -1, np.int64)
    for d in range(15):
        todo = best < 0
        if not todo.any():
            break
        hit = np.round(x[todo], d) * scale[todo] == box[todo]
        best[np.flatnonzero(todo)[hit]] = d
    values = x.tolist()
    texts = [(f"%.{d}f" if d >= 0 else "%r") % v for d, v in zip(best.tolist(), values, strict=True)]
    back = np.asarray(texts, np.float64) if n else x
    for i in np.flatnonzero(ok & (back * scale != box)).tolist():
        texts[i] = repr(values[i])
    if style.get("int_dot0"):
        texts = [t + ".0" if t in ("0", "1") else t for t in texts]
    return texts, ok


@pytest.mark.parametrize("style", [{}, {"decimals": 6}, {"int_dot0": True}], ids=["shortest", "fixed", "dot0"])
def test_fractions_are_printed_as_value_by_value(style: dict[str, object]) -> None:
    rng = np.random.default_rng(5)
    n = 6000
    scale = rng.choice([1.0, 1.0, 97.0, 61.0, 1024.0, 333.0], n)
    frac = np.concatenate([rng.random(n // 3).astype(np.float32).astype(np.float64), np.round(rng.random(n // 3), 6),
                           rng.choice([0.0, 1.0, 1e-5, 0.25, 0.022673031], n - 2 * (n // 3))])
    box = frac * scale
    box[::97] = np.nextafter(box[::97], np.inf)  # a few pixels no fraction gives back exactly
    assert fmt.fmt_fractions(box, scale, style)[0] == _fmt_fractions_reference(box, scale, style)[0]
    scores = np.concatenate([frac, [3.0, -0.0, 1e16, 2.5e-7]])
    assert fmt.fmt_numbers(scores) == re.sub(r"\.0(?=,|$)", "", ",".join(map(repr, scores.tolist()))).split(",")


@pytest.mark.parametrize("paths", [
    ["a.jpg", "b.png", "c.d.jpg"],
    ["a.jpg", "a.png"],  # stems collide: joined paths
    ["x/a.jpg", "y/a.jpg"],
    ["a.jpg", "a.jpg"],  # the same path twice: __2
    [".hidden", "noext", "trailing."],
    ["mnist-idx3-ubyte.gz#3", "b.jpg"],
])
def test_image_ids_are_output_names_stems(paths: list[str]) -> None:
    ds = shapes(len(paths), seed=1)
    ds = ds.replace(images=ds.images.__class__(path=np.asarray(paths, object), width=ds.images.width,
                                               height=ds.images.height, extra={}))
    assert image_ids(ds) == [PurePosixPath(n).stem for n in output_names(paths)]
