"""The review page in a real browser (see ``test_review_browser``; skipped without Playwright or Chromium): the class
picker of an ``ambiguous`` and a ``class_conflict`` finding holds no class until the reviewer picks one, so ``a``
accepts them without one (nothing changes); a finding about the dataset shows no crop and logs no error."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

from playwright.sync_api import sync_playwright

from maslow.store.reviews import ReviewStore
from maslow.ui.app import create_app
from maslow.ui.state import open_review
from tests.ui.test_review_audit_fixes import case  # noqa: F401  (the fixture)
from tests.ui.test_review_browser import _ARGS, _CHROMIUM, pytestmark  # noqa: F401  (skips without Chromium)


def test_accepting_without_picking_a_class_sends_none(case: dict[str, Any]) -> None:  # noqa: F811
    import uvicorn

    review = open_review(case["issues"], case["truth"], ReviewStore(case["db"]), truth_ref="t")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    uv = uvicorn.Server(uvicorn.Config(create_app(review), log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_CHROMIUM, args=_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.set_default_timeout(5000)
                page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
                page.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/")
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
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()
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
