"""Every ```python block in docs/ runs (each in a fresh namespace, in a temporary working folder)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from tests.conftest import SHARED

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks() -> list[object]:
    out = []
    for md in sorted(DOCS.rglob("*.md")):
        for n, code in enumerate(BLOCK.findall(md.read_text(encoding="utf-8"))):
            out.append(pytest.param(code, id=f"{md.relative_to(DOCS)}#{n}"))
    return out


@pytest.mark.parametrize("code", _blocks())
def test_doc_example_runs(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    if "shared/data" in code and not SHARED.exists():
        pytest.skip("example reads ../shared/data, which is absent")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # examples may show warnings on purpose
        exec(compile(code, "<doc>", "exec"), {"__name__": "__doc_example__"})
    assert capsys.readouterr().out  # every example prints what it shows
