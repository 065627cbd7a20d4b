"""Running one benchmarked tool in a fresh process: its output, wall time and CPU time (user + system of the child
and its threads, from ``wait4``). Output goes to temporary files, not pipes: a chatty child can't block on a full
pipe while the parent waits for it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Child:
    """A finished child: ``error`` is the last line of its stderr when it failed (else None)."""

    stdout: str
    error: str | None
    cpu_s: float
    wall_s: float
    max_rss_mb: float


def run_child(code: str, args: list[str], env: dict[str, str] | None = None) -> Child:
    """Run ``python -c code *args`` and wait for it."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=fout, stderr=ferr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read().decode(), ferr.read().decode()
    error = None
    if os.waitstatus_to_exitcode(status) != 0:
        lines = err.strip().splitlines()
        error = lines[-1] if lines else "failed"
    return Child(out, error, usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024)


def pick_tools(requested: str, modules: dict[str, str]) -> tuple[list[str], list[str]]:
    """The tools of a comma-separated ``requested`` list that can run (``modules``: tool -> the module it imports),
    and a note for each one left out (unknown, or not installed)."""
    import importlib.util

    tools, notes = [], []
    for t in (t for t in requested.split(",") if t):
        if t not in modules:
            notes.append(f"{t}: unknown tool (known: {', '.join(modules)}), skipped")
        elif importlib.util.find_spec(modules[t]) is None:
            notes.append(f"{t}: not installed, skipped")
        else:
            tools.append(t)
    return tools, notes


def median_run(runs: list[dict]) -> dict:
    """The run of median CPU time among those without an error (the first run when all failed)."""
    ok = sorted((r for r in runs if "error" not in r), key=lambda r: r["cpu_s"])
    return ok[len(ok) // 2] if ok else runs[0]
