"""scripts/demo.sh names the scripts it runs by its own folder, so DEMO_OUT may be any folder (it broke at step 4
for DEMO_OUT=/tmp/x or out/demo: ``cd "$OUT/ws" && python ../../scripts/demo_roundtrip.py``)."""

from __future__ import annotations

import re
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
#: a path to one of the demo's scripts, with what comes before it on the line
SCRIPT = re.compile(r"(\S*?)(demo_\w+\.(?:sh|py))")


def test_every_script_demo_sh_runs_is_named_by_its_own_folder() -> None:
    text = (SCRIPTS / "demo.sh").read_text(encoding="utf-8")
    assert 'HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)' in text
    used = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for prefix, name in SCRIPT.findall(line):
            used.append(name)
            assert prefix.endswith('"$HERE/'), f"{line.strip()!r}: {name} must be named as \"$HERE/{name}\""
            assert (SCRIPTS / name).is_file() or name == "demo_select.sh", name
    assert "demo_roundtrip.py" in used and "demo_eval.sh" in used
