"""CVAT for video 1.1: reading ``<track>`` elements into per-frame shapes (see ``maslow.io.cvat``).

CVAT exports every frame of a track explicitly: its export interpolates each track over the whole task
(``TrackManager.get_interpolated_shapes`` in ``cvat/apps/dataset_manager/annotation.py``, called by the
``tracks`` property of ``bindings.py``), writes ``keyframe="0"`` on the frames it computed, and leaves out the
interpolated frames of an outside stretch. So every ``<track>`` child is one frame: no interpolation is needed, a
child with ``outside="1"`` is a frame without the object, and a frame missing between two visible children (a file
CVAT did not write) is reported, not invented.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maslow.errors import FormatError
from maslow.io._common import Collector
from maslow.io._cvat_read import SHAPES, Reader, Shape

TRACK_SHAPES = tuple(s for s in SHAPES if s != "tag")


@dataclass(frozen=True)
class Frames:
    """What ``<meta>`` says about the frames of a task or job export."""

    frames: tuple[int, ...] | None  # every frame number, ascending; None when <meta> doesn't say
    step: int  # <frame_filter>step=N</frame_filter>, else 1
    size: tuple[int, int] | None  # (width, height) of a video (<original_size>)


@dataclass
class TrackFrame:
    """One child of a ``<track>``: its frame and, unless it is outside, the shape it holds there."""

    frame: int
    subset: str
    shape: Shape | None


@dataclass
class TrackIndex:
    """What the ``<track>`` elements say about frames, gathered before any track is read."""

    n: int = 0
    task_ids: set[str] = field(default_factory=set)
    frames: set[int] = field(default_factory=set)  # every frame a track child names, but for outside markers
    outside: set[int] = field(default_factory=set)  # frames an outside="1" child names
    subset: dict[int, str] = field(default_factory=dict)  # frame -> subset of the first track holding it

    def note(self, track: Any) -> None:
        self.n += 1
        if track.get("task_id"):
            self.task_ids.add(track.get("task_id"))
        for c in track:
            if str(c.get("frame", "")).isdigit():
                frame = int(c.get("frame"))
                (self.outside if c.get("outside") == "1" else self.frames).add(frame)
                self.subset.setdefault(frame, track.get("subset", ""))

    def images(self, declared: tuple[int, ...] | None) -> set[int]:
        """The frames that are images: those the tracks show an object on, and those only an outside marker names
        while ``<meta>`` declares them (or declares no frames): a marker past the task's end makes no image."""
        markers = self.outside - self.frames
        return self.frames | (markers if declared is None else markers & set(declared))


def _int_text(el: Any, tag: str) -> int | None:
    child = el.find(tag)
    text = "" if child is None or child.text is None else child.text.strip()
    return int(text) if text.lstrip("-").isdigit() else None


def read_frames(meta: Any) -> Frames:
    holder = None if meta is None else next((h for h in meta if h.tag in ("task", "job")), None)
    if holder is None:
        return Frames(None, 1, None)
    step_text = holder.find("frame_filter")
    m = re.search(r"step\s*=\s*(\d+)", "" if step_text is None or step_text.text is None else step_text.text)
    step = max(int(m.group(1)), 1) if m else 1
    start, stop = _int_text(holder, "start_frame"), _int_text(holder, "stop_frame")
    frames = tuple(range(start, stop + 1, step)) if start is not None and stop is not None and stop >= start else None
    osize = holder.find("original_size")
    w, h = (None, None) if osize is None else (_int_text(osize, "width"), _int_text(osize, "height"))
    return Frames(frames, step, (w, h) if w and h and w > 0 and h > 0 else None)


def check_tasks(task_ids: set[str], col: Collector, src: Path) -> None:
    """Report tracks of several tasks (``task_id`` of every ``<track>``), before any track is read."""
    if len(task_ids) > 1:
        col.add("multi_task_tracks", f"tracks of {len(task_ids)} tasks (a project export): CVAT numbers frames per "
                "task, so frames of different tasks with the same number are read as one image; export each "
                "task on its own", severity="error", file=src, record="track task_id")


