"""The C reader of COCO results given the truth's tables: image/label rows, xyxy boxes and the box checks in the
kernel's pass, and the pages of a mapped file given back as it goes. Every file is read both ways (the Python path,
``MASLOW_NATIVE=0``, and the kernel) and the results must be equal bit for bit (see ``test_coco_native``).
"""

from __future__ import annotations

import json
import mmap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow.core import boxes as B
from maslow.core.dataset import Dataset
from maslow.io import coco, coco_results
from maslow.io._coco_columns import AnnColumns
from maslow.io._coco_native import RELEASE_WINDOW, lookup_of, read_results_native
from maslow.io._coco_write import category_ids, image_ids
from maslow.io.coco import write_coco
from maslow.sample import shapes
from tests.io.test_coco_native import both_parse, needs_kernel


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    path = tmp_path_factory.mktemp("rows") / "truth.json"
    write_coco(shapes(12, seed=1), path)
    return coco.parse(path)[0]


def _lookup(truth: Dataset) -> Any:
    return lookup_of(image_ids(truth), category_ids(truth.schema), truth.images.width, truth.images.height)


def _kernel_acc(path: Path, truth: Dataset, release: int = 0) -> AnnColumns | None:
    """The kernel's columns of a results file read from its mapping (None: it bailed out)."""
    acc = AnnColumns(bbox_optional=True)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return acc if read_results_native(data, acc, lookup=_lookup(truth), release=release) else None


def _records(truth: Dataset, case: str) -> list[dict[str, Any]]:
    ids, cats = image_ids(truth).tolist(), category_ids(truth.schema).tolist()
    w, h = truth.images.width.tolist(), truth.images.height.tolist()
    out = [{"image_id": ids[i], "category_id": cats[i % len(cats)], "bbox": [1.1 + i, 2.3, 10.7, 5.9],
            "score": 0.5 + i / 100} for i in range(len(ids)) for _ in range(3)]
    xyxy_like = [w[0] / 2, h[0] / 2, w[0] - 1.0, h[0] - 1.0]  # ends beyond the image, width and height fit
    if case == "integers":
        for r in out:
            r["bbox"] = [1, 2, 3, 4]
    elif case in ("one looks xyxy", "three look xyxy"):
        for r in out[: 1 if case == "one looks xyxy" else 3]:
            r["bbox"] = xyxy_like
    elif case == "beyond the image":  # beyond, but not as xyxy (too wide)
        out[0]["bbox"] = [5.0, 5.0, 5.0 * w[0], 2.0]
    elif case == "unknown image":
        out[4]["image_id"] = max(ids) + 1000
    elif case == "unknown category":
        out[4]["category_id"] = max(cats) + 1000
    elif case == "no image id":
        del out[2]["image_id"]
    elif case == "negative width":
        out[3]["bbox"] = [1.0, 2.0, -3.0, 4.0]
    elif case == "overflow":
        out[3]["bbox"] = [1.5e308, 2.0, 1.5e308, 4.0]
    elif case == "no bbox":
        for r in out:
            del r["bbox"]
            r["segmentation"] = {"size": [h[0], w[0]], "counts": "0?1"}
    elif case == "some without bbox":
        del out[1]["bbox"]
        out[1]["keypoints"] = [1.0, 2.0, 2.0]
    elif case == "images out of order":
        out.reverse()
    return out


# case: (the kernel's rows are used, its boxes are used)
CASES = {"decimals": (True, True), "integers": (True, True), "one looks xyxy": (True, True),
         "three look xyxy": (True, True), "beyond the image": (True, True), "unknown image": (False, False),
         "unknown category": (False, False), "no image id": (False, False), "negative width": (True, False),
         "overflow": (True, False), "no bbox": (True, False), "some without bbox": (True, False),
         "images out of order": (True, True)}


