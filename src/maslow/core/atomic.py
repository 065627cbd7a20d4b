"""Atomic writes: every output file or folder appears whole or not at all (write to a temp name, then rename).

The temp name is ``.NAME.<pid>-<host>-<random>.tmp`` beside the output (``.old`` for the previous output while it
is swapped out). A write that is killed (SIGKILL, out of memory) leaves it behind; the next atomic write into the
same folder removes those left by processes of this host and pid namespace that are no longer running (never a live
writer's), with a ``MaslowWarning`` naming them. A process lists a folder again only when something else changed it
since its last write there, so writing N files into one folder lists it once.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import functools
import os
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from maslow.errors import FormatError, MaslowWarning, NoRoomError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``, on failure removed."""
    path = Path(path)
    if path.name in ("", ".."):  # ".", "..", "a/..", "/": a folder, never a file's name
        raise FormatError("output must be a file path, got a folder", path=path)
    tmp = _sibling(path, "tmp")
    clean = _remove_stale(path)
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
    _remember(path, clean)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path`` (old contents removed), else it is removed.

    A format that writes many files (YOLO, VOC) fills the temp directory, so a failure halfway leaves the
    previous output untouched. An existing folder at ``path`` is replaced as a whole, whatever it holds (every
    ``io.write_*`` that writes a folder documents this; ``maslow convert`` and ``export`` refuse a folder that is not
    empty unless given ``--overwrite``), except a folder whose loss can't be meant, refused before anything is
    written: the current folder or one above it (a filesystem root), and a folder holding a maslow workspace
    (``maslow.yaml`` or ``.maslow/`` in it or in a folder below it). A symlink at ``path`` is replaced, not what it
    points to. ``"."`` and ``".."`` name the folders they stand for. Inside ``walked([path])`` the workspace search
    is left to the caller, who has just done it.

    Raises:
        FormatError: ``path`` is one of the folders above, or can't be written (named in the message).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_dir(folder / "out") as tmp:
        ...     _ = (tmp / "a.txt").write_text("a")
        >>> sorted(p.name for p in (folder / "out").iterdir())
        ['a.txt']
    """
    given = path = Path(path)
    with _writable(path, path):  # a folder above that can't be read: named, as below
        if path.name in ("", ".."):  # ".", "..", "a/..", "/": the folder they stand for (a temp name needs a name)
            path = path.resolve()
        refused = replace_refusal(path)
    if refused is not None:
        raise FormatError(refused, path=given)
    tmp = _sibling(path, "tmp")
    clean = _remove_stale(path)
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
    _remember(path, clean)


#: what makes a folder a maslow workspace (``store.workspace.CONFIG`` and ``STATE``; core can't import store)
WORKSPACE_MARKS = ("maslow.yaml", ".maslow")


def replace_refusal(path: str | Path) -> str | None:
    """Why replacing the folder ``path`` as a whole (deleting what it holds) must not happen, or None.

    Refused: the current folder or a folder above it (a filesystem root included), and a folder holding a maslow
    workspace (``maslow.yaml`` or ``.maslow/``, in it or in any folder below it: its versions would be deleted). A
    path that doesn't exist, a file and a symlink (replaced, not followed) are None: nothing below them is deleted.
    The message follows the error recipe, for a ``FormatError`` naming ``path``.
    """
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return None
    real = path.resolve()
    try:
        cwd = Path.cwd().resolve()
    except OSError:  # the current folder was deleted: nothing to protect there
        cwd = None
    what = "an output folder replaced as a whole (everything in it deleted)"
    if real.parent == real:
        return f"{what} must not be a filesystem root, got {real}; give a new or empty folder"
    if cwd is not None and (real == cwd or real in cwd.parents):
        got = "the current folder" if real == cwd else f"a folder above the current folder {cwd}"
        return f"{what} must not be the current folder or a folder above it, got {got}; give a new or empty folder"
    workspace = None if _walked(real) else workspace_inside(real)
    if workspace is not None:
        return (f"{what} must not hold a maslow workspace, got {workspace}; its versions would be deleted. Give a "
                "new or empty folder")
    return None


def workspace_inside(folder: str | Path) -> Path | None:
    """The first ``maslow.yaml`` file or ``.maslow`` folder in ``folder`` or below it (symlinks not followed, as a
    folder's removal doesn't follow them), or None."""
    config, state = WORKSPACE_MARKS
    for top, dirs, files in os.walk(folder, onerror=_ignore):
        if state in dirs and not os.path.islink(os.path.join(top, state)):
            return Path(top, state)
        if config in files and not os.path.islink(os.path.join(top, config)):
            return Path(top, config)
    return None


#: folders a caller has just looked through for a workspace (``walked``): resolved path -> its stamp then
_WALKED: contextvars.ContextVar[dict[Path, tuple[int, int, int] | None] | None] = contextvars.ContextVar(
    "maslow_walked", default=None)


def walked(folders: Iterable[str | Path]) -> contextlib.AbstractContextManager[None]:
    """Inside, ``atomic_dir`` doesn't look again for a workspace in ``folders``: the caller has just done it (maslow's
    CLI checks its destination with ``workspace_inside`` before reading the data), and a second walk of a folder of
    1M images costs a full scan. A folder whose device, inode or modification time changed since ``walked`` was
    called (a folder that didn't exist then, one replaced) is looked through again; the other refusals still apply.

    The folders are stamped when ``walked`` is called, not when its scope is entered: a command calls it right after
    its check and may enter the scope only around the write, hours later (``crossval`` trains first); a change in
    between is still seen.

    Example:
        >>> import tempfile
        >>> out = Path(tempfile.mkdtemp()) / "out"
        >>> with walked([out]), atomic_dir(out) as tmp:  # doesn't exist when walked: looked through as before
        ...     _ = (tmp / "a.txt").write_text("a")
    """
    return _walked_scope({(real := _resolved(f)): _stamp(real) for f in folders})


@contextlib.contextmanager
def _walked_scope(stamps: dict[Path, tuple[int, int, int] | None]) -> Iterator[None]:
    token = _WALKED.set({**(_WALKED.get() or {}), **stamps})
    try:
        yield
    finally:
        _WALKED.reset(token)


def _walked(real: Path) -> bool:
    """Whether ``real`` is a folder of a ``walked`` scope, unchanged since (it existed then)."""
    stamp = (_WALKED.get() or {}).get(real)
    return stamp is not None and stamp == _stamp(real)


def _stamp(real: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(real)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def _resolved(path: str | Path) -> Path:
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop: as written
        return Path(os.path.abspath(path))


def _ignore(error: OSError) -> None:
    """os.walk's onerror: a folder that can't be listed is skipped (its removal fails on it the same way)."""


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
    """A fresh hidden name beside ``path`` (``.name.<pid>-<host>-<random>.tmp``), for atomic replacement: the pid
    and host tell a later write whether its writer still runs (``_remove_stale``). A long name is shortened in it
    (``_stem``), so that every output name the filesystem takes has a temp name it takes too."""
    return path.with_name(f".{_stem(path.name)}.{os.getpid()}-{_host()}-{os.urandom(6).hex()}.{kind}")


def _stem(name: str) -> str:
    """``name`` as a temp name holds it: names over 180 bytes become their first 120 characters that fit, ``~`` and
    a checksum of the whole (a temp adds ~36 bytes; filesystems take 255)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= 180:
        return name
    import zlib

    return raw[:120].decode("utf-8", "ignore") + f"~{zlib.crc32(raw):08x}"


@functools.cache
def _host() -> str:
    """8 hex digits of this machine's name and this process's pid namespace: a temp name left on a shared folder by
    another machine, or by a container whose pids mean nothing here, is never taken for one of ours."""
    import socket
    import zlib

    tag = socket.gethostname()
    with contextlib.suppress(OSError):
        tag += f"/{os.stat('/proc/self/ns/pid').st_ino}"
    return f"{zlib.crc32(tag.encode('utf-8', 'replace')):08x}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (one of another user counts: it may be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


_TEMP = re.compile(r"\.(.+)\.(\d+)-([0-9a-f]{8})-[0-9a-f]{12}\.(tmp|old)")
#: folder -> its modification time after this process's last atomic write there, when that write's look found no
#: temp of a live writer: the folder is not listed again until something else changes it (writing N files into one
#: folder lists it once, not N times)
_CLEAN: dict[str, int] = {}


def _remove_stale(path: Path) -> bool:
    """Remove the temp names in ``path``'s folder that killed writes left (``_sibling`` names of this host and pid
    namespace whose process no longer runs), warn naming them, and return their names. A live writer's temp is
    kept, and so is a previous output (``.old``) while its output is missing (a write killed between its two
    renames: it is the only copy). Names of another form (an older maslow's, without a pid) are left alone. Nothing
    happens on Windows, where ``os.kill`` can't test a process. Returns whether the folder held no temp to look at
    again (``_remember`` then spares the next write there the listing)."""
    if sys.platform == "win32":
        return False
    folder = str(path.parent)
    try:
        if _CLEAN.get(folder) == os.stat(folder).st_mtime_ns:
            return True
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:  # no parent yet, or one that can't be listed: nothing to clean there
        return False
    stems = {_stem(e.name) for e in entries}
    stale, live = [], False
    for e in entries:
        m = _TEMP.fullmatch(e.name) if e.name.startswith(".") else None
        if m is None or m[3] != _host():
            continue
        if _alive(int(m[2])):
            live = True
        elif m[4] == "tmp" or m[1] in stems:
            stale.append((e, m[1]))
        else:
            live = True  # a kept .old: look again next time
    removed, names, folders = [], [], 0
    for e, name in stale:
        try:
            if e.is_dir(follow_symlinks=False):
                import shutil

                shutil.rmtree(e.path)
                folders += 1
            else:
                os.unlink(e.path)
        except OSError:
            continue
        removed.append(e.name)
        names.append(name)
    if removed:
        what = "temp folder" if folders == len(removed) else "temp file" if not folders else "temp folder or file"
        whose = f"{names[0]!r}" if len(set(names)) == 1 else ", ".join(sorted({repr(n) for n in names}))
        warnings.warn(f"{path.parent}: removed {len(removed)} {what}{'s' if len(removed) > 1 else ''} left by an "
                      f"earlier write of {whose} that was killed before it finished: "
                      f"{', '.join(removed[:5])}{' ...' if len(removed) > 5 else ''}", MaslowWarning, stacklevel=4)
    return not live


def _remember(path: Path, clean: bool) -> None:
    """After a write to ``path`` is in place: its folder's time, when the look before it found nothing live (a
    write killed later in another process changes the folder, so the next write looks again)."""
    folder = str(path.parent)
    if clean:
        with contextlib.suppress(OSError):
            _CLEAN[folder] = os.stat(folder).st_mtime_ns
    else:
        _CLEAN.pop(folder, None)


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
