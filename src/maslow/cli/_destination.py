"""Where ``maslow export``, ``convert`` and ``sample`` may write: checks that refuse (MaslowError, exit 2) a DST whose
writing would delete data, before anything is read or written. A folder format replaces its DST folder as a whole
(``maslow.core.atomic.atomic_dir``), so a folder that is not empty needs ``--overwrite``; the data read, a workspace
and the current folder (or one above it) are refused even with it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from maslow import io
from maslow.core.dataset import Dataset
from maslow.errors import MaslowError

#: Formats written as one file; the others write a folder (coco-panoptic: a file and a folder of PNGs).
FILE_FORMATS = frozenset({"coco", "coco-results", "cvat", "labelstudio", "openimages-results", "coco-panoptic"})


def check_destination(dst: Path, fmt: str, *, overwrite: bool, sources: Sequence[Path],
                       options: dict[str, Any]) -> list[Path]:
    """Refuse, before anything is read, a DST whose writing would delete data (exit 2): a folder export over an
    existing file (``export out/coco.json --to yolo`` deleted the JSON file), a file export over a folder, the file
    read; for each folder the writer replaces as a whole, see ``check_folder``. Gives those folders, for
    ``check_images_kept`` once the data is read. Any command writing with ``io.write`` can call both."""
    name = io.get_format(fmt).name
    if name not in FILE_FORMATS:
        check_folder(dst, overwrite=overwrite, sources=sources, what=f"a {name} export")
        return [dst]
    with _checking(dst):
        return _check_file(dst, name, overwrite=overwrite, sources=sources, options=options)


def _check_file(dst: Path, name: str, *, overwrite: bool, sources: Sequence[Path],
                options: dict[str, Any]) -> list[Path]:
    if dst.name in ("", "..") or dst.is_dir():
        raise MaslowError(f"{dst} is a folder; a {name} export is a file: give a file path such as "
                          f"{Path(dst.name or '.', 'annotations.json' if name != 'openimages-results' else 'pred.csv')}")
    real = _real(dst)
    if any(_real(p) == real for p in sources):
        raise MaslowError(f"{dst} is the file read; writing it would replace the data read: give another DST")
    _check_not_state(dst, real)
    if name != "coco-panoptic":
        return []
    folder = Path(options["png_folder"]) if options.get("png_folder") else dst.with_suffix("")
    check_folder(folder, overwrite=overwrite, sources=sources, what="the PNG folder of a coco-panoptic export")
    return [folder]


def check_folder(folder: Path, *, overwrite: bool, sources: Sequence[Path], what: str) -> None:
    """Refuse (exit 2) to replace ``folder`` (``what`` is written there) when that deletes data: a file; a folder that
    is not empty without ``--overwrite``; even with it, the current folder or one above it, a folder holding the data
    read (``sources``, resolved: symlinks followed) or a maslow workspace, or a folder inside a workspace's
    ``.maslow/``. A folder that doesn't exist or is empty is written as before."""
    with _checking(folder):
        _check_folder(folder, overwrite=overwrite, sources=sources, what=what)


def _check_folder(folder: Path, *, overwrite: bool, sources: Sequence[Path], what: str) -> None:
    from maslow.core.atomic import workspace_inside

    if folder.is_file():
        raise MaslowError(f"{folder} is a file; {what} is a folder and would replace it: remove the file or give "
                          "another DST")
    real, cwd = _real(folder), _cwd()
    where = f"DST {folder}"
    # the current folder (".") is refused even empty: replacing it leaves the command in a deleted folder
    if real.parent == real or (cwd is not None and (real == cwd or real in cwd.parents)):
        raise MaslowError(f"{where}: must not be the current folder, a folder above it or a filesystem root, got "
                          f"{real}; give a new or empty folder")
    if not real.is_dir() or not any(real.iterdir()):
        return
    held = next((p for p in sources if (r := _real(p)) == real or real in r.parents), None)
    if held is not None:
        raise MaslowError(f"{where}: must not hold the data read, got {held}; writing {folder} would delete it "
                          "(also with --overwrite). Give a new or empty folder")
    _check_not_state(folder, real)
    workspace = workspace_inside(real)
    if workspace is not None:
        raise MaslowError(f"{where}: must not hold a maslow workspace, got {workspace}; writing {folder} would delete "
                          "the workspace and its versions (also with --overwrite). Give a new or empty folder")
    if not overwrite:
        raise MaslowError(f"{where}: is a folder that is not empty; {what} would replace it and delete what it "
                          "holds. Pass --overwrite to replace it, or give a new or empty folder")


def _check_not_state(path: Path, real: Path) -> None:
    """Refuse an existing file or folder inside a workspace's ``.maslow/`` (versions, refs): writing would replace
    it."""
    from maslow.core.atomic import WORKSPACE_MARKS

    config, state = WORKSPACE_MARKS
    inside = real.name == state or any(p.name == state for p in real.parents)
    if (inside and real.exists()) or (real.name == config and (real.parent / state).is_dir()):
        raise MaslowError(f"DST {path}: must not be a file or folder of a maslow workspace, got {real}; writing it "
                          "would replace the workspace's own data. Give a DST outside .maslow/ and maslow.yaml")


def empty_folder(path: Path) -> bool:
    """Whether ``path`` is an existing folder (not a symlink) with nothing in it."""
    with _checking(path):
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def check_images_kept(folders: Sequence[Path], ds: Dataset) -> None:
    """Refuse (exit 2) to replace a folder that holds image files of ``ds``, the data read (its images, found
    by the folders they are in, symlinks followed): the export would delete them. Runs once the data is read."""
    if ds.root is None or not folders:
        return
    with _checking(folders[0]):
        targets = [(r, f) for f in folders if (r := _real(f)).is_dir() and any(r.iterdir())]
    if not targets:
        return
    root = Path(ds.root)
    dirs = {os.path.dirname(str(p).split("#", 1)[0]) for p in ds.images.path.tolist()}
    for d in sorted(dirs):
        real = _real(root / d)
        for target, folder in targets:
            if real == target or target in real.parents:
                raise MaslowError(f"DST {folder}: must not hold the data read, got its images in {real}; writing "
                                  f"{folder} would delete them (also with --overwrite). Give a new or empty folder")


@contextlib.contextmanager
def _checking(dst: Path) -> Iterator[None]:
    """An OSError while looking at DST (a folder that can't be read) as a MaslowError naming it, not a traceback."""
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename is not None and str(e.filename) != str(dst) else ""
        raise MaslowError(f"DST {dst}: must be a path that can be looked at, got "
                          f"{(e.strerror or str(e)).lower()}{where}") from None


def _cwd() -> Path | None:
    """The current folder, symlinks followed; None when it was deleted."""
    try:
        return Path.cwd().resolve()
    except OSError:
        return None


def _real(path: Path) -> Path:
    """``path`` absolute, symlinks followed (as far as it exists)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: as written
        return Path(os.path.abspath(path))
