"""Writing COCO from data with shapes COCO has no kind for: what is written, and that it is said."""

from __future__ import annotations

import json
from pathlib import Path

from maslow import io as mio
from maslow.io import cvat


def test_cvat_polylines_written_to_coco_are_said(tmp_path: Path) -> None:
    """COCO has no open lines: a CVAT polyline becomes a polygon (a 2-point one a box to pycocotools), noted."""
    src = tmp_path / "lines.xml"
    src.write_text('<?xml version="1.0"?><annotations><version>1.1</version><image id="0" name="a.png" width="100" '
                   'height="80"><polyline label="lane" points="10,10;50,40"/><polyline label="lane" '
                   'points="10,10;50,40;60,70"/><box label="car" xtl="1" ytl="2" xbr="30" ybr="40"/></image>'
                   '</annotations>')
    ds, _ = cvat.parse(src)
    rep = mio.write(ds, tmp_path / "out.json", "coco")
    assert any(n.startswith("2 polylines written as polygons") for n in rep.notes), rep.notes
    back = json.loads((tmp_path / "out.json").read_text())["annotations"]
    assert [a["segmentation"] for a in back[:2]] == [[[10, 10, 50, 40]], [[10, 10, 50, 40, 60, 70]]]
