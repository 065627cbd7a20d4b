"""Walking a folder tree for the readers that search one recursively (YOLO, semantic label maps, IDX, DOTA images,
probability files), as ``maslow.io.images.list_images`` walks image folders: linked folders and files are followed
(``Path.rglob`` and ``os.walk`` on Python 3.11 do not enter a linked folder, so a dataset whose ``images/`` links
to another disk read as empty), and each real folder is walked once, so a link to a parent folder does not loop.
"""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Callable, Iterator

from maslow.errors import MaslowWarning

# the errors ``Path.is_file`` and ``Path.is_dir`` read as "no" (a link that loops, a file gone meanwhile)
_NO = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def files_under(folder: str, name_ok: Callable[[str], bool]) -> list[tuple[str, ...]]:
    """The parts (below ``folder``) of the files under it whose name ``name_ok`` accepts, sorted as the Paths
    sort (by their parts), hidden ones included (as ``Path.rglob("*")`` lists them); see ``walk_folders``."""
    return sorted([(*parts, name) for parts, _, names in walk_folders(folder, name_ok) for name in names])


Walk = tuple[str, tuple[str, ...], tuple[int, int]]  # a folder's path, parts below the root, (st_dev, st_ino)


def folders(folder: str, key: tuple[int, int], *, hidden: bool = True
            ) -> Iterator[tuple[tuple[str, ...], tuple[int, int], list[os.DirEntry[str]] | OSError]]:
    """(parts below ``folder``, (st_dev, st_ino), its entries sorted by name, or the error listing it) of ``folder``
    (whose identity is ``key``) and of each real folder under it, once; ``hidden=False`` leaves out the entries
    whose name starts with a dot (such folders are not walked).

    Linked folders and files are followed. A linked folder waits until every folder reached without a link is
    walked, then the linked ones go in sorted order: a folder reached with and without a link keeps its own path
    (adding ``all -> train`` beside ``train/`` changes no path), one reached through links only goes under the first
    linked path in sorted order, and a link to a parent folder, or a second link to a folder, is not walked again.
    Depth first, a stack, not recursion (a deep tree is no error); a stat call per folder and per link only (a plain
    entry's type comes with the listing).
    """
    seen: set[tuple[int, int]] = set()
    stack: list[Walk] = [(folder, (), key)]
    linked: list[Walk] = []
    while stack or linked:
        if not stack:
            linked.sort(key=lambda w: w[1], reverse=True)
            stack.append(linked.pop())
        path, parts, at = stack.pop()
        if at in seen:
            continue
        seen.add(at)
        try:
            with os.scandir(path) as it:
                entries = sorted((d for d in it if hidden or not d.name.startswith(".")), key=lambda d: d.name)
        except OSError as e:
            yield parts, at, e
            continue
        yield parts, at, entries
        sub: list[Walk] = []
        for d in entries:
            try:
                if d.is_dir():
                    s = d.stat()  # a folder's key; cached for a link (is_dir already asked)
                    walk = (d.path, (*parts, d.name), (s.st_dev, s.st_ino))
                    (linked if d.is_symlink() else sub).append(walk)
            except OSError as err:
                if err.errno not in _NO:
                    raise
        stack.extend(reversed(sub))


def walk_folders(folder: str, name_ok: Callable[[str], bool]
                 ) -> Iterator[tuple[tuple[str, ...], tuple[int, int], list[str]]]:
    """(parts below ``folder``, (st_dev, st_ino), the names ``name_ok`` accepts of the files in it, sorted) of
    ``folder`` and each real folder under it (``folders``: linked folders followed, each walked once), hidden ones
    included; the identity tells a file reached by two paths (through a link) from two files. A folder that can't
    be listed (no permission) is skipped, said in a MaslowWarning once the walk ends, and a broken link (no file)
    is skipped.
    """
    try:
        st = os.stat(folder)
    except OSError:
        return
    unlisted: list[tuple[str, ...]] = []
    for parts, at, entries in folders(folder, (st.st_dev, st.st_ino)):
        if isinstance(entries, OSError):
            if isinstance(entries, PermissionError):
                unlisted.append(parts)
                continue
            raise entries
        names: list[str] = []
        for e in entries:
            try:
                if not e.is_dir() and name_ok(e.name) and e.is_file():
                    names.append(e.name)
            except OSError as err:
                if err.errno not in _NO:
                    raise
        yield parts, at, names
    if unlisted:
        n = len(unlisted)
        warnings.warn(f"{folder}: {n} folder{'s' if n > 1 else ''} could not be listed (no permission) and "
                      f"{'were' if n > 1 else 'was'} skipped (first: {os.path.join(folder, *unlisted[0])})",
                      MaslowWarning, stacklevel=2)


def suffix_of(name: str) -> str:
    """``Path(name).suffix`` in lower case: from the last dot, where a leading or trailing dot is no suffix."""
    i = name.rfind(".")
    return name[i:].lower() if 0 < i < len(name) - 1 else ""
