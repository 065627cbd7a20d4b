"""Plant ground-truth problems in a copy of the shapes sample (for scripts/demo_quality.sh).

    python scripts/demo_quality.py SRC_COCO_JSON DST_COCO_JSON

Plants: a zero-area box, a box out of the image, a duplicate box, a class conflict (the same box with another
class), a bow-tie polygon, a keypoint far outside its box, and a second annotator who labels the first 12 images
again with 3 classes swapped.
"""

from __future__ import annotations

import sys

import numpy as np

from maslow import io
from maslow.core.tables import Annotations
from maslow.core.types import obj_array


def main(src: str, dst: str) -> None:
    ds = io.read_coco(src)
    a = ds.annotations
    assert a.box is not None and a.iscrowd is not None and a.polygon is not None
    rows = [int(r) for r in np.flatnonzero(~a.iscrowd)]
    box, label = a.box.copy(), a.label.copy()
    poly = a.polygon.tolist()
    kp = a.keypoints.copy() if a.keypoints is not None else None
    box[rows[0], 2] = box[rows[0], 0]                                   # zero-area box
    box[rows[1], 2] = ds.images.width[a.image[rows[1]]] + 60            # out of bounds
    x1, y1, x2, y2 = box[rows[2]]
    poly[rows[2]] = [np.array([x1, y1, x2, y2, x2, y1, x1, y2])]        # bow-tie polygon
    tri = [r for r in rows if kp is not None and not np.isnan(kp[r, 0, 0])]
    if kp is not None and tri:
        kp[tri[0], 0, :2] = [0.0, 0.0]                                  # keypoint outside its box
    n = len(a)
    extra_rows = [rows[3], rows[4]]                                     # duplicate and class conflict
    ann_image = np.concatenate([a.image, a.image[extra_rows]])
    ann_label = np.concatenate([label, [label[rows[3]], (label[rows[4]] + 1) % 3]])
    ann_box = np.concatenate([box, box[extra_rows] + 0.5])
    who = ["ann"] * (n + 2)
    second = [r for r in rows if a.image[r] < 12]                       # a second annotator on 12 images
    swapped = set(second[:3])
    ann_image = np.concatenate([ann_image, a.image[second]])
    ann_label = np.concatenate([ann_label, [(label[r] + 1) % 3 if r in swapped else label[r] for r in second]])
    ann_box = np.concatenate([ann_box, a.box[second] + 0.8])
    who += ["bob"] * len(second)
    all_rows = list(range(n)) + extra_rows + second
    out = Annotations.sort_rows(
        image=ann_image, label=ann_label, box=ann_box,
        polygon=obj_array([poly[r] for r in range(n)] + [poly[r] for r in extra_rows] + [a.polygon[r] for r in second]),
        keypoints=None if kp is None or a.keypoints is None else np.concatenate([kp[: n], kp[extra_rows], a.keypoints[second]]),
        iscrowd=a.iscrowd[all_rows], annotator=obj_array(who),
        attributes={k: v[all_rows] for k, v in a.attributes.items()})
    io.write(ds.replace(annotations=out), dst, "coco")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
