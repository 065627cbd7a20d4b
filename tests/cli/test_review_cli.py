"""`maslow review apply|status` (and serve's checks): the accepted findings applied, in a file or a workspace
version; nothing written on error."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")  # the store's migrations (maslow[serve])

from maslow import io
from maslow.errors import MaslowError
from maslow.sample import write_shapes
from maslow.store.reviews import ReviewStore, database_url, file_hash
from tests.helpers import run_cli


@pytest.fixture
def qa_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A COCO truth with a swapped class and a dropped box, predictions of the clean truth, `maslow qa`'s
    ISSUES.json (run in ``tmp_path``, outside any workspace)."""
    monkeypatch.chdir(tmp_path)
    clean = write_shapes(tmp_path / "shapes", 12, seed=1)
    io.write_coco(clean, tmp_path / "shapes" / "clean.json")
    coco = json.loads((tmp_path / "shapes" / "clean.json").read_text())
    anns = [a for a in coco["annotations"] if not a.get("iscrowd")]
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
              "score": 0.6 + 0.35 * (k % 7) / 6} for k, a in enumerate(anns)]
    anns[3]["category_id"] = anns[3]["category_id"] % 3 + 1
    coco["annotations"] = [a for a in coco["annotations"] if a is not anns[6]]
    gt = tmp_path / "shapes" / "noisy.json"
    gt.write_text(json.dumps(coco))
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    code, out = run_cli(["qa", "--gt", str(gt), "--pred", "pred.json", "--out", "issues.json"])
    assert code == 0, out
    clean_coco = json.loads((tmp_path / "shapes" / "clean.json").read_text())
    return {"gt": gt, "issues": tmp_path / "issues.json", "clean": clean_coco, "swapped": anns[3]["id"],
            "dropped": anns[6], "tmp": tmp_path}


def _decide_all(issues: Path, status: str = "accepted", *, truth: str = "noisy") -> list[dict[str, Any]]:
    findings = json.loads(issues.read_text())
    with ReviewStore(database_url(issues)) as store:
        session = store.open_session(issues, truth=truth, n_findings=len(findings))
        for f in findings:
            store.decide(session.id, f["rank"], status)
    return findings


def test_apply_writes_the_corrected_dataset_and_the_change_log(qa_run: dict[str, Any]) -> None:
    findings = _decide_all(qa_run["issues"])
    types = {f["type"] for f in findings}
    assert {"wrong_class", "missing"} <= types
    out = qa_run["tmp"] / "fixed.json"
    code, text = run_cli(["review", "apply", "issues.json", "--gt", str(qa_run["gt"]), "--out", str(out), "--to",
                          "coco", "--json"])
    assert code == 0, text
    log = json.loads(text)
    assert log["result"]["counts"]["applied"] >= 2 and len(log["result"]["changes"]) == len(findings)
    fixed = json.loads(out.read_text())
    by_id = {a["id"]: a for a in fixed["annotations"]}
    clean = {a["id"]: a for a in qa_run["clean"]["annotations"]}
    assert by_id[qa_run["swapped"]]["category_id"] == clean[qa_run["swapped"]]["category_id"]
    dropped = qa_run["dropped"]
    added = [a for a in fixed["annotations"] if a["id"] not in clean]
    assert any(a["image_id"] == dropped["image_id"] and a["category_id"] == dropped["category_id"]
               and np.allclose(a["bbox"], dropped["bbox"], atol=0.02) for a in added)
    code, text = run_cli(["review", "status", "issues.json", "--json"])
    assert code == 0 and json.loads(text)["counts"]["accepted"] == len(findings)


