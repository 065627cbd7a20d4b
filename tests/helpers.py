"""Comparison helpers for tests: datasets equal column by column, with clear failure messages."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core import masks as M
from maslow.core.dataset import Dataset


def _same_obj(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, dict) and "counts" in a:
        return bool(np.array_equal(M.decode(a), M.decode(b)))  # type: ignore[arg-type]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same_obj(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), atol=1e-6))
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(float(a), float(b)))  # type: ignore[arg-type]
    return a == b


def assert_datasets_equal(
    a: Dataset,
    b: Dataset,
    *,
    fields: Iterable[str] = ("path", "size", "label", "box"),
    atol: float = 1e-6,
    attributes: Iterable[str] = (),
    absent_as_empty: bool = False,
) -> None:
    """Assert two datasets hold the same images and annotations in the listed fields.

    Fields: ``path``, ``size``, ``split``, ``label`` (compared by class name), ``box``, ``score``, ``mask``,
    ``polygon``, ``keypoints``, ``iscrowd``; ``attributes`` names attribute columns to compare.
    Images are matched by path, annotations in row order within each image.
    ``absent_as_empty``: a column (``score``, ``keypoints``, ``mask``, ``polygon``, an attribute) absent from one
    dataset equals one holding no values (all NaN or None), as a format that writes nothing for it reads it back.
    """
    fields = set(fields)
    assert a.n_images == b.n_images, f"n_images {a.n_images} != {b.n_images}"
    assert a.n_annotations == b.n_annotations, f"n_annotations {a.n_annotations} != {b.n_annotations}"
    pa, pb = a.images.path.astype(str), b.images.path.astype(str)
    order_b = np.argsort(pb, kind="stable")
    order_a = np.argsort(pa, kind="stable")
    if "path" in fields:
        np.testing.assert_array_equal(pa[order_a], pb[order_b], err_msg="image paths differ")
    b_of_a = np.empty(a.n_images, np.int64)
    b_of_a[order_a] = order_b
    if "size" in fields:
        np.testing.assert_array_equal(a.images.width, b.images.width[b_of_a], err_msg="widths differ")
        np.testing.assert_array_equal(a.images.height, b.images.height[b_of_a], err_msg="heights differ")
    if "split" in fields:
        np.testing.assert_array_equal(a.images.split, b.images.split[b_of_a], err_msg="splits differ")
    sa, sb = a.image_slices(), b.image_slices()
    rows_b = np.concatenate([np.arange(sb[j], sb[j + 1]) for j in b_of_a]) if a.n_images else np.zeros(0, int)
    rows_a = np.arange(a.n_annotations)
    assert len(rows_b) == len(rows_a)
    for i in range(a.n_images):
        assert sa[i + 1] - sa[i] == sb[b_of_a[i] + 1] - sb[b_of_a[i]], f"image {pa[i]}: annotation counts differ"
    aa, ab = a.annotations, b.annotations
    if "label" in fields:
        na = np.asarray(a.schema.names, dtype=object)[aa.label]
        nb = np.asarray(b.schema.names, dtype=object)[ab.label[rows_b]]
        np.testing.assert_array_equal(na, nb, err_msg="labels differ")

    def column(ann: Any, name: str) -> Any:
        col = getattr(ann, name)
        if col is None and absent_as_empty:
            n = len(ann)
            if name == "keypoints":
                other = aa.keypoints if aa.keypoints is not None else ab.keypoints
                return np.full((n, other.shape[1] if other is not None else 0, 3), np.nan)
            return np.full(n, np.nan) if name == "score" else [None] * n
        return col

    for name in ("box", "score", "keypoints"):
        if name in fields:
            x, y = column(aa, name), column(ab, name)
            assert (x is None) == (y is None), f"{name}: present in one dataset only"
            if x is not None:
                np.testing.assert_allclose(x, y[rows_b], atol=atol, equal_nan=True, err_msg=f"{name} differs")
    if "iscrowd" in fields:
        np.testing.assert_array_equal(aa.iscrowd, ab.iscrowd[rows_b], err_msg="iscrowd differs")
    for name in ("mask", "polygon"):
        if name in fields:
            x, y = column(aa, name), column(ab, name)
            assert x is not None and y is not None, f"{name}: missing"
            for r in rows_a:
                assert _same_obj(x[r], y[rows_b[r]]), f"{name} differs at annotation row {r}"
    for k in attributes:
        none = [None] * len(aa)
        x = aa.attributes.get(k, none) if absent_as_empty else aa.attributes[k]
        y = ab.attributes.get(k, none) if absent_as_empty else ab.attributes[k]
        for r in rows_a:
            assert _same_obj(x[r], y[rows_b[r]]), f"attribute {k!r} differs at row {r}: {x[r]!r} != {y[rows_b[r]]!r}"


def shapes_coco(folder: Path, n_images: int, seed: int) -> dict[str, Any]:
    """The shapes sample drawn under ``folder / "shapes"`` with its ``annotations.json``; returns that COCO file
    as a dict (for a test to alter and write elsewhere)."""
    from maslow import io
    from maslow.sample import write_shapes

    io.write(write_shapes(folder / "shapes", n_images, seed=seed), folder / "shapes" / "annotations.json", "coco")
    return dict(json.loads((folder / "shapes" / "annotations.json").read_text()))


def first_class_emptied(folder: Path, n_images: int, seed: int, p_swap: float) -> dict[str, Path]:
    """Shapes truth (``gt.json``) whose first class has no truth objects left, and simulated predictions
    (``dets.json``, some of that class): per-class figures undefined for one class."""
    from maslow.io.coco import read_coco
    from maslow.io.coco_results import write_coco_results
    from tests.metrics.simulated import simulate

    coco = shapes_coco(folder, n_images, seed=seed)
    first = coco["categories"][0]["id"]
    coco["annotations"] = [a for a in coco["annotations"] if a["category_id"] != first]
    (folder / "gt.json").write_text(json.dumps(coco))
    truth = read_coco(folder / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=seed, p_swap=p_swap), folder / "dets.json")
    return {"dir": folder, "gt": folder / "gt.json", "pred": folder / "dets.json"}


def run_cli(args: list[str]) -> tuple[int, str]:
    """``maslow ARGS`` in process: (exit code, output); an exception other than an exit is raised, not hidden."""
    from typer.testing import CliRunner

    from maslow.cli.main import app

    res = CliRunner().invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


def run_cli_streams(args: list[str]) -> tuple[int, str, str]:
    """``maslow ARGS`` in process: (exit code, stdout, stderr), kept apart (results on stdout, notes on stderr)."""
    from typer.testing import CliRunner

    from maslow.cli.main import app

    res = CliRunner().invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def flat_text(text: str) -> str:
    """A rich table or panel's text as one line of words (borders and line breaks out), for ``in`` tests."""
    return " ".join("".join(c for c in text if c not in "│╭╮╰╯─").split())


