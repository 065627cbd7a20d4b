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
    return TestClient(app)


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
