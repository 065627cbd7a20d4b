"""The HTML reports parsed back: every number equals the issues table it shows (recomputed here), data with markup
characters comes back as text, nothing outside the file is needed, and empty or unreadable inputs still render."""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.cli.render import console, render_export
from maslow.core.dataset import Dataset
from maslow.quality import QualityIssues, check, write_html
from maslow.quality.consensus_report import SUGGESTED_COLOUR, TRUTH_COLOUR, render_consensus_html, write_consensus_html
from maslow.sample import shapes, write_shapes

NAMES = ("<b>ci&rcle</b>", "sq\"ua're &amp;", "trï∆ngle <script>alert(1)</script>")
TEMPLATE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "b", "span", "table", "tr", "th",
                 "td", "img"}


class _Page(HTMLParser):
    """Tables as lists of rows of cell texts (entities decoded), headings, tags and attributes seen."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.h2: list[str] = []
        self.paragraphs: list[str] = []
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str]] = []
        self.imgs: list[str | None] = []
        self._cell: list[str] | None = None
        self._text: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += [(k, v or "") for k, v in attrs]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag in ("h2", "p"):
            self._text = []
        elif tag == "img":
            self.imgs.append(dict(attrs).get("src"))
            if self._cell is not None:
                self._cell.append("[img]")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("h2", "p") and self._text is not None:
            (self.h2 if tag == "h2" else self.paragraphs).append(" ".join("".join(self._text).split()))
            self._text = None

    def handle_data(self, data: str) -> None:
        for buf in (self._cell, self._text):
            if buf is not None:
                buf.append(data)


def _renamed(ds: Dataset) -> Dataset:
    schema = replace(ds.schema, classes=tuple(replace(c, name=n) for c, n in zip(ds.schema.classes, NAMES, strict=True)))
    return ds.replace(schema=schema)


def _assert_standalone(page: _Page, text: str) -> None:
    assert page.tags <= TEMPLATE_TAGS  # no tag came from the data
    bare = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert not re.search(r"(?:https?:)?//[a-z]", bare, re.I)  # no external URL
    assert {k for k, _ in page.attrs} <= {"lang", "charset", "class", "src", "alt"}
    for src in page.imgs:  # every image is inline and decodes
        assert src is not None and src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.format == "PNG"


def _planted() -> Dataset:
    ds = _renamed(shapes(30, seed=1))
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None
    box = a.box.copy()
    r0, r1, r2 = (int(r) for r in np.flatnonzero(~a.iscrowd)[:3])
    box[r0, 2] = box[r0, 0]  # zero area
    box[r1, 2] = ds.images.width[a.image[r1]] + 40  # out of bounds
    box[r2] = box[r0]  # a duplicate pair
    paths = np.array([f"im<{i}>&\"'é.png" for i in range(ds.n_images)], dtype=object)
    return ds.replace(images=replace(ds.images, path=paths), annotations=a.with_columns(box=box))


@pytest.mark.parametrize("top", [3, 100])
def test_quality_report_numbers_equal_the_issues(tmp_path: Path, top: int) -> None:
    ds = _planted()
    issues = check(ds)
    extra = QualityIssues.block("dataset_note", "info", image=-1, score=0.01, reason="<i>a & b</i>",
                                suggestion="'quoted' \"twice\"")
    issues = QualityIssues.build([issues, extra])
    assert len(issues) >= 4
    text = write_html(issues, ds, tmp_path / "r.html", top=top, title="<b>T&</b>").read_text(encoding="utf-8")
    page = _Page(text)
    _assert_standalone(page, text)
    a = ds.annotations
    sev = Counter(issues.severity.tolist())
    summary = page.paragraphs[0]
    assert summary.startswith(f"{ds.n_images} images, {ds.n_annotations} annotations, 3 classes: {len(issues)} issues (")
    assert {s: int(c) for c, s in re.findall(r"(\d+) (error|warning|info)", summary)} == dict(sev)
    per_type, top_rows, per_class = page.tables
    first_sev: dict[str, str] = {}
    for t, s in zip(issues.type.tolist(), issues.severity.tolist(), strict=True):
        first_sev.setdefault(t, s)
    want_types = sorted((t, first_sev[t], str(c)) for t, c in Counter(issues.type.tolist()).items())
    assert sorted(tuple(r) for r in per_type[1:]) == want_types
    n_top = min(top, len(issues))
    assert page.h2[1] == f"Top {n_top} issues" and len(top_rows) == n_top + 1
    order = np.argsort(-issues.score, kind="stable")[:n_top]  # the brute-force ranking
    for k, (row, i) in enumerate(zip(top_rows[1:], order, strict=True)):
        ann, other, img = int(issues.annotation[i]), int(issues.other[i]), int(issues.image[i])
        want = [str(k + 1), f"{issues.score[i]:.3f}", issues.severity[i], issues.type[i],
                ds.images.path[img] if img >= 0 else "(dataset)",
                "" if ann < 0 else (str(ann) if other < 0 else f"{ann}, {other}"),
                NAMES[a.label[ann]] if ann >= 0 else "", issues.reason[i], issues.suggestion[i]]
        assert row == want
    for c, row in enumerate(per_class[1:]):
        mine = [int(r) for r, t in zip(issues.annotation, issues.type, strict=True) if r >= 0 and a.label[r] == c]
        n = int((a.label == c).sum())
        types = Counter(t for r, t in zip(issues.annotation, issues.type, strict=True) if r >= 0 and a.label[r] == c)
        assert row[:4] == [NAMES[c], str(n), str(len(set(mine))), f"{100 * len(set(mine)) / max(n, 1):.1f}%"]
        assert dict((m[0], int(m[1])) for m in re.findall(r"(\w+) (\d+)", row[4])) == dict(types)
    assert page.tables and "<b>T&</b>" in text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_quality_report_without_issues_says_so(tmp_path: Path) -> None:
    ds = _renamed(shapes(6, seed=0))
    text = write_html(QualityIssues.empty(), ds, tmp_path / "r.html").read_text(encoding="utf-8")
    page = _Page(text)
    _assert_standalone(page, text)
    assert "0 issues." in page.paragraphs[0] and "()" not in text  # was "0 issues ()"
    assert "No issues found." in page.paragraphs
    assert len(page.tables) == 1  # the per-class table only, not two header-only tables
    assert [r[0] for r in page.tables[0][1:]] == list(NAMES)


def _consensus_case(tmp_path: Path) -> tuple[Dataset, QualityIssues]:
    ds = write_shapes(tmp_path / "s", 10, seed=3)
    for i, p in enumerate(ds.images.path):  # names with markup characters, on disk too
        (tmp_path / "s" / str(p)).rename(tmp_path / "s" / "images" / f"<{i}>&'\"é.png")
    ds = _renamed(ds.replace(images=replace(ds.images, path=np.array(
        [f"images/<{i}>&'\"é.png" for i in range(ds.n_images)], dtype=object))))
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None
    rows = np.flatnonzero(~a.iscrowd)
    rng = np.random.default_rng(0)
    wrong = QualityIssues.block("wrong_class", "warning", image=a.image[rows[:5]], annotation=rows[:5],
                                score=rng.uniform(0.2, 1, 5), reason="<b>looks</b> & more", label=(a.label[rows[:5]] + 1) % 3,
                                box=a.box[rows[:5]])
    shifted = a.box[rows[5:9]] + [4, -3, 4, -3]
    low = QualityIssues.block("low_iou", "info", image=a.image[rows[5:9]], annotation=rows[5:9],
                              score=rng.uniform(0, 1, 4), reason="shifted", box=shifted, label=a.label[rows[5:9]])
    missing = QualityIssues.block("missing", "warning", image=[1, 2, 3], score=[0.9, 0.3, 0.6], reason="no box",
                                  box=[[5, 5, 30, 25], [10, 10, 60, 50], [0, 0, 20, 20]], label=[0, 2, 1])
    return ds, QualityIssues.build([wrong, low, missing])


@pytest.mark.parametrize("per_type", [2, 12])
def test_consensus_report_numbers_crops_and_escaping(tmp_path: Path, per_type: int) -> None:
    ds, issues = _consensus_case(tmp_path)
    text = write_consensus_html(issues, ds, tmp_path / "c.html", per_type=per_type, title="<i>x</i>").read_text(
        encoding="utf-8")
    page = _Page(text)
    _assert_standalone(page, text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.html", "s"]
    assert page.paragraphs[0].startswith(f"{ds.n_images} images, {ds.n_annotations} annotations: {len(issues)} issues.")
    counts = Counter(issues.type.tolist())
    assert {r[0]: int(r[1]) for r in page.tables[0][1:]} == dict(counts)
    a = ds.annotations
    for t, h2, table in zip(dict(counts.most_common()), page.h2, page.tables[1:], strict=True):
        idx = np.flatnonzero(issues.type == t)
        idx = idx[np.argsort(-issues.score[idx], kind="stable")][:per_type]
        assert h2 == f"{t}: top {len(idx)}" and len(table) == len(idx) + 1
        for k, (row, i) in enumerate(zip(table[1:], idx, strict=True)):
            ann = int(issues.annotation[i])
            cls = NAMES[a.label[ann]] if ann >= 0 else NAMES[issues.label[i]]  # type: ignore[index]
            assert row == [str(k + 1), "[img]", f"{issues.score[i]:.3f}", ds.images.path[issues.image[i]], cls,
                           issues.reason[i], issues.suggestion[i]]
    assert len(page.imgs) == sum(min(per_type, c) for c in counts.values())


def _colour_box(png: str, colour: tuple[int, int, int]) -> tuple[int, int, int, int] | None:
    with Image.open(io.BytesIO(base64.b64decode(png))) as im:
        px = np.asarray(im.convert("RGB")).astype(int)
    ys, xs = np.nonzero((px == colour).all(-1))
    return None if not len(xs) else (xs.min(), ys.min(), xs.max(), ys.max())


def test_consensus_crops_are_of_the_displayed_image(tmp_path: Path) -> None:
    """A JPEG whose EXIF orientation turns it: boxes are in the displayed frame (as io.images.load reads it)."""
    ds = write_shapes(tmp_path, 1, seed=0, width=80, height=60)
    shown = np.full((60, 80, 3), 255, np.uint8)
    shown[35:55, 10:30] = 0  # a black square at x 10-30, y 35-55 of the displayed image
    raw = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)  # stored turned; orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    raw.save(tmp_path / str(ds.images.path[0]), format="PNG", exif=exif.tobytes())
    from maslow.io.images import load

    np.testing.assert_array_equal(load(ds, 0), shown)  # maslow's reader shows this frame
    issues = QualityIssues.block("missing", "warning", image=[0], score=[0.5], reason="r",
                                 box=[[10.0, 35.0, 30.0, 55.0]], label=[0])
    png = re.search(r"base64,([A-Za-z0-9+/=]+)", render_consensus_html(issues, ds, crop_size=120)).group(1)  # type: ignore[union-attr]
    x1, y1, x2, y2 = _colour_box(png, SUGGESTED_COLOUR)  # type: ignore[misc]
    with Image.open(io.BytesIO(base64.b64decode(png))) as im:
        px = np.asarray(im.convert("L")).astype(float)
    inside = px[y1 + 3: y2 - 2, x1 + 3: x2 - 2]
    assert inside.mean() < 30  # the square is inside the green box (it was the white of the unturned image)
    assert _colour_box(png, TRUTH_COLOUR) is None


def test_consensus_report_skips_unreadable_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, issues = _consensus_case(tmp_path)
    (tmp_path / "s" / str(ds.images.path[1])).write_bytes(b"not an image")
    (tmp_path / "s" / str(ds.images.path[2])).unlink()
    text = render_consensus_html(issues, ds)
    page = _Page(text)
    shown = {r[3]: r[1] for t in page.tables[1:] for r in t[1:]}
    assert shown[ds.images.path[1]] == shown[ds.images.path[2]] == "(no image)"
    assert shown[ds.images.path[3]] == "[img]"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # every image is now a decompression bomb to Pillow
    page = _Page(render_consensus_html(issues, ds))  # raised DecompressionBombError
    assert page.imgs == [] and "(no image)" in page.tables[1][1]


def test_consensus_report_without_issues(tmp_path: Path) -> None:
    ds = _renamed(shapes(4, seed=0))
    text = write_consensus_html(QualityIssues.empty(), ds, tmp_path / "c.html").read_text(encoding="utf-8")
    page = _Page(text)
    _assert_standalone(page, text)
    assert "No issues found." in page.paragraphs and page.h2 == [] and len(page.tables) == 1


class _Export:
    def __init__(self, path: str, notes: list[str]) -> None:
        self.d = {"n_images": 2, "n_annotations": 3, "format": "coco", "path": path, "lossless": False,
                  "lost": {"[x]": 1}, "notes": notes}

    def to_dict(self) -> dict[str, object]:
        return self.d


@pytest.mark.parametrize("path", ["/tmp/a[red]b/out.json", "/tmp/a[/x]/o.json", "C:/data/[1]/x.json"])
def test_render_export_prints_paths_and_notes_as_they_are(path: str) -> None:
    note = "boxes as [x, y, w, h] [/bold]"
    with console.capture() as cap:  # rich read "[red]" as a style and "[/x]" as a closing tag (MarkupError)
        render_export(_Export(path, [note]))
    out = " ".join(cap.get().split())
    assert f"to {path}" in out and f"note: {note}" in out and "[x]" in out
