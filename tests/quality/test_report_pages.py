"""What a reader of the HTML reports needs beyond the numbers: a line saying what the page is, what each type of
finding means, a picture for findings with nothing to outline, and "(dataset)" for findings about no one image."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from maslow.core import Annotations, Dataset, Images, LabelSchema
from maslow.quality import QualityIssues, check, find_label_issues, write_html
from maslow.quality.consensus_report import render_consensus_html
from maslow.sample import shapes
from tests.quality.test_reports_reference import _assert_standalone, _Page

CONSENSUS_TYPES = ("wrong_class", "missing", "extra", "low_iou", "ambiguous")


def _no_missing_values(page: _Page) -> None:
    """No cell shows a missing value raw (no class, no box, a dataset-level finding): empty or words instead."""
    cells = [c for t in page.tables for r in t for c in r]
    assert not [c for c in cells if re.fullmatch(r"(?i)nan|none|null|-?inf", c)], cells


def test_check_report_says_what_it_is(tmp_path: Path) -> None:
    ds = shapes(12, seed=0)
    bias = QualityIssues.block("label_bias", "warning", image=-1, score=0.2, reason="class vs site")
    for issues in (QualityIssues.build([check(ds), bias]), QualityIssues.empty()):
        text = write_html(issues, ds, tmp_path / "r.html").read_text(encoding="utf-8")
        page = _Page(text)
        _assert_standalone(page, text)
        _no_missing_values(page)
        about = page.paragraphs[1]  # right under the counts
        assert "maslow check" in about and "score in [0, 1]" in about, page.paragraphs


def _two_colour(tmp_path: Path, n: int) -> Dataset:
    """n images of 40 x 20 pixels: the left half red, the right half blue; classification into 3 classes."""
    px = np.zeros((20, 40, 3), np.uint8)
    px[:, :20] = (230, 20, 20)
    px[:, 20:] = (20, 20, 230)
    (tmp_path / "img").mkdir()
    for i in range(n):
        Image.fromarray(px).save(tmp_path / "img" / f"{i}.png")
    return Dataset(LabelSchema.from_names(["a", "b", "c"], task="classification"),
                   Images(path=[f"img/{i}.png" for i in range(n)], width=[40] * n, height=[20] * n),
                   Annotations(image=np.arange(n), label=np.arange(n) % 3), root=tmp_path)


def test_a_finding_without_geometry_shows_the_whole_image(tmp_path: Path) -> None:
    """A classification label error has no box: the page showed "(no image)" for an image it could read."""
    truth = _two_colour(tmp_path, 30)
    probs = np.full((30, 3), 0.05)
    probs[np.arange(30), np.arange(30) % 3] = 0.9
    probs[4] = [0.02, 0.02, 0.96]  # image 4 is labelled 'b'; the model is sure it is 'c'
    pred = truth.replace(annotations=Annotations(image=np.arange(30), label=probs.argmax(1), score=probs.max(1),
                                                 source="model", extra={"probs": probs}))
    issues = find_label_issues(truth, pred)
    assert issues.type.tolist() == ["wrong_class"] and int(issues.image[0]) == 4
    assert np.isnan(issues.box).all()  # nothing to outline
    text = render_consensus_html(issues, truth, crop_size=160)
    page = _Page(text)
    _assert_standalone(page, text)
    (src,) = page.imgs
    assert src is not None
    with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
        shown = np.asarray(im.convert("RGB")).astype(int)
    assert shown.shape == (80, 160, 3)  # the whole image, its longer side 160, its aspect kept
    assert np.abs(shown[5:75, 5:75] - [230, 20, 20]).max() <= 2  # the left half red, as in the file
    assert np.abs(shown[5:75, 85:155] - [20, 20, 230]).max() <= 2  # the right half blue


def test_consensus_report_says_what_it_is_and_what_each_type_means(tmp_path: Path) -> None:
    ds = shapes(8, seed=0)
    a = ds.annotations
    assert a.box is not None
    blocks = [QualityIssues.block(t, "warning", image=[int(a.image[k])], annotation=[k if t != "missing" else -1],
                                  score=[0.9 - 0.1 * k], reason="r", box=a.box[k][None], label=[int(a.label[k])])
              for k, t in enumerate(CONSENSUS_TYPES)]
    blocks.append(QualityIssues.block("label_bias", "warning", image=[-1], score=[0.3], reason="class vs camera"))
    issues = QualityIssues.build(blocks)
    page = _Page(render_consensus_html(issues, ds))
    _no_missing_values(page)
    about = page.paragraphs[1]
    assert "out-of-fold predictions" in about and "maslow qa" in about and "score in [0, 1]" in about
    # under each type's heading, a line that names the type and says what it means (the rule check's: that it is one)
    meanings = page.paragraphs[2:]
    headings = [h.split(":")[0] for h in page.h2]
    assert headings == [*CONSENSUS_TYPES, "label_bias"]
    assert [m.split(":")[0] for m in meanings] == headings
    assert len({m.split(":", 1)[1] for m in meanings}) == len(meanings)  # a different explanation for each
    assert "rule check" in meanings[-1]
    # a finding about no one image (a bias over the dataset) names it so, as the check report does
    bias = page.tables[-1][1]
    assert bias[1] == "(no image)" and bias[3] == "(dataset)"
