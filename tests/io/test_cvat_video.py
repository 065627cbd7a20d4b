"""CVAT for video 1.1: <track> elements read as per-frame annotations with their track id, and written back.

Source (public): cvat-ai/cvat ``cvat/apps/dataset_manager/formats/cvat.py`` (``dump_as_cvat_interpolation``:
``<track id label source [group_id]>``, children ``frame keyframe outside occluded ... z_order``; a skeleton's
points carry ``label keyframe outside occluded points``; ``load_anno`` keeps only keyframes), ``bindings.py``
(the ``tracks`` property interpolates every track over the task before dumping; video frames are named
``frame_{:06d}`` plus ``.PNG``) and ``annotation.py`` (``TrackManager``: interpolated outside frames are skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET

from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import cvat
from tests.helpers import assert_datasets_equal

VIDEO = Path(__file__).parents[1] / "data" / "cvat" / "video.xml"

META = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><mode>interpolation</mode><start_frame>0</start_frame>
<stop_frame>{stop}</stop_frame><frame_filter></frame_filter><labels><label><name>car</name><type>rectangle</type>
</label></labels><original_size><width>20</width><height>10</height></original_size></task></meta>
"""


def _xml(tmp_path: Path, body: str, stop: int = 3) -> Path:
    p = tmp_path / "annotations.xml"
    p.write_text(META.format(stop=stop) + body + "\n</annotations>\n", encoding="utf-8")
    return p


def _box(frame: int, x: float, *, keyframe: int = 1, outside: int = 0) -> str:
    return (f'<box frame="{frame}" keyframe="{keyframe}" outside="{outside}" occluded="0" xtl="{x}" ytl="1" '
            f'xbr="{x + 4}" ybr="5" z_order="0"/>')


def _structure(path: Path) -> list[tuple[str | None, str | None, list[tuple[str, ...]]]]:
    top = SafeET.parse(path).getroot()
    return [(t.get("id"), t.get("label"), [(e.tag, e.get("frame"), e.get("keyframe"), e.get("outside", "-"))
                                           for e in t]) for t in top.findall("track")]


# -- reading ---------------------------------------------------------------------------------------------------
def test_video_export_reads_one_annotation_per_visible_frame() -> None:
    ds, report = cvat.parse(VIDEO)
    assert len(report) == 0, report.to_dict()
    # no <image> in a video export: every frame of the task is an image, named as CVAT names video frames
    assert ds.images.path.tolist() == [f"frame_{f:06d}.PNG" for f in range(6)]
    assert ds.images.extra["cvat_id"].tolist() == list(range(6))
    assert set(ds.images.width.tolist()) == {64} and set(ds.images.height.tolist()) == {48}  # <original_size>
    a = ds.annotations
    names = [ds.schema.names[k] for k in a.label]
    # outside frames hold no object: car at 3 (and 4, left out as CVAT does), lane from 1, person at 3, ball at 5
    assert list(zip(a.image.tolist(), names, strict=True)) == [
        (0, "car"), (0, "lane"), (1, "car"), (1, "person"), (2, "car"), (2, "person"), (4, "ball"), (5, "car")]
    assert a.extra["cvat_track_id"].tolist() == [0, 1, 0, 2, 0, 2, 3, 0]
    assert a.extra["cvat_keyframe"].tolist() == [True, True, False, True, True, True, True, True]
    np.testing.assert_array_equal(a.box[[0, 2, 4, 7]], [[1, 2, 11, 12], [2.5, 2, 12.5, 12], [4, 2, 14, 12],
                                                        [40, 30, 64, 48]])
    assert a.attributes["parked"].tolist()[:5:2] == [False, False, True]
    assert a.attributes["occluded"][4] is True  # per frame
    assert a.source[1] == "model" and a.extra["cvat_source"][1] == "auto"  # the track's source
    assert a.extra["cvat_shape"][1] == "polyline" and a.extra["cvat_z_order"][7] == 1
    np.testing.assert_array_equal(a.keypoints[[3, 5]], [[[20, 10, 2], [30, 20, 1]], [[21, 10, 2], [31, 20, 0]]])
    assert a.extra["cvat_shape"][6] == "ellipse" and a.extra["cvat_rotation"][6] == 30.0


def test_video_export_round_trip_writes_the_tracks_back(tmp_path: Path) -> None:
    ds, _ = cvat.parse(VIDEO)
    report = cvat.write(ds, tmp_path / "out.xml")
    assert report.lossless, report.lost
    want = _structure(VIDEO)
    want[2][2][1] = ("skeleton", "2", "1", "-")  # a skeleton is a keyframe where one of its points is (tail, here)
    assert _structure(tmp_path / "out.xml") == want  # same frames, keyframes and outside ends
    back, rep = cvat.parse(tmp_path / "out.xml")
    assert len(rep) == 0
    assert_datasets_equal(ds, back, fields=("path", "size", "label", "box", "polygon", "keypoints"),
                          attributes=("parked", "occluded"), atol=0)
    for k in ("cvat_track_id", "cvat_keyframe", "cvat_shape", "cvat_source", "cvat_z_order"):
        assert back.annotations.extra[k].tolist() == ds.annotations.extra[k].tolist(), k


