"""The review page in a real browser (see ``test_review_browser``; skipped without Playwright or Chromium): the class
picker of an ``ambiguous`` and a ``class_conflict`` finding holds no class until the reviewer picks one, so ``a``
accepts them without one (nothing changes); a finding about the dataset shows no crop and logs no error."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

from playwright.sync_api import sync_playwright

from maslow.store.reviews import ReviewStore
from maslow.ui.state import open_review
from tests.ui.test_review_audit_fixes import case  # noqa: F401  (the fixture)
from tests.ui.test_review_browser import _ARGS, _CHROMIUM, pytestmark, serving, watched_page  # noqa: F401


def test_accepting_without_picking_a_class_sends_none(case: dict[str, Any]) -> None:  # noqa: F811
    review = open_review(case["issues"], case["truth"], ReviewStore(case["db"]), truth_ref="t")
    problems: list[str] = []
    with serving(review) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_CHROMIUM, args=_ARGS)
        try:
            page = watched_page(browser, problems)
            page.goto(url + "/")
            page.wait_for_load_state("networkidle")
            seen = {}
            for rank in (1, 2, 3, 4):
                page.wait_for_function(f"document.querySelector('#detail h2').textContent.startsWith('#{rank} ')")
                seen[rank] = page.eval_on_selector("#label", "s => s.value")
                page.keyboard.press("a")
            page.wait_for_function("document.querySelector('#detail h2').textContent.startsWith('#5 ')")
            assert page.query_selector("#detail img") is None and "no image" in page.inner_text("#detail")
            page.keyboard.press("s")
            page.wait_for_function("document.getElementById('count').textContent.startsWith('5 of 5')")
        finally:
            browser.close()
    names = case["truth"].schema.names
    assert seen[1] == "" and seen[2] == "" and seen[3] == case["other_class"] and seen[4] == names[0]
    stored = review.store.decisions(review.session.id)
    assert {k: (d.status, d.label) for k, d in stored.items()} == {
        1: ("accepted", None), 2: ("accepted", None), 3: ("accepted", None), 4: ("accepted", None),
        5: ("skipped", None)}
    changes = {c["key"]: c["outcome"] for c in review.changes()["changes"]}
    assert changes[1] == changes[2] == "not_applicable"  # accepted without a class: nothing changes
    review.store.close()
    assert problems == []
