"""Where the files of a YOLO dataset are: the Ultralytics layout (data.yaml), the darknet layout (obj.data)
or a bare folder; which images each split holds and which label file belongs to each image; writing data.yaml.

Private to ``maslow.io.yolo``; see its module docstring for the conventions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from maslow.core.yamlfile import read_yaml
from maslow.errors import FormatError
from maslow.io._common import Collector, safe_relpath, unique_names
from maslow.io._walk import Skipped, files_under, walk_folders
from maslow.io._yolo_repeats import FileKeys, label_not_read, one_split_each
from maslow.io.images import IMAGE_SUFFIXES, is_image_name

_DARKNET_SPLITS = {"train": "train", "valid": "val", "val": "val", "test": "test"}
_NAME_FILES = {"classes.txt", "obj.names"}
_ORDER = {"train": 0, "val": 1, "test": 2}  # the splits Ultralytics reads
#: data.yaml keys that are not splits; any other key naming an image folder or list is read as a split (as
#: Ultralytics reads "minival"), so splits beyond train, val and test round-trip
_NOT_SPLITS = {"path", "names", "nc", "kpt_shape", "flip_idx", "kpt_names", "channels", "download", "yaml_file",
               "task"}
#: data.yaml keys maslow reads into its own fields; any other key (``download``, ``channels``, Roboflow's
#: ``roboflow`` block with the licence) is kept in ``Dataset.info["yolo"]["yaml"]`` and written back
_READ_KEYS = {"path", "names", "nc", "kpt_shape", "flip_idx", "kpt_names", "yaml_file", "task", "validation"}


@dataclass
class Layout:
    root: Path  # image paths in label lists and folders are relative to this
    config: Path | None  # data.yaml or obj.data
    sources: list[tuple[str, Path]]  # (split, folder of images or txt list)
    names: dict[int, str] | None = None
    kpt_shape: tuple[int, int] | None = None
    kpt_names: dict[int, list[str]] = field(default_factory=dict)
    flip_idx: list[int] | None = None
    task: str | None = None  # data.yaml ``task`` (``obb``)
    kept: dict[str, Any] = field(default_factory=dict)  # data.yaml keys maslow has no field for


@dataclass
class Entry:
    split: str
    rel: str  # image path relative to the layout root
    label: str | None  # its label file (the str of its Path)
    guessed: bool = False  # image path guessed from an orphan label file


def _swap(rel: str, old: str, new: str) -> PurePosixPath:
    """``rel`` with its last folder named ``old`` renamed ``new``."""
    parts = list(PurePosixPath(rel).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == old:
            parts[i] = new
            break
    return PurePosixPath(*parts)


def label_for(rel: str) -> str:
    """The label file of an image path (Ultralytics' rule): last ``images`` folder -> ``labels``, ``.txt``."""
    return str(_swap(rel, "images", "labels").with_suffix(".txt"))


class _Renamer:
    """``str(_swap(rel, old, new).with_suffix(suffix))`` with the folder part worked out once per folder (it
    depends on the folder alone): ``_Renamer("images", "labels", ".txt")`` is ``label_for``."""

    def __init__(self, old: str, new: str, suffix: str) -> None:
        self.old, self.new, self.suffix = old, new, suffix
        self._folders: dict[str, str | None] = {}

    def _slow(self, rel: str) -> str:
        return str(_swap(rel, self.old, self.new).with_suffix(self.suffix))

    def __call__(self, rel: str) -> str:
        folder, sep, name = rel.rpartition("/")
        if not sep or name in ("", ".", "..") or not folder:
            return self._slow(rel)
        out = self._folders.get(folder, "")
        if out == "":
            # a folder that PurePosixPath writes as it is: the swap of its parts, else the slow way each time
            plain = folder not in (".", "/", "//") and str(PurePosixPath(folder)) == folder
            out = self._folders[folder] = str(_swap(f"{folder}/x", self.old, self.new).parent) if plain else None
        if out is None:
            return self._slow(rel)
        i = name.rfind(".")  # PurePosixPath.with_suffix: a leading or trailing dot is no suffix
        return f"{out}/{name[:i] if 0 < i < len(name) - 1 else name}{self.suffix}"


def _relative(path: str, root_s: str) -> str:
    """``Path(os.path.relpath(path, root_s)).as_posix()`` for normalised paths (``str`` of a Path), by cutting
    the prefix where that gives the same."""
    prefix = root_s if root_s.endswith("/") else f"{root_s}/"
    rest = path if root_s == "." and not os.path.isabs(path) else path[len(prefix):] if path.startswith(prefix) else ""
    if rest and ".." not in rest.split("/"):
        return rest
    return Path(os.path.relpath(path, root_s)).as_posix()


class Listing:
    """Which names each folder holds, read with one ``os.scandir`` per folder instead of a ``stat`` per path
    (``is_file`` and ``exists`` answer as ``Path.is_file`` and ``Path.exists`` do). A folder that can't be listed
    (no read permission) is asked by ``stat``, path by path."""

    def __init__(self) -> None:
        self._folders: dict[str, tuple[set[str], set[str], set[str]] | None] = {}

    def _scan(self, folder: str) -> tuple[set[str], set[str], set[str]] | None:
        if folder in self._folders:
            return self._folders[folder]
        files: set[str] = set()
        existing: set[str] = set()
        links: set[str] = set()
        got: tuple[set[str], set[str], set[str]] | None = (files, existing, links)
        try:
            with os.scandir(folder or ".") as it:
                for e in it:
                    if e.is_symlink():
                        links.add(e.name)
                    if e.is_file():
                        files.add(e.name)
                        existing.add(e.name)
                    elif e.is_dir() or not e.is_symlink() or os.path.exists(e.path):
                        existing.add(e.name)
        except (FileNotFoundError, NotADirectoryError):
            pass  # nothing is under a missing folder or a file
        except OSError:
            got = None
        self._folders[folder] = got
        return got

    def is_file(self, path: str) -> bool:
        folder, name = os.path.split(path)
        got = self._scan(folder) if name not in ("", ".", "..") else None
        return Path(path).is_file() if got is None else name in got[0]

    def exists(self, path: str) -> bool:
        folder, name = os.path.split(path)
        got = self._scan(folder) if name not in ("", ".", "..") else None
        return Path(path).exists() if got is None else name in got[1]

    def is_link(self, path: str) -> bool:
        folder, name = os.path.split(path)
        got = self._scan(folder) if name not in ("", ".", "..") else None
        return os.path.islink(path) if got is None else name in got[2]


def images_under(folder: Path, *, skipped: Skipped | None = None, linked: set[tuple[str, ...]] | None = None
                 ) -> list[str]:
    """The image files below ``folder`` (by suffix) as POSIX paths relative to it, sorted as the Paths sort (by
    their parts): linked folders and files followed, each real folder once (``files_under``, which fills
    ``skipped`` and ``linked``)."""
    if not folder.is_dir():
        return []
    return ["/".join(parts) for parts in files_under(str(folder), is_image_name, skipped=skipped, linked=linked)]


def below(folder: str, rel: str) -> str:
    """``str(Path(folder) / rel)`` for a normalised ``folder`` and relative ``rel``."""
    return rel if folder == "." else os.path.join(folder, rel)


def _load_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise FormatError(f"must be a YAML mapping, got {type(data).__name__}", path=path)
    return data


def class_names(value: Any, path: Path, field_: str = "names") -> dict[int, str]:
    if isinstance(value, list):
        return {i: str(n) for i, n in enumerate(value)}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            try:
                out[int(k)] = str(v)
            except (TypeError, ValueError):
                raise FormatError(f"class ids must be integers, got {k!r}", path=path, field=field_) from None
        return out
    raise FormatError(f"must be a list or an {{id: name}} mapping, got {type(value).__name__}", path=path,
                      field=field_)


def _ultralytics(cfg: Path, col: Collector) -> Layout:
    data = _load_yaml(cfg)
    base = cfg.parent
    if data.get("path"):
        p = Path(str(data["path"]))
        cand = p if p.is_absolute() else base / p
        if cand.is_dir():
            base = cand
        else:
            col.add("yolo_path_not_found", f"data.yaml 'path' {str(p)!r} is not a folder; using the YAML's folder",
                    severity="info", file=cfg, field="path")
    if "val" not in data and "validation" in data:  # Ultralytics' check_det_dataset renames it so
        data["val"] = data.pop("validation")
    keys = ["train", "val", "test"] + [k for k in data if k not in _ORDER and k not in _NOT_SPLITS
                                       and _split_like(data[k], base)]
    listed = [str(v) for k in keys for v in _as_list(data.get(k))]
    if not data.get("path") and listed and all(Path(v).is_absolute() for v in listed):
        # absolute split folders and no 'path': the dataset root is their common folder
        common = Path(os.path.commonpath([os.path.abspath(v) for v in listed]))
        parts = common.parts
        base = Path(*parts[:len(parts) - parts[::-1].index("images") - 1]) if "images" in parts else common.parent
    sources: list[tuple[str, Path]] = []
    for key in keys:
        for v in _as_list(data.get(key)):
            s = str(v)
            p = Path(s) if Path(s).is_absolute() else base / s
            if not p.exists() and s.startswith("../") and (base / s[3:]).exists():
                p = base / s[3:]  # Roboflow's "../train/images", as Ultralytics reads it
            if not _inside(p, base):
                raise FormatError(f"must stay inside the dataset root {base}, got {s!r}", path=cfg, field=key)
            sources.append((key, p))
    if not sources:
        raise FormatError("must name at least one of train, val, test", path=cfg, field="train")
    names = class_names(data["names"], cfg) if data.get("names") is not None else None
    if names is not None and isinstance(data.get("nc"), int) and data["nc"] != len(names):
        col.add("yolo_nc_mismatch", f"nc must equal the number of names (Ultralytics refuses the file), got nc: "
                f"{data['nc']} and {len(names)} names; the names are used", file=cfg, field="nc")
    if names and sorted(names) != list(range(len(names))):  # Ultralytics' check_class_names raises
        col.add("yolo_class_ids", f"names ids must be 0..{len(names) - 1} for Ultralytics, got {sorted(names)[:10]}; "
                "read as they are (writing renumbers them)", file=cfg, field="names")
    if names is None and data.get("nc") is not None:  # Ultralytics' names for an 'nc' without 'names'
        names = {i: f"class_{i}" for i in range(int(data["nc"]))}
    lay = Layout(root=base, config=cfg, sources=sources, names=names)
    split_keys = set(keys)
    lay.kept = {str(k): v for k, v in data.items() if k not in _READ_KEYS and k not in split_keys}
    if data.get("task") is not None:
        lay.task = str(data["task"])
    if data.get("kpt_shape") is not None:
        ks = data["kpt_shape"]
        if not (isinstance(ks, list) and len(ks) == 2 and all(isinstance(v, int) for v in ks) and ks[0] > 0
                and ks[1] in (2, 3)):
            raise FormatError(f"must be [K, 2] or [K, 3], got {ks!r}", path=cfg, field="kpt_shape")
        lay.kpt_shape = (ks[0], ks[1])
        flip = data.get("flip_idx")
        if flip is not None and (not isinstance(flip, list) or sorted(map(str, flip)) != sorted(
                map(str, range(ks[0])))):
            col.add("yolo_bad_flip_idx", f"flip_idx must be a permutation of 0..{ks[0] - 1}, got {flip}; not kept",
                    file=cfg, field="flip_idx")
        elif flip is not None:
            lay.flip_idx = [int(v) for v in flip]
        kn = data.get("kpt_names")
        kn = dict(enumerate(kn)) if isinstance(kn, list) else kn  # [[nose, ...]]: one list per class id
        if isinstance(kn, dict):
            lay.kpt_names = {int(k): [str(x) for x in v] for k, v in kn.items() if isinstance(v, list)}
            for k, v in lay.kpt_names.items():
                repeated = [x for j, x in enumerate(v) if x in v[:j]]
                if repeated:  # the points are positional: renamed, none lost
                    lay.kpt_names[k] = unique_names(v)
                    col.add("yolo_duplicate_kpt_name", f"kpt_names of class {k} must be unique, got {repeated[0]!r} "
                            f"again; read as {lay.kpt_names[k]}", severity="warning", file=cfg, field="kpt_names")
    return lay


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def _split_like(value: Any, base: Path) -> bool:
    """Whether a data.yaml value names image folders or txt lists that exist (an extra split key)."""
    vals = _as_list(value)
    if not vals or not all(isinstance(v, str) and "\n" not in v for v in vals):
        return False
    paths = [Path(v) if Path(v).is_absolute() else base / v for v in vals]
    return all((p.is_dir() or (p.suffix == ".txt" and p.is_file())) and _inside(p, base)
               and os.path.abspath(p) != os.path.abspath(base) for p in paths)


def _inside(p: Path, root: Path) -> bool:
    return not os.path.relpath(os.path.abspath(p), os.path.abspath(root)).startswith("..")


def _darknet(cfg: Path) -> Layout:
    base = cfg.parent
    try:
        text = cfg.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"must be UTF-8 text: {e}", path=cfg) from None
    data: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise FormatError(f"must be 'key = value', got {line!r}", path=cfg, record=f"line {n}")
        k, v = line.split("=", 1)
        data[k.strip()] = v.strip()
    sources = []
    for key, split in _DARKNET_SPLITS.items():
        if data.get(key):
            found = _existing(data[key], base)
            if found is None:
                raise FormatError(f"file {data[key]!r} not found under {base}", path=cfg, field=key)
            sources.append((split, base / found))
    if not sources:
        raise FormatError("must name a train, valid or test list", path=cfg, field="train")
    names_file = _existing(data["names"], base) if data.get("names") else None
    names_path = base / names_file if names_file else base / "obj.names"
    names = _read_names(names_path) if names_path.is_file() else None
    if names is None and data.get("classes", "").isdigit():
        names = {i: str(i) for i in range(int(data["classes"]))}
    return Layout(root=base, config=cfg, sources=sources, names=names)


