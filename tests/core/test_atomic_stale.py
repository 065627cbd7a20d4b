"""A write killed with SIGKILL leaves its temp sibling; the next atomic write to the same name removes it (and says
so), never a live writer's, another host's or a name of another form."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from maslow.core import atomic
from maslow.core.atomic import atomic_dir, atomic_path
from maslow.errors import MaslowWarning

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no SIGKILL; stale temps are not removed there")

_KILLED = """
import os, signal, sys
from pathlib import Path
from maslow.core.atomic import atomic_dir, atomic_path
dst = Path(sys.argv[1])
with ({writer})(dst) as tmp:
    {fill}
    print(tmp.name, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_write(dst: Path, folder: bool) -> tuple[str, str]:
    """(the temp name, stderr) of a write killed with SIGKILL halfway."""
    code = _KILLED.format(writer="atomic_dir" if folder else "atomic_path",
                          fill="(tmp / 'Annotations').mkdir(); (tmp / 'Annotations' / 'a.xml').write_text('x')"
                          if folder else "tmp.write_text('half a file')")
    res = subprocess.run([sys.executable, "-c", code, str(dst)], capture_output=True, text=True, timeout=60)
    assert res.returncode == -signal.SIGKILL, res.stderr
    return res.stdout.strip(), res.stderr


@pytest.mark.parametrize("folder", [True, False], ids=["atomic_dir", "atomic_path"])
def test_a_killed_writes_temp_is_removed_by_the_next_write_with_a_warning(tmp_path: Path, folder: bool) -> None:
    dst = tmp_path / ("voc" if folder else "out.json")
    first, err = _killed_write(dst, folder)
    assert first.startswith(f".{dst.name}.") and first.endswith(".tmp") and not err
    assert sorted(p.name for p in tmp_path.iterdir()) == [first]  # what SIGKILL leaves: no output, the temp
    second, err = _killed_write(dst, folder)  # killed again: it removed the first one's, and said so
    kind = "folder" if folder else "file"
    assert f"MaslowWarning: {tmp_path}: removed 1 temp {kind} left by an earlier write of '{dst.name}'" in err
    assert first in err and sorted(p.name for p in tmp_path.iterdir()) == [second]
    other = tmp_path / ".other.1-00000000-0123456789ab.tmp"  # another output's temp: not this write's business
    other.mkdir()
    with pytest.warns(MaslowWarning, match=rf"removed 1 temp {kind} left by an earlier write of '{dst.name}' that "
                                           rf"was killed before it finished: {second}"):
        writer = atomic_dir if folder else atomic_path
        with writer(dst) as tmp:
            if folder:
                (tmp / "a.txt").write_text("new")
            else:
                tmp.write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dst.name, other.name])


def test_a_live_writers_temp_and_names_of_other_forms_are_kept(tmp_path: Path) -> None:
    dst = tmp_path / "out"
    code = ("import sys, time\nfrom pathlib import Path\nfrom maslow.core.atomic import atomic_dir\n"
            "with atomic_dir(Path(sys.argv[1])) as tmp:\n    print(tmp.name, flush=True)\n    time.sleep(60)\n")
    with subprocess.Popen([sys.executable, "-c", code, str(dst)], stdout=subprocess.PIPE, text=True) as live:
        assert live.stdout is not None
        live_name = live.stdout.readline().strip()
        foreign = f".out.999999-{'0' * 8 if atomic._host() != '0' * 8 else '1' * 8}-0123456789ab.tmp"  # another host
        old_form = ".out.0123456789ab.tmp"  # an older maslow's name: no pid to test
        for name in (foreign, old_form):
            (tmp_path / name).mkdir()
        with atomic_dir(dst) as tmp:  # no warning: nothing removed (the test run turns warnings into errors)
            (tmp / "a").write_text("a")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out", live_name, foreign, old_form])
        live.kill()
        live.wait()
    # the killed writer's temp is stale now: the next write removes it
    with pytest.warns(MaslowWarning, match=r"removed 1 temp folder "), atomic_dir(dst):
        pass
    assert live_name not in {p.name for p in tmp_path.iterdir()}


def test_a_previous_output_swapped_out_is_kept_while_the_output_is_missing(tmp_path: Path) -> None:
    """Killed between its two renames, a write leaves the previous output as ``.old`` and no output: the only
    copy, so it is not removed; once an output is in place, a stale ``.old`` is."""
    dead = f"{2**22 + 12345}"  # above Linux's default pid_max: no such process
    old = tmp_path / f".out.{dead}-{atomic._host()}-0123456789ab.old"
    old.mkdir()
    with atomic_dir(tmp_path / "out"):
        pass
    assert old.is_dir()
    with pytest.warns(MaslowWarning, match="removed 1 temp folder"), atomic_dir(tmp_path / "out"):
        pass
    assert not old.exists()


def test_an_output_name_of_255_bytes_has_a_temp_name(tmp_path: Path) -> None:
    """The pid and host in the temp name made names from 225 bytes fail (240 had worked): long names are shortened
    in the temp, with a checksum of the whole."""
    for n in (200, 240, 255):
        name = "é" * ((n - 5) // 2) + "x" * ((n - 5) % 2) + ".json"
        assert len(name.encode()) == n
        with atomic_path(tmp_path / name) as tmp:
            tmp.write_text("{}")
        assert (tmp_path / name).read_text() == "{}"
    assert atomic._stem("a" * 300) != atomic._stem("a" * 299 + "b")  # the checksum tells them apart


def test_writing_many_files_into_one_folder_lists_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every atomic write listed its whole folder: N files into one folder cost N listings (O(N^2))."""
    listed: list[str] = []
    scandir = os.scandir
    monkeypatch.setattr(atomic.os, "scandir", lambda p: (listed.append(str(p)), scandir(p))[1])
    for i in range(50):
        with atomic_path(tmp_path / f"{i}.txt") as tmp:
            tmp.write_text("x")
    assert listed.count(str(tmp_path)) == 1
    (tmp_path / f".0.txt.{2**22 + 7}-{atomic._host()}-0123456789ab.tmp").write_text("left")  # another's change
    with pytest.warns(MaslowWarning, match="removed 1 temp file"), atomic_path(tmp_path / "50.txt") as tmp:
        tmp.write_text("x")
    assert listed.count(str(tmp_path)) == 2


def test_the_host_tag_holds_the_pid_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer in another pid namespace on the same host name (a container with the host's network): its pids mean
    nothing here, so its temp must not look like one of ours (its live temp was removed)."""
    if not Path("/proc/self/ns/pid").exists():
        pytest.skip("no /proc/self/ns/pid here")
    host = atomic._host.__wrapped__  # type: ignore[attr-defined]
    real = os.stat
    here = host()

    def other_ns(p: Any, *a: Any, **k: Any) -> Any:
        st = real(p, *a, **k)
        if str(p) == "/proc/self/ns/pid":
            return os.stat_result((st.st_mode, st.st_ino + 1, *tuple(st)[2:]))
        return st

    monkeypatch.setattr(atomic.os, "stat", other_ns)
    assert host() != here