def test_apply_writes_nothing_on_error(qa_run: dict[str, Any]) -> None:
    _decide_all(qa_run["issues"])
    coco = json.loads(qa_run["gt"].read_text())
    coco["annotations"] = coco["annotations"][1:]  # another version of the truth: rows shifted
    other = qa_run["tmp"] / "other.json"
    other.write_text(json.dumps(coco))
    out = qa_run["tmp"] / "fixed.json"
    for args in (["--gt", str(other)], ["--gt", str(qa_run["gt"]), "--decisions", "nope.json"]):
        code, text = run_cli(["review", "apply", "issues.json", *args, "--out", str(out), "--to", "coco"])
        assert code == 2, text
        assert not out.exists()
    assert "another version of the truth" in run_cli(["review", "apply", "issues.json", "--gt", str(other), "--out",
                                                      str(out), "--to", "coco"])[1].replace("\n", " ")


def test_apply_without_a_review_says_so(qa_run: dict[str, Any]) -> None:
    code, text = run_cli(["review", "apply", "issues.json", "--gt", str(qa_run["gt"]), "--out", "x.json", "--to",
                          "coco"])
    assert code == 2 and "no review of this ISSUES.json" in " ".join(text.split())
    assert not (qa_run["tmp"] / "x.json").exists() and not (qa_run["tmp"] / "issues.review.db").exists()


def test_apply_commit_makes_a_workspace_version(qa_run: dict[str, Any]) -> None:
    tmp = qa_run["tmp"]
    assert run_cli(["init"])[0] == 0
    code, text = run_cli(["import", str(qa_run["gt"]), "--from", "coco", "--name", "shapes"])
    assert code == 0, text
    code, text = run_cli(["qa", "--gt", "shapes", "--pred", "pred.json", "--out", "ws_issues.json"])
    assert code == 0, text
    findings = _decide_all(tmp / "ws_issues.json", truth="shapes")
    assert database_url(tmp / "ws_issues.json").endswith(".maslow/maslow.db")  # the workspace's database
    code, text = run_cli(["review", "apply", "ws_issues.json", "--gt", "shapes", "--commit", "--json"])
    assert code == 0, text
    version = json.loads(text)["version"]
    assert version["message"].startswith("review of ws_issues.json") and len(version["changes"]) == len(findings)
    code, text = run_cli(["log", "shapes", "--json"])
    assert code == 0 and len(json.loads(text)) == 2


def test_serve_refuses_a_taken_port_and_a_mismatched_truth(qa_run: dict[str, Any]) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, text = run_cli(["review", "issues.json", "--gt", str(qa_run["gt"]), "--port", str(port), "--no-open"])
    assert code == 2 and f"--port {port}" in text
    code, text = run_cli(["review", "issues.json", "--gt", str(qa_run["tmp"] / "shapes" / "clean.json"),
                          "--no-open"])
    assert code == 2 and "another version of the truth" in " ".join(text.split())
    assert file_hash(qa_run["issues"])  # the file is left as it was


def test_apply_decisions_file_is_checked_against_the_issues_and_the_truth(qa_run: dict[str, Any]) -> None:
    """`--decisions FILE` (the UI's export) is refused for another ISSUES.json or another truth, as the database's
    decisions are; on its own ISSUES.json and truth it applies."""
    from maslow.ui.state import open_review

    tmp, gt = qa_run["tmp"], qa_run["gt"]
    with ReviewStore(f"sqlite:///{tmp / 'ui.db'}") as store:
        review = open_review(qa_run["issues"], io.read_coco(gt), store, truth_ref="noisy")
        for f in review.findings:
            review.decide(int(f["rank"]), "accepted")
        (tmp / "export.json").write_text(json.dumps(review.export()))
    coco = json.loads(gt.read_text())
    coco["images"].append({**coco["images"][-1], "id": 10_000, "file_name": "extra.png"})  # after every row
    grown = tmp / "grown.json"
    grown.write_text(json.dumps(coco))
    (tmp / "issues2.json").write_text(qa_run["issues"].read_text() + "\n")  # the same findings, another file
    out = tmp / "fixed.json"
    for name, truth, why in [("issues.json", grown, "another truth"), ("issues2.json", gt, "another ISSUES.json")]:
        code, text = run_cli(["review", "apply", name, "--gt", str(truth), "--decisions", "export.json", "--out",
                              str(out), "--to", "coco"])
        assert code == 2 and why in " ".join(text.split()), text
        assert not out.exists()
    no_session = tmp / "bare.json"
    no_session.write_text(json.dumps({"decisions": json.loads((tmp / "export.json").read_text())["decisions"]}))
    code, text = run_cli(["review", "apply", "issues.json", "--gt", str(gt), "--decisions", str(no_session), "--out",
                          str(out), "--to", "coco"])
    assert code == 2 and "session" in text
    code, text = run_cli(["review", "apply", "issues.json", "--gt", str(gt), "--decisions", "export.json", "--out",
                          str(out), "--to", "coco", "--json"])
    assert code == 0, text
    assert json.loads(text)["result"]["counts"]["applied"] >= 2


