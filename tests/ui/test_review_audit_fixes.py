"""The review UI after an audit of the review flow: decisions made through another server on the same database,
a class named with a comma in the filter, crops of images that can't be read, image-less findings, and the class
picker of ``ambiguous`` / ``class_conflict`` findings (nothing is picked for them)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("httpx")
pytest.importorskip("alembic")

from maslow import io
from maslow.core.dataset import Dataset
from maslow.sample import write_shapes
from maslow.store.reviews import ReviewStore
from maslow.ui.app import create_app
from maslow.ui.state import open_review
from tests.ui.test_review_app_api import _client, _run_page


def _finding(truth: Dataset, rank: int, type: str, row: int | None, *, image: int | None = None,
             sug_class: str | None = None, other: int | None = None) -> dict[str, Any]:
    a, names = truth.annotations, truth.schema.names
    img = int(a.image[row]) if row is not None else image
    f: dict[str, Any] = {
        "rank": rank, "type": type, "score": 0.5, "severity": "warning", "image_id": None, "annotation_id": None,
        "file_name": None if img is None else str(truth.images.path[img]),
        "class": names[int(a.label[row])] if row is not None else sug_class, "reason": f"{type} here",
        "suggestion": {"class": sug_class, "box_xyxy": None, "keypoints": None, "text": ""},
        "image_row": img, "annotation_row": row}
    if other is not None:
        f["other_row"], f["other_id"] = other, None
    return f


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Any]:
    """Shapes on disk and hand-made findings: ambiguous, class_conflict, wrong_class, missing, and one about the
    dataset (no image)."""
    ds = write_shapes(tmp_path / "shapes", 6, seed=1)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    truth = io.read_coco(tmp_path / "shapes" / "annotations.json")
    a, names = truth.annotations, truth.schema.names
    img = int(np.flatnonzero(np.bincount(a.image) >= 2)[0])
    r0, r1 = np.flatnonzero(a.image == img)[:2].tolist()
    other_class = names[(int(a.label[r0]) + 1) % len(names)]
    findings = [
        _finding(truth, 1, "ambiguous", r0, sug_class=other_class),
        _finding(truth, 2, "class_conflict", r1, other=r0),
        _finding(truth, 3, "wrong_class", r1, sug_class=other_class),
        _finding(truth, 4, "missing", None, image=img, sug_class=names[0]),
        _finding(truth, 5, "label_bias", None, sug_class=None),
    ]
    findings[3]["suggestion"]["box_xyxy"] = [1.0, 1.0, 9.0, 9.0]
    issues = tmp_path / "issues.json"
    issues.write_text(json.dumps(findings))
    return {"truth": truth, "issues": issues, "db": f"sqlite:///{tmp_path / 'review.db'}", "tmp": tmp_path,
            "other_class": other_class}


def test_two_servers_on_one_database_see_each_others_decisions(case: dict[str, Any]) -> None:
    """Each review loaded the decisions once: A kept showing B's decided findings as pending (and offered them again),
    its counts and its change preview were B's decisions behind."""
    a = open_review(case["issues"], case["truth"], ReviewStore(case["db"]), truth_ref="t")
    b = open_review(case["issues"], case["truth"], ReviewStore(case["db"]), truth_ref="t")
    assert a.summary()["n_decided"] == 0
    b.decide(3, "accepted", reviewer="B")
    assert a.item(3)["decision"]["reviewer"] == "B"
    assert a.summary()["n_decided"] == 1 and a.summary()["counts"]["accepted"] == 1
    assert [f["key"] for f in a.page(status="pending")["items"]] == [1, 2, 4, 5]
    assert a.changes()["counts"]["applied"] == 1
    assert a.first_pending() == 0
    a.decide(1, "rejected")
    b.decide(1, "skipped")  # the later decision wins, in both
    assert a.status(1) == b.status(1) == "skipped"
    # a decision committed out of the order of its number (another writer's late transaction): read all again
    con = sqlite3.connect(case["db"].removeprefix("sqlite:///"))
    with con:
        con.execute("INSERT INTO review_decisions (id, session_id, finding_key, status, label, note, reviewer, "
                    "decided) VALUES (1000, ?, 2, 'rejected', NULL, '', 'C', 'x')", (a.session.id,))
    assert a.status(2) == "rejected"
    with con:
        con.execute("INSERT INTO review_decisions (id, session_id, finding_key, status, label, note, reviewer, "
                    "decided) VALUES (500, ?, 4, 'accepted', NULL, '', 'C', 'y')", (a.session.id,))
    con.close()
    assert a.status(4) == "accepted" and a.summary()["n_decided"] == 4
    a.store.close()
    b.store.close()


def test_a_class_with_a_comma_can_be_filtered(case: dict[str, Any]) -> None:
    truth = case["truth"]
    names = list(truth.schema.names)
    import dataclasses

    renamed = [dataclasses.replace(c, name="person, adult") if c.name == names[0] else c for c in truth.schema.classes]
    comma = truth.replace(schema=truth.schema.with_classes(renamed))
    findings = json.loads(case["issues"].read_text())
    for f in findings:
        if f["class"] == names[0]:
            f["class"] = "person, adult"
    path = case["tmp"] / "comma.json"
    path.write_text(json.dumps(findings))
    review = open_review(path, comma, ReviewStore(case["db"]), truth_ref="t")
    want = sorted(f["rank"] for f in findings if f["class"] == "person, adult")
    assert want
    got = review.page(cls="person, adult")["items"]
    assert [f["key"] for f in got] == want
    both = review.page(cls=f"person, adult,{names[1]}")["total"]
    assert both == sum(f["class"] in ("person, adult", names[1]) for f in findings)
    review.store.close()


