"""A maslow workspace: ``maslow.yaml`` plus ``.maslow/``, holding versioned dataset snapshots.

Layout::

    maslow.yaml                      settings (database URL, ...) and the datasets imported
    .maslow/versions/<id>/           one snapshot: images.parquet, annotations.parquet (maslow's Parquet format)
    .maslow/versions/<id>/version.json   parent, dataset name, message, source, changes, the technical-check
                                     report's counts (``n_issues``, ``n_errors``, ``counts``)
    .maslow/versions/<id>/report.json    the technical-check report in full (every issue; ``Workspace.report``)
    .maslow/refs/<dataset>           the id of the dataset's newest version

A version id is the first 16 hex digits of the SHA-256 of the dataset's name, its parent id and the hash of the
snapshot's files (as a git commit hashes its tree and parent): the same content on the same parent always gets the
same id, committing unchanged content makes no new version, and the history can never loop. Every change (an
import, a migration, a cleaning) commits a new version whose parent is the previous head; nothing is rewritten in
place. A snapshot is written in a temporary folder and renamed into ``versions/`` whole, then the ref moves;
commits hold ``.maslow/lock`` (released by the OS if the process dies), so concurrent ones run one after the other.
Under the lock a commit compares the head with the version its data was made from (``base``, a compare-and-swap:
a commit landing meanwhile is never undone) and tells whether the data equalled the head (``commit_result``). The
temporary folder of a commit killed midway (SIGKILL: a whole snapshot) is removed by a later commit
(``_records.clean_temp_folders``). Loading a version checks its files against the content hash first: a snapshot
changed after its commit is refused. Version records are checked field by field, their id against their folder.

A snapshot's image root is stored relative to the workspace root when the images are inside the workspace (else
as an absolute path), so the id does not depend on the folder a command ran in, and a workspace moved or copied
elsewhere with its images still finds them.

Refs: a dataset name (its head), ``NAME@ID`` (a version of that dataset by its id or the id's first digits, looked
up by id: a deleted ancestor doesn't hide it), or an id prefix alone.

The full report is kept out of ``version.json`` because every command that names a version reads its record
(``maslow log`` reads them all): an import of 200,000 images whose files were not found made a 50 MB record, read
again by each ``log``, ``stats`` and ``export``. Records written before kept the whole report in ``version.json``;
``Workspace.report`` reads either.

``maslow.store.diff.diff_datasets`` (``maslow diff``) compares two versions.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from maslow.core.atomic import NO_ROOM, atomic_path, file_lock
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.yamlfile import read_yaml
from maslow.errors import FormatError, MaslowError, NoRoomError
from maslow.io import parquet
from maslow.store._records import ID as _ID
from maslow.store._records import IN_USE, RecordError, check_record, clean_temp_folders
from maslow.store._records import valid_name as _valid_name

CONFIG = "maslow.yaml"
STATE = ".maslow"
REPORT = "report.json"
_HEX = re.compile(r"[0-9a-f]{1,16}")


@dataclass(frozen=True)
class Version:
    """One snapshot of a dataset."""

    id: str
    dataset: str
    parent: str | None
    created: str
    message: str
    n_images: int
    n_annotations: int
    source: str = ""
    format: str = ""
    content: str = ""
    changes: tuple[dict[str, Any], ...] = ()
    report: dict[str, Any] = field(default_factory=dict)  # the counts; ``Workspace.report`` reads every issue

    @property
    def checked(self) -> bool:
        """Whether the version was committed with a technical-check report (an import): a migration or a review's
        corrections are not checked, and have no issue counts (``report`` is empty)."""
        return "n_issues" in self.report

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["changes"] = list(self.changes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Version:
        """A version from its record (``version.json``), every field's type checked.

        Raises:
            RecordError: a field is missing, unknown or of the wrong type (its ``field`` names it).
        """
        check_record(d)
        d = dict(d)
        d["changes"] = tuple(d.get("changes", ()))
        return cls(**d)


@dataclass(frozen=True)
class Commit:
    """What ``Workspace.commit_result`` did: ``version``, the dataset's head now, and whether it was ``unchanged``
    (the data equalled the head's under the workspace lock: no version was made, ``version`` is the head)."""

    version: Version
    unchanged: bool


def init_workspace(path: str | Path = ".", *, database: str | None = None) -> Workspace:
    """Create ``maslow.yaml`` and ``.maslow/`` in ``path`` (an existing workspace is left as it is)."""
    root = Path(path).resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = (e.strerror or str(e)).lower()
        raise FormatError(f"workspace folder must be a folder that can be created, got {why}", path=root) from None
    cfg = root / CONFIG
    if not cfg.exists():
        settings = {
            "version": 1,
            "database": database or f"sqlite:///{STATE}/maslow.db",
            "datasets": {},
        }
        with atomic_path(cfg) as tmp:
            tmp.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    for sub in ("versions", "refs", "cache", "reports"):
        (root / STATE / sub).mkdir(parents=True, exist_ok=True)
    ignore = root / STATE / ".gitignore"
    if not ignore.exists():  # a workspace kept in git: the versions and refs go in, the local state does not
        with atomic_path(ignore) as tmp:
            tmp.write_text(_GITIGNORE, encoding="utf-8")
    return Workspace(root)


_GITIGNORE = """# maslow: local state that does not belong in git (versions/, refs/ and reports/ do)
/lock
/cache/
/tmp*
.*.tmp
.*.old
/*.db
"""


class Workspace:
    """A workspace folder. Methods read and write its snapshots; every write is atomic."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        if not (self.root / CONFIG).is_file():
            raise MaslowError(f"{self.root}: not a maslow workspace (no {CONFIG}). Run `maslow init` first")
        self.state = self.root / STATE

    @classmethod
    def find(cls, start: str | Path = ".") -> Workspace:
        """The workspace containing ``start`` (searching parent folders)."""
        here = Path(start).resolve()
        for p in (here, *here.parents):
            if (p / CONFIG).is_file():
                return cls(p)
        raise MaslowError(f"{here}: not inside a maslow workspace (no {CONFIG} here or above). Run `maslow init`")

    # -- settings ----------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        data = read_yaml(self.root / CONFIG, what="settings file") or {}
        if not isinstance(data, dict):
            raise FormatError("must be a mapping of settings", path=self.root / CONFIG)
        return data

    def _save_settings(self, data: dict[str, Any]) -> None:
        with atomic_path(self.root / CONFIG) as tmp:
            tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    # -- refs --------------------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        refs = self.state / "refs"  # temp files of a ref write cut short are hidden names, never datasets
        return sorted(p.name for p in refs.iterdir() if p.is_file() and _valid_name(p.name)) if refs.is_dir() else []

    def head(self, dataset: str) -> str | None:
        if not _valid_name(dataset):  # never a path: "../x" must not read a file outside refs/
            return None
        ref = self.state / "refs" / dataset
        if not ref.is_file():
            return None
        vid = ref.read_text(encoding="utf-8", errors="replace").strip()
        if not _ID.fullmatch(vid):
            raise FormatError(f"must hold a version id (16 hex digits), got {vid[:40]!r}", path=ref)
        return vid

    def default_dataset(self) -> str:
        names = self.datasets()
        if len(names) == 1:
            return names[0]
        if not names:
            raise MaslowError(f"{self.root}: the workspace has no dataset yet. Run `maslow import SRC --from FORMAT`")
        raise MaslowError(f"{self.root}: the workspace has several datasets ({', '.join(names)}); name one")

    # -- versions ----------------------------------------------------------------------------------
    def commit(
        self,
        ds: Dataset,
        *,
        dataset: str,
        message: str,
        report: Report | None = None,
        changes: Sequence[dict[str, Any]] = (),
        source: str = "",
        format: str = "",
        base: str | None = None,
    ) -> Version:
        """Store ``ds`` as the new head of ``dataset``; returns the version (the head itself if unchanged).
        ``commit_result`` says also whether a version was made."""
        return self.commit_result(ds, dataset=dataset, message=message, report=report, changes=changes, source=source,
                                  format=format, base=base).version

    def commit_result(
        self,
        ds: Dataset,
        *,
        dataset: str,
        message: str,
        report: Report | None = None,
        changes: Sequence[dict[str, Any]] = (),
        source: str = "",
        format: str = "",
        base: str | None = None,
    ) -> Commit:
        """Store ``ds`` as the new head of ``dataset``; returns the head and whether it was unchanged (the data
        equalled the head's when the workspace lock was held: no version was made, whatever concurrent commits did
        before).

        Args:
            base: the id of the version ``ds`` was made from, as the caller read it (a migration or a cleaning of
                it): a compare-and-swap. The commit is refused, under the workspace lock, when ``base`` is not the
                dataset's head then (another commit landed meanwhile, or ``base`` is an older version): the versions
                after it would be dropped from the data without a word in the history. Resolve the version once
                (``resolve``), load that id and pass it here. None (an import) commits over whatever the head is.

        Raises:
            MaslowError: a bad dataset name, or ``base`` is not the head (the message names both ids).
            FormatError: the version could not be written (a full disk, a read-only folder); nothing is committed.
        """
        _check_name(dataset)
        if ds.root is not None:  # stored relative to the workspace: the id doesn't depend on the current folder
            ds = ds.replace(root=self.relpath(ds.root))
        try:
            clean_temp_folders(self.state)
            return self._commit(ds, dataset, message, report, changes, source, format, base)
        except (OSError, NoRoomError) as e:  # the ref moves last: a version cut short is never the head
            why = os.strerror(e.errno) if e.errno else str(e)
            where = (e.filename if isinstance(e, OSError) else None) or self.state / "versions"
            message = f"could not write a version of {dataset!r} ({why}); nothing was committed"
            if e.errno in NO_ROOM:  # a full disk, a size limit (a NoRoomError has one of these): said as such
                raise NoRoomError(message, errno=int(e.errno or 0), path=where) from None
            raise FormatError(message, path=where) from None

    def _commit(self, ds: Dataset, dataset: str, message: str, report: Report | None,
                changes: Sequence[dict[str, Any]], source: str, format: str, base: str | None) -> Commit:
        for sub in ("versions", "refs"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        # the temp folder is locked while in use: one left by a killed commit is found unlocked and removed later
        with tempfile.TemporaryDirectory(dir=self.state) as tmpdir, file_lock(Path(tmpdir) / IN_USE):
            snap = Path(tmpdir) / "snapshot"
            parquet.write(ds, snap, root_base="as-is")  # relative to the workspace (see load)
            content = _content_hash(snap)
            with file_lock(self.state / "lock"):  # from reading the head to moving it: a concurrent commit waits
                settings = self.settings()  # a broken maslow.yaml fails before anything is written
                known = settings.get("datasets") or {}
                if not isinstance(known, dict):
                    raise FormatError(f"must be a mapping of dataset names, got {type(known).__name__}",
                                      path=self.root / CONFIG, field="datasets")
                parent = self.head(dataset)
                if base is not None and base != parent:  # the head moved since the caller read it: refused
                    raise MaslowError(f"dataset {dataset!r}: the data was made from version {base}, but the head is "
                                      f"{parent}; committing it would undo the versions after {base}. Redo the "
                                      f"change on {dataset} (its head)")
                if parent is not None and (head := self._record(parent)).content == content:  # nothing changed
                    return Commit(head, unchanged=True)
                # the dataset's name is hashed too: the same content imported under two names makes two versions
                vid = hashlib.sha256(f"{dataset}:{parent or ''}:{content}".encode()).hexdigest()[:16]
                target = self.state / "versions" / vid
                if target.exists():  # placed by a commit killed before it moved the ref: the same version
                    version = self._record(vid)
                    if version.content != content:
                        raise FormatError(f"holds content {version.content[:16]}, expected {content[:16]}",
                                          path=target / "version.json")
                else:
                    full = {} if report is None else report.to_dict()
                    version = Version(
                        id=vid, dataset=dataset, parent=parent,
                        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                        message=message, n_images=ds.n_images, n_annotations=ds.n_annotations,
                        source=source, format=format, content=content, changes=tuple(changes),
                        report={k: v for k, v in full.items() if k != "issues"},
                    )
                    if full:  # every issue, apart: the record stays small however many there are
                        (snap / REPORT).write_text(json.dumps(full, separators=(",", ":")), encoding="utf-8")
                    (snap / "version.json").write_text(json.dumps(version.to_dict(), indent=1), encoding="utf-8")
                    os.replace(snap, target)
                if dataset not in known:  # before the ref: a commit that fails here leaves the head as it was
                    settings["datasets"] = {**known, dataset: {"source": source, "format": format}}
                    self._save_settings(settings)
                with atomic_path(self.state / "refs" / dataset) as tmp:
                    tmp.write_text(vid + "\n")
        return Commit(version, unchanged=False)

    def relpath(self, path: str | Path) -> Path:
        """``path`` (relative to the current folder) as the workspace records it: relative to the workspace root
        when inside it, else absolute."""
        full = Path(os.path.abspath(path))
        for p in (full, full.resolve()):  # the workspace root is resolved; ``path`` may pass through a link
            if p.is_relative_to(self.root):
                return Path(os.path.relpath(p, self.root))
        return full

    def resolve(self, ref: str | None = None) -> str:
        """A version id from a ref: None (the only dataset's head), a dataset name (its head), ``NAME@ID`` (a
        version of dataset NAME by its id or the id's first digits, as ``maslow import`` prints it) or an id
        prefix alone."""
        if ref is None:
            ref = self.default_dataset()
        name, at, prefix = ref.partition("@")
        prefix = prefix.lower()  # ids are printed in lower case; one copied from elsewhere may be upper
        if at:
            if not name or not _HEX.fullmatch(prefix):
                raise MaslowError(f"version {ref!r}: must be NAME@ID, ID being a version id or its first digits "
                                  "(0-9, a-f); see `maslow log NAME`")
            if self.head(name) is None:
                known = ", ".join(self.datasets()) or "none yet"
                raise MaslowError(f"version {ref!r}: dataset {name!r} is not in the workspace; known: {known}")
            # looked up by id, not by walking the history: a deleted ancestor must not hide the versions after it
            ids = [vid for vid in self._ids(prefix) if self._record(vid).dataset == name]
            if not ids and _ID.fullmatch(prefix) and not (self.state / "versions" / prefix).is_dir():
                raise MaslowError(f"version {prefix} of {name!r} is missing (folder {self.state / 'versions' / prefix} "
                                  f"does not exist: deleted, or a mistyped id); see `maslow log {name}`")
            return _one(ref, ids, f"no version of {name!r} has an id starting with {prefix!r}; see `maslow log {name}`")
        head = self.head(ref)
        if head is not None:
            return head
        low = ref.lower()
        ids = self._ids(low) if ref and _HEX.fullmatch(low) else []
        if not ids and _ID.fullmatch(low):
            raise MaslowError(f"version {ref} is missing (folder {self.state / 'versions' / low} does not exist: "
                              "deleted, or a mistyped id); see `maslow log`")
        known = ", ".join(self.datasets()) or "none yet"
        return _one(ref, ids, f"must be a dataset name or a version id (or NAME@ID); datasets: {known}; see "
                              "`maslow log`")

    def _ids(self, prefix: str) -> list[str]:
        """The ids of the version folders whose id starts with ``prefix``."""
        versions = self.state / "versions"
        if not versions.is_dir():
            return []
        if _ID.fullmatch(prefix):  # one lookup, not a listing
            return [prefix] if (versions / prefix).is_dir() else []
        return sorted(p.name for p in versions.iterdir() if _ID.fullmatch(p.name) and p.name.startswith(prefix))

    def version(self, ref: str | None = None) -> Version:
        return self._record(self.resolve(ref))

    def report(self, ref: str | None = None) -> Report:
        """The technical-check report committed with a version (see ``resolve`` for refs), every issue; an empty
        report for a version committed without one.

        Raises:
            FormatError: the report file is unreadable or malformed.
        """
        version = self.version(ref)
        path = self.state / "versions" / version.id / REPORT
        if not path.is_file():  # none, or a record written before reports were kept apart
            return Report.from_dict(version.report)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Report.from_dict(data)
        except (OSError, ValueError, TypeError) as e:
            raise FormatError(f"unreadable version report: {e}", path=path) from None

    def record(self, vid: str) -> Version:
        """The record of the version with id ``vid``, a full id (a version's ``parent``), never a dataset name nor
        a prefix.

        Raises:
            FormatError: ``vid`` is not an id, its folder is missing (deleted) or its record is damaged.
        """
        if not isinstance(vid, str) or not _ID.fullmatch(vid):
            raise FormatError(f"must be a version id (16 hex digits), got {vid!r:.40}", path=self.state / "versions")
        return self._record(vid)

    def _record(self, vid: str) -> Version:
        """The record of the version with id ``vid`` (a full id, never a dataset name)."""
        path = self.state / "versions" / vid / "version.json"
        if not path.parent.is_dir():
            raise FormatError(f"version {vid} is missing from the workspace (its folder was deleted)", path=path.parent)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"must be a JSON object, got {type(data).__name__}")
            version = Version.from_dict(data)
        except RecordError as e:
            raise FormatError(str(e), path=path, field=e.field) from None
        except (OSError, ValueError, TypeError) as e:
            raise FormatError(f"unreadable version record: {e}", path=path) from None
        if version.id != vid:  # a record copied from another version's folder
            raise FormatError(f"must be the id of its folder {vid}, got {version.id}", path=path, field="id")
        return version

    def load(self, ref: str | None = None) -> Dataset:
        """The dataset stored in a version (see ``resolve`` for refs), its files checked against the version's
        content hash; a relative image root is taken from the workspace root.

        Raises:
            FormatError: a file of the snapshot is missing, damaged or changed since the commit.
        """
        version = self.version(ref)
        folder = self.state / "versions" / version.id
        if version.content:  # records written before content hashes have none; first: a tampered file is said so
            try:
                content = _content_hash(folder)
            except OSError as e:
                raise FormatError(f"unreadable snapshot: {e.strerror or e}", path=e.filename or folder) from None
            if content != version.content:
                raise FormatError(f"the files of version {version.id} changed after it was committed (content "
                                  f"{content[:16]}, recorded {version.content[:16]}); a version can't be edited: "
                                  "import the changed data as a new version", path=folder)
        ds: Dataset = parquet.read_parquet(folder)
        if ds.root is not None and not ds.root.is_absolute():
            ds = ds.replace(root=self.root / ds.root)
        return ds

    def log(self, dataset: str | None = None) -> list[Version]:
        """Versions of a dataset, newest first, following parents from its head."""
        name = dataset or self.default_dataset()
        out: list[Version] = []
        vid = self.head(name)
        if vid is None:
            known = ", ".join(self.datasets()) or "none yet"
            raise MaslowError(f"dataset {name!r} is not in the workspace; known: {known}")
        seen: set[str] = set()
        while vid is not None:
            if vid in seen or not _ID.fullmatch(str(vid)):
                raise FormatError(f"must be an earlier version id of the dataset, got {vid!r}",
                                  path=self.state / "versions" / out[-1].id / "version.json", field="parent")
            seen.add(vid)
            v = self._record(vid)
            out.append(v)
            vid = v.parent
        return out


def inside_store(path: str | Path) -> Path | None:
    """The workspace state folder (``.maslow/``) that ``path`` is, or is inside (symlinks followed as far as the
    path exists), or None. A path there that doesn't exist yet counts too: ``maslow export .maslow/refs/x`` made a
    ref that names no version, which broke ``maslow log``. A ``.maslow`` folder counts when it exists or sits beside
    a ``maslow.yaml``."""
    try:
        real = Path(path).resolve()
    except (OSError, RuntimeError):  # a symlink loop: as written
        real = Path(os.path.abspath(path))
    for p in (real, *real.parents):
        if p.name == STATE and (p.is_dir() or (p.parent / CONFIG).is_file()):
            return p
    return None


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise MaslowError(f"dataset name must use letters, digits, '-', '_' or '.', got {name!r}")


def _one(ref: str, ids: list[str], unknown: str) -> str:
    """The one id of ``ids`` that ``ref`` names; none or several is an error."""
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise MaslowError(f"version {ref!r}: {unknown}")
    raise MaslowError(f"version {ref!r} is ambiguous: matches {', '.join(sorted(ids))}; give more digits")


def _content_hash(folder: Path) -> str:
    """The hash of a snapshot's files (the version record, its report and hidden files such as a ``.DS_Store``
    left aside)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name not in ("version.json", REPORT) and not p.name.startswith("."):
            h.update(p.relative_to(folder).as_posix().encode())
            with p.open("rb") as f:  # in blocks: a snapshot of a large dataset is never held twice in memory
                while block := f.read(1 << 20):
                    h.update(block)
    return h.hexdigest()