@needs_kernel
@pytest.mark.parametrize("case", sorted(CASES))
def test_rows_and_boxes_from_the_kernel(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path,
                                        case: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_records(truth, case)))
    acc = _kernel_acc(path, truth)
    assert acc is not None
    rows, boxes = CASES[case]
    assert (acc.native_rows is not None, acc.native_boxes is not None) == (rows, boxes)
    if not rows:  # read again for the ids, which the Python path reports
        assert len(acc.column("image_id")) == acc.n
    ds, rep = both_parse(monkeypatch, path, like=truth)
    types = {i.type for i in rep.issues}
    assert ("coco_bbox_looks_xyxy" in types) == (case == "three look xyxy")
    assert (B.COCO_BBOX in ds.annotations.extra) == (case not in ("integers", "no bbox"))
    if case == "unknown image":
        assert "coco_unknown_image" in types and ds.n_annotations == len(_records(truth, case)) - 1


@needs_kernel
@pytest.mark.parametrize("ids", [[3, 1, 2], [10**12, 5, 10**12 + 7, 40], [7, 3, 7, 9], [-5, 2**62, 0]])
def test_truth_ids_dense_sparse_and_repeated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ids: list[int]) -> None:
    images = [{"id": i, "file_name": f"{k}.jpg", "width": 40, "height": 30} for k, i in enumerate(ids)]
    cats = [{"id": 9, "name": "a"}, {"id": 2, "name": "b"}]
    truth_path = tmp_path / "truth.json"
    truth_path.write_text(json.dumps({"images": images, "categories": cats, "annotations": []}))
    with pytest.warns(Warning) if len(set(ids)) < len(ids) or min(ids) < 0 else _nothing():  # coco_negative_id
        truth = coco.read_coco(truth_path)
    used = image_ids(truth).tolist()  # the truth's ids as read (renumbered where they repeat)
    preds = [{"image_id": i, "category_id": c, "bbox": [1.5, 2.5, 3.25, 4.0], "score": 0.25}
             for i in sorted(used) for c in (2, 9)]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(preds))
    acc = _kernel_acc(path, truth)
    assert acc is not None and acc.native_rows is not None and acc.native_boxes is not None
    ds, _ = both_parse(monkeypatch, path, like=truth)
    assert ds.annotations.image.tolist() == sorted(used.index(p["image_id"]) for p in preds)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@needs_kernel
@pytest.mark.parametrize("offset", [1, -1])
def test_offsets_skip_the_tables(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path, offset: int) -> None:
    recs = _records(truth, "decimals")
    for r in recs:
        r["image_id"] -= offset
        r["category_id"] -= offset
    path = tmp_path / "results.json"
    path.write_text(json.dumps(recs))
    got = []
    for native in ("0", "1"):
        monkeypatch.setenv("MASLOW_NATIVE", native)
        ds, rep = coco_results.parse(path, like=truth, id_offset=offset)
        a = ds.annotations
        got.append((a.image.tolist(), a.label.tolist(), np.asarray(a.box).tobytes(), [i.message for i in rep.issues]))
    assert got[0] == got[1] and len(got[0][0]) == len(recs)


# -- pages given back ----------------------------------------------------------------------------------------
def _big_results(truth: Dataset, n: int, tail: str = "") -> bytes:
    ids, cats = image_ids(truth).tolist(), category_ids(truth.schema).tolist()
    recs = [f'{{"image_id":{ids[k % len(ids)]},"category_id":{cats[k % len(cats)]},"bbox":[{k % 97}.25,3.5,'
            f'{k % 13 + 1}.75,6.125],"score":0.{k % 1000:03d}}}' for k in sorted(range(n), key=lambda k: k % len(ids))]
    return ("[" + ",".join(recs) + tail + "]").encode()