def test_tracks_and_images_in_one_file_meet_on_the_frame_number(tmp_path: Path) -> None:
    body = ('<image id="0" name="a.jpg" width="20" height="10"><box label="car" xtl="0" ytl="0" xbr="1" ybr="1"/>'
            '</image><image id="1" name="b.jpg" width="20" height="10"/>'
            f'<track id="4" label="car" source="manual">{_box(1, 2)}{_box(2, 3, outside=1)}</track>')
    ds, report = cvat.parse(_xml(tmp_path, body))
    assert len(report) == 0
    assert ds.images.path.tolist() == ["a.jpg", "b.jpg", "frame_000002.PNG"]  # frame 2: no <image>, named by CVAT
    assert ds.annotations.image.tolist() == [0, 1]
    assert ds.annotations.extra["cvat_track_id"].tolist() == [-1, 4]  # -1: not from a track


def test_mask_track_takes_the_frame_size_from_meta(tmp_path: Path) -> None:
    """CVAT writes a mask shape in a video export as a one-frame track ending in an outside frame."""
    mask = ('<mask frame="{f}" keyframe="1" outside="{o}" occluded="0" rle="0, 2, 1, 1" left="3" top="4" '
            'width="2" height="2" z_order="0"/>')
    ds, report = cvat.parse(_xml(tmp_path, f'<track id="0" label="car" source="manual">{mask.format(f=1, o=0)}'
                                           f"{mask.format(f=2, o=1)}</track>"))
    assert len(report) == 0 and ds.n_images == 4
    assert M.decode(ds.annotations.mask[0]).shape == (10, 20) and M.area([ds.annotations.mask[0]])[0] == 3


# -- findings --------------------------------------------------------------------------------------------------
def test_frames_a_visible_track_skips_are_reported_not_invented(tmp_path: Path) -> None:
    body = f'<track id="5" label="car" source="manual">{_box(0, 1)}{_box(3, 4)}</track>'
    ds, report = cvat.parse(_xml(tmp_path, body, stop=5))
    gaps = report.of_type("track_gap")
    assert [i.severity for i in gaps] == ["warning", "warning"]
    assert "frame 0" in gaps[0].message and "frame 3" in gaps[0].message  # frames 1-2 missing
    assert "task runs to frame 5" in gaps[1].message  # visible at its last frame 3, the task goes on
    assert all(i.record == "track id=5 label='car'" and i.file.endswith("annotations.xml") for i in gaps)
    assert ds.annotations.image.tolist() == [0, 3] and ds.n_images == 6


