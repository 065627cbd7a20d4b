"""What the review UI serves, without the web: the findings with their decisions, filters, paging, crops.

``Review`` holds one review: the truth, the findings of one ISSUES.json (checked against the truth), the store
and the session. The FastAPI app (``maslow.ui.app``) only parses requests and renders what these methods return.
"""

from __future__ import annotations

import base64
import threading
import warnings
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.dataset import Dataset
from maslow.errors import MaslowError, MaslowWarning
from maslow.quality.records import check_findings_match, parse_findings, read_findings, truth_fingerprint
from maslow.quality.review import LABEL_TYPES, STATUSES, Decision, apply_decisions, check_decision, review_counts
from maslow.store.reviews import ReviewSession, ReviewStore, StoredDecision, check_session_truth, file_hash

#: Status filter values: a decision's status, or ``pending`` (no decision yet).
FILTER_STATUSES = ("pending", *STATUSES)
MAX_LIMIT = 500


class NotFound(MaslowError):
    """A finding key that is not in the review (the app answers 404)."""


class NoCrop(NotFound):
    """A finding without a crop: no image (a finding about the dataset), or an image that can't be read (the message
    names its path and why: not found, corrupt, too large). The app answers 404."""


def open_review(issues_path: str | Path, truth: Dataset, store: ReviewStore, *, truth_ref: str) -> Review:
    """The review of ``issues_path`` against ``truth``: its session (resumed when this ISSUES.json was opened
    before) with its decisions so far.

    Raises:
        FormatError: a malformed ISSUES.json. InvalidDatasetError: the findings are for another truth, or the
        session was started on another truth (``maslow.store.reviews.check_session_truth``).

    Warns:
        MaslowWarning: the store is an in-memory database (``sqlite://``): every decision is lost when the process
        ends (``maslow review`` prints it as a note).
    """
    if store.in_memory:
        warnings.warn(f"the review database {store.url} is in memory: every decision is lost when the server stops; "
                      "give --db sqlite:///FILE (or no --db: the workspace's or one beside the ISSUES.json) to keep "
                      "them", MaslowWarning, stacklevel=2)
    findings = read_findings(issues_path)
    check_findings_match(truth, parse_findings(findings))
    fingerprint = truth_fingerprint(truth)
    session = store.open_session(Path(issues_path).resolve(), truth=truth_ref, n_findings=len(findings),
                                 issues_hash=file_hash(issues_path), truth_hash=fingerprint)
    check_session_truth(session, truth, fingerprint=fingerprint)
    return Review(truth, findings, store, session)


