"""Export a workspace version to every format, read each back, and show what survived."""

import sys
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from maslow import io
from maslow.store import Workspace


def box_error(a, b):
    """Largest box coordinate difference, images matched by file name, annotations in order within an image."""
    name = lambda p: Path(str(p)).name  # noqa: E731
    row_b = {name(p): i for i, p in enumerate(b.images.path)}
    sa, sb = a.image_slices(), b.image_slices()
    worst = 0.0
    for i, p in enumerate(a.images.path):
        j = row_b[name(p)]
        x, y = a.annotations.box[sa[i]:sa[i + 1]], b.annotations.box[sb[j]:sb[j + 1]]
        if len(x) != len(y):
            return "-"
        if len(x):
            worst = max(worst, float(np.nanmax(np.abs(x - y), initial=0.0)))
    return f"{worst:.4f}"


dataset, out = sys.argv[1], Path(sys.argv[2])
ws = Workspace.find()
ds = ws.load(dataset)
targets = {  # format -> (output path, read options)
    "coco": (out / "coco" / "annotations.json", {}),
    "yolo": (out / "yolo", {}),
    "voc": (out / "voc", {}),
    "cvat": (out / "cvat" / "annotations.xml", {}),
    "labelstudio": (out / "labelstudio" / "tasks.json", {}),
    "parquet": (out / "parquet", {}),
    "masks": (out / "masks", {}),
}
t = Table(width=120, title=f"{dataset}: {ds.n_images} images, {ds.n_annotations} annotations", title_justify="left")
for c in ("format", "images", "annotations", "max box error (px)", "not expressible (counted, not dropped)"):
    t.add_column(c)
for fmt, (path, opts) in targets.items():
    rep = io.write(ds, path, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = io.import_dataset(path, fmt, check_files=False, **opts).dataset
    err = box_error(ds, back) if back.n_annotations == ds.n_annotations else "-"
    lost = ", ".join(f"{k} {v}" for k, v in sorted(rep.lost.items()) if v) or "nothing"
    t.add_row(fmt, str(back.n_images), str(back.n_annotations), err, lost)
Console().print(t)