def _existing(raw: str, base: Path, also: Any = None, exists: Any = None) -> str | None:
    """The first of ``raw`` and ``raw`` without its leading folders that exists under ``base`` (or satisfies
    ``also``); ``exists(path)`` answers for ``Path(path).exists()``."""
    parts = PurePosixPath(raw.replace("\\", "/")).parts
    for i in range(len(parts)):
        cand = str(PurePosixPath(*parts[i:]))
        there = (base / cand).exists() if exists is None else exists(os.path.join(base, cand))
        if there or (also is not None and also(cand)):
            return cand
    return None


def _read_names(path: Path) -> dict[int, str]:
    lines = [x.strip() for x in path.read_text(encoding="utf-8-sig").splitlines()]
    return {i: n for i, n in enumerate(x for x in lines if x)}


def _bare(folder: Path) -> Layout:
    names = None
    for cand in (folder / "classes.txt", folder / "obj.names", folder / "labels" / "classes.txt"):
        if cand.is_file():
            names = _read_names(cand)
            break
    images, labels = folder / "images", folder / "labels"
    top = images if images.is_dir() else labels if labels.is_dir() else None
    if top is None:
        return Layout(root=folder, config=None, sources=[("", folder)], names=names)
    sources = [(d.name, images / d.name) for d in sorted(top.iterdir()) if d.is_dir()]
    if (images.is_dir() and any(p.is_file() for p in images.iterdir())) or not sources:
        sources.insert(0, ("", images))
    return Layout(root=folder, config=None, sources=sources, names=names)


