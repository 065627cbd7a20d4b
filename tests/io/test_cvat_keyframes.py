"""CVAT for video: a track row read on an interpolated frame (``keyframe="0"``) is written back as a keyframe when
CVAT's import would not rebuild it from the keyframes around it (it was edited), and stays ``keyframe="0"``
while it would (an unchanged round trip writes the same bytes).

Source (public): cvat-ai/cvat ``cvat/apps/dataset_manager/formats/cvat.py`` (``load_anno`` keeps a track's shape
only ``if shape["keyframe"]``) and ``annotation.py`` (``TrackManager.get_interpolated_shapes``: boxes, ellipses,
cuboids and skeleton points linear between keyframes, rotation by the short arc, ``<points>`` linear only for one
point, polygons by ``polyshape_interpolation``; occluded, z_order and attributes copied from the keyframe before).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET

from maslow.core.dataset import Dataset
from maslow.io import _cvat_interp, cvat

VIDEO = Path(__file__).parents[1] / "data" / "cvat" / "video.xml"

META = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><mode>interpolation</mode><start_frame>0</start_frame>
<stop_frame>{stop}</stop_frame><frame_filter></frame_filter><labels><label><name>car</name><type>any</type>
<attributes><attribute><name>parked</name><mutable>True</mutable><input_type>checkbox</input_type>
<default_value>false</default_value><values>false</values></attribute></attributes>
</label></labels><original_size><width>200</width><height>100</height></original_size></task></meta>
"""


def _xml(tmp_path: Path, body: str, stop: int) -> Path:
    p = tmp_path / "in.xml"
    p.write_text(META.format(stop=stop) + body + "\n</annotations>\n", encoding="utf-8")
    return p


def _keyframes(path: Path, track: str = "0") -> dict[int, str]:
    top = SafeET.parse(path).getroot()
    t = next(t for t in top.findall("track") if t.get("id") == track)
    return {int(e.get("frame")): e.get("keyframe") for e in t if e.get("outside") != "1"}


def _row(ds: Dataset, track: int, image: int) -> int:
    a = ds.annotations
    return int(np.flatnonzero((a.extra["cvat_track_id"] == track) & (a.image == image))[0])


def _with(ds: Dataset, **columns: object) -> Dataset:
    return dataclasses.replace(ds, annotations=dataclasses.replace(ds.annotations, **columns))


def test_an_unchanged_round_trip_writes_the_same_bytes(tmp_path: Path) -> None:
    ds, _ = cvat.parse(VIDEO)
    first = cvat.write(ds, tmp_path / "a.xml")
    assert first.lossless and first.notes == []
    assert _keyframes(tmp_path / "a.xml")[1] == "0"  # the interpolated car frame is left to CVAT
    again, _ = cvat.parse(tmp_path / "a.xml")
    cvat.write(again, tmp_path / "b.xml")
    assert (tmp_path / "a.xml").read_bytes() == (tmp_path / "b.xml").read_bytes()


def test_an_edited_box_on_an_interpolated_frame_is_written_as_a_keyframe(tmp_path: Path) -> None:
    ds, _ = cvat.parse(VIDEO)
    r = _row(ds, 0, 1)
    assert ds.annotations.extra["cvat_keyframe"][r] is False or not ds.annotations.extra["cvat_keyframe"][r]
    box = ds.annotations.box.copy()
    box[r] = [20, 20, 30, 30]
    report = cvat.write(_with(ds, box=box), tmp_path / "e.xml")
    assert _keyframes(tmp_path / "e.xml") == {0: "1", 1: "1", 2: "1", 5: "1"}
    assert report.lossless and len(report.notes) == 1 and report.notes[0].startswith("1 track rows")
    back, _ = cvat.parse(tmp_path / "e.xml")
    assert back.annotations.box[_row(back, 0, 1)].tolist() == [20, 20, 30, 30]


@pytest.mark.parametrize("edit", ["occluded", "parked"])
def test_an_edited_flag_or_attribute_on_an_interpolated_frame_is_a_keyframe(tmp_path: Path, edit: str) -> None:
    """CVAT copies occluded and the attributes of the keyframe before to the frames it interpolates."""
    ds, _ = cvat.parse(VIDEO)
    r = _row(ds, 0, 1)
    attrs = {k: v.copy() for k, v in ds.annotations.attributes.items()}
    attrs[edit][r] = not attrs[edit][r]
    cvat.write(_with(ds, attributes=attrs), tmp_path / "e.xml")
    assert _keyframes(tmp_path / "e.xml")[1] == "1"


def test_an_edited_keyframe_makes_the_frames_cvat_would_move_keyframes(tmp_path: Path) -> None:
    """Moving keyframe 0 would move what CVAT interpolates at frame 1: frame 1 keeps its box as a keyframe."""
    ds, _ = cvat.parse(VIDEO)
    box = ds.annotations.box.copy()
    box[_row(ds, 0, 0)] += 5
    cvat.write(_with(ds, box=box), tmp_path / "e.xml")
    assert _keyframes(tmp_path / "e.xml")[1] == "1"


