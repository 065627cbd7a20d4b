"""Files a YOLO listing reaches twice: an image file reached from two splits, a label file that names an image
another label file already has. Private to ``maslow.io._yolo_layout``.

A split folder that reaches another split's images through a link (``images/train/extra -> ../val``) lists them
under other paths, so by path nothing repeats and the images would be read into both splits (trained on and
validated on). An image file is known by its real folder (``(st_dev, st_ino)``, one ``stat`` per folder) and its
name; a row whose file is itself a link is also known by each file its link chain passes through, so
``train/x.jpg -> ../val/x.jpg`` is val's image, while two links into a content-addressed cache (DVC) stay two images.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from maslow.io._common import Collector

if TYPE_CHECKING:
    from maslow.io._yolo_layout import Entry

Key = tuple[tuple[int, int], str]  # (the real folder's (st_dev, st_ino), the file name)


class FileKeys:
    """The identity of a file: ``keys.of(path)``, or ``keys.below(rel)`` for a path relative to the root (one
    ``stat`` per folder; None where its folder can't be reached)."""

    def __init__(self, root_s: str) -> None:
        self.root_s = root_s
        self._folders: dict[str, tuple[int, int] | None] = {}  # a folder (as it is written) -> its identity
        self._below: dict[str, tuple[int, int] | None] = {}  # a folder relative to the root -> its identity

    def _folder(self, folder: str) -> tuple[int, int] | None:
        if folder not in self._folders:
            try:
                st = os.stat(folder or ".")
                self._folders[folder] = (st.st_dev, st.st_ino)
            except OSError:
                self._folders[folder] = None
        return self._folders[folder]

    def of(self, path: str) -> Key | None:
        folder, name = os.path.split(path)
        at = self._folder(folder)
        return None if at is None else (at, name)

    def below(self, rel: str) -> Key | None:
        folder, _, name = rel.rpartition("/")
        if folder not in self._below:
            self._below[folder] = self._folder(os.path.join(self.root_s, folder) if folder else self.root_s)
        at = self._below[folder]
        return None if at is None else (at, name)


def _hops(path: str, keys: FileKeys) -> list[Key]:
    """The identities of the files a link at ``path`` points to, link after link (a chain of at most 40)."""
    out = []
    for _ in range(40):
        try:
            target = os.readlink(path)
        except OSError:  # not a link (any more)
            break
        path = os.path.join(os.path.dirname(path), target)
        k = keys.of(path)
        if k is None:
            break
        out.append(k)
    return out


def _first_link(folder: str, base: str, cache: dict[str, str | None]) -> str | None:
    """The outermost link among ``folder`` and the folders above it below ``base`` (``folder`` is ``base`` or
    below it); None if none."""
    if folder not in cache:
        above = os.path.dirname(folder)
        inner = folder not in (base, "", ".") and above != folder
        got = _first_link(above, base, cache) if inner else None
        cache[folder] = got if got is not None or not inner or not os.path.islink(folder) else folder
    return cache[folder]


def _shown(path: str, root_s: str) -> str:
    """``path`` relative to the dataset root where it lies inside it, else as it is."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root_s))
    return path if rel.split(os.sep, 1)[0] == ".." else rel.replace(os.sep, "/")


class _Paths:
    """``paths[i]``: row ``i``'s image file (``str(root / rel)``), made when asked."""

    def __init__(self, out: list[Entry], root_s: str) -> None:
        self.out, self.root_s = out, root_s

    def __getitem__(self, i: int) -> str:
        rel = self.out[i].rel
        return rel if self.root_s == "." else os.path.join(self.root_s, rel)


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def one_split_each(out: list[Entry], bases: list[str], links: list[bool | None], is_link: Callable[[str], bool],
                   root_s: str, col: Collector, issues_from: int) -> tuple[list[Entry], list[tuple[Entry, int]]]:
    """(``out`` without the rows whose image file is a row's of another split, [(a row left out, the row kept of
    its file)]).

    ``out[i].rel``: row ``i``'s image file as reached, below ``root_s``; ``bases[i]``: the folder below which a
    link means it was reached through one (its split's image folder, or the root for a txt list); ``links[i]``:
    whether the file is a link (None: ``is_link`` answers). Of the rows of one file, those of the split holding it
    without a folder link are kept, a file that is no link to another row's file first (else of the first split to
    list it). Each link that reached another split's images is said once, a
    ``yolo_split_link`` warning naming the link, both splits and the count. A left-out row's label file, when it
    is not the kept row's, becomes the kept row's (that had none) or is named as not read (then an error). The
    issues from ``col.issues[issues_from]`` on name the rows as they are now.
    """
    n = len(out)
    keys = FileKeys(root_s)
    paths = _Paths(out, root_s)
    parent = list(range(n))
    touched: set[int] = set()  # rows of a file reached by another row too

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        parent[find(i)] = find(j)
        touched.update((i, j))

    first: dict[Key, int] = {}
    for i, e in enumerate(out):
        k = keys.below(e.rel)
        if k is not None and first.setdefault(k, i) != i:
            join(i, first[k])
    for i in range(n):
        if links[i] is None:
            links[i] = is_link(paths[i])
        if links[i]:
            for k in _hops(paths[i], keys):
                j = first.get(k)
                if j is not None and find(j) != find(i):
                    join(i, j)
                    break
    if not touched:
        return out, []
    groups: dict[int, list[int]] = {}
    for i in sorted(touched):
        groups.setdefault(find(i), []).append(i)
    caches: dict[str, dict[str, str | None]] = {}  # per base: _first_link's answers

    def via(i: int) -> str | None:
        """The link through which row ``i`` reaches its file (a folder link below its base, or the file), or None."""
        return (_first_link(os.path.dirname(paths[i]), bases[i], caches.setdefault(bases[i], {}))
                or (paths[i] if links[i] else None))

    def own(i: int) -> bool:
        """Row ``i`` reaches its file without a folder link below its base."""
        return _first_link(os.path.dirname(paths[i]), bases[i], caches.setdefault(bases[i], {})) is None

    def into(i: int, rows: set[int]) -> bool:
        """Row ``i``'s file is a link to another row's of ``rows`` (each image file may itself be a link into a
        cache, as DVC makes them: that alone says nothing of where it belongs)."""
        return bool(links[i]) and any(first.get(k, i) in rows - {i} for k in _hops(paths[i], keys))

    drop: dict[int, int] = {}  # a row left out -> the row kept of its file
    for rows in groups.values():
        if len(rows) > 1 and len({out[i].split for i in rows}) > 1:
            among = set(rows)  # kept: a row in its own split's folder whose file is no link to another row's
            keep = next((i for i in rows if own(i) and not into(i, among)),
                        next((i for i in rows if own(i)), rows[0]))
            drop.update((i, keep) for i in rows if out[i].split != out[keep].split)
    if not drop:
        return out, []
    new_row: dict[int, int] = {}
    for i in range(n):
        if i not in drop:
            new_row[i] = len(new_row)
    for i, keep in drop.items():
        new_row[i] = new_row[keep]
    for j in range(issues_from, len(col.issues)):  # duplicate_image names rows as listed
        issue = col.issues[j]
        if issue.image is not None and 0 <= issue.image < n:
            col.issues[j] = dataclasses.replace(issue, image=new_row[issue.image])
    said: dict[tuple[str | None, str, str], list[int]] = {}
    for i, keep in drop.items():  # the link, else the split folder's own (``images/val -> train``)
        link = via(i) or _first_link(bases[i], root_s, caches.setdefault(root_s, {}))
        said.setdefault((link, out[i].split, out[keep].split), []).append(i)
    for (link, lose, win), rows in said.items():
        unread = []
        for i in rows:
            kept, lab = out[drop[i]], out[i].label
            if lab is None or (kept.label is not None and (kept.label == lab or _same(lab, kept.label))):
                continue
            if kept.label is None:
                kept.label = lab  # its annotations, read once, with the row kept
            else:
                unread.append(lab)
        m, kept_row = len(rows), drop[rows[0]]
        more = ", ..." if m > 1 else ""
        what = (f"{m} image file{'s' if m > 1 else ''} ({out[rows[0]].rel!r}{more}) {'are' if m > 1 else 'is'} "
                f"kept in split {win!r} only ({out[kept_row].rel!r}{more}), not also in {lose!r}: an image file "
                "belongs to one split")
        if link is None:
            msg = f"split {lose!r} lists image files of split {win!r} under other paths: {what}"
        else:
            try:
                target = _shown(os.path.normpath(os.path.join(os.path.dirname(link), os.readlink(link))), root_s)
            except OSError:
                target = "?"
            msg = f"{_shown(link, root_s)} (split {lose!r}) is a link to {target}, in split {win!r}: {what}"
        if unread:
            msg += (f"; {len(unread)} label file{'s' if len(unread) > 1 else ''} of the left-out paths, other than the "
                    f"kept images' own, {'were' if len(unread) > 1 else 'was'} not read (first: {unread[0]})")
        col.add("yolo_split_link", msg, severity="error" if unread else "warning", file=link or paths[rows[0]],
                image=new_row[kept_row])
    return [e for i, e in enumerate(out) if i not in drop], [(out[i], new_row[i]) for i in drop]


def label_not_read(lab: str, rel: str, row: int, out: list[Entry], expected: str, col: Collector) -> None:
    """Report the label file ``lab`` that no image claimed, whose would-be image ``rel`` is already image row
    ``row`` (whose label file would be ``expected``, relative to the root): unless it is that row's label file
    reached by another path, its annotations are not read, so it is a ``yolo_label_not_read`` error."""
    other = out[row].label
    if other is not None and _same(lab, other):
        return
    has = (f"with its label file {other}; its annotations were not read" if other is not None else
           f"without a label file; its annotations were not read: that image's label file would be {expected}")
    col.add("yolo_label_not_read", f"label file names no image of its own: its image would be {rel!r}, already image "
            f"row {row} (split {out[row].split!r}) {has}", severity="error", file=lab, image=row)