def find_layout(src: Path, col: Collector) -> Layout:
    """The layout of ``src``: a data.yaml, an obj.data, or a folder holding one of them or a bare tree."""
    if not src.exists():
        raise FormatError("not found: must be a data.yaml, an obj.data or a folder", path=src)
    if src.is_file():
        if src.suffix in (".yaml", ".yml"):
            return _ultralytics(src, col)
        if src.suffix == ".data":
            return _darknet(src)
        raise FormatError("must be a data.yaml, an obj.data or a folder", path=src)
    yamls = [src / n for n in ("data.yaml", "dataset.yaml") if (src / n).is_file()] or sorted(src.glob("*.yaml"))
    if len(yamls) == 1 or (yamls and yamls[0].name in ("data.yaml", "dataset.yaml")):
        return _ultralytics(yamls[0], col)
    if (src / "obj.data").is_file():
        return _darknet(src / "obj.data")
    return _bare(src)


def entries(lay: Layout, col: Collector, listing: Listing | None = None) -> list[Entry]:
    """Every image of every split with its label file, then label files whose image is missing.

    ``listing`` answers which files exist (one listing per folder; the caller may reuse it). An image file is in
    one split (``one_split_each``: a split folder linking into another's); folders that can't be listed and broken
    links met are reported; a label file whose would-be image is another label file's is reported, not read.
    """
    root = lay.root
    root_s = str(root)
    ls = listing if listing is not None else Listing()
    label_rel = _Renamer("images", "labels", ".txt")
    image_stem = _Renamer("labels", "images", "")
    out: list[Entry] = []
    seen: dict[str, str] = {}
    first_at: dict[str, tuple[int, str]] = {}  # image path -> (its row, where it was listed first)
    label_dirs: dict[tuple[str, Path], None] = {}  # in order of first use
    folders: dict[str, Path] = {}
    skipped = Skipped()
    issues_from = len(col.issues)
    bases: list[str] = []  # per row: the folder below which a link means its file is reached through a link
    links: list[bool | None] = []  # per row: whether its file is a link (None: not known yet)
    any_link = False  # whether a link was met (a txt list may hold some)

    def add(split: str, rel: str, file: Path, record: str | None, base: str = root_s, link: bool | None = None
            ) -> None:
        """``rel`` found in split ``split``'s list ``file`` at ``record``, or in its image folder ``file``."""
        where = f"{file}, {record}" if record is not None else f"folder {file}"
        lab = below(root_s, label_rel(rel))  # str(root / label_for(rel))
        if rel in seen:
            row, there = first_at[rel]
            label = out[row].label
            col.add("duplicate_image", f"image {rel!r} is listed in split {split!r} ({where}) and already in "
                    f"{seen[rel]!r} ({there}); kept in {seen[rel]!r} (image row {row}), "
                    + (f"its label file {label} read once" if label is not None else f"without a label file ({lab})"),
                    file=file, record=record, image=row)
            return
        seen[rel] = split
        first_at[rel] = len(out), where
        # a folder where the label file should be is handed to read_label, whose read_bytes names it (FormatError)
        out.append(Entry(split, rel, lab if ls.is_file(lab) or (ls.exists(lab) and os.path.isdir(lab)) else None))
        bases.append(base)
        links.append(link)
        folder = os.path.dirname(lab)
        parent = folders.get(folder)
        if parent is None:
            parent = folders[folder] = Path(folder)
        label_dirs.setdefault((split, parent), None)

    # a source listed under several keys ("val: images/train", as writers without a val split leave it) is read
    # once: under the key named like its folder (maslow writes images/<split>), else the first
    owner: dict[str, str] = {}
    for split, source in lay.sources:
        key = os.path.abspath(source)
        if key not in owner or (split == source.stem and owner[key] != source.stem):
            owner[key] = split
    for split, source in lay.sources:
        if owner[os.path.abspath(source)] != split:
            continue
        if source.suffix == ".txt" and source.is_file():
            any_link = True
            list_dir = os.path.relpath(os.path.abspath(source.parent), os.path.abspath(root))
            text = source.read_text(encoding="utf-8-sig")
            for n, line in enumerate(text.splitlines(), 1):
                raw = line.strip()
                if not raw:
                    continue
                rec = f"line {n}"
                if Path(raw).is_absolute():
                    rel = safe_relpath(raw, root=root, file=source, record=rec)
                else:
                    rel = safe_relpath(f"{list_dir}/{raw}", root=root, file=source, record=rec)
                    if not ls.exists(os.path.join(root_s, rel)):
                        alt = _existing(raw, root, also=lambda c: ls.is_file(os.path.join(root_s, label_rel(c))),
                                        exists=ls.exists)
                        if alt is not None:
                            rel = safe_relpath(alt, root=root, file=source, record=rec)
                add(split, rel, source, rec)
        else:
            src_rel = Path(os.path.relpath(os.path.abspath(source), os.path.abspath(root))).as_posix()
            linked: set[tuple[str, ...]] = set()
            base = below(root_s, src_rel)
            for p in images_under(source, skipped=skipped, linked=linked) if source.is_dir() else []:
                add(split, p if src_rel == "." else f"{src_rel}/{p}", source, None, base, tuple(p.split("/")) in linked)
            any_link = any_link or bool(linked) or os.path.realpath(base) != os.path.normpath(
                os.path.join(os.path.realpath(root_s), src_rel))  # the split folder is a link (or one is above it)
            lab_dir = root / label_for(os.path.relpath(os.path.abspath(source / "x"), os.path.abspath(root)))
            label_dirs.setdefault((split, lab_dir.parent), None)
    left_out: list[tuple[Entry, int]] = []  # (a row left out, the row kept of its image file)
    if any_link and len({e.split for e in out}) > 1:  # an image file reached from two splits (by a link): in one
        out, left_out = one_split_each(out, bases, links, ls.is_link, root_s, col, issues_from)
    used = {e.label for e in out if e.label is not None} | {e.label for e, _ in left_out if e.label is not None}
    row_of: dict[str, int] | None = None  # image path -> its row, for the label files whose image another's is
    claimed: set[tuple[tuple[int, int], str]] | None = None  # (real folder, name) of the label files read
    for split, d in label_dirs:
        if not d.is_dir():
            continue
        d_s = str(d)
        # the .txt files under d (linked folders followed) with their real folders, as str; Paths only for the label
        # files no image claimed
        unclaimed = []
        for parts, at, names in walk_folders(d_s, lambda n: n.endswith(".txt"), skipped=skipped):
            for name in names:
                f = below(d_s, "/".join((*parts, name)))
                if f not in used:
                    unclaimed.append((Path(f), at))
        for lab, at in sorted(unclaimed):
            if str(lab) in used or lab.name in _NAME_FILES:
                continue
            if any(lab == s for _, s in lay.sources):
                continue
            if claimed is None:  # (real folder, name) of the label files read: one stat per folder
                keys = FileKeys(".")
                claimed = {k for k in map(keys.of, used) if k is not None}
            if (at, lab.name) in claimed:  # a label file read already, reached again through a link (a loop)
                continue
            claimed.add((at, lab.name))
            stem = image_stem(_relative(str(lab), root_s))
            rel = next((f"{stem}{s}" for s in IMAGE_SUFFIXES if ls.exists(os.path.join(root_s, f"{stem}{s}"))),
                       f"{stem}.jpg")
            if rel not in seen:
                seen[rel] = split
                out.append(Entry(split, rel, str(lab), guessed=not ls.exists(os.path.join(root_s, rel))))
                used.add(str(lab))
                if row_of is not None:
                    row_of[rel] = len(out) - 1
                continue
            if row_of is None:
                row_of = {e.rel: r for e, r in left_out} | {e.rel: i for i, e in enumerate(out)}
            label_not_read(str(lab), rel, row_of[rel], out, label_for(rel), col)
    skipped.report(col)
    return out


