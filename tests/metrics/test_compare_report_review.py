"""The comparison report says what its numbers are: the interval's level as given (not rounded to "100%"), the
per-class AP as AP@[.5:.95], what the colours of the per-class plot mean, and p(B≤A) written one way."""

from __future__ import annotations

import re

import numpy as np
import pytest

from maslow.metrics.compare import Comparison, compare_models, render_comparison_html
from maslow.sample import shapes
from tests.metrics.simulated import simulate


def _comparison(confidence: float = 0.95) -> Comparison:
    truth = shapes(16, seed=3)
    return compare_models(truth, simulate(truth, seed=1), simulate(truth, seed=2), n_bootstrap=20,
                          confidence=confidence)


@pytest.mark.parametrize(("confidence", "shown"), [(0.995, "99.5%"), (0.975, "97.5%"), (0.95, "95%"), (0.9, "90%")])
def test_level_is_shown_as_given(confidence: float, shown: str) -> None:
    pytest.importorskip("jinja2")
    c = _comparison(confidence)
    page = render_comparison_html(c, plots=False)
    assert f"Intervals: {shown} paired bootstrap" in page
    assert np.isnan(c.lower[0]) or f"{shown} interval [" in page  # the verdict sentence
    assert not re.search(r"100% (paired|interval)", page)  # 0.995 was rounded to "100%"


def test_ap_section_and_p_notation() -> None:
    pytest.importorskip("jinja2")
    page = render_comparison_html(_comparison(), plots=False)
    assert "<h2>AP@[.5:.95] per class" in page and "<th>AP@[.5:.95] A</th>" in page
    assert "p(B&lt;=A)" not in page and page.count("p(B&le;A)") == 3 and "p(B\u2264A)" in page  # tables, verdict


def test_plot_colours_are_explained() -> None:
    pytest.importorskip("jinja2")
    pytest.importorskip("matplotlib")
    c = _comparison()
    page = render_comparison_html(c, labels=("old", "new"))
    assert "green where the interval is above 0 (new better)" in page
    assert "blue where it includes 0" in page
    assert "blue where" not in render_comparison_html(c, plots=False)  # no plot, no caption


def test_per_class_truth_counts_in_the_result_and_the_report() -> None:
    """The page advises reading a per-class flag with its truth count: the result carries it (non-crowd objects per
    class, the CLI's "truth" column) and the HTML per-class table shows it."""
    pytest.importorskip("jinja2")
    truth = shapes(16, seed=3)
    c = _comparison()
    a = truth.annotations
    want = [int(((a.label == lab) & ~a.iscrowd).sum()) for lab in c.result_a.class_labels.tolist()]
    assert c.n_truth_per_class.tolist() == want and sum(want) > 0
    page = render_comparison_html(c, plots=False)
    assert "<th>truth</th>" in page
    for name, n in zip(c.class_names, want, strict=True):
        assert re.search(rf"<tr><td>{re.escape(name)}</td><td class=\"num\">{n}</td>", page), name
