"""A Label Studio ellipse (turned about its centre, as CVAT's) is written as a CVAT <ellipse> and read back as the
same outline; an edited one goes as a polygon, its shape counted lost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from maslow.io import cvat, labelstudio


def _export(tmp: Path, rotation: float) -> Path:
    task = {"id": 1, "data": {"image": "/data/upload/1/a.png"}, "annotations": [{"id": 1, "result": [
        {"id": "e1", "type": "ellipselabels", "from_name": "label", "to_name": "image", "original_width": 200,
         "original_height": 100, "image_rotation": 0,
         "value": {"x": 40, "y": 50, "radiusX": 10, "radiusY": 20, "rotation": rotation, "ellipselabels": ["cell"]}}]}]}
    path = tmp / "export.json"
    path.write_text(json.dumps([task]), encoding="utf-8")
    return path


def test_label_studio_ellipses_become_cvat_ellipses(tmp_path: Path) -> None:
    for rotation in (0.0, 30.0):
        ds, _ = labelstudio.parse(_export(tmp_path, rotation))
        assert ds.annotations.extra["ls_shape"][0] == "ellipse"
        rep = cvat.write(ds, tmp_path / "out.xml")
        text = (tmp_path / "out.xml").read_text(encoding="utf-8")
        assert "<ellipse" in text and ("rotation=" in text) == bool(rotation), text
        assert not rep.lost.get("extra.ls_shape") and not rep.lost.get("extra.ls_rotation"), rep.lost
        back, _ = cvat.parse(tmp_path / "out.xml")
        assert back.annotations.extra["cvat_shape"][0] == "ellipse"
        assert back.annotations.polygon is not None and ds.annotations.polygon is not None
        np.testing.assert_allclose(back.annotations.polygon[0][0], ds.annotations.polygon[0][0], atol=1e-6)


def test_an_edited_ellipse_goes_as_a_polygon_and_its_shape_is_counted(tmp_path: Path) -> None:
    ds, _ = labelstudio.parse(_export(tmp_path, 0.0))
    poly = ds.annotations.polygon
    assert poly is not None
    xy = poly.xy.copy()
    xy[0] += 3.0  # one point moved: no longer the ellipse the reader made
    ds = ds.replace(annotations=ds.annotations.with_columns(polygon=type(poly)(xy, poly.ring_offsets,
                                                                                  poly.row_offsets, poly.null)))
    rep = cvat.write(ds, tmp_path / "out.xml")
    assert "<polygon" in (tmp_path / "out.xml").read_text(encoding="utf-8") and rep.lost["extra.ls_shape"] == 1
