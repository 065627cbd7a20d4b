"""The review UI: decisions persisted one by one and resumed across app restarts, the API's 4xx, the page."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("httpx")
pytest.importorskip("alembic")  # the store's migrations (maslow[serve])

from maslow import io
from maslow.core.tables import Annotations
from maslow.errors import InvalidDatasetError
from maslow.quality import find_label_issues
from maslow.quality.records import issue_records
from maslow.sample import write_shapes
from maslow.store.reviews import ReviewStore
from maslow.ui.app import create_app
from maslow.ui.state import open_review


def _client(app: Any) -> Any:
    with warnings.catch_warnings():  # starlette's TestClient warns on import that it prefers httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app, base_url="http://127.0.0.1:8765")  # a host the app accepts (TrustedHostMiddleware)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Shapes on disk (COCO), a copy with a swapped class, a shifted box and a dropped box, and its ISSUES.json."""
    tmp = tmp_path_factory.mktemp("review")
    clean = write_shapes(tmp / "shapes", 12, seed=1)
    io.write_coco(clean, tmp / "shapes" / "annotations.json")
    truth = io.read_coco(tmp / "shapes" / "annotations.json")
    a = truth.annotations
    rng = np.random.default_rng(0)
    pred = truth.replace(annotations=Annotations(image=a.image, label=a.label, box=a.box,
                                                 score=rng.uniform(0.6, 0.99, len(a)), source="model"))
    label = a.label.copy()
    label[3] = (label[3] + 1) % 3
    box = a.box.copy()
    box[8, [0, 2]] += 0.35 * (box[8, 2] - box[8, 0])
    noisy = truth.replace(annotations=a.with_columns(label=label, box=box)).select(np.arange(len(a)) != 5)
    issues = tmp / "issues.json"
    issues.write_text(json.dumps(issue_records(find_label_issues(noisy, pred, iou_type="bbox"), noisy)))
    return {"truth": noisy, "clean": truth, "issues": issues, "tmp": tmp}


def _open(files: dict[str, Any], db: Path) -> tuple[Any, Any]:
    store = ReviewStore(f"sqlite:///{db}")
    review = open_review(files["issues"], files["truth"], store, truth_ref="noisy")
    return _client(create_app(review)), store