class Review:
    """One review session: findings (ranked as in ISSUES.json), decisions, crops (computed on demand, cached).

    Args:
        truth: the ground truth the findings were computed on (crops read its images under ``truth.root``).
        findings: the ISSUES.json rows.
        store: where decisions are kept. session: this review's session in it.
        crop_cache, crop_cache_bytes: the most crops kept in memory, and the most bytes they take (least recently
            served dropped first).
    """

    def __init__(self, truth: Dataset, findings: Sequence[Mapping[str, Any]], store: ReviewStore,
                 session: ReviewSession, *, crop_cache: int = 1024, crop_cache_bytes: int = 64 << 20) -> None:
        parsed = parse_findings(findings)
        check_findings_match(truth, parsed)
        self.truth, self.store, self.session = truth, store, session
        self.findings = sorted((dict(f) for f in findings), key=lambda f: int(f["rank"]))
        self.by_key = {int(f["rank"]): f for f in self.findings}
        self.names = truth.schema.names
        self._classes = {str(f["class"]) for f in self.findings if f.get("class") is not None}
        self._types = {str(f["type"]) for f in self.findings if f.get("type") is not None}
        from maslow.quality.oriented import is_oriented, oriented_rows

        # oriented boxes (their crops outline the corners): as the HTML report tells them
        self.oriented = oriented_rows(truth) if is_oriented(truth) else np.zeros(truth.n_annotations, bool)
        self._lock = threading.Lock()
        # the decisions in memory, read again from the store when it changed (``_sync``): another server or process
        # on the same database decides too
        self._decisions: dict[int, StoredDecision] = {}
        self._version = (0, 0)  # (decisions read, the number of the last one): the store's ``version`` when in step
        self._sync()
        # the crops served, least recently used dropped first: at most crop_cache of them and crop_cache_bytes in all
        # (a client asking for every size 32..1024 of every finding can't grow it without bound)
        self.crop_cache, self.crop_cache_bytes = crop_cache, crop_cache_bytes
        # by (key, size, the image file's mtime and size): a file replaced is read again; a failed read is not kept
        self._crops: OrderedDict[tuple[int, int, tuple[int, int]], bytes] = OrderedDict()
        self._crops_bytes = 0
        self._crops_lock = threading.Lock()
        self._image_note = _image_note(truth, self.findings)

    # -- reading -----------------------------------------------------------------------------------
    def _sync(self) -> dict[int, StoredDecision]:
        """The decisions as the store holds them now (a copy): those made since the last look are read when its
        ``version`` changed (one query when nothing did); all again when a decision committed out of order (the
        count disagrees)."""
        with self._lock:
            return self._sync_locked()

    def _sync_locked(self) -> dict[int, StoredDecision]:
        sid = self.session.id
        version = self.store.version(sid)
        if version != self._version:
            new, last = self.store.history_after(sid, self._version[1])
            if self._version[0] + len(new) != version[0] or len(new) == 0:
                # a decision numbered below the last one read: its transaction committed late; read them all
                new, last = self.store.history_after(sid, 0)
                self._decisions, count = {}, 0
            else:
                count = self._version[0]
            for d in new:
                self._decisions[d.key] = d
            self._version = (count + len(new), last)
        return dict(self._decisions)

    def decision(self, key: int) -> StoredDecision | None:
        return self._sync().get(key)

    def status(self, key: int) -> str:
        d = self.decision(key)
        return "pending" if d is None else d.status

    def first_pending(self) -> int | None:
        """The position (in rank order, from 0) of the first finding without a decision; None when all have one."""
        decisions = self._sync()
        return next((i for i, f in enumerate(self.findings) if int(f["rank"]) not in decisions), None)

    def item(self, key: int) -> dict[str, Any]:
        """Finding ``key`` as the API gives it: its ISSUES.json fields, ``key``, ``decision`` (or None),
        ``labels`` (whether a class can be chosen) and ``crop`` (the URL of its crop).

        Raises:
            NotFound: no finding has this key.
        """
        return self._item(key, self._sync())

    def _item(self, key: int, decisions: Mapping[int, StoredDecision]) -> dict[str, Any]:
        f = self.by_key.get(key)
        if f is None:
            raise NotFound(f"finding {key} is not in this review (ranks 1..{len(self.findings)})")
        d = decisions.get(key)
        has_image = f.get("image_row") is not None and int(f["image_row"]) >= 0
        return {**f, "key": key, "decision": None if d is None else d.to_dict(),
                "labels": f.get("type") in LABEL_TYPES, "crop": f"/api/findings/{key}/crop.png" if has_image else None}

    def page(self, *, type: str | None = None, cls: str | None = None, status: str | None = None, offset: int = 0,
             limit: int = 50) -> dict[str, Any]:
        """The findings that pass the filters (each a comma-separated list of values, or None: any), in rank
        order, ``limit`` from ``offset``, with ``total`` (how many pass).

        Raises:
            MaslowError: an unknown status filter, a type no finding has, a class neither the schema nor a finding
            has, or a negative offset or a limit outside 1..500.
        """
        statuses = _values(status)
        if statuses is not None and not statuses <= set(FILTER_STATUSES):
            raise MaslowError(f"status filter must be among {', '.join(FILTER_STATUSES)}, got {status!r}")
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            raise MaslowError(f"offset must be >= 0 and limit in 1..{MAX_LIMIT}, got offset {offset}, limit {limit}")
        known_classes = self._classes | set(self.names)
        types, classes = _values(type), _values(cls, known_classes)
        if types is not None and not types <= self._types:
            raise MaslowError(f"type filter must be among the types of this review's findings "
                              f"({_listed(self._types)}), got {_listed(types - self._types)}")
        if classes is not None and not classes <= known_classes:
            raise MaslowError(f"class filter must be among the classes of the schema and of the findings "
                              f"({_listed(known_classes)}), got {_listed(classes - known_classes)}")
        decisions = self._sync()

        def status_of(key: int) -> str:
            d = decisions.get(key)
            return "pending" if d is None else d.status

        keys = [int(f["rank"]) for f in self.findings
                if (types is None or f.get("type") in types) and (classes is None or f.get("class") in classes)
                and (statuses is None or status_of(int(f["rank"])) in statuses)]
        return {"total": len(keys), "offset": offset, "limit": limit,
                "items": [self._item(k, decisions) for k in keys[offset:offset + limit]]}

    def summary(self) -> dict[str, Any]:
        """``review_counts`` of the decisions so far, the session, the schema's classes, and the classes and types
        the findings name (for the filters)."""
        counts = review_counts(self.findings, self._sync())
        return {
            **counts,
            "classes": list(self.names),
            "finding_classes": sorted(self._classes),
            "types": list(counts["per_type"]),
            "session": self.session.to_dict(),
            "image_note": self._image_note,
        }

    def changes(self) -> dict[str, Any]:
        """What applying the decisions so far would do (``apply_decisions``'s change log and counts)."""
        return apply_decisions(self.truth, self.findings, self._sync()).to_dict()

    def export(self, *, history: bool = False) -> dict[str, Any]:
        """The decisions as JSON: the session and, per decided finding, its key, type, class, file and decision
        (``history``: every decision made, in order)."""
        rows = self.store.history(self.session.id) if history else sorted(
            self.store.decisions(self.session.id).values(), key=lambda d: d.key)
        out = []
        for d in rows:
            f = self.by_key.get(d.key, {})
            out.append({**d.to_dict(), "type": f.get("type"), "class": f.get("class"),
                        "file_name": f.get("file_name"), "annotation_row": f.get("annotation_row")})
        return {"session": self.session.to_dict(), "decisions": out}

    # -- deciding ----------------------------------------------------------------------------------
    def decide(self, key: int, status: str, *, label: str | None = None, note: str = "",
               reviewer: str = "") -> StoredDecision:
        """Record a decision (committed to the store before this returns).

        Raises:
            NotFound: an unknown key. MaslowError: a bad status, or a label the finding can't take.
        """
        f = self.by_key.get(key)
        if f is None:
            raise NotFound(f"finding {key} is not in this review (ranks 1..{len(self.findings)})")
        check_decision(f, Decision(status, label, note, reviewer), self.names)
        with self._lock:  # the store and memory in one step (memory then read back, with any made elsewhere)
            d = self.store.decide(self.session.id, key, status, label=label, note=note, reviewer=reviewer)
            self._sync_locked()
        return d

    # -- crops -------------------------------------------------------------------------------------
    def crop_png(self, key: int, size: int) -> bytes:
        """``_crop_png``, cached (see ``crop_cache`` and ``crop_cache_bytes``) while the image file is unchanged (its
        modification time and size); a crop that failed is tried again at the next request.

        Raises:
            NotFound: an unknown key. NoCrop: the finding has no image, or its image can't be read (the message says
            which file and why).
        """
        f = self.by_key.get(key)
        if f is None:
            raise NotFound(f"finding {key} is not in this review (ranks 1..{len(self.findings)})")
        img = f.get("image_row")
        if img is None or int(img) < 0:
            raise NoCrop(f"finding {key} ({f.get('type')}): no crop, the finding is about the dataset, not an image")
        k = (key, size, self._file_stamp(int(img)))
        with self._crops_lock:
            if k in self._crops:
                self._crops.move_to_end(k)
                return self._crops[k]
        png = self._crop_png(key, size)
        if png is None:
            raise NoCrop(f"finding {key}: no crop: {self._why_no_crop(int(img))}")
        with self._crops_lock:
            if k not in self._crops:
                self._crops[k] = png
                self._crops_bytes += len(png)
            while self._crops and (len(self._crops) > self.crop_cache or self._crops_bytes > self.crop_cache_bytes):
                self._crops_bytes -= len(self._crops.popitem(last=False)[1])
        return png

    def _file_stamp(self, image: int) -> tuple[int, int]:
        """(mtime in ns, size) of image row ``image``'s file, (-1, -1) when it is not there."""
        from maslow.io.images import idx_member, image_path

        try:
            st = idx_member(image_path(self.truth, image))[0].stat()
        except OSError:
            return -1, -1
        return st.st_mtime_ns, st.st_size

    def _why_no_crop(self, image: int) -> str:
        """Why image row ``image`` gave no crop: no image folder, its file not found, or the reader's error (a
        corrupt or truncated file, a decompression bomb), naming the file."""
        from maslow.errors import FormatError
        from maslow.io.images import idx_member, image_path, load_rgb

        if self.truth.root is None:
            return "the truth has no image folder (give --images-root FOLDER)"
        path = image_path(self.truth, image)
        if not idx_member(path)[0].is_file():
            return f"image {str(path.absolute())!r} not found (a wrong --images-root?)"
        try:
            load_rgb(path)
        except FormatError as e:
            return f"the image can't be read: {e}"  # the reader names the file and why
        return f"image {str(path.absolute())!r}: nothing to draw (the finding's geometry is outside the image)"

    def image_note(self) -> str | None:
        """A warning when images of the findings are not where the truth says (``--images-root``): how many of the
        images the findings name are missing, and the first one; None when all are found."""
        return self._image_note

    def crop_cache_size(self) -> tuple[int, int]:
        """How many crops are cached and their bytes."""
        with self._crops_lock:
            return len(self._crops), self._crops_bytes

    def _crop_png(self, key: int, size: int) -> bytes | None:
        """A PNG of finding ``key``'s region (the annotation, the other annotation of a pair, the suggestion, in
        ``consensus_report``'s colours as the HTML reports draw them), the whole image for a finding without geometry;
        None when the image can't be read."""
        from maslow.quality.consensus_report import (
            OTHER_COLOUR,
            SUGGESTED_COLOUR,
            TRUTH_COLOUR,
            crop_png,
            keypoint_overlays,
            thumbnail_png,
        )
        from maslow.quality.oriented import quad_corners

        f = self.by_key[key]
        img = f.get("image_row")
        if img is None or img < 0 or self.truth.root is None:
            return None
        ann = -1 if f.get("annotation_row") is None else int(f["annotation_row"])
        ta = self.truth.annotations
        sug = f.get("suggestion") or {}
        truth_box = ta.box[ann] if ann >= 0 and ta.box is not None else np.full(4, np.nan)
        sug_box = np.asarray(sug["box_xyxy"], np.float64) if sug.get("box_xyxy") else np.full(4, np.nan)
        kp = sug.get("keypoints")
        points = np.asarray([[np.nan if v is None else v for v in p] for p in kp], np.float64) if kp else \
            np.zeros((0, 3))
        cls = int(ta.label[ann]) if ann >= 0 else (self.names.index(sug["class"]) if sug.get("class") in self.names
                                                   else -1)
        overlays, edges = keypoint_overlays(self.truth, ann, points, cls)
        rings = []  # oriented boxes: their corners, not their extents (as the HTML report draws them)
        if ann >= 0 and self.oriented[ann]:
            rings.append((quad_corners(self.truth, np.array([ann]))[0], TRUTH_COLOUR))
            truth_box = np.full(4, np.nan)
        if sug.get("polygon"):
            rings.append((np.asarray(sug["polygon"][0], np.float64).reshape(-1, 2), SUGGESTED_COLOUR))
            sug_box = np.full(4, np.nan)
        other = -1 if f.get("other_row") is None else int(f["other_row"])  # a duplicate's, a class conflict's pair
        other_box = ta.box[other] if other >= 0 and ta.box is not None else np.full(4, np.nan)
        if other >= 0 and self.oriented[other]:
            rings.append((quad_corners(self.truth, np.array([other]))[0], OTHER_COLOUR))
            other_box = np.full(4, np.nan)
        png = crop_png(self.truth, int(img), [(truth_box, TRUTH_COLOUR), (other_box, OTHER_COLOUR),
                                              (sug_box, SUGGESTED_COLOUR)], size, overlays, edges, rings)
        png = png if png is not None else thumbnail_png(self.truth, int(img), size)  # nothing to outline: the image
        return None if png is None else base64.b64decode(png)


