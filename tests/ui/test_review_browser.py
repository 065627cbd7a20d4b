"""The review page in a real browser (Chromium driven by Playwright): load, decide, reload, no console errors.

Skipped without Playwright's Python package or a Chromium binary (``/usr/bin/chromium`` or ``chromium`` on PATH);
``playwright install`` is not needed: the system's Chromium is launched. CI has neither, so this runs where a
developer installed them (``apt-get install chromium``, ``pip install playwright``).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")
pytest.importorskip("playwright.sync_api")

from playwright.sync_api import sync_playwright

from maslow import io
from maslow.quality import find_label_issues
from maslow.quality.records import issue_records
from maslow.sample import write_shapes
from maslow.store.reviews import ReviewStore
from maslow.ui.app import create_app
from maslow.ui.state import open_review

_CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
pytestmark = pytest.mark.skipif(_CHROMIUM is None, reason="no Chromium (/usr/bin/chromium or chromium on PATH)")
_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The review of a shapes dataset with a swapped class, a shifted box and a dropped box (its ISSUES.json),
    served by uvicorn on a free port of 127.0.0.1 in a thread; its URL, store and review."""
    clean = write_shapes(tmp_path / "shapes", 12, seed=1)
    io.write_coco(clean, tmp_path / "shapes" / "annotations.json")
    truth = io.read_coco(tmp_path / "shapes" / "annotations.json")
    a = truth.annotations
    assert a.box is not None
    pred = truth.replace(annotations=a.with_columns(score=np.random.default_rng(0).uniform(0.6, 0.99, len(a))))
    label = a.label.copy()
    label[3] = (label[3] + 1) % 3
    box = a.box.copy()
    box[8, [0, 2]] += 0.35 * (box[8, 2] - box[8, 0])
    noisy = truth.replace(annotations=a.with_columns(label=label, box=box)).select(np.arange(len(a)) != 5)
    issues = tmp_path / "issues.json"
    issues.write_text(json.dumps(issue_records(find_label_issues(noisy, pred, iou_type="bbox"), noisy)))
    store = ReviewStore(f"sqlite:///{tmp_path / 'review.db'}")
    review = open_review(issues, noisy, store, truth_ref="noisy")
    try:
        with serving(review) as url:
            yield {"url": url, "store": store, "review": review}
    finally:
        store.close()


@contextlib.contextmanager
def serving(review: Any) -> Iterator[str]:
    """``review``'s app served by uvicorn on a free port of 127.0.0.1 in a thread, while inside; its URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(create_app(review), log_level="warning"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert uv.started, "the review server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)
        sock.close()


def watched_page(browser: Any, problems: list[str]) -> Any:
    """A new page of ``browser`` whose console errors, page errors, failed requests and 4xx/5xx responses are
    appended to ``problems`` (a crop still loading when the next finding is shown is cancelled, net::ERR_ABORTED:
    not a failure)."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(5000)
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: None if r.failure == "net::ERR_ABORTED" else
            problems.append(f"request failed: {r.url} {r.failure}"))
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    return page


def test_decisions_made_in_the_browser_are_kept_across_a_reload(server: dict[str, Any]) -> None:
    """Load the page, accept the first finding with a click and reject the second with ``r``, reload: both kept
    (in the database and on the page, which opens at the first undecided finding); a status filter chosen, ``s``
    still decides; no console error, no failed request, every crop shown."""
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_CHROMIUM, args=_ARGS)
        try:
            page = watched_page(browser, problems)
            page.goto(server["url"] + "/")
            page.wait_for_load_state("networkidle")
            keys = [int(k) for k in page.eval_on_selector_all("#rows tr", "rs => rs.map(r => r.children[0].textContent)")]
            assert len(keys) == 3 and page.inner_text("#detail h2").startswith(f"#{keys[0]} ")

            def crop_shown() -> bool:
                return bool(page.eval_on_selector("#detail img", "i => i.complete && i.naturalWidth > 0"))

            page.wait_for_function("document.querySelector('#detail img').complete")
            assert crop_shown()
            page.click("#detail button.a")  # Accept, clicked
            page.wait_for_function(f"document.querySelector('#detail h2').textContent.startsWith('#{keys[1]} ')")
            page.keyboard.press("r")  # Reject, by its key
            page.wait_for_function(f"document.querySelector('#detail h2').textContent.startsWith('#{keys[2]} ')")
            stored = server["store"].decisions(server["review"].session.id)
            assert {k: d.status for k, d in stored.items()} == {keys[0]: "accepted", keys[1]: "rejected"}

            page.reload()
            page.wait_for_load_state("networkidle")
            statuses = page.eval_on_selector_all("#rows tr", "rs => rs.map(r => r.lastElementChild.textContent)")
            assert statuses == ["accepted", "rejected", "pending"]
            assert page.inner_text("#count").startswith("2 of 3 decided")
            assert page.inner_text("#detail h2").startswith(f"#{keys[2]} ")  # where the review stands
            assert crop_shown()

            page.focus("#f-status")
            page.select_option("#f-status", "pending")  # the select lets go of the keys once chosen
            page.wait_for_function("document.getElementById('pageinfo').textContent.includes('of 1')")
            page.keyboard.press("s")
            page.wait_for_function("document.getElementById('count').textContent.startsWith('3 of 3')")
            assert server["review"].status(keys[2]) == "skipped"
        finally:
            browser.close()
    assert problems == []