@needs_kernel
def test_release_window_gives_the_same_columns(truth: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(_big_results(truth, 5000))
    assert path.stat().st_size > 40 * 4096  # many windows of one page
    plain, released = _kernel_acc(path, truth), _kernel_acc(path, truth, release=4096)
    assert plain is not None and released is not None and released.n == plain.n == 5000
    for name in ("bbox", "score"):
        assert plain.column(name).tobytes() == released.column(name).tobytes()
    assert plain.native_boxes is not None and released.native_boxes is not None
    assert plain.native_rows is not None and released.native_rows is not None
    assert plain.native_boxes[0].tobytes() == released.native_boxes[0].tobytes()
    for a, b in zip(plain.native_rows, released.native_rows, strict=True):
        assert a.tobytes() == b.tobytes()
    with pytest.raises(KeyError):  # rows instead of ids: nothing that could be taken for the ids
        plain.column("image_id")
    data = bytearray(path.read_bytes())  # not a mapping: release is ignored (its pages would read back zeros)
    in_memory = AnnColumns(bbox_optional=True)
    assert read_results_native(data, in_memory, lookup=_lookup(truth), release=4096)
    assert bytes(data) == path.read_bytes() and in_memory.column("bbox").tobytes() == plain.column("bbox").tobytes()


@needs_kernel
def test_bail_out_after_pages_were_given_back(monkeypatch: pytest.MonkeyPatch, truth: Dataset,
                                              tmp_path: Path) -> None:
    """A record at the end that the kernel leaves to the Python path, after it gave back the pages before: the
    mapping is read again from the file, whole."""
    path = tmp_path / "results.json"
    ids, cats = image_ids(truth).tolist(), category_ids(truth.schema).tolist()
    bad = f',{{"image_id":{ids[-1]},"category_id":{cats[0]},"bbox":[1,2,3,4],"score":null}}'
    n = RELEASE_WINDOW // 60 + 2000  # past the first window of the real reader
    path.write_bytes(_big_results(truth, n, tail=bad))
    assert path.stat().st_size > RELEASE_WINDOW + 100_000
    acc = AnnColumns(bbox_optional=True)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        assert not read_results_native(data, acc, lookup=_lookup(truth), release=4096)
        assert bytes(data) == path.read_bytes()  # given back, read again: the same bytes
    ds, rep = both_parse(monkeypatch, path, like=truth)
    assert ds.n_annotations == n + 1 and "missing_score" in {i.type for i in rep.issues}


@needs_kernel
def test_truth_file_past_the_window(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An instances file larger than the window, read by the kernel (pages given back) and by the Python path."""
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 48} for i in range(1, 51)]
    anns = [{"id": k, "image_id": k % 50 + 1, "category_id": 1, "bbox": [k % 7 + 0.5, 1.25, 3.5, 2.0],
             "area": 7.0, "iscrowd": 0, "segmentation": [[1.0, 1.0, 5.5, 1.0, 5.5, 4.25, 1.0, 4.25]]}
            for k in range(RELEASE_WINDOW // 120)]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "categories": [{"id": 1, "name": "a"}], "annotations": anns}))
    assert path.stat().st_size > RELEASE_WINDOW
    ds, _ = both_parse(monkeypatch, path)
    assert ds.n_annotations == len(anns)


def test_lookup_of_tables() -> None:
    dense = lookup_of(np.array([5, 3, 4]), np.array([1]), np.array([10, 20, 30]), np.array([1, 2, 3]))
    assert dense[0] is None and dense[1].tolist() == [1, 2, 0] and dense[2] == 3
    sparse = lookup_of(np.array([10**12, 3, 3]), np.array([1]), np.zeros(3), np.zeros(3))
    assert sparse[0].tolist() == [3, 10**12] and sparse[1].tolist() == [1, 0]  # a repeated id: its first row


@needs_kernel
def test_columns_larger_than_a_mapping(monkeypatch: pytest.MonkeyPatch, truth: Dataset, tmp_path: Path) -> None:
    """A column past 8 MB lives in a mapping of its own, moved as it grows (mremap): same values."""
    ids, cats = image_ids(truth).tolist(), category_ids(truth.schema).tolist()
    ring = ",".join(["1.5,2.25"] * 600_000)  # 1.2M coordinates: 9.6 MB of float64
    text = (f'[{{"image_id":{ids[0]},"category_id":{cats[0]},"score":0.5,"segmentation":[[{ring}]]}},'
            f'{{"image_id":{ids[1]},"category_id":{cats[0]},"score":0.25,"bbox":[1,2,3,4]}}]')
    path = tmp_path / "results.json"
    path.write_text(text)
    acc = _kernel_acc(path, truth)
    assert acc is not None and acc.polygons().xy.nbytes == 1_200_000 * 8
    ds, _ = both_parse(monkeypatch, path, like=truth)
    poly = ds.annotations.polygon
    assert poly is not None and poly[0] is not None and len(poly[0][0]) == 1_200_000