def _image_note(truth: Dataset, findings: Sequence[Mapping[str, Any]]) -> str | None:
    """``Review.image_note``: checked once, when the review opens (one ``stat`` per image the findings name)."""
    rows = sorted({int(f["image_row"]) for f in findings if f.get("image_row") is not None and f["image_row"] >= 0})
    if not rows:
        return None
    if truth.root is None:
        return f"the truth has no image folder: no crops for the {len(rows)} images of the findings (give " \
               "--images-root FOLDER)"
    from maslow.quality.report import missing_images

    found = missing_images(truth, rows)
    if not found.n_missing:
        return None
    return f"{found.n_missing} of the {found.n_checked} images of the findings are not found under {truth.root} " \
           f"(e.g. {found.first}): their crops are left out; a wrong --images-root?"


def _listed(values: Collection[str], most: int = 20) -> str:
    """Values for a message: sorted, quoted, the first ``most`` of them and how many in all."""
    shown = ", ".join(repr(v) for v in sorted(values)[:most])
    return shown if len(values) <= most else f"{shown}, ... ({len(values)} in all)"


def _values(text: str | None, known: Collection[str] = ()) -> set[str] | None:
    """A filter's values (comma-separated; a value of ``known`` as it is, commas and all: a class named "person,
    adult"), None for no filter."""
    if text is None or not text.strip():
        return None
    out: set[str] = set()
    parts = text.split(",")
    most = max((v.count(",") for v in known), default=0)  # the most parts a known value spans, less one
    i = 0
    while i < len(parts):
        # the longest run of parts that joins into a known value, else the one part
        j = next((j for j in range(min(len(parts), i + most + 1), i + 1, -1)
                  if ",".join(parts[i:j]).strip() in known), i + 1)
        v = ",".join(parts[i:j]).strip()
        if v:
            out.add(v)
        i = j
    return out or None
