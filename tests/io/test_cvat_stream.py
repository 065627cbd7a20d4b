"""CVAT XML read and written as a stream: memory that does not grow with the document, the same Dataset whatever
the order of the document's parts, the same errors as a whole-document parse, the same bytes as a whole-tree
write."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from defusedxml import ElementTree as SafeET

from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import cvat
from tests.helpers import traced_peak

DATA = Path(__file__).parents[1] / "data" / "cvat"

META = """<meta><task><start_frame>0</start_frame><stop_frame>5</stop_frame><labels>
<label><name>car</name><type>rectangle</type><attributes><attribute><name>colour</name><input_type>select</input_type>
<values>red
blue</values></attribute><attribute><name>n</name><input_type>number</input_type><values>0
9
1</values></attribute></attributes></label>
<label><name>person</name><type>skeleton</type></label>
<label><name>nose</name><type>points</type><parent>person</parent></label>
<label><name>tail</name><type>points</type><parent>person</parent></label>
</labels><original_size><width>50</width><height>40</height></original_size></task></meta>"""
IMAGES = [
    '<image id="0" name="a.jpg" width="50" height="40"><box label="car" xtl="1" ytl="1" xbr="5" ybr="5">'
    '<attribute name="colour">blue</attribute><attribute name="n">3</attribute></box><tag label="day"/></image>',
    '<image id="2" name="b.jpg" width="50" height="40"><polygon label="car" points="1,1;4,4;1,5" group_id="2"/>'
    '<polygon label="car" points="10,10;14,14;10,15" group_id="2"/><points label="car" points="3,3" group_id="2"/>'
    '<box label="van" xtl="1" ytl="1" xbr="5" ybr="5"/></image>',
    '<image id="4" name="c.jpg" width="50" height="40"><skeleton label="person"><points label="tail" points="1,2"/>'
    '<points label="nose" outside="1" points="3,4"/></skeleton></image>',
]
TRACKS = [
    '<track id="7" label="bus" source="auto"><box frame="1" keyframe="1" outside="0" occluded="0" xtl="1" ytl="1" '
    'xbr="5" ybr="5"/><box frame="2" keyframe="0" outside="0" occluded="1" xtl="2" ytl="1" xbr="5" ybr="5"/>'
    '<box frame="3" keyframe="1" outside="1" occluded="0" xtl="2" ytl="1" xbr="5" ybr="5"/></track>',
    '<track id="8" label="car"><mask frame="3" keyframe="1" outside="0" occluded="0" rle="2,3,1" left="1" top="1" '
    'width="3" height="2"><attribute name="colour">green</attribute></mask></track>',
]


def _doc(tmp_path: Path, name: str, *parts: str) -> Path:
    p = tmp_path / name
    p.write_text('<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version>\n'
                 + "\n".join(parts) + "\n</annotations>\n", encoding="utf-8")
    return p


def _columns(ds: Dataset, report: Report) -> dict[str, Any]:
    """Every column of the Dataset (object arrays by repr, NaN as a marker) and the findings, for equality."""
    def col(a: Any) -> Any:
        if a is None:
            return None
        a = np.asarray(a)
        return [repr(v) for v in a.tolist()] if a.dtype == object else np.nan_to_num(a, nan=-1e300).tolist()
    a = ds.annotations
    out = {f"images.{k}": col(getattr(ds.images, k)) for k in ("path", "width", "height", "split")}
    out |= {f"images.extra.{k}": col(v) for k, v in ds.images.extra.items()}
    out |= {k: col(getattr(a, k)) for k in ("image", "label", "box", "mask", "keypoints", "source")}
    rings = a.polygon
    out["polygon"] = None if rings is None else [repr([p.tolist() for p in rings[r] or []]) for r in range(len(a))]
    out |= {f"attributes.{k}": col(v) for k, v in a.attributes.items()}
    out |= {f"extra.{k}": col(v) for k, v in a.extra.items()}
    out["schema"] = repr(ds.schema)
    out["report"] = [(i.type, i.severity, i.message, i.record, i.field, i.image, i.annotation) for i in report]
    return out


# -- the same Dataset whatever the order of the document's parts (as when the whole tree was searched) ----------
def test_meta_after_the_images_types_them_as_meta_first_does(tmp_path: Path) -> None:
    first = cvat.parse(_doc(tmp_path, "first.xml", META, *IMAGES, *TRACKS))
    last = cvat.parse(_doc(tmp_path, "last.xml", IMAGES[0], META, *IMAGES[1:], *TRACKS))
    assert _columns(*last) == _columns(*first)
    ds, report = first
    assert ds.annotations.attributes["n"].tolist()[:1] == [3.0]  # typed by <meta>: a number, not text
    assert ds.schema.classes[1].keypoints == ("nose", "tail")
    # van, bus and day; colour 'green'; track 8 ends visible at frame 3 of 0..5
    assert report.counts() == {"unknown_label": 3, "attribute_value": 1, "track_gap": 1}


def test_tracks_before_or_among_the_images_read_as_after_them(tmp_path: Path) -> None:
    after = cvat.parse(_doc(tmp_path, "after.xml", META, *IMAGES, *TRACKS))
    before = cvat.parse(_doc(tmp_path, "before.xml", META, *TRACKS, *IMAGES))
    among = cvat.parse(_doc(tmp_path, "among.xml", META, IMAGES[0], TRACKS[0], IMAGES[1], TRACKS[1], IMAGES[2]))
    assert _columns(*before) == _columns(*after) == _columns(*among)
    ds = after[0]
    # per image: its own shapes, then the track frames on it; track frames without an <image> become images
    assert ds.images.extra["cvat_id"].tolist() == [0, 2, 4, 1, 3]
    assert ds.annotations.image.tolist() == [0, 0, 1, 1, 1, 2, 3, 4]
    assert ds.annotations.extra["cvat_track_id"].tolist() == [-1, -1, -1, -1, 7, -1, 7, 8]


def test_an_undeclared_label_is_reported_on_its_first_row_in_the_dataset(tmp_path: Path) -> None:
    """'van' is on image 2 (b.jpg) and on a track frame of image 0 (a.jpg): the track frame is its first row."""
    track = ('<track id="3" label="van"><box frame="0" keyframe="1" outside="0" occluded="0" xtl="1" ytl="1" '
             'xbr="5" ybr="5"/><box frame="1" keyframe="1" outside="1" occluded="0" xtl="1" ytl="1" xbr="5" '
             'ybr="5"/></track>')
    ds, report = cvat.parse(_doc(tmp_path, "a.xml", META, IMAGES[0], IMAGES[1], track))
    van = [i for i in report.of_type("unknown_label") if "'van'" in i.message]
    assert [(i.record, i.image, i.annotation) for i in van] == [("track id=3 label='van' <box> frame=0", 0, 2)]
    assert ds.schema.names[ds.annotations.label[2]] == "van"


# -- errors as from a whole-document parse ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parts", "match"),
    [
        pytest.param(('<image id="0" name="a.jpg" width="5" height="5"><box label="car" xtl="x" ytl="1" xbr="2" '
                      'ybr="3"/></image>', "<image><oops></image>"), "malformed XML at line 14 column 15",
                     id="malformed-after-a-bad-record"),
        pytest.param(('<image id="0" name="a.jpg" width="5" height="5"><box label="car" xtl="x" ytl="1" xbr="2" '
                      'ybr="3"/></image>',), r"image id=0 name='a.jpg' <box> #0, field 'xtl'", id="bad-record"),
        pytest.param(('<track id="t" label="car"/>', '<image id="0" name="a.jpg" width="5" height="5"><box '
                      'label="car" xtl="x" ytl="1" xbr="2" ybr="3"/></image>'), "field 'xtl'",
                     id="images-before-tracks"),
    ],
)
def test_errors_keep_the_precedence_of_a_whole_document_parse(tmp_path: Path, parts: tuple[str, ...],
                                                               match: str) -> None:
    with pytest.raises(FormatError, match=match):
        cvat.parse(_doc(tmp_path, "a.xml", META, *parts))


def test_a_wrong_root_is_reported_after_the_whole_file_is_checked(tmp_path: Path) -> None:
    p = tmp_path / "a.xml"
    p.write_text("<root><image/>" + "<x/>" * 100 + "</root>", encoding="utf-8")
    with pytest.raises(FormatError, match="root element must be <annotations>, got <root>"):
        cvat.parse(p)
    p.write_text("<root><image/>" + "<x/>" * 100 + "<y></root>", encoding="utf-8")
    with pytest.raises(FormatError, match="malformed XML"):
        cvat.parse(p)


# -- memory ----------------------------------------------------------------------------------------------------
def test_reading_does_not_hold_the_document(tmp_path: Path) -> None:
    """Peak memory grows with what the Dataset keeps, not with the XML: the whole tree took ~13 bytes per byte of
    file (each <attribute> an element with its dict), the stream < 1."""
    attrs = "".join(f'<attribute name="a{j}">yes</attribute>' for j in range(20))
    sizes, peaks = [], []
    for n in (150, 600):
        body = [f'<image id="{i}" name="im{i}.png" width="64" height="48">\n  <box label="car" xtl="1" ytl="2" '
                f'xbr="30" ybr="40">{attrs}</box>\n</image>' for i in range(n)]
        p = _doc(tmp_path, f"{n}.xml", *body)
        sizes.append(p.stat().st_size)
        peaks.append(traced_peak(lambda p=p: cvat.parse(p)))
    assert (peaks[1] - peaks[0]) / (sizes[1] - sizes[0]) < 2.0


def _boxes(n: int, per: int = 5) -> Dataset:
    m = n * per
    xy = np.random.default_rng(0).uniform(0, 50, (m, 2))
    return Dataset(
        schema=LabelSchema.from_names(["car", "bus"]),
        images=Images(path=obj_array([f"im{i}.png" for i in range(n)]), width=np.full(n, 64), height=np.full(n, 64)),
        annotations=Annotations(image=np.repeat(np.arange(n), per), label=np.arange(m) % 2,
                                box=np.hstack([xy, xy + 5]),
                                attributes={"colour": obj_array(["red"] * m), "parked": obj_array([True] * m)}))


def test_writing_does_not_build_the_document(tmp_path: Path) -> None:
    """The whole tree took ~2 KB per box while it was built; the stream holds one image at a time."""
    small, large = _boxes(100), _boxes(400)
    p0 = traced_peak(lambda: cvat.write(small, tmp_path / "s.xml"))
    p1 = traced_peak(lambda: cvat.write(large, tmp_path / "l.xml"))
    assert (p1 - p0) / (large.n_annotations - small.n_annotations) < 200


# -- the bytes of a whole-tree write ---------------------------------------------------------------------------
def _whole_tree(path: Path) -> bytes:
    """The file as ElementTree writes its whole tree (indented): what the writer wrote before it streamed."""
    tree = ET.ElementTree(SafeET.parse(path).getroot())
    ET.indent(tree, "  ")
    out = path.with_suffix(".tree.xml")
    tree.write(out, encoding="utf-8", xml_declaration=True)
    return out.read_bytes()


@pytest.mark.parametrize("name", ["annotations.xml", "shapes.xml", "video.xml"])
def test_written_bytes_are_those_of_the_whole_tree(tmp_path: Path, name: str) -> None:
    ds, _ = cvat.parse(DATA / name)
    cvat.write(ds, tmp_path / "out.xml")
    assert (tmp_path / "out.xml").read_bytes() == _whole_tree(tmp_path / "out.xml")
