"""The review API after audit 4: a decision whose note, reviewer or label holds U+0000 got 503 on PostgreSQL (which
can't store it) and 200 on SQLite: now 422 naming the field on every database, before the database is asked;
unknown ``type`` and ``class`` filters are refused (422) as an unknown ``status`` was, naming the known values;
an in-memory database (``--db sqlite://``) is said to lose the decisions."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
pytest.importorskip("httpx")
pytest.importorskip("alembic")

from maslow import io
from maslow.errors import MaslowError, MaslowWarning
from maslow.sample import write_shapes
from maslow.store.reviews import ReviewStore
from maslow.ui.app import create_app
from maslow.ui.state import open_review
from tests.ui.test_review_app_api import _client
from tests.ui.test_review_audit_fixes import _finding


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Any]:
    ds = write_shapes(tmp_path / "shapes", 4, seed=2)
    io.write_coco(ds, tmp_path / "shapes" / "annotations.json")
    truth = io.read_coco(tmp_path / "shapes" / "annotations.json")
    names = truth.schema.names
    other = names[(int(truth.annotations.label[0]) + 1) % len(names)]
    findings = [_finding(truth, 1, "wrong_class", 0, sug_class=other), _finding(truth, 2, "extra", 1),
                _finding(truth, 3, "extra", 2)]
    issues = tmp_path / "issues.json"
    issues.write_text(json.dumps(findings))
    return {"truth": truth, "issues": issues, "db": f"sqlite:///{tmp_path / 'review.db'}", "other": other,
            "findings": findings}


def _app(case: dict[str, Any], url: str | None = None) -> tuple[Any, ReviewStore]:
    store = ReviewStore(url or case["db"])
    review = open_review(case["issues"], case["truth"], store, truth_ref="t")
    return _client(create_app(review)), store


@pytest.mark.parametrize("field", ["note", "reviewer"])
def test_a_nul_character_is_refused_with_422_naming_the_field(case: dict[str, Any], field: str) -> None:
    client, store = _app(case)
    r = client.post("/api/findings/2/decision", json={"status": "rejected", field: "a\u0000b"})
    assert r.status_code == 422, r.text  # was 200 on SQLite (stored), 503 on PostgreSQL
    body = r.json()
    assert f"body.{field}" in body["error"] and "NUL" in body["error"]
    assert client.get("/api/summary").json()["n_decided"] == 0  # nothing stored
    ok = client.post("/api/findings/2/decision", json={"status": "rejected", field: "a b"})
    assert ok.status_code == 200 and ok.json()["decision"][field] == "a b"
    store.close()


def test_a_nul_label_is_refused_too(case: dict[str, Any]) -> None:
    client, store = _app(case)
    r = client.post("/api/findings/1/decision", json={"status": "accepted", "label": case["other"] + "\u0000"})
    assert r.status_code == 422 and "body.label" in r.json()["error"]
    store.close()


@pytest.mark.parametrize("field", ["label", "note", "reviewer"])
def test_the_store_refuses_nul_on_any_database(case: dict[str, Any], field: str) -> None:
    """The check is the store's own, before any query: the same on SQLite as on PostgreSQL."""
    with ReviewStore(case["db"]) as store:
        session = store.open_session(case["issues"], truth="t", n_findings=3)
        with pytest.raises(MaslowError, match=f"{field} must not contain the NUL character"):
            store.decide(session.id, 1, "accepted", **{field: "x\u0000"})
        assert store.history(session.id) == []


def test_unknown_type_and_class_filters_are_refused(case: dict[str, Any]) -> None:
    client, store = _app(case)
    r = client.get("/api/findings", params={"type": "foo"})
    assert r.status_code == 422  # was 200 with 0 items, while status=foo was 422
    assert "type filter" in r.json()["error"] and "'extra'" in r.json()["error"] and "'foo'" in r.json()["error"]
    r = client.get("/api/findings", params={"type": "extra,nope"})
    assert r.status_code == 422 and "'nope'" in r.json()["error"]
    r = client.get("/api/findings", params={"class": "no-such-class"})
    assert r.status_code == 422 and "class filter" in r.json()["error"] and "'no-such-class'" in r.json()["error"]
    # known values still filter; a schema class without findings gives none, not an error
    assert client.get("/api/findings", params={"type": "extra"}).json()["total"] == 2
    names = case["truth"].schema.names
    found = {f["class"] for f in case["findings"]}
    unused = [n for n in names if n not in found]
    if unused:
        assert client.get("/api/findings", params={"class": unused[0]}).json()["total"] == 0
    first = case["findings"][0]["class"]
    want = sum(f["class"] == first for f in case["findings"])
    assert client.get("/api/findings", params={"class": first}).json()["total"] == want
    assert client.get("/api/findings", params={"status": "foo"}).status_code == 422
    store.close()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_is_said_to_lose_the_decisions(case: dict[str, Any], url: str) -> None:
    store = ReviewStore(url)
    assert store.in_memory
    with pytest.warns(MaslowWarning, match="in memory: every decision is lost"):
        open_review(case["issues"], case["truth"], store, truth_ref="t")
    store.close()
    with ReviewStore(case["db"]) as on_disk, warnings.catch_warnings():
        warnings.simplefilter("error")  # a file: no note
        assert not on_disk.in_memory
        open_review(case["issues"], case["truth"], on_disk, truth_ref="t")