def test_decisions_are_committed_one_by_one_and_resumed_after_a_restart(files: dict[str, Any], tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    client, store = _open(files, db)
    items = client.get("/api/findings").json()["items"]
    assert len(items) >= 2
    other = sqlite3.connect(db)  # a second connection sees each decision as soon as the answer came back
    for k, status in zip([items[0]["key"], items[1]["key"]], ["accepted", "rejected"], strict=True):
        r = client.post(f"/api/findings/{k}/decision", json={"status": status, "note": "n", "reviewer": "ann"})
        assert r.status_code == 200, r.text
        rows = other.execute("SELECT finding_key, status, reviewer FROM review_decisions").fetchall()
        assert rows[-1] == (k, status, "ann")
    other.close()
    store.close()
    client2, store2 = _open(files, db)  # a new app on the same ISSUES.json: the same session, its decisions
    s = client2.get("/api/summary").json()
    assert s["counts"]["accepted"] == 1 and s["counts"]["rejected"] == 1 and s["n_decided"] == 2
    assert client2.get(f"/api/findings/{items[0]['key']}").json()["decision"]["status"] == "accepted"
    pending = client2.get("/api/findings", params={"status": "pending"}).json()
    assert pending["total"] == s["n_findings"] - 2
    export = client2.get("/api/decisions").json()
    assert [d["key"] for d in export["decisions"]] == sorted([items[0]["key"], items[1]["key"]])
    client2.post(f"/api/findings/{items[0]['key']}/decision", json={"status": "skipped"})  # changed: history kept
    history = client2.get("/api/decisions", params={"history": "true"}).json()["decisions"]
    assert [d["status"] for d in history] == ["accepted", "rejected", "skipped"]
    store2.close()


def test_api_errors_are_4xx_with_a_message(files: dict[str, Any], tmp_path: Path) -> None:
    client, store = _open(files, tmp_path / "r.db")
    items = client.get("/api/findings").json()["items"]
    extra_or_other = next(i for i in items if i["type"] not in ("wrong_class", "ambiguous", "missing"))
    cases = [
        (client.get("/api/findings/9999"), 404, "not in this review"),
        (client.post("/api/findings/9999/decision", json={"status": "accepted"}), 404, "not in this review"),
        (client.post(f"/api/findings/{items[0]['key']}/decision", json={"status": "maybe"}), 422, "status must be"),
        (client.post(f"/api/findings/{items[0]['key']}/decision", json={}), 422, "status"),
        (client.post(f"/api/findings/{extra_or_other['key']}/decision", json={"status": "accepted", "label": "circle"}),
         422, "label applies to"),
        (client.get("/api/findings", params={"status": "done"}), 422, "status filter"),
        (client.get("/api/findings", params={"limit": 0}), 422, "limit"),
        (client.get("/api/findings/abc"), 422, "key"),
    ]
    for response, code, text in cases:
        assert response.status_code == code, response.text
        assert text in response.json()["error"]
    assert client.get("/api/summary").json()["n_decided"] == 0  # nothing was stored
    store.close()


def test_the_page_and_the_crops(files: dict[str, Any], tmp_path: Path) -> None:
    client, store = _open(files, tmp_path / "p.db")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "http://" not in text and "https://" not in text  # nothing loaded from elsewhere
    data = json.loads(text.split("<script id='initial' type='application/json'>")[1].split("</script>")[0])
    findings = json.loads(files["issues"].read_text())
    assert [f["rank"] for f in data["page"]["items"]] == [f["rank"] for f in findings][:50]
    assert data["page"]["items"][0]["reason"] == findings[0]["reason"]
    crop = client.get(f"/api/findings/{findings[0]['rank']}/crop.png")
    assert crop.status_code == 200 and crop.content.startswith(b"\x89PNG")
    by_type = client.get("/api/findings", params={"type": "wrong_class"}).json()
    assert by_type["total"] == sum(f["type"] == "wrong_class" for f in findings) >= 1
    store.close()


def test_a_review_resumed_on_another_truth_is_refused(files: dict[str, Any], tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    _, store = _open(files, db)
    store.close()
    truth = files["truth"]
    grown = truth.concat(truth.select_images([0]))  # one image more, after every finding's rows
    with pytest.raises(InvalidDatasetError, match="another truth"):
        open_review(files["issues"], grown, ReviewStore(f"sqlite:///{db}"), truth_ref="grown")


# -- the page's script, run by node against a stand-in DOM (skipped without node) ---------------------------------
_DOM = r"""
const els = {};
function el(id) {
  if (!els[id]) els[id] = {id, value: '', textContent: '', innerHTML: '', children: [], dataset: {}, style: {},
    insertAdjacentHTML(_, h) { this.innerHTML += h; }, get firstElementChild() { return el(id + '/first'); },
    blur() { this.blurred = true; }};
  return els[id];
}
const listeners = {};
globalThis.document = {getElementById: (id) => (id === 'initial' ? {textContent: INITIAL} : el(id)),
                       addEventListener(type, f) { listeners[type] = f; }};
// a key pressed outside the note and the selects (the page's keydown listener)
const key = (k, more) => listeners.keydown({key: k, target: {tagName: 'BODY'}, preventDefault() {}, ...more});
const send = (x) => process.stdout.write(JSON.stringify(x) + '\n');
const waiting = [];
let inflight = 0;
require('readline').createInterface({input: process.stdin}).on('line', (line) => {
  const r = JSON.parse(line);
  inflight -= 1;
  waiting.shift()({ok: r.status < 400, statusText: String(r.status), json: async () => r.body});
});
// every request goes to the app (the test answers it with its TestClient)
globalThis.fetch = (url, opts) => new Promise((resolve) => {
  inflight += 1; waiting.push(resolve);
  send({url, method: (opts && opts.method) || 'GET', body: (opts && opts.body) || null});
});
async function idle() { while (inflight) await new Promise((r) => setTimeout(r, 1)); }
// until nothing is left to do: no request in flight once the promises queued so far have run
async function settle() { do { await new Promise((r) => setTimeout(r, 5)); } while (inflight); }
"""


def _run_page(client: Any, html: str, driver: str) -> Any:
    """Run the page's script (with ``driver`` after it) in node; its requests are answered by ``client``; the
    result is what the driver sends as ``{"done": ...}``."""
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    initial = html.split("<script id='initial' type='application/json'>")[1].split("</script>")[0]
    script = html.split("</script><script>")[1].split("</script>")[0]
    code = f"const INITIAL = {json.dumps(initial)};\n{_DOM}\n{script}\n{driver}"
    with subprocess.Popen([node, "-e", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for line in proc.stdout:
                msg = json.loads(line)
                if "done" in msg:
                    return msg["done"]
                r = client.request(msg["method"], msg["url"], content=msg["body"],
                                   headers={"Content-Type": "application/json"})
                proc.stdin.write(json.dumps({"status": r.status_code, "body": r.json()}) + "\n")
                proc.stdin.flush()
            raise AssertionError(f"node ended without an answer (exit code {proc.wait()})")
        finally:
            proc.kill()


def test_the_page_pages_past_decided_rows_with_a_status_filter(files: dict[str, Any], tmp_path: Path) -> None:
    """Filtered to pending, one finding a page: accepting each in turn (the next one loads as the page does) reaches
    every finding; moving past a page of decided ones by ``offset += limit`` skipped every other one."""
    client, store = _open(files, tmp_path / "js.db")
    ranks = [f["rank"] for f in json.loads(files["issues"].read_text())]
    assert len(ranks) >= 3
    driver = r"""
(async () => {
  el('f-status').value = 'pending'; limit = 1; offset = 0; cur = 0;
  await load();
  const seen = [];
  while (page.items[cur] && !page.items[cur].decision && seen.length < 100) {
    seen.push(page.items[cur].key);
    await decide('accepted'); await idle();
  }
  send({done: seen});
})();
"""
    seen = _run_page(client, client.get("/").text, driver)
    assert seen == ranks
    assert client.get("/api/findings", params={"status": "pending"}).json()["total"] == 0
    store.close()


def test_keys_pressed_while_a_decision_is_on_its_way_act_in_order(files: dict[str, Any], tmp_path: Path) -> None:
    """``a`` then ``r`` pressed before the first answer came back: the first finding accepted, the second rejected
    (the page acted on the finding still shown: both decisions went to the first, and the second was passed over).
    A held key decides once; a failed decision drops the keys queued behind it."""
    client, store = _open(files, tmp_path / "keys.db")
    driver = r"""
(async () => {
  key('a'); key('r'); key('k');
  await settle();
  const done = {decided: page.items.slice(0, 3).map((f) => f.decision && f.decision.status), cur};
  key('s', {repeat: true});  // auto-repeat of a held s
  await settle();
  done.afterRepeat = cur;
  page.items[cur].key = 9999;  // this decision fails (404): what was pressed behind it is dropped
  key('a'); key('k'); key('k');
  await settle();
  done.afterFailure = {cur, msg: els.msg.textContent};
  key('k');  // pressed after the failure: done
  await settle();
  done.afterRecovery = cur;
  send({done});
})();
"""
    shown = _run_page(client, client.get("/").text, driver)
    assert shown["decided"] == ["accepted", "rejected", None] and shown["cur"] == 1
    assert shown["afterRepeat"] == 1
    assert shown["afterFailure"]["cur"] == 1 and "not in this review" in shown["afterFailure"]["msg"]
    assert shown["afterRecovery"] == 0
    stored = client.get("/api/decisions", params={"history": "true"}).json()["decisions"]
    assert [(d["key"], d["status"]) for d in stored] == [(1, "accepted"), (2, "rejected")]
    store.close()


def test_a_filter_or_a_class_chosen_lets_go_of_the_keyboard(files: dict[str, Any], tmp_path: Path) -> None:
    """A select keeps the focus once chosen, and the page ignores keys in a select: ``a`` after choosing a filter or
    a class did nothing (a select also takes a letter as a search in its options); both now let go of the focus."""
    client, store = _open(files, tmp_path / "blur.db")
    items = client.get("/api/findings").json()["items"]
    labelled = next(i for i, f in enumerate(items) if f["labels"])
    driver = r"""
(async () => {
  el('f-type').onchange({target: el('f-type')});
  await settle();
  cur = LABELLED; show();
  (el('label').onchange || (() => {}))({target: el('label')});
  send({done: [el('f-type').blurred === true, el('label').blurred === true]});
})();
""".replace("LABELLED", str(labelled))
    assert _run_page(client, client.get("/").text, driver) == [True, True]
    store.close()


def _many_findings(tmp_path: Path) -> tuple[Any, Any]:
    """A review of more than one page (50) of findings: every other box of 80 shapes images shifted; no images."""
    from maslow.sample import shapes

    clean = shapes(80, seed=0)
    a = clean.annotations
    pred = clean.replace(annotations=a.with_columns(score=np.full(len(a), 0.9)))
    box = a.box.copy()
    half = np.arange(len(a)) % 2 == 0
    box[half, 0::2] += 0.5 * (box[half, 2] - box[half, 0])[:, None]
    truth = clean.replace(annotations=a.with_columns(box=box))
    issues = tmp_path / "many.json"
    issues.write_text(json.dumps(issue_records(find_label_issues(truth, pred, iou_type="bbox"), truth)))
    store = ReviewStore(f"sqlite:///{tmp_path / 'many.db'}")
    return open_review(issues, truth, store, truth_ref="many"), store


def test_the_page_opens_at_the_first_undecided_finding(tmp_path: Path) -> None:
    """Reopened after 55 decisions, the page shows findings 51-100 and the 56th (it showed the first page and the
    first finding, decided long ago: a reviewer had to find their place)."""
    review, store = _many_findings(tmp_path)
    n = len(review.findings)
    assert n > 60
    assert review.first_pending() == 0
    for f in review.findings[:55]:
        review.decide(int(f["rank"]), "rejected")
    review.decide(int(review.findings[57]["rank"]), "accepted")
    assert review.first_pending() == 55
    client = _client(create_app(review))
    html = client.get("/").text
    data = json.loads(html.split("<script id='initial' type='application/json'>")[1].split("</script>")[0])
    assert data["page"]["offset"] == 50 and data["page"]["items"][0]["rank"] == review.findings[50]["rank"]
    shown = _run_page(client, html, "send({done: [offset, cur, page.items[cur].rank]});")
    assert shown == [50, 5, review.findings[55]["rank"]]
    for f in review.findings[55:]:
        review.decide(int(f["rank"]), "skipped")
    assert review.first_pending() is None
    data = json.loads(client.get("/").text.split("type='application/json'>")[1].split("</script>")[0])
    assert data["page"]["offset"] == 0  # all decided: from the top
    store.close()


def test_the_page_names_its_icon(files: dict[str, Any], tmp_path: Path) -> None:
    """Without an icon in the page, a browser asks for /favicon.ico, a 404 in the console of every page load."""
    client, store = _open(files, tmp_path / "icon.db")
    assert client.get("/favicon.ico").status_code == 404
    assert "<link rel='icon' href='data:,'>" in client.get("/").text
    store.close()


def test_the_page_escapes_what_it_shows() -> None:
    """A finding's fields reach the page's HTML escaped; the score as a number (an ISSUES.json with a string there
    is refused, ``parse_findings``; the page does not rely on it)."""
    from maslow.ui.page import render_page

    bad = "<img src=x onerror=alert(1)>"
    item = {"rank": 1, "key": 1, "type": bad, "score": bad, "class": bad, "file_name": bad, "reason": bad,
            "suggestion": {"class": None, "text": bad}, "decision": {"status": bad, "note": bad, "label": None},
            "labels": False, "crop": '"><img src=x onerror=alert(2)>'}
    summary = {"counts": {"accepted": 0, "rejected": 0, "skipped": 0}, "n_findings": 1, "n_decided": 0,
               "types": [bad], "finding_classes": [bad], "classes": ["a"]}
    html = render_page("t", summary, {"total": 1, "offset": 0, "limit": 50, "items": [item]})
    shown = _run_page(None, html, "send({done: {rows: els.rows.innerHTML, detail: els.detail.innerHTML, "
                                  "type: els['f-type'].innerHTML}});")
    for where, text in shown.items():
        assert "<img src=x" not in text and "alert" not in text.replace("&lt;img src=x onerror=alert", ""), \
            (where, text)
    assert "score NaN" in shown["detail"] or "score </p>" in shown["detail"]


def test_a_decision_is_stored_and_kept_in_memory_under_one_lock(files: dict[str, Any], tmp_path: Path) -> None:
    """Two threads deciding one finding end with the same decision in the database and in memory: the store is
    written while the review's lock is held (with the memory update), not before taking it."""
    store = ReviewStore(f"sqlite:///{tmp_path / 'lock.db'}")
    review = open_review(files["issues"], files["truth"], store, truth_ref="noisy")
    held = []
    real = store.decide

    def decide(*args: Any, **kwargs: Any) -> Any:
        held.append(review._lock.locked())
        return real(*args, **kwargs)

    store.decide = decide  # type: ignore[method-assign]
    import threading

    threads = [threading.Thread(target=review.decide, args=(1, s)) for s in ["accepted", "rejected"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert held == [True] * 8
    assert review.decision(1) == store.decisions(review.session.id)[1]
    store.close()


def test_requests_for_another_host_are_refused(files: dict[str, Any], tmp_path: Path) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends ``Host: evil.example``."""
    client, store = _open(files, tmp_path / "h.db")
    assert client.get("/api/summary", headers={"Host": "evil.example:8765"}).status_code == 400
    assert client.post("/api/findings/1/decision", json={"status": "accepted"},
                       headers={"Host": "evil.example"}).status_code == 400
    for host in ("localhost:8765", "127.0.0.1"):
        assert client.get("/api/summary", headers={"Host": host}).status_code == 200
    assert client.get("/api/summary").json()["n_decided"] == 0
    review = open_review(files["issues"], files["truth"], store, truth_ref="noisy")
    assert _client(create_app(review, host="::1")).get("/", headers={"Host": "[::1]:8765"}).status_code == 200
    store.close()


def test_a_wildcard_address_still_refuses_other_hosts(files: dict[str, Any], tmp_path: Path) -> None:
    """``--host 0.0.0.0`` serves every address of the machine, yet a rebound name is still refused (it turned the
    check off): the machine's own names, any IP address and the ``--allow-host`` names are accepted."""
    import socket

    _, store = _open(files, tmp_path / "w.db")
    review = open_review(files["issues"], files["truth"], store, truth_ref="noisy")
    client = _client(create_app(review, host="0.0.0.0"))
    for host in ("evil.example:8765", "box.lan"):
        r = client.post("/api/findings/1/decision", json={"status": "accepted"}, headers={"Host": host})
        assert r.status_code == 400 and host in r.json()["error"]
    assert client.get("/api/summary").json()["n_decided"] == 0
    for host in (f"{socket.gethostname()}:8765", "192.168.1.20:8765", "[fe80::1]:8765", "localhost"):
        assert client.get("/api/summary", headers={"Host": host}).status_code == 200, host
    allowed = _client(create_app(review, host="0.0.0.0", allow_hosts=["box.lan", "*.corp.example"]))
    for host, code in [("box.lan:8765", 200), ("review.corp.example", 200), ("evil.example", 400)]:
        assert allowed.get("/api/summary", headers={"Host": host}).status_code == code, host
    store.close()


def test_a_database_failure_is_503(files: dict[str, Any], tmp_path: Path) -> None:
    client, store = _open(files, tmp_path / "gone.db")
    con = sqlite3.connect(tmp_path / "gone.db")
    con.execute("DROP TABLE review_decisions")
    con.commit()
    con.close()
    r = client.post("/api/findings/1/decision", json={"status": "accepted"})
    assert r.status_code == 503 and "gone.db" in r.json()["error"]
    assert client.post("/api/findings/1/decision", json={"status": "maybe"}).status_code == 422  # still bad input
    store.close()


def test_the_crop_cache_is_bounded(files: dict[str, Any], tmp_path: Path) -> None:
    from maslow.ui.state import Review

    store = ReviewStore(f"sqlite:///{tmp_path / 'c.db'}")
    opened = open_review(files["issues"], files["truth"], store, truth_ref="noisy")
    review = Review(files["truth"], opened.findings, store, opened.session, crop_cache=4, crop_cache_bytes=20_000)
    client = _client(create_app(review))
    first = client.get("/api/findings/1/crop.png", params={"size": 64}).content
    assert first.startswith(b"\x89PNG") and review.crop_cache_size() == (1, len(first))
    sizes = []
    for size in range(32, 1025, 61):
        png = client.get("/api/findings/1/crop.png", params={"size": size})
        assert png.status_code == 200
        n, nbytes = review.crop_cache_size()
        assert n <= 4 and (nbytes <= 20_000 or n == 0)
        sizes.append(len(png.content))
    assert max(sizes) > 20_000 // 4  # big ones were served, not kept beyond the budget
    assert client.get("/api/findings/1/crop.png", params={"size": 64}).content == first  # recomputed the same
    store.close()


def test_an_oriented_box_crop_outlines_the_corners(tmp_path: Path) -> None:
    """On oriented boxes the crop outlines the annotation's and the suggestion's corners, not their extents: a ship
    turned by 30 degrees, whose low_iou suggestion is the model's rectangle."""
    import io as pyio

    from PIL import Image

    from maslow.core.obb import corners_from_xywhr, xywhr_from_corners
    from maslow.core.polygons import Polygons
    from maslow.quality.consensus_report import SUGGESTED_COLOUR
    from maslow.sample import oriented, oriented_predictions

    truth = oriented(6, size=200, seed=3)
    for p in truth.images.path.tolist():
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (200, 200), (255, 255, 255)).save(tmp_path / p)
    truth = truth.replace(root=tmp_path)
    pred = oriented_predictions(truth, seed=3, p_miss=0.0, p_swap=0.0, jitter=0.01, angle_jitter=0.01,
                                fp_per_image=0.0)
    a = truth.annotations
    q = np.stack([np.asarray(a.polygon[r][0]).reshape(4, 2) for r in range(len(a))])
    ship = int(np.flatnonzero(a.label == 1)[0])
    b = xywhr_from_corners(q[[ship]])
    b[0, 4] += np.radians(12)
    q[ship] = corners_from_xywhr(b)[0]
    noisy = truth.replace(annotations=a.with_columns(polygon=Polygons.from_rows([[c.ravel()] for c in q]),
                                                     box=np.concatenate([q.min(axis=1), q.max(axis=1)], axis=1)))
    issues = find_label_issues(noisy, pred, iou_type="obb")
    records = issue_records(issues, noisy)
    turned = [r for r in records if r["annotation_row"] == ship]
    assert turned and turned[0]["type"] == "low_iou" and turned[0]["suggestion"]["polygon"]
    path = tmp_path / "issues.json"
    path.write_text(json.dumps(records))
    store = ReviewStore(f"sqlite:///{tmp_path / 'o.db'}")
    review = open_review(path, noisy, store, truth_ref="noisy")
    png = review._crop_png(int(turned[0]["rank"]), 256)
    assert png is not None
    px = np.asarray(Image.open(pyio.BytesIO(png)).convert("RGB"))
    green = (np.abs(px.astype(int) - np.array(SUGGESTED_COLOUR)).sum(axis=2) < 60)
    # the suggested rectangle is turned: its outline's pixels are not on the lines of one axis-aligned box
    ys, xs = np.nonzero(green)
    assert len(xs) > 20
    on_extent = (xs <= xs.min() + 1) | (xs >= xs.max() - 1) | (ys <= ys.min() + 1) | (ys >= ys.max() - 1)
    assert on_extent.mean() < 0.5
    store.close()


def test_a_pair_finding_crop_shows_both_boxes_on_a_dark_halo(tmp_path: Path) -> None:
    """A class conflict's crop outlines the annotation and the other box of the pair (as the HTML report does), each
    line on a dark halo so it stands out from a shape of its own colour."""
    import io as pyio

    from PIL import Image

    from maslow.quality import CheckConfig, check
    from maslow.quality.consensus_report import HALO_COLOUR, OTHER_COLOUR, TRUTH_COLOUR

    ds = write_shapes(tmp_path / "data", 4, seed=1)
    a = ds.annotations
    assert a.box is not None
    r0 = int(np.flatnonzero(~a.iscrowd)[0])
    other_class = (int(a.label[r0]) + 1) % len(ds.schema.names)
    bad = ds.replace(annotations=Annotations.sort_rows(
        image=np.r_[a.image, a.image[r0]], label=np.r_[a.label, other_class],
        box=np.r_[a.box, (a.box[r0] + [-1.0, -1.0, 1.0, 1.0])[None]]))
    issues = check(bad, config=CheckConfig(families=("overlaps",), conflict_iou=0.5))
    records = issue_records(issues, bad)
    pair = [r for r in records if r["type"] == "class_conflict"]
    assert pair and pair[0].get("other_row") is not None
    path = tmp_path / "issues.json"
    path.write_text(json.dumps(records))
    store = ReviewStore(f"sqlite:///{tmp_path / 'p.db'}")
    review = open_review(path, bad, store, truth_ref="bad")
    png = review._crop_png(int(pair[0]["rank"]), 256)
    store.close()
    assert png is not None
    px = np.asarray(Image.open(pyio.BytesIO(png)).convert("RGB")).astype(int)
    for colour in (TRUTH_COLOUR, OTHER_COLOUR):
        drawn = (px == colour).all(axis=2)
        assert drawn.sum() > 40, colour
        halo = (px == HALO_COLOUR).all(axis=2)
        ys, xs = np.nonzero(drawn)
        beside = halo[np.clip(ys - 2, 0, None), xs] | halo[np.clip(ys + 2, None, px.shape[0] - 1), xs] | \
            halo[ys, np.clip(xs - 2, 0, None)] | halo[ys, np.clip(xs + 2, None, px.shape[1] - 1)]
        assert beside.mean() > 0.5, colour