def read_track(t: int, track: Any, reader: Reader, col: Collector, src: Path, frames: Frames,
               size_of: dict[int, tuple[int, int]], seen: dict[int, int]) -> list[TrackFrame]:
    """Every frame of the ``t``-th ``<track>``; ``frames``: every frame of the file, ``size_of``: frame -> (h, w)
    where known (masks need the image size), ``seen``: track id -> its first track, filled as tracks are read."""
    fallback_h, fallback_w = (frames.size[1], frames.size[0]) if frames.size else (0, 0)
    raw_id, label = track.get("id", str(t)), track.get("label")
    record = f"track id={raw_id} label={label!r}"
    try:
        tid = int(raw_id)
    except ValueError:
        raise FormatError(f"<track> id must be an integer, got {raw_id!r}", path=src, record=f"track #{t}",
                          field="id") from None
    if not label:
        raise FormatError("<track> must have a label", path=src, record=f"track #{t} (id={raw_id})", field="label")
    if tid in seen:
        col.add("duplicate_track_id", f"track id {tid} repeats track #{seen[tid]}; both imported under this id",
                severity="error", file=src, record=record, field="id")
    seen.setdefault(tid, t)
    group = int(reader.num(track, "group_id", record)) if track.get("group_id") else 0
    subset = track.get("subset", "")
    mine: list[TrackFrame] = []
    loose = [a.get("name") for a in track.findall("attribute")]
    if loose:
        col.add("track_attribute", f"attributes directly under <track> ({loose}) are not CVAT's (it writes them "
                "on each frame's shape); not imported", severity="error", file=src, record=record)
    for k, el in enumerate(c for c in track if c.tag != "attribute"):
        rec = f"{record} <{el.tag}> #{k}"
        if el.tag not in TRACK_SHAPES:
            col.add("unsupported_shape", f"<{el.tag}> is not a track shape; it was not imported",
                    severity="error", file=src, record=rec)
            continue
        frame = reader.size(el, "frame", rec)
        rec = f"{record} <{el.tag}> frame={frame}"
        h, w = size_of.get(frame, (fallback_h, fallback_w))
        outside = reader.flag(el, "outside", rec)
        if outside and frame not in size_of:
            col.add("outside_frame", f"outside marker at frame {frame}, which is not a frame <meta> declares "
                    "(start_frame, stop_frame, frame_filter): no image made for it; the track ends before it",
                    severity="info", file=src, record=rec, field="frame")
        shape = None if outside else reader.shape(el, rec, h, w, label=label)
        if shape is not None and el.tag == "skeleton" and shape.keypoints is not None \
                and not (shape.keypoints[:, 2] > 0).any():
            shape = None  # every point outside: the skeleton is outside
        if shape is not None:
            keyframe = el.get("keyframe", "1") == "1" or any(
                c.get("keyframe") == "1" for c in el if c.tag == "points")
            shape.extra.update(cvat_track_id=tid, cvat_keyframe=keyframe, cvat_group_id=group,
                               cvat_source=track.get("source", "manual"))
        mine.append(TrackFrame(frame, subset, shape))
    _check_frames(mine, frames, col, src, record)
    return mine


def _check_frames(mine: list[TrackFrame], frames: Frames, col: Collector, src: Path, record: str) -> None:
    """Report repeated frames, and frames a track skips while visible (CVAT writes each one)."""
    by_frame = sorted(mine, key=lambda f: f.frame)
    for a, b in itertools.pairwise(by_frame):
        if a.frame == b.frame:
            col.add("duplicate_track_frame", f"track has two shapes at frame {a.frame}; both imported",
                    severity="error", file=src, record=record, field="frame")
        elif a.shape is not None and _n_between(frames, a.frame, b.frame):
            col.add("track_gap", f"track is visible at frame {a.frame} and next has a shape at frame {b.frame}: the "
                    f"frames between (which CVAT would interpolate) are not in the file; no object imported there",
                    file=src, record=record, field="frame")
    last = by_frame[-1] if by_frame else None
    if last is not None and last.shape is not None and frames.frames and last.frame < frames.frames[-1]:
        col.add("track_gap", f"track ends visible at frame {last.frame} but the task runs to frame "
                f"{frames.frames[-1]} (CVAT would carry the object on); no object imported after it",
                file=src, record=record, field="frame")


def _n_between(frames: Frames, a: int, b: int) -> int:
    if frames.frames:
        return max(bisect.bisect_left(frames.frames, b) - bisect.bisect_right(frames.frames, a), 0)
    return max((b - a - 1) // frames.step, 0)
