"""The ``maslow`` script prints a MaslowWarning as a ``note:`` line (it printed Python's
``.../voc.py:497: MaslowWarning: ...`` form, source line and all); other warnings keep Python's form."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings

from maslow.cli.main import _show_warning
from maslow.errors import MaslowWarning


def test_a_maslow_warning_is_a_note_and_others_keep_pythons_form() -> None:
    out = io.StringIO()
    _show_warning(MaslowWarning("removed 1 temp folder"), MaslowWarning, "/x/voc.py", 497, out)
    assert out.getvalue() == "note: removed 1 temp folder\n"
    out = io.StringIO()
    _show_warning(DeprecationWarning("old"), DeprecationWarning, "/x/y.py", 3, out)
    assert "y.py:3: DeprecationWarning: old" in out.getvalue()


def test_the_script_installs_it() -> None:
    code = ("import sys, warnings; from maslow.cli import main as m; sys.argv = ['maslow', '--help']\n"
            "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
            "from maslow.errors import MaslowWarning; warnings.warn('hello there', MaslowWarning)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "note: hello there" in res.stderr and "MaslowWarning" not in res.stderr
    assert warnings.showwarning is not _show_warning  # importing the CLI alone changes nothing
