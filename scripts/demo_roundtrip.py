"""Export a workspace version to every format, read each back, and show what survived."""

import sys
import warnings
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from maslow import io
from maslow.store import Workspace

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
t = Table(title=f"{dataset}: {ds.n_images} images, {ds.n_annotations} annotations", title_justify="left")
for c in ("format", "images", "annotations", "max box error (px)", "not expressible (counted, not dropped)"):
    t.add_column(c)
for fmt, (path, opts) in targets.items():
    rep = io.write(ds, path, fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = io.import_dataset(path, fmt, images_root=ds.root, check_files=False, **opts).dataset
    err = "-"
    if back.n_annotations == ds.n_annotations and back.annotations.box is not None:
        d = np.abs(back.annotations.box - ds.annotations.box)
        err = f"{np.nanmax(d):.4f}" if np.isfinite(d).any() else "-"
    lost = ", ".join(f"{k} {v}" for k, v in sorted(rep.lost.items()) if v) or "nothing"
    t.add_row(fmt, str(back.n_images), str(back.n_annotations), err, lost)
Console().print(t)