def test_crops_say_why_they_fail_and_are_tried_again(case: dict[str, Any]) -> None:
    """A missing or corrupt image answered "no crop (an image that can't be read, or no image)" and that answer was
    kept until the server restarted, even after the file was put back."""
    truth = case["truth"]
    review = open_review(case["issues"], truth, ReviewStore(case["db"]), truth_ref="t")
    client = _client(create_app(review))
    assert review.image_note() is None and client.get("/api/summary").json()["image_note"] is None
    path = Path(truth.root) / str(truth.images.path[int(json.loads(case["issues"].read_text())[0]["image_row"])])
    good = path.read_bytes()
    assert client.get("/api/findings/1/crop.png").status_code == 200
    path.unlink()
    r = client.get("/api/findings/1/crop.png", params={"size": 100})
    assert r.status_code == 404 and str(path) in r.json()["error"] and "not found" in r.json()["error"]
    path.write_bytes(good[:40])  # truncated
    r = client.get("/api/findings/1/crop.png", params={"size": 100})
    assert r.status_code == 404 and str(path) in r.json()["error"] and "can't be read" in r.json()["error"]
    path.write_bytes(good)  # put back: the crop is made, not the failure remembered
    assert client.get("/api/findings/1/crop.png", params={"size": 100}).content.startswith(b"\x89PNG")
    # a finding about the dataset has no crop, and the page is not sent to fetch one
    assert client.get("/api/findings/5").json()["crop"] is None
    r = client.get("/api/findings/5/crop.png")
    assert r.status_code == 404 and "about the dataset" in r.json()["error"]
    review.store.close()


def test_images_not_found_are_said_when_the_review_opens(case: dict[str, Any]) -> None:
    """A wrong --images-root gave no word: every crop failed and the page said "(no crop)"."""
    truth = case["truth"].replace(root=case["tmp"] / "elsewhere")
    review = open_review(case["issues"], truth, ReviewStore(case["db"]), truth_ref="t")
    note = review.image_note()
    assert note is not None and "1 of the 1 images" in note and str(case["tmp"] / "elsewhere") in note
    assert "--images-root" in note and review.summary()["image_note"] == note
    assert "imgnote" in _client(create_app(review)).get("/").text
    review.store.close()


def test_the_picker_sends_a_class_only_when_one_is_picked(case: dict[str, Any]) -> None:
    """The page pre-filled the picker and sent its value: accepting an ambiguous finding relabelled it to the model's
    alternative, accepting a class conflict kept the finding's box and removed the other, where both change nothing
    without a class the reviewer picks."""
    review = open_review(case["issues"], case["truth"], ReviewStore(case["db"]), truth_ref="t")
    client = _client(create_app(review))
    driver = r"""
// the value a browser gives the picker: its selected option's (the first when none is), value="" or its text
function selected(h) {
  const opts = [...h.matchAll(/<option([^>]*)>([^<]*)<\/option>/g)];
  const o = opts.find((m) => /\bselected\b/.test(m[1])) || opts[0];
  const v = o[1].match(/value="([^"]*)"/);
  return v ? v[1] : o[2];
}
(async () => {
  const out = {};
  for (const [i, value] of [[0, null], [1, null], [2, null]]) {
    cur = i; show();
    out['html' + i] = els.detail.innerHTML;
    el('label').value = value === null ? selected(els.detail.innerHTML) : value;
    await decide('accepted'); await idle();
  }
  cur = 0; show(); el('label').value = OTHER; await decide('accepted'); await idle();
  cur = 2; show(); el('label').value = OTHER; await decide('rejected'); await idle();
  send({done: out});
})();
""".replace("OTHER", json.dumps(case["other_class"]))
    shown = _run_page(client, client.get("/").text, driver)
    assert 'value="" selected' in shown["html0"] and 'value="" selected' in shown["html1"]
    assert '<option value=""' not in shown["html2"]  # wrong_class: its suggestion pre-filled (accept: it)
    history = client.get("/api/decisions", params={"history": "true"}).json()["decisions"]
    assert [(d["key"], d["status"], d["label"]) for d in history] == [
        (1, "accepted", None), (2, "accepted", None), (3, "accepted", None),
        (1, "accepted", case["other_class"]), (3, "rejected", None)]
    # what accepting without a class does: nothing, as documented
    changes = {c["key"]: c for c in review.changes()["changes"]}
    assert changes[2]["outcome"] == "not_applicable" and changes[1]["action"] == "relabel"
    # the server keeps a class with an accept only
    r = client.post("/api/findings/3/decision", json={"status": "skipped", "label": case["other_class"]})
    assert r.status_code == 200 and r.json()["decision"]["label"] is None
    review.store.close()