def is_classify(src: Path) -> bool:
    """Whether ``src`` is an Ultralytics classify folder: ``train/<class>/<image>``, and no data.yaml,
    obj.data, ``images/``, ``labels/`` or label files beside the class folders."""
    train = src / "train"
    if not (src.is_dir() and train.is_dir()) or any((src / n).exists() for n in ("images", "labels", "obj.data")):
        return False
    if next(src.glob("*.yaml"), None) is not None:
        return False
    classes = [d for d in train.iterdir() if d.is_dir()]
    return bool(classes) and not any(d.name in ("images", "labels") or next(d.glob("*.txt"), None) for d in classes)


def flip_idx_for(names: list[str]) -> list[int] | None:
    """The horizontal-flip permutation of keypoints named ``left_*``/``right_*`` (``Left``, ``LEFT`` too); None
    when no two names pair up that way or a lateral name has no partner (a wrong flip_idx trains silently on
    swapped joints; without one Ultralytics only turns flips off)."""
    idx = {n: i for i, n in enumerate(names)}
    out = []
    for n in names:
        swapped = n
        for a, b in (("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT")):
            swapped = swapped.replace(a, "\0").replace(b, a).replace("\0", b)
        if swapped not in idx:
            return None
        out.append(idx[swapped])
    return out if out != list(range(len(names))) else None