def test_frame_step_from_frame_filter(tmp_path: Path) -> None:
    p = _xml(tmp_path, f'<track id="0" label="car" source="manual">{_box(0, 1)}{_box(2, 2)}{_box(4, 3, outside=1)}'
                       "</track>", stop=4)
    p.write_text(p.read_text().replace("<frame_filter></frame_filter>", "<frame_filter>step=2</frame_filter>"))
    ds, report = cvat.parse(p)
    assert len(report) == 0
    assert ds.images.extra["cvat_id"].tolist() == [0, 2, 4]


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        pytest.param(f'<track id="1" label="car">{_box(0, 1)}</track><track id="1" label="car">{_box(0, 2)}</track>',
                     "duplicate_track_id", id="duplicate-id"),
        pytest.param(f'<track id="1" label="car">{_box(0, 1)}{_box(0, 2)}</track>', "duplicate_track_frame",
                     id="duplicate-frame"),
        pytest.param(f'<track id="1" label="car"><tag frame="0"/>{_box(0, 1)}</track>', "unsupported_shape",
                     id="tag-in-track"),
        pytest.param(f'<track id="1" label="car"><attribute name="parked">true</attribute>{_box(0, 1)}</track>',
                     "track_attribute", id="attribute-on-track"),
        pytest.param(f'<track id="1" label="car" task_id="1">{_box(0, 1)}</track>'
                     f'<track id="2" label="car" task_id="2">{_box(0, 1)}</track>', "multi_task_tracks",
                     id="project-export"),
    ],
)
def test_track_findings(tmp_path: Path, body: str, kind: str) -> None:
    ds, report = cvat.parse(_xml(tmp_path, body, stop=0))
    assert report.counts() == {kind: 1}
    assert ds.n_annotations >= 1  # what the track could hold is imported
    assert report.issues[0].severity == "error" and report.issues[0].record.startswith("track")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        pytest.param('<track id="x" label="car"/>', r"track #0, field 'id'.*integer", id="bad-id"),
        pytest.param('<track id="3"/>', r"track #0 \(id=3\), field 'label'", id="no-label"),
        pytest.param('<track id="3" label="car"><box keyframe="1" xtl="1" ytl="1" xbr="2" ybr="2"/></track>',
                     r"track id=3 label='car' <box> #0, field 'frame'", id="no-frame"),
        pytest.param(f'<track id="3" label="car">{_box(2, 1).replace("ybr=", "ybrx=")}</track>',
                     r"track id=3 label='car' <box> frame=2, field 'ybr'", id="no-coordinate"),
    ],
)
def test_malformed_tracks_raise_naming_the_track(tmp_path: Path, body: str, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        cvat.parse(_xml(tmp_path, body))


# -- writing ---------------------------------------------------------------------------------------------------
def _tracked(track: list[int], image: list[int], box_x: list[float], *, label: list[int] | None = None,
             keyframe: list[bool] | None = None, mask: list[Any] | None = None, n_images: int = 6) -> Dataset:
    n = len(track)
    return Dataset(
        schema=LabelSchema.from_names(["car", "bus"]),
        images=Images(path=obj_array([f"f{i}.png" for i in range(n_images)]), width=np.full(n_images, 40),
                      height=np.full(n_images, 10), extra={"cvat_id": np.arange(n_images) * 10}),
        annotations=Annotations(image=np.asarray(image), label=np.asarray(label or [0] * n),
                                box=np.asarray([[x, 1, x + 4, 5] for x in box_x], np.float64),
                                mask=None if mask is None else obj_array(mask),
                                extra={"cvat_track_id": np.asarray(track),
                                       "cvat_keyframe": np.asarray(keyframe or [True] * n)}),
    )


def _cvat_import(path: Path) -> dict[tuple[str, int], list[float]]:
    """What CVAT's load_anno + TrackManager make of our tracks: keyframes only, boxes interpolated linearly
    between visible keyframes, nothing from an outside keyframe on, the last visible keyframe held to the end."""
    top = SafeET.parse(path).getroot()
    frames = sorted(int(i.get("id")) for i in top.findall("image"))
    out = {}
    for t in top.findall("track"):
        keys = [(int(e.get("frame")), e.get("outside") == "1", [float(e.get(c)) for c in ("xtl", "ytl", "xbr", "ybr")])
                for e in t if e.get("keyframe") == "1"]
        for (f0, out0, b0), nxt in zip(keys, [*keys[1:], None], strict=True):
            for f in (f for f in frames if f >= f0 and (nxt is None or f < nxt[0])):
                if not out0:
                    w = 0.0 if nxt is None else (f - f0) / (nxt[0] - f0)
                    b1 = b0 if nxt is None else nxt[2]
                    out[(t.get("id"), f)] = [a + w * (b - a) for a, b in zip(b0, b1, strict=True)]
    return out


def test_cvat_rebuilds_the_same_frames_from_what_is_written(tmp_path: Path) -> None:
    """Interpolated (keyframe False) rows are left to CVAT; the first and last frame of each visible run are
    written as keyframes and an outside keyframe follows each run, so CVAT's import gives the rows back."""
    # track 7 over images 0-2 moving linearly (image 1 interpolated), absent from 3, back at 4 (not the end)
    ds = _tracked([7, 7, 7, 7], [0, 1, 2, 4], [0, 1, 2, 9], keyframe=[True, False, False, True])
    report = cvat.write(ds, tmp_path / "t.xml")
    assert report.lossless
    ((tid, label, els),) = _structure(tmp_path / "t.xml")
    assert (tid, label) == ("7", "car")
    assert els == [("box", "0", "1", "0"), ("box", "10", "0", "0"), ("box", "20", "1", "0"), ("box", "30", "1", "1"),
                   ("box", "40", "1", "0"), ("box", "50", "1", "1")]
    want = {("7", int(ds.images.extra["cvat_id"][i])): b.tolist() for i, b in zip(ds.annotations.image,
                                                                                   ds.annotations.box, strict=True)}
    assert _cvat_import(tmp_path / "t.xml") == want
    back, _ = cvat.parse(tmp_path / "t.xml")
    assert back.annotations.extra["cvat_track_id"].tolist() == [7, 7, 7, 7]
    assert back.annotations.extra["cvat_keyframe"].tolist() == [True, False, True, True]  # a run's end: keyframe


def test_rows_a_track_cannot_hold_are_written_in_their_image_and_counted(tmp_path: Path) -> None:
    square = np.zeros((10, 40), bool)
    square[1:5, 0:4] = True
    ds = _tracked([1, 1, 2, 3, 3], [0, 0, 0, 1, 2], [0, 0, 0, 0, 0], label=[0, 0, 0, 0, 1],
                  mask=[None, None, M.encode(square), None, None])
    report = cvat.write(ds, tmp_path / "w.xml")
    # row 1: track 1 twice in image 0; row 2: a mask (CVAT imports a mask track as one shape)
    assert report.lost == {"cvat_track_id": 2}
    tracks = _structure(tmp_path / "w.xml")
    assert [(t, lab) for t, lab, _ in tracks] == [("1", "car"), ("3", "car"), ("4", "bus")]  # 3/bus: a fresh id
    top = SafeET.parse(tmp_path / "w.xml").getroot()
    assert [e.tag for e in top.find("image[@id='0']")] == ["box", "mask"]
    back, report = cvat.parse(tmp_path / "w.xml")
    assert len(report) == 0
    assert back.annotations.extra["cvat_track_id"].tolist() == [-1, -1, 1, 3, 4]
