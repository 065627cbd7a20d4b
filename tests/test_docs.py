"""Every ```python block in docs/ runs (each in a fresh namespace, in a temporary working folder).

The shell blocks, README's Python example (which reads the files its commands write), the options the pages give
the commands and the YAML blocks are checked in ``tests/test_docs_examples.py``.
"""

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
            out.append(pytest.param(code, f"{md.relative_to(DOCS)}#{n}", id=f"{md.relative_to(DOCS)}#{n}"))
    return out


@pytest.mark.parametrize(("code", "where"), _blocks())
def test_doc_example_runs(code: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    if "shared/data" in code and not SHARED.exists():
        pytest.skip("example reads ../shared/data, which is absent")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # examples may show warnings on purpose
        exec(compile(code, f"<{where}>", "exec"), {"__name__": "__doc_example__"})  # tracebacks name the block
    assert capsys.readouterr().out  # every example prints what it shows
