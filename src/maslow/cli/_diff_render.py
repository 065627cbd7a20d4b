"""The text of ``maslow diff`` (``print_diff``): what changed between two versions, after the header and the schema
table that the command prints."""

from __future__ import annotations

from typing import Any

from maslow.cli.render import console, lit, table
from maslow.store.diff import DatasetDiff


def print_diff(d: DatasetDiff, out: dict[str, Any]) -> None:
    """Images, annotations and metadata changed, per class and per image; ``out``: ``d.to_dict(limit=top)`` (the
    lists as long as ``--top`` says)."""
    if d.unchanged:
        again = " (listed in another order)" if d.reordered else ""
        console.print(f"No change: the same images, annotations and metadata{again}.")
        return
    if len(d.images_added) or len(d.images_removed) or len(d.images_changed):
        console.print(f"images: {len(d.images_added)} added, {len(d.images_removed)} removed, {len(d.images_changed)} "
                      f"changed; annotations: {d.n_added} added, {d.n_removed} removed (an edit counts once in each)")
    else:
        only = [what for what, changed in (("the schema", d.schema_changed), ("the dataset info", d.info_changed),
                                           ("the image root", d.root_changed)) if changed]
        console.print(f"The same images and annotations: only {' and '.join(only)} changed.")
    for what, names in (("added", d.classes_added), ("removed", d.classes_removed)):
        if names:
            console.print(f"classes {what}: {lit(', '.join(names))}")
    rows = [(name, c["old"], c["new"], c["added"], c["removed"]) for name, c in d.per_class.items()
            if c["added"] or c["removed"]]
    if rows:
        console.print(table("Annotations per class", ["class", "old", "new", "added", "removed"], rows))
    meta = [("image", c, v["n"], _some(v["images"], v["n"])) for c, v in out["image_metadata_changed"].items()]
    meta += [("annotation", c, n, "") for c, n in out["annotation_metadata_changed"].items()]
    if meta:
        console.print(table("Metadata changed (extra columns of the images and annotations in both)",
                            ["of", "column", "changed", "images"], meta))
    if d.info_changed:
        console.print(f"info changed: {lit(', '.join(d.info_changed))}")
    if d.root_changed:
        console.print(f"image root: {lit(str(d.roots[0]))} -> {lit(str(d.roots[1]))}")
    if out["images_changed"]:
        console.print(table(f"Changed images (first {len(out['images_changed'])} of {len(d.images_changed)})",
                            ["image", "added", "removed", "annotations' metadata", "image record"],
                            [(r["path"], r["added"], r["removed"], r["metadata"] or "",
                              "changed" if r["record_changed"] else "") for r in out["images_changed"]]))
    for what, paths, n in (("added", out["images_added"], len(d.images_added)),
                           ("removed", out["images_removed"], len(d.images_removed))):
        if paths:
            console.print(f"images {what}: {lit(_some(paths, n, len(paths)))}")


def _some(paths: list[str], n: int, most: int = 3) -> str:
    """The first ``most`` of ``n`` paths, and how many more."""
    more = f" ... ({n - most} more)" if n > most else ""
    return ", ".join(paths[:most]) + more
