"""A workspace's records: the checks of a version record's fields (``version.json``) and the cleaning of the temp
folders commits killed midway leave in ``.maslow/``."""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

IN_USE = ".in-use"  # the lock file of a commit's temp folder, held while the commit runs
ID = re.compile(r"[0-9a-f]{16}")  # a version id


def valid_name(name: str) -> bool:
    """Whether ``name`` can name a dataset (a file in ``refs/``: never a path, never hidden)."""
    return bool(name) and all(c.isalnum() or c in "-_." for c in name) and not name.startswith(".")


class RecordError(ValueError):
    """A version record's field is missing, unknown or malformed (``field`` names it)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


_REQUIRED = ("id", "dataset", "parent", "created", "message", "n_images", "n_annotations")
_OPTIONAL = ("source", "format", "content", "changes", "report")


def check_record(d: dict[str, Any]) -> None:
    """Refuse a damaged version record (a field missing, unknown or of the wrong type) before any command uses it:
    ``maslow log`` and ``diff`` crashed on a ``created`` that was a number or a ``report`` that was a list."""
    for key in _REQUIRED:
        if key not in d:
            raise RecordError("is missing", key)
    unknown = sorted(set(d) - {*_REQUIRED, *_OPTIONAL})
    if unknown:
        raise RecordError(f"is not a field of a version record (fields: {', '.join((*_REQUIRED, *_OPTIONAL))})",
                          unknown[0])
    for key in ("id", "dataset", "created", "message", "source", "format", "content"):
        if key in d and not isinstance(d[key], str):
            raise RecordError(f"must be a string, got {type(d[key]).__name__} {d[key]!r:.40}", key)
    if not ID.fullmatch(d["id"]):
        raise RecordError(f"must be a version id (16 hex digits), got {d['id']!r:.40}", "id")
    if not valid_name(d["dataset"]):
        raise RecordError(f"must be a dataset name, got {d['dataset']!r:.40}", "dataset")
    parent = d["parent"]
    if parent is not None and (not isinstance(parent, str) or not ID.fullmatch(parent) or parent == d["id"]):
        raise RecordError(f"must be an earlier version id (16 hex digits, not the version's own) or null, got "
                          f"{parent!r:.40}", "parent")
    for key in ("n_images", "n_annotations"):
        if isinstance(d[key], bool) or not isinstance(d[key], int) or d[key] < 0:
            raise RecordError(f"must be a count (an integer >= 0), got {d[key]!r:.40}", key)
    changes = d.get("changes", [])
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise RecordError(f"must be a list of objects, got {changes!r:.40}", "changes")
    report = d.get("report", {})
    if not isinstance(report, dict):
        raise RecordError(f"must be an object, got {type(report).__name__}", "report")
    for key in ("n_issues", "n_errors"):
        if key in report and (isinstance(report[key], bool) or not isinstance(report[key], int)):
            raise RecordError(f"must be an integer, got {report[key]!r:.40}", f"report.{key}")
    if "counts" in report and not isinstance(report["counts"], dict):
        raise RecordError(f"must be an object, got {report['counts']!r:.40}", "report.counts")


def clean_temp_folders(state: Path, *, min_age: float = 600.0) -> list[Path]:
    """Remove the temp folders (``.maslow/tmp*``; ``state`` is ``.maslow``) of commits killed midway (SIGKILL, out of
    memory: each holds a whole snapshot); returns them. One is removed only when no process holds its lock
    (``IN_USE``: the OS releases it when its process dies) and it is ``min_age`` seconds old; one without a lock
    file (made by an older maslow, or just created) only when a day old. No-op on Windows (no ``fcntl``)."""
    if sys.platform == "win32" or not state.is_dir():
        return []
    import fcntl

    removed = []
    now = time.time()
    for folder in state.glob("tmp*"):
        try:
            if folder.is_symlink() or not folder.is_dir():
                continue
            lock = folder / IN_USE
            age = now - max(folder.stat().st_mtime, lock.stat().st_mtime if lock.exists() else 0.0)
            if age < (min_age if lock.exists() else 86400.0):
                continue
            with open(lock, "ab") as f:  # a lock file of a folder without one: it is removed with it
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a live commit's
                    continue
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        except OSError:  # removed meanwhile by another cleaner, or unreadable: left alone
            continue
    return removed