def traced_peak(fn: Callable[[], Any]) -> int:
    """Bytes allocated at the peak of ``fn()`` (Python objects and numpy arrays), above what was live before: the
    measure of the memory tests (a reader or writer that holds the whole document grows with it)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def count_workspace_walks(monkeypatch: Any) -> list[Path]:
    """The folders ``core.atomic.workspace_inside`` walks from now on (a test of "walked once")."""
    from maslow.core import atomic

    calls: list[Path] = []
    walk = atomic.workspace_inside

    def counted(folder: str | Path) -> Path | None:
        calls.append(Path(folder))
        return walk(folder)

    monkeypatch.setattr(atomic, "workspace_inside", counted)
    return calls


def deny_listing(monkeypatch: Any, *folders: Path) -> None:
    """Make ``os.scandir`` of ``folders`` fail as a folder without read permission does (tests run as root, where
    a chmod does not deny it)."""
    import os

    real_scandir = os.scandir
    denied = {Path(f) for f in folders}

    def scandir(path: Any) -> Any:
        if Path(path) in denied:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def semantic_truth(paths: list[str], h: int = 4, w: int = 6) -> Dataset:
    """A semantic-segmentation truth of classes a, b: one all-a mask per image of ``paths`` (h x w)."""
    from maslow.core.schema import LabelSchema, Task
    from maslow.core.tables import Annotations, Images
    from maslow.core.types import obj_array

    n = len(paths)
    return Dataset(LabelSchema.from_names(["a", "b"], task=Task.SEMANTIC_SEGMENTATION),
                   Images(path=obj_array(paths), width=np.full(n, w), height=np.full(n, h)),
                   Annotations(image=np.arange(n), label=np.zeros(n, np.int64),
                               mask=obj_array([M.encode(np.ones((h, w), bool)) for _ in range(n)])))
