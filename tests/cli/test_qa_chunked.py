"""ISSUES.json written a chunk of records at a time: the same bytes as the whole list encoded at once, wherever the
chunk size splits it, with a dict per record held for one chunk only; ``write_json_list`` against ``json_bytes``,
json-module fallback included."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.cli.qa import _write_outputs
from maslow.cli.render import json_bytes, write_json_list
from maslow.core.dataset import Dataset
from maslow.quality import QualityIssues, check, find_label_issues
from maslow.quality.records import issue_record_chunks, issue_records
from tests.helpers import traced_peak
from tests.quality.test_consensus import _clean, _model, _plant

CHUNK = 4


@pytest.fixture(scope="module")
def found() -> dict[str, tuple[QualityIssues, Dataset]]:
    """Issues of every kind: a missing object (no annotation), suggested classes and boxes, rule findings with a
    text only; on a truth with COCO ids (``clean``) and one without (``noisy``: ids are rows)."""
    clean = _clean()
    noisy, _, _ = _plant(clean)
    out = {}
    for name, truth in (("clean", clean), ("noisy", noisy)):
        model = find_label_issues(truth, _model(clean), iou_type="bbox", min_score=0.0)
        out[name] = (QualityIssues.build([model, check(truth)]), truth)
    return out


@pytest.mark.parametrize("xywh", [True, False], ids=["xywh", "xyxy"])
@pytest.mark.parametrize("which", ["clean", "noisy"])
@pytest.mark.parametrize("n", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, None],
                         ids=["empty", "one", "chunk-1", "chunk", "chunk+1", "all"])
def test_issues_json_in_chunks_is_the_whole_list_byte_for_byte(
        found: dict[str, tuple[QualityIssues, Dataset]], tmp_path: Path, n: int | None, which: str,
        xywh: bool) -> None:
    issues, truth = found[which]
    assert len(issues) > 3 * CHUNK and len(set(issues.type.tolist())) >= 4
    part = issues if n is None else issues.top(n)
    out = tmp_path / "ISSUES.json"
    _write_outputs(part, truth, out, None, xywh=xywh, chunk_size=CHUNK)
    # the plain path: every record in one list, encoded at once
    records = issue_records(part, truth, xywh=xywh)
    assert out.read_bytes() == json_bytes(records) + b"\n"
    assert [r["rank"] for r in json.loads(out.read_bytes())] == list(range(1, len(part) + 1))
    chunks = list(issue_record_chunks(part, truth, xywh=xywh, size=CHUNK))
    assert [len(c) for c in chunks] == [min(CHUNK, len(part) - lo) for lo in range(0, len(part), CHUNK)]
    assert [r for c in chunks for r in c] == records


ITEMS: list[Any] = [
    {"a": 1, "b": [1.5, None, {}], "c": [], "s": "é\n\"q\"", "n": float("nan")},
    [],
    {"deep": {"x": [[1, 2], [3]]}},
    "text",
    None,
    3.25,
    {"k": np.float64(0.5), "v": np.arange(3)},
]


@pytest.mark.parametrize("sizes", [[], [0, 0], [1], [3], [1, 0, 2], [4, 3], [2, 2, 2, 1], [7], [0, 7, 0]],
                         ids=lambda s: "-".join(map(str, s)) or "none")
def test_write_json_list_is_json_bytes_of_the_items(sizes: list[int]) -> None:
    items = ITEMS[: sum(sizes)]
    chunks = []
    lo = 0
    for s in sizes:
        chunks.append(items[lo:lo + s])
        lo += s
    f = io.BytesIO()
    write_json_list(f, lambda: iter(chunks))
    assert f.getvalue() == json_bytes(items)


def test_write_json_list_falls_back_to_the_json_module_for_the_whole_list() -> None:
    """An item orjson refuses (an integer beyond 64 bits) in a late chunk: the list is rewritten from its start by
    the json module, as json_bytes does for the whole document ("5e-05", not orjson's "5e-5", in the first chunk)."""
    items = [{"score": 5e-05, "id": 1}, {"id": 2}, {"id": 3}, {"id": 2**70}]
    assert b"5e-05" in json_bytes(items)
    f = io.BytesIO()
    f.write(b"before ")
    write_json_list(f, lambda: (items[i:i + 2] for i in range(0, len(items), 2)))
    assert f.getvalue() == b"before " + json_bytes(items)


def test_writing_issues_json_holds_one_chunk_of_records(tmp_path: Path) -> None:
    """The peak of the chunked writer stays a fraction of the plain path's, which held a dict per record and the
    whole document's bytes (10,000 issues)."""
    clean = _clean(20)
    a = clean.annotations
    rng = np.random.default_rng(0)
    n = 10_000
    rows = rng.integers(0, len(a), n)
    box = np.where(rng.random((n, 1)) < 0.5, np.asarray(a.box)[rows] + 1.0, np.nan)
    issues = QualityIssues.block("low_iou", "warning", image=a.image[rows], annotation=rows, score=rng.random(n),
                                 reason=[f"reason {k}" for k in range(n)], suggestion="move the box", box=box,
                                 label=a.label[rows])

    out = tmp_path / "ISSUES.json"
    chunked = traced_peak(lambda: _write_outputs(issues, clean, out, None, xywh=True, chunk_size=250))
    plain = traced_peak(lambda: json_bytes(issue_records(issues, clean, xywh=True)))
    assert out.read_bytes() == json_bytes(issue_records(issues, clean, xywh=True)) + b"\n"
    assert chunked < plain / 8, (chunked, plain)

