"""CVAT XML as a whole: what is directly under ``<annotations>`` besides CVAT's own elements is reported, an
outside marker past the task's frames makes no image, malformed XML names the image or track it is in, and
reading reports progress over the bytes read."""

from __future__ import annotations

from pathlib import Path

import pytest

from maslow import io
from maslow.errors import FormatError
from maslow.io import cvat

DATA = Path(__file__).parents[1] / "data" / "cvat"

HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version><meta><task><mode>interpolation</mode><start_frame>0</start_frame>
<stop_frame>4</stop_frame><frame_filter></frame_filter><labels><label><name>car</name><type>rectangle</type>
<attributes/></label></labels><original_size><width>100</width><height>100</height></original_size></task></meta>
"""
TRACK = ('<track id="0" label="car" source="manual"><box frame="4" keyframe="1" outside="0" occluded="0" xtl="0" '
         'ytl="0" xbr="10" ybr="10" z_order="0"/><box frame="5" keyframe="1" outside="1" occluded="0" xtl="0" '
         'ytl="0" xbr="10" ybr="10" z_order="0"/></track>')


def _xml(tmp_path: Path, *parts: str) -> Path:
    p = tmp_path / "annotations.xml"
    p.write_text(HEAD + "\n".join(parts) + "\n</annotations>\n", encoding="utf-8")
    return p


def test_an_outside_marker_past_the_last_frame_makes_no_image(tmp_path: Path) -> None:
    """Older CVAT versions and other tools end a track at the last frame with a marker one frame past it."""
    ds, report = cvat.parse(_xml(tmp_path, TRACK))
    assert ds.images.path.tolist() == [f"frame_{f:06d}.PNG" for f in range(5)]  # stop_frame 4: no frame 5
    (issue,) = report.of_type("outside_frame")
    assert issue.severity == "info" and "frame 5" in issue.message and issue.record.startswith("track id=0")
    assert ds.annotations.image.tolist() == [4]


def test_an_outside_marker_inside_the_task_is_still_a_frame(tmp_path: Path) -> None:
    body = TRACK.replace('frame="4"', 'frame="2"').replace('frame="5"', 'frame="3"')
    ds, report = cvat.parse(_xml(tmp_path, body))
    assert ds.n_images == 5 and len(report.of_type("outside_frame")) == 0


@pytest.mark.parametrize(
    ("stray", "kind", "severity"),
    [
        pytest.param('<tag label="car" frame="2" source="manual"/>', "unsupported_shape", "error", id="tag"),
        pytest.param('<box label="car" xtl="0" ytl="0" xbr="1" ybr="1"/>', "unsupported_shape", "error", id="box"),
        pytest.param("<comment>made by hand</comment>", "unknown_element", "warning", id="other"),
        pytest.param("<meta/>", "unknown_element", "warning", id="second-meta"),
    ],
)
def test_an_element_under_annotations_that_is_not_cvats_is_reported(tmp_path: Path, stray: str, kind: str,
                                                                    severity: str) -> None:
    ds, report = cvat.parse(_xml(tmp_path, TRACK.replace('frame="5"', 'frame="3"'), "", stray))
    (issue,) = report.of_type(kind)
    tag = stray[1:].split()[0].split(">")[0].rstrip("/")
    assert issue.severity == severity and issue.record == f"<{tag}> at line 7"
    assert ds.n_annotations == 1  # the track's box; nothing made of the stray element


def test_the_images_test_file_has_no_stray_findings() -> None:
    _, report = cvat.parse(DATA / "video.xml")
    assert len(report) == 0


@pytest.mark.parametrize(
    ("cut", "record"),
    [
        pytest.param('ybr="10"', "track id=0 label='car' (from line 5)", id="in-a-track"),
        pytest.param("</track>", "after track id=0 label='car' (from line 5)", id="after-a-track"),
    ],
)
def test_truncated_xml_names_the_track_it_is_in(tmp_path: Path, cut: str, record: str) -> None:
    p = _xml(tmp_path, TRACK)
    text = p.read_text()
    p.write_text(text[: text.index(cut) + len(cut)])
    with pytest.raises(FormatError, match="malformed XML at line") as e:
        cvat.parse(p)
    assert e.value.record == record


def test_truncated_xml_names_the_image_it_is_in(tmp_path: Path) -> None:
    img = '<image id="3" name="a.jpg" width="10" height="10"><box label="car" xtl="0" ytl="0" xbr="1" ybr="1"/>'
    p = tmp_path / "a.xml"
    p.write_text(HEAD + "\n" + img + '\n<box label="car" xtl="0"', encoding="utf-8")
    with pytest.raises(FormatError, match=r"a.xml, image id=3 name='a.jpg' \(from line 6\): malformed XML"):
        cvat.parse(p)


def _calls(path: Path) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    cvat.parse(path, progress=lambda d, t: calls.append((d, t)))
    return calls


def test_reading_reports_the_bytes_read(tmp_path: Path) -> None:
    body = [f'<image id="{i}" name="im{i}.png" width="64" height="48"><box label="car" xtl="1" ytl="2" xbr="30" '
            f'ybr="40"/></image>' for i in range(3000)]
    p = tmp_path / "big.xml"
    p.write_text(HEAD + "\n".join(body) + "\n</annotations>\n", encoding="utf-8")
    size = p.stat().st_size
    calls = _calls(p)
    assert calls[0] == (0, size) and calls[-1] == (size, size)
    assert {t for _, t in calls} == {size}
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)  # monotone
    assert 3 < len(calls) <= 110  # throttled: about 100 calls


def test_a_file_with_tracks_is_read_twice_and_says_so(tmp_path: Path) -> None:
    p = _xml(tmp_path, TRACK)
    size = p.stat().st_size
    calls = _calls(p)
    assert calls[0] == (0, size) and calls[-1] == (2 * size, 2 * size)  # a second reading for the tracks
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_import_dataset_passes_progress_to_the_cvat_reader(tmp_path: Path) -> None:
    """``maslow convert`` showed ``importing x.xml 0/?`` for the whole read of a big CVAT file."""
    p = _xml(tmp_path, TRACK)
    calls: list[tuple[int, int]] = []
    io.import_dataset(p, "cvat", check_files=False, progress=lambda d, t: calls.append((d, t)))
    assert (2 * p.stat().st_size, 2 * p.stat().st_size) in calls
