"""Where ``maslow export``, ``convert``, ``sample``, ``review apply``, ``schema migrate``, ``predict`` and ``crossval``
may write: checks that refuse (MaslowError, exit 2) a DST whose writing would delete data, before anything is read or
written. A folder format replaces its DST folder as a whole (``maslow.core.atomic.atomic_dir``), so a folder that is
not empty needs ``--overwrite``; the data read, a workspace and the current folder (or one above it) are refused even
with it. A file format replaces an existing file DST without ``--overwrite`` (as ``cp`` does), unless it is a file
read, a workspace's own or (``export``) a file a workspace dataset was imported from. ``flag`` names DST in messages
as the command's user gave it (``--out``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from maslow import io
from maslow.core.dataset import Dataset
from maslow.errors import MaslowError

#: ``--overwrite`` of the commands that write a dataset to DST or ``--out`` (``export``, ``convert``, ``sample``,
#: ``review apply``, ``schema migrate``, ``predict``, ``crossval``)
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace the destination (DST, --out) when it is a folder that is not empty (everything in "
    "it is deleted); never the data read, a workspace or the current folder. A file destination is replaced "
    "without it, unless it is a file read.")]

#: Formats written as one file; the others write a folder (coco-panoptic: a file and a folder of PNGs).
FILE_FORMATS = frozenset({"coco", "coco-results", "cvat", "labelstudio", "openimages-results", "coco-panoptic"})


def check_destination(dst: Path, fmt: str, *, overwrite: bool, sources: Sequence[Path],
                       options: dict[str, Any], flag: str = "DST") -> list[Path]:
    """Refuse, before anything is read, a DST whose writing would delete data (exit 2): a folder export over an
    existing file (``export out/coco.json --to yolo`` deleted the JSON file), a file export over a folder, the file
    read; for each folder the writer replaces as a whole, see ``check_folder``. Gives those folders, for
    ``check_images_kept`` once the data is read. Any command writing with ``io.write`` can call both."""
    name = io.get_format(fmt).name
    if name not in FILE_FORMATS:
        check_folder(dst, overwrite=overwrite, sources=sources, what=f"a {name} export", flag=flag)
        return [dst]
    with _checking(dst, flag):
        return _check_file(dst, name, overwrite=overwrite, sources=sources, options=options, flag=flag)


def _check_file(dst: Path, name: str, *, overwrite: bool, sources: Sequence[Path],
                options: dict[str, Any], flag: str) -> list[Path]:
    if dst.name in ("", "..") or dst.is_dir():
        raise MaslowError(f"{_named(flag, dst)} is a folder; a {name} export is a file: give a file path such as "
                          f"{Path(dst.name or '.', 'annotations.json' if name != 'openimages-results' else 'pred.csv')}")
    _check_not_read(dst, sources, flag)
    if name != "coco-panoptic":
        return []
    folder = Path(options["png_folder"]) if options.get("png_folder") else dst.with_suffix("")
    check_folder(folder, overwrite=overwrite, sources=sources, what="the PNG folder of a coco-panoptic export",
                 flag=flag)
    return [folder]


def read_paths(src: Path, fmt: str | None, *, images_root: Path | None = None,
               options: dict[str, Any] | None = None) -> list[Path]:
    """What reading ``src`` as ``fmt`` reads, for ``sources``: ``src``, ``images_root`` and, for coco-panoptic, its
    folder of PNGs (the reader's ``png_folder``, default ``src`` without its suffix). ``fmt`` None: ``src`` names a
    workspace version (nothing on disk to add: a workspace is refused anyway), or a folder of images that exists."""
    paths = [src] if fmt is not None or os.path.isdir(src) else []
    if fmt is not None and io.get_format(fmt).name == "coco-panoptic":
        paths.append(Path(options["png_folder"]) if options and options.get("png_folder") else src.with_suffix(""))
    return [*paths, *([images_root] if images_root is not None else [])]


def check_side_file(path: Path, *, dst: Path, what: str, sources: Sequence[Path], flag: str = "DST") -> None:
    """Refuse (exit 2) a file written beside ``dst`` (``what``: ``schema migrate``'s change log, migration and schema;
    the probabilities of ``crossval``) that is a file read or a workspace's own (``maslow.yaml``, under ``.maslow/``):
    it is replaced as a whole, as a file export's DST is."""
    with _checking(path, flag):
        real = _real(path)
        if any(_real(p) == real for p in sources):
            raise MaslowError(f"{flag} {dst}: {what} is written beside it, to {path}, which is a file read; writing "
                              f"it would replace the data read: give another {flag}")
        _check_not_state(path, real, f"{flag} {dst}: {what} {path}")


def check_not_imported(dst: Path, imported: Sequence[tuple[Path, str]], flag: str = "DST") -> None:
    """Refuse (exit 2) a file DST that is a file a workspace dataset was imported from (``imported``: the sources its
    versions record, each with the dataset's name): writing a version there would replace the source, and whatever
    in it maslow doesn't keep, with maslow's rewrite of it."""
    with _checking(dst, flag):
        real = _real(dst)
        hit = next(((p, name) for p, name in imported if p.is_file() and _real(p) == real), None)
    if hit is not None:
        raise MaslowError(f"{_named(flag, dst)} is the file {hit[1]!r} was imported from ({hit[0]}); writing it would "
                          f"replace that source: give another {flag}")


def _check_not_read(path: Path, sources: Sequence[Path], flag: str) -> None:
    real = _real(path)
    if any(_real(p) == real for p in sources):
        raise MaslowError(f"{_named(flag, path)} is the file read; writing it would replace the data read: give "
                          f"another {flag}")
    _check_not_state(path, real, f"{flag} {path}")


def _named(flag: str, path: Path) -> str:
    """``path`` as messages name it: as it is for a DST argument, after its option otherwise (``--out x.json``)."""
    return str(path) if flag == "DST" else f"{flag} {path}"


def check_folder(folder: Path, *, overwrite: bool, sources: Sequence[Path], what: str, flag: str = "DST") -> None:
    """Refuse (exit 2) to replace ``folder`` (``what`` is written there) when that deletes data: a file; a folder that
    is not empty without ``--overwrite``; even with it, the current folder or one above it, a folder holding the data
    read (``sources``, resolved: symlinks followed) or a maslow workspace, or a folder inside a workspace's
    ``.maslow/``. A folder that doesn't exist or is empty is written as before."""
    with _checking(folder, flag):
        _check_folder(folder, overwrite=overwrite, sources=sources, what=what, flag=flag)


def _check_folder(folder: Path, *, overwrite: bool, sources: Sequence[Path], what: str, flag: str) -> None:
    from maslow.core.atomic import workspace_inside

    if folder.is_file():
        raise MaslowError(f"{_named(flag, folder)} is a file; {what} is a folder and would replace it: remove the "
                          f"file or give another {flag}")
    real, cwd = _real(folder), _cwd()
    where = f"{flag} {folder}"
    # the current folder (".") is refused even empty: replacing it leaves the command in a deleted folder
    if real.parent == real or (cwd is not None and (real == cwd or real in cwd.parents)):
        raise MaslowError(f"{where}: must not be the current folder, a folder above it or a filesystem root, got "
                          f"{real}; give a new or empty folder")
    _check_not_state(folder, real, where)  # first: a new folder inside .maslow/ is refused too
    if not real.is_dir() or not any(real.iterdir()):
        return
    held = next((p for p in sources if (r := _real(p)) == real or real in r.parents), None)
    if held is not None:
        raise MaslowError(f"{where}: must not hold the data read, got {held}; writing {folder} would delete it "
                          "(also with --overwrite). Give a new or empty folder")
    workspace = workspace_inside(real)
    if workspace is not None:
        raise MaslowError(f"{where}: must not hold a maslow workspace, got {workspace}; writing {folder} would delete "
                          "the workspace and its versions (also with --overwrite). Give a new or empty folder")
    if not overwrite:
        raise MaslowError(f"{where}: is a folder that is not empty; {what} would replace it and delete what it "
                          "holds. Pass --overwrite to replace it, or give a new or empty folder")


def _check_not_state(path: Path, real: Path, where: str) -> None:
    """Refuse a path inside a workspace's ``.maslow/`` (versions, refs), existing or not, or its ``maslow.yaml``:
    writing would replace the workspace's data, or add a ref or version that names nothing (``maslow log`` then
    failed for the whole workspace). ``where`` starts the message (``DST out``)."""
    from maslow.core.atomic import WORKSPACE_MARKS
    from maslow.store import inside_store

    config, state = WORKSPACE_MARKS
    if inside_store(real) is not None or (real.name == config and (real.parent / state).is_dir()):
        raise MaslowError(f"{where}: must not be a file or folder of a maslow workspace, got {real}; writing it "
                          "would replace the workspace's own data. Give a path outside .maslow/ and maslow.yaml")


def empty_folder(path: Path) -> bool:
    """Whether ``path`` is an existing folder (not a symlink) with nothing in it."""
    with _checking(path):
        return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def check_images_kept(folders: Sequence[Path], ds: Dataset, *, flag: str = "DST", dst: Path | str | None = None
                      ) -> None:
    """Refuse (exit 2) to replace a folder that holds image files of ``ds``, the data read (its images, found
    by the folders they are in, symlinks followed): the export would delete them; with ``dst`` (the destination
    given), also a file DST that is one of those images (``check_file_not_image``). Runs once the data is read."""
    if dst is not None:
        check_file_not_image(Path(dst), ds, flag=flag)
    if ds.root is None or not folders:
        return
    with _checking(folders[0], flag):
        targets = [(r, f) for f in folders if (r := _real(f)).is_dir() and any(r.iterdir())]
    if not targets:
        return
    root = Path(ds.root)
    dirs = {os.path.dirname(str(p).split("#", 1)[0]) for p in ds.images.path.tolist()}
    for d in sorted(dirs):
        real = _real(root / d)
        for target, folder in targets:
            if real == target or target in real.parents:
                raise MaslowError(f"{flag} {folder}: must not hold the data read, got its images in {real}; writing "
                                  f"{folder} would delete them (also with --overwrite). Give a new or empty folder")


def check_not_in_model(dst: Path, model: Path, *, flag: str = "DST", allowed_suffix: str | None = None) -> None:
    """Refuse (exit 2) a DST inside the model folder ``model`` (one with a ``model.json``; symlinks followed;
    ``predict``'s ``--out``, ``export --onnx``'s DST): writing there replaced ``model.json`` or the weights (the model
    was gone), and anything new there is deleted with the model (``train --overwrite``). ``allowed_suffix``: files of that suffix are allowed there
    (``export --onnx`` writes ``MODEL/model.onnx`` by default)."""
    with _checking(dst, flag):
        real, folder = _real(dst), _real(model)
        if not (folder / "model.json").is_file() or not (real == folder or folder in real.parents):
            return  # not a model folder: loading it is refused as such
        if allowed_suffix is not None and real != folder and real.suffix == allowed_suffix:
            return
    what = (f"the file {real.relative_to(folder)} of it" if real != folder and real.exists() else "a path in it"
            if real != folder else "the folder itself")
    allowed = "" if allowed_suffix is None else f"; only a {allowed_suffix} file may go there"
    raise MaslowError(f"{_named(flag, dst)} is inside the model folder {model} ({what}{allowed}); writing it would "
                      f"replace or mix with the model's own files: give a {flag} outside {model}")


def check_file_not_image(dst: Path, ds: Dataset, *, flag: str = "DST") -> None:
    """Refuse (exit 2) a file DST that is an image file of ``ds``, the data read (the same file: symlinks and hard
    links followed): a file export there replaced the image (``predict imgs --out imgs/a.png --to coco``). Runs once
    the data is read; a DST that doesn't exist is no image read."""
    with _checking(dst, flag):
        if not dst.is_file():
            return
        st = os.stat(dst)
    key = (st.st_dev, st.st_ino)
    root = Path(ds.root) if ds.root is not None else None
    for p in ds.images.path.tolist():
        for name in dict.fromkeys((str(p), str(p).split("#", 1)[0])):  # a frame "video.mp4#12" is in video.mp4
            path = root / name if root is not None else Path(name)
            try:
                s = os.stat(path)
            except (OSError, ValueError):
                continue
            if (s.st_dev, s.st_ino) == key:
                raise MaslowError(f"{_named(flag, dst)} is the image {path} of the data read; writing it would "
                                  f"replace that image (also with --overwrite): give another {flag}")


@contextlib.contextmanager
def _checking(dst: Path, flag: str = "DST") -> Iterator[None]:
    """An OSError while looking at DST (a folder that can't be read) as a MaslowError naming it, not a traceback."""
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename is not None and str(e.filename) != str(dst) else ""
        raise MaslowError(f"{flag} {dst}: must be a path that can be looked at, got "
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