def write_yaml(path: Path, splits: list[str], names: list[str], K: int | None, kpt_names: dict[int, list[str]],
               flip_idx: list[int] | None, notes: list[str], *, kpt_dims: int = 3, task: str | None = None,
               kept: dict[str, Any] | None = None) -> None:
    """data.yaml: a key per split (``train`` and ``val`` always: Ultralytics' check_det_dataset refuses a file
    without them), ``names`` as ``{id: name}``, for pose (``K`` not None) ``kpt_shape: [K, kpt_dims]``,
    ``flip_idx`` and ``kpt_names``, ``task: obb`` for oriented boxes, then the ``kept`` keys of the file read."""
    data: dict[str, Any] = {s: f"images/{s}" for s in sorted(splits, key=lambda s: (_ORDER.get(s, 3), s))}
    if not data:  # no images: the keys Ultralytics needs all the same
        data = {"train": "images/train", "val": "images/val"}
        notes.append("no images: data.yaml names train and val folders that hold none (not written)")
    if "train" not in data:
        data = {"train": data[next(iter(data))], **data}
        notes.append(f"no 'train' split: train: lists {data['train']} (Ultralytics needs the key)")
    if "val" not in data:
        val = data.get("test", data["train"])
        data = {"train": data.pop("train"), "val": val, **data}
        notes.append(f"no 'val' split: val: lists {data['val']}, as Ultralytics needs the key; validate on images "
                     "it doesn't train on: ds.split() first")
    odd = [s for s in splits if s not in _ORDER]
    if odd:
        notes.append(f"Ultralytics reads only the train, val and test splits: {', '.join(odd)} written under "
                     "images/ and listed in data.yaml for other readers")
    data["names"] = dict(enumerate(names))
    if task == "obb":
        data["task"] = "obb"  # maslow's marker (Ultralytics takes the task from the model): read back as OBB
    if K is not None:
        data["kpt_shape"] = [K, kpt_dims]
        flip = flip_idx if flip_idx is not None else flip_idx_for(next(iter(kpt_names.values()), []))
        if flip is not None:
            data["flip_idx"] = [int(v) for v in flip]
        else:
            notes.append("flip_idx not written (no left/right keypoint names pair up), so Ultralytics turns "
                         "horizontal flips off: pass flip_idx= to keep them")
        if kpt_names:
            data["kpt_names"] = kpt_names
    for k, v in (kept or {}).items():
        data.setdefault(k, v)
    with open(path, "w", encoding="utf-8") as f:
        f.write("# written by maslow; paths are relative to this file's folder\n")
        yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True)

