"""What of the classes' ids and supercategories a writer's format can't hold, counted in its ``ExportReport``
(as the CVAT and Label Studio writers count them): shared by the VOC, YOLO, DOTA, Open Images and label-map
writers."""

from __future__ import annotations

from collections.abc import Sequence

from maslow.core.dataset import Dataset
from maslow.io._common import ExportReport


def lose_class_fields(ds: Dataset, rep: ExportReport, *, fmt: str, back: Sequence[int | None] | None,
                      how: str = "") -> None:
    """Count in ``rep.lost`` the ``class_id`` of each class that has one (``ClassDef.id``) that is not read back
    (``back[k]``: the id class k is read back with; None: the format keeps none), and the ``supercategory`` of
    each class that has one; a note names the first few.

    Args:
        fmt: the format's name, for the notes.
        how: how the format numbers its classes, for the note (e.g. ``"0..k-1, as Ultralytics needs them"``).
    """
    classes = ds.schema.classes
    moved = [(c.name, c.id, None if back is None else back[k]) for k, c in enumerate(classes)
             if c.id is not None and (back is None or c.id != back[k])]
    if moved:
        rep.lost["class_id"] += len(moved)
        more = f" ({len(moved) - 5} more)" if len(moved) > 5 else ""
        if back is None:
            shown = ", ".join(f"{name!r} {old}" for name, old, _ in moved[:5])
            rep.notes.append(f"class ids are not written ({fmt} keeps none): {len(moved)} classes are read back "
                             f"without theirs ({shown}{more})")
        else:
            shown = ", ".join(f"{name!r} {old} -> {new}" for name, old, new in moved[:5])
            rep.notes.append(f"class ids renumbered{' ' + how if how else ''}: {shown}{more}")
    supers = [(c.name, c.supercategory) for c in classes if c.supercategory]
    if supers:
        rep.lost["supercategory"] += len(supers)
        shown = ", ".join(f"{name!r}: {sc!r}" for name, sc in supers[:5])
        more = f" ({len(supers) - 5} more)" if len(supers) > 5 else ""
        rep.notes.append(f"supercategories are not written ({fmt} has none): those of {len(supers)} classes "
                         f"({shown}{more})")
