"""``apply_decisions``: the model's box an accepted ``missing`` or ``low_iou`` finding writes is clipped to its image
(the demo added a box at y = -0.1 to the corrected truth), and the change log says so; oriented boxes' corners and
boxes wholly outside the image are written as suggested, with the log saying why."""

from __future__ import annotations

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.quality._review_apply import _Edit, clip_to_image
from maslow.quality.review import Decision, apply_decisions
from tests.quality.test_review_apply import _f, _tiny


def test_an_added_box_is_clipped_to_the_image() -> None:
    ds = _tiny()  # 20 x 20 images
    add = _f(1, "missing", 2, None, "bird", sug_class="bird", box=[6.0, -0.1, 21.5, 9])
    r = apply_decisions(ds, [add], {1: Decision("accepted")})
    (c,) = r.changes
    assert c.outcome == "applied" and c.new_row is not None
    assert r.dataset.annotations.box[c.new_row].tolist() == [6.0, 0.0, 20.0, 9.0]
    assert "xyxy [6.0, -0.1, 21.5, 9.0]" in c.detail and "(clipped to the 20 x 20 image: xyxy [6.0, 0.0, 20.0, 9.0])" \
        in c.detail


def test_a_moved_box_is_clipped_and_one_inside_is_untouched() -> None:
    ds = _tiny()
    move = _f(1, "low_iou", 1, 2, "cat", box=[-2.0, 3, 8, 8])
    inside = _f(2, "low_iou", 0, 1, "dog", box=[9.0, 9, 16, 16])
    r = apply_decisions(ds, [move, inside], {1: Decision("accepted"), 2: Decision("accepted")})
    moved, kept = r.changes
    assert r.dataset.annotations.box[moved.new_row].tolist() == [0.0, 3.0, 8.0, 8.0]
    assert moved.detail.endswith("(clipped to the 20 x 20 image: xyxy [0.0, 3.0, 8.0, 8.0])")
    assert r.dataset.annotations.box[kept.new_row].tolist() == [9.0, 9.0, 16.0, 16.0]
    assert "clipped" not in kept.detail


def test_a_box_wholly_outside_and_an_unknown_size_are_left_as_suggested() -> None:
    ds = _tiny()
    outside = _f(1, "missing", 2, None, "bird", sug_class="bird", box=[25.0, 2, 30, 6])
    r = apply_decisions(ds, [outside], {1: Decision("accepted")})
    (c,) = r.changes
    assert r.dataset.annotations.box[c.new_row].tolist() == [25.0, 2.0, 30.0, 6.0]
    assert "(wholly outside the 20 x 20 image: not clipped)" in c.detail
    unknown = ds.replace(images=Images(path=ds.images.path, width=[0, 0, 0], height=[0, 0, 0]))
    add = _f(1, "missing", 2, None, "bird", sug_class="bird", box=[6.0, -0.1, 21.5, 9])
    r = apply_decisions(unknown, [add], {1: Decision("accepted")})
    (c,) = r.changes
    assert r.dataset.annotations.box[c.new_row].tolist() == [6.0, -0.1, 21.5, 9.0] and "clipped" not in c.detail


def test_oriented_corners_are_kept_and_said_to_reach_outside() -> None:
    """Clipping a turned rectangle's corners one by one would make another shape: they are written as suggested."""
    ds = Dataset(LabelSchema.from_names(["ship"]), Images(path=["a.png"], width=[50], height=[40]),
                 Annotations(image=[0], label=[0], box=[[1.0, 1, 5, 5]]))
    corners = np.array([[40.0, 5], [55, 12], [50, 22], [35, 15]])  # x 55 > 50
    add = _Edit(1, "missing", "add", -1, 0, (0, np.r_[corners.min(0), corners.max(0)], None, corners), "added")
    (e,) = clip_to_image(ds, [add])
    assert e.value[3] is corners and e.value[1].tolist() == [35.0, 5.0, 55.0, 22.0]
    assert e.detail == "added (corners reach outside the 50 x 40 image: kept as suggested)"
    inside = _Edit(2, "missing", "add", -1, 0, (0, None, None, corners - [10, 0]), "added")
    assert clip_to_image(ds, [inside]) == [inside]