def test_status_without_a_review_notes_it_on_stderr(qa_run: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from maslow.cli.main import app

    res = CliRunner().invoke(app, ["review", "status", "issues.json"])
    assert res.exit_code == 0, res.output
    assert "no review of this ISSUES.json" in " ".join(res.stderr.split())
    assert "no review" not in res.stdout and "decided" in res.stdout  # the table alone on stdout


def test_serve_refuses_an_allow_host_that_is_no_name(qa_run: dict[str, Any]) -> None:
    """`--allow-host` takes names (and *.DOMAIN): a URL or a port is refused before the server starts, and the
    database it opened is left as it was."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    for bad in ("http://box.lan:8765", "box.lan:8765"):
        code, text = run_cli(["review", "issues.json", "--gt", str(qa_run["gt"]), "--host", "0.0.0.0", "--allow-host",
                              bad, "--no-open"])
        assert code == 2 and "--allow-host must be a host name" in " ".join(text.split()), text
    code, text = run_cli(["review", "status", "issues.json", "--json"])
    assert code == 0 and json.loads(text)["n_decided"] == 0


@pytest.mark.skipif(sys.platform == "win32", reason="Windows' SO_REUSEADDR also takes a port in use")
def test_a_port_left_in_time_wait_is_free_again() -> None:
    """Ctrl+C and start again: the last run's connections leave the port in TIME_WAIT; uvicorn binds with
    SO_REUSEADDR, so must the check before it."""
    from maslow.cli.review import _check_port

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the last run's server (uvicorn) set it
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server closes first: its side of the connection stays in TIME_WAIT
        client.close()
    _check_port("127.0.0.1", port)
    with socket.socket() as taken:  # a port someone listens on is still refused
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(MaslowError, match=f"--port {taken.getsockname()[1]}"):
            _check_port("127.0.0.1", taken.getsockname()[1])


def test_serve_closes_the_store_when_it_stops_early(qa_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused truth or port ends `review serve` before the server runs: the database it opened is closed."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    opened: list[ReviewStore] = []
    closed: list[ReviewStore] = []
    init, close = ReviewStore.__init__, ReviewStore.close

    def track_init(self: ReviewStore, url: str) -> None:
        init(self, url)
        opened.append(self)

    def track_close(self: ReviewStore) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(ReviewStore, "__init__", track_init)
    monkeypatch.setattr(ReviewStore, "close", track_close)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for gt in (qa_run["gt"], qa_run["tmp"] / "shapes" / "clean.json"):  # a taken port; another truth
            code, text = run_cli(["review", "issues.json", "--gt", str(gt), "--port", str(port), "--no-open"])
            assert code == 2, text
    assert len(opened) == 2 and {id(s) for s in closed} == {id(s) for s in opened}


def test_apply_prints_the_results_notes(qa_run: dict[str, Any]) -> None:
    """The shapes truth has outlines; the accepted `missing` finding adds a box only, which the result notes (COCO's
    segm evaluation of the file fails without a segmentation): the CLI prints that note, not only --json."""
    _decide_all(qa_run["issues"])
    out = qa_run["tmp"] / "fixed.json"
    code, text = run_cli(["review", "apply", "issues.json", "--gt", str(qa_run["gt"]), "--out", str(out), "--to",
                          "coco"])
    assert code == 0, text
    flat = " ".join(text.split())
    assert "note:" in flat and "have a box and no outline" in flat