def _track(shape: str, rows: list[tuple[int, int, str]]) -> str:
    return '<track id="0" label="car" source="manual">' + "".join(
        f'<{shape} frame="{f}" keyframe="{k}" outside="0" occluded="0" {geo} z_order="0"/>' for f, k, geo in rows
    ) + "</track>"


@pytest.mark.parametrize(
    ("shape", "rows", "kept"),
    [
        # a rotated box turning 350 -> 10 degrees: CVAT goes the short way round, through 0
        pytest.param("box", [(0, 1, 'xtl="0" ytl="0" xbr="10" ybr="10" rotation="350"'),
                             (1, 0, 'xtl="5" ytl="0" xbr="15" ybr="10" rotation="0"'),
                             (2, 1, 'xtl="10" ytl="0" xbr="20" ybr="10" rotation="10"')], True, id="rotation"),
        pytest.param("box", [(0, 1, 'xtl="0" ytl="0" xbr="10" ybr="10" rotation="350"'),
                             (1, 0, 'xtl="5" ytl="0" xbr="15" ybr="10" rotation="180"'),
                             (2, 1, 'xtl="10" ytl="0" xbr="20" ybr="10" rotation="10"')], False, id="long-way"),
        # two decimals as CVAT writes them: 1/3 of the way is 3.33, within the rounding
        pytest.param("box", [(0, 1, 'xtl="0" ytl="0" xbr="10" ybr="10"'), (1, 0, 'xtl="3.33" ytl="0" xbr="13.33" '
                             'ybr="10"'), (2, 0, 'xtl="6.67" ytl="0" xbr="16.67" ybr="10"'),
                             (3, 1, 'xtl="10" ytl="0" xbr="20" ybr="10"')], True, id="rounded"),
        pytest.param("ellipse", [(0, 1, 'cx="10" cy="10" rx="2" ry="4"'), (1, 0, 'cx="15" cy="10" rx="3" ry="5"'),
                                 (2, 1, 'cx="20" cy="10" rx="4" ry="6"')], True, id="ellipse"),
        # several points: CVAT holds the keyframe's points, it does not move them
        pytest.param("points", [(0, 1, 'points="0,0;4,4"'), (1, 0, 'points="0,0;4,4"'), (2, 1, 'points="8,8;9,9"')],
                     True, id="points-held"),
        pytest.param("points", [(0, 1, 'points="0,0;4,4"'), (1, 0, 'points="4,4;6,6"'), (2, 1, 'points="8,8;8,8"')],
                     False, id="points-moved"),
        pytest.param("points", [(0, 1, 'points="0,0"'), (1, 0, 'points="4,2"'), (2, 1, 'points="8,4"')], True,
                     id="one-point-linear"),
        # a polyline of 2 points to one of 3: the left point 0 takes right points 0 and 1 (by position along the
        # line), so frame 1 has 3 points: (0,5), (2.5,5), (10,5)
        pytest.param("polyline", [(0, 1, 'points="0,0;10,0"'), (1, 0, 'points="0,5;2.5,5;10,5"'),
                                  (2, 1, 'points="0,10;5,10;10,10"')], True, id="polyline-matched"),
        pytest.param("polyline", [(0, 1, 'points="0,0;10,0"'), (1, 0, 'points="0,5;5,5;10,5"'),
                                  (2, 1, 'points="0,10;5,10;10,10"')], False, id="polyline-edited"),
        pytest.param("polygon", [(0, 1, 'points="0,0;10,0;10,10;0,10"'), (1, 0, 'points="2,1;12,1;12,11;2,11"'),
                                 (2, 1, 'points="4,2;14,2;14,12;4,12"')], True, id="polygon-moved-whole"),
    ],
)
def test_what_cvat_interpolates_is_left_to_it(tmp_path: Path, shape: str, rows: list[tuple[int, int, str]],
                                              kept: bool) -> None:
    ds, _ = cvat.parse(_xml(tmp_path, _track(shape, rows), stop=rows[-1][0]))
    cvat.write(ds, tmp_path / "out.xml")
    assert _keyframes(tmp_path / "out.xml")[rows[1][0]] == ("0" if kept else "1")


def test_promoting_one_row_checks_its_neighbours_again() -> None:
    """Row 2 is off the line from 0 to 4; once it is a keyframe, row 1 (on that line) is off the line 0 -> 2."""
    def box(x: float) -> _cvat_interp.TrackRow:
        return _cvat_interp.TrackRow("box", np.asarray([x, 0, x + 1, 1], float), 0.0, ())

    rows = [box(0), box(1), box(9), box(3), box(4)]
    assert _cvat_interp.keyframes([0, 1, 2, 3, 4], rows, [True, False, False, False, True]) == [
        True, True, True, True, True]
    straight = [box(0), box(1), box(2), box(3), box(4)]
    assert _cvat_interp.keyframes([0, 1, 2, 3, 4], straight, [True, False, False, False, True]) == [
        True, False, False, False, True]
