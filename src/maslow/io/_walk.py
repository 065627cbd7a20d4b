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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from maslow.errors import MaslowWarning

if TYPE_CHECKING:
    from maslow.io._common import Collector

# the errors ``Path.is_file`` and ``Path.is_dir`` read as "no" (a link that loops, a file gone meanwhile)
_NO = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


@dataclass
class Skipped:
    """What the walks of one reader skipped: the folders they could not list (no permission) and the links whose
    target is missing (or that loop), each once, as paths (the walked folder joined with the parts below it), for
    the reader's import report (``report``)."""

    unlisted: dict[str, str] = field(default_factory=dict)  # folder -> why
    broken: dict[str, None] = field(default_factory=dict)  # link paths, in the order found

    def report(self, col: Collector) -> None:
        """One ``unreadable_folder`` and one ``broken_link`` warning per path (sorted), naming it."""
        for folder, why in sorted(self.unlisted.items()):
            col.add("unreadable_folder", f"folder can't be listed ({why}): the files in it were not searched",
                    file=folder)
        for link in sorted(self.broken):
            col.add("broken_link", "link whose target is missing (or that loops): skipped", file=link)
        self.unlisted.clear()
        self.broken.clear()

    def hint(self) -> str:
        """``" (N folders could not be listed, first: F)"`` for an error saying that nothing was found, or ""."""
        if not self.unlisted:
            return ""
        n = len(self.unlisted)
        return f" ({n} folder{'s' if n > 1 else ''} could not be listed, first: {min(self.unlisted)})"


def files_under(folder: str, name_ok: Callable[[str], bool], *, skipped: Skipped | None = None,
                linked: set[tuple[str, ...]] | None = None) -> list[tuple[str, ...]]:
    """The parts (below ``folder``) of the files under it whose name ``name_ok`` accepts, sorted as the Paths
    sort (by their parts), hidden ones included (as ``Path.rglob("*")`` lists them); see ``walk_folders`` (for
    ``skipped`` and ``linked`` too)."""
    return sorted([(*parts, name) for parts, _, names in walk_folders(folder, name_ok, skipped=skipped,
                                                                        linked=linked) for name in names])


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


def walk_folders(folder: str, name_ok: Callable[[str], bool], *, skipped: Skipped | None = None,
                 linked: set[tuple[str, ...]] | None = None
                 ) -> Iterator[tuple[tuple[str, ...], tuple[int, int], list[str]]]:
    """(parts below ``folder``, (st_dev, st_ino), the names ``name_ok`` accepts of the files in it, sorted) of
    ``folder`` and each real folder under it (``folders``: linked folders followed, each walked once), hidden ones
    included; the identity tells a file reached by two paths (through a link) from two files. A folder that can't
    be listed (no permission) is skipped, added to ``skipped`` (or, without it, said in a MaslowWarning once the walk ends),
    and a broken link (no file or folder behind it, or a loop) is skipped (added to ``skipped``, whatever its
    name: it may have been a folder). ``linked`` gets the parts of the links met: to folders, and the accepted
    files that are links.
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
                if skipped is not None:
                    skipped.unlisted.setdefault(os.path.join(folder, *parts), entries.strerror or str(entries))
                continue
            raise entries
        names: list[str] = []
        for e in entries:
            try:
                if e.is_dir():
                    if linked is not None and e.is_symlink():
                        linked.add((*parts, e.name))
                    continue
                if name_ok(e.name) and e.is_file():
                    names.append(e.name)
                    if linked is not None and e.is_symlink():
                        linked.add((*parts, e.name))
                elif skipped is not None and e.is_symlink() and not e.is_file() and not os.path.exists(e.path):
                    skipped.broken[os.path.join(folder, *parts, e.name)] = None
            except OSError as err:
                if err.errno not in _NO:
                    raise
                if skipped is not None and e.is_symlink():  # a link that loops
                    skipped.broken[os.path.join(folder, *parts, e.name)] = None
        yield parts, at, names
    if unlisted and skipped is None:  # a reader that reports them (skipped) says them in its report instead
        n = len(unlisted)
        warnings.warn(f"{folder}: {n} folder{'s' if n > 1 else ''} could not be listed (no permission) and "
                      f"{'were' if n > 1 else 'was'} skipped (first: {os.path.join(folder, *unlisted[0])})",
                      MaslowWarning, stacklevel=2)


def suffix_of(name: str) -> str:
    """``Path(name).suffix`` in lower case: from the last dot, where a leading or trailing dot is no suffix."""
    i = name.rfind(".")
    return name[i:].lower() if 0 < i < len(name) - 1 else ""
