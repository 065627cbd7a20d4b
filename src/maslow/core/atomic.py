"""Atomic writes: every output file or folder appears whole or not at all (write to a temp name, then rename)."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from maslow.errors import FormatError, NoRoomError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``, on failure removed."""
    path = Path(path)
    tmp = _sibling(path, "tmp")
    with _writable(path, tmp):
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open applies the umask (mkstemp would leave the output readable by its owner only)
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        with _no_room(path):
            yield tmp
        with _writable(path, tmp):
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path`` (old contents removed), else it is removed.

    A format that writes many files (YOLO, VOC) fills the temp directory, so a failure halfway leaves the
    previous output untouched.
    """
    path = Path(path)
    tmp = _sibling(path, "tmp")
    with _writable(path, tmp):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(tmp, 0o777)  # the umask applies (mkdtemp would make it owner-only)
    try:
        with _no_room(path):
            yield tmp
        if path.exists() or path.is_symlink():
            old = _sibling(path, "old")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)  # put the previous output back
                raise
            if old.is_dir() and not old.is_symlink():
                import shutil  # loads on first use: bz2, lzma and more come with it

                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def _writable(path: Path, tmp: Path) -> Iterator[None]:
    """Turn an OSError while preparing or placing the output (a parent that is a file, a read-only or missing
    folder, a directory in the way of a file) into a FormatError naming ``path``."""
    try:
        yield
    except OSError as e:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            got = f"{blocker}, a file where a folder must be"
        else:
            where = "" if e.filename is None or Path(e.filename) in (path, tmp) else f" ({e.filename})"
            got = f"{(e.strerror or str(e)).lower()}{where}"
        raise FormatError(f"output must be a writable path, got {got}", path=path) from None


#: errors of a write the disk or the system refuses (full, over a size limit or quota, read-only)
NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


@contextlib.contextmanager
def _no_room(path: Path) -> Iterator[None]:
    """Turn a refused write while the output is written (a full disk, a file size limit) into a NoRoomError (a
    FormatError) naming ``path``: the temp output is removed, so nothing is left half-written."""
    try:
        yield
    except OSError as e:
        if e.errno not in NO_ROOM:
            raise
        raise NoRoomError(f"could not be written: {os.strerror(e.errno).lower()}; nothing was written",
                          errno=e.errno, path=path) from None


def _sibling(path: Path, kind: str) -> Path:
    """A fresh hidden name beside ``path`` (``.name.<random>.tmp``), for atomic replacement."""
    return path.with_name(f".{path.name}.{os.urandom(6).hex()}.{kind}")


def write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) while inside: writers of one shared folder (a
    workspace, an embedding cache) take turns; the OS releases it when the file closes or the process dies. No lock
    on Windows (no ``fcntl``): writers there behave as without it."""
    with open(path, "ab") as f:
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        yield
