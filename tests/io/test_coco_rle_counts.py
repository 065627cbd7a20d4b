"""Compressed RLE counts strings that are no mask (``coco_bad_rle``), on both paths of the COCO readers.

A counts string is read as a mask only where its runs (as pycocotools' ``rleFrString`` reads them) cover the
``h x w`` pixels: pycocotools' ``decode`` refuses more ("Invalid RLE mask representation", which every writer that
rasterises the mask then raised), and leaves the pixels past fewer uninitialised. Such a string is reported with
the file, the record and ``segmentation.counts``, its mask dropped and its annotation kept (as for uncompressed
runs that don't sum to ``h * w``), the same with the C reader (which reads the file itself and reports it) as with
the Python path (``MASLOW_NATIVE=0``). The checks are compared with pycocotools' own decode on strings it reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from maslow import io
from maslow._native import load
from maslow.core import masks as M
from maslow.core.dataset import Dataset
from maslow.io import _coco_rle_check as rle_check
from maslow.io import coco
from maslow.io.coco import write_coco
from maslow.metrics._boundary import string_counts
from maslow.sample import shapes
from tests.io.test_coco_native import both_parse, taken

KERNEL = load("records")
needs_kernel = pytest.mark.skipif(KERNEL is None, reason="maslow._native.records is not built")
H, W = 120, 160  # the size of every shapes image


def _runs_string(runs: list[int], h: int = H, w: int = W) -> str:
    """pycocotools' counts string of these runs (whatever they sum to)."""
    return str(mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)["counts"].decode())


def _valid() -> str:
    m = np.zeros((H, W), np.uint8)
    m[10:40, 20:90] = 1
    return str(mask_utils.encode(np.asfortranarray(m))["counts"].decode())


BAD = {  # counts string -> what the finding says
    "ends inside a run": ("abc", "it ends inside a run"),
    "empty string": ("", f"sum to height*width = {H * W}, got 0"),
    "one empty run": ("0", f"sum to height*width = {H * W}, got 0"),
    "too few pixels": (_runs_string([100, 50]), f"sum to height*width = {H * W}, got 150"),
    "too many pixels": (_runs_string([H * W, 5]), f"sum to height*width = {H * W}, got {H * W + 5}"),
    "a NUL": ("0\x000", "NUL"),
    "a run of 8 characters": ("PPPPPPP0", "a run takes more than 7 characters"),
}


@pytest.fixture(scope="module")
def truth_obj(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("rle_counts") / "truth.json"
    write_coco(shapes(6, seed=1), path)
    top: dict[str, Any] = json.loads(path.read_text())
    return top


def _file(tmp_path: Path, top: dict[str, Any], segs: dict[int, Any], name: str = "bad.json") -> Path:
    """``top`` with the segmentation of annotation records ``segs`` replaced (their keypoints taken out)."""
    top = json.loads(json.dumps(top))
    for j, seg in segs.items():
        top["annotations"][j]["segmentation"] = seg
        top["annotations"][j].pop("keypoints", None)
    path = tmp_path / name
    path.write_text(json.dumps(top))
    return path


@pytest.mark.parametrize("case", BAD.values(), ids=list(BAD))
def test_a_bad_counts_string_is_reported_and_its_mask_dropped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              truth_obj: dict[str, Any], case: tuple[str, str]) -> None:
    counts, words = case
    path = _file(tmp_path, truth_obj, {1: {"size": [H, W], "counts": counts}, 2: {"size": [H, W], "counts": _valid()}})
    ds, report = both_parse(monkeypatch, path)  # the kernel's and the Python path's: equal
    ann = truth_obj["annotations"][1]
    bad = report.of_type("coco_bad_rle")
    assert [(i.file, i.record, i.field, i.severity) for i in bad] == \
        [(str(path), f"annotations[1] (id={ann['id']})", "segmentation.counts", "error")]
    assert words in bad[0].message and bad[0].message.endswith("mask dropped")
    assert ds.n_annotations == len(truth_obj["annotations"])  # the annotation is kept (with its box), its mask not
    row = int(np.flatnonzero(ds.annotations.extra["coco_id"] == ann["id"])[0])
    kept = int(np.flatnonzero(ds.annotations.extra["coco_id"] == truth_obj["annotations"][2]["id"])[0])
    assert ds.annotations.mask is not None and ds.annotations.mask[row] is None
    assert ds.annotations.mask[kept]["counts"] == _valid().encode()
    assert ds.annotations.box is not None and np.isfinite(ds.annotations.box[row]).all()


@needs_kernel
def test_the_kernel_reads_such_files_itself(tmp_path: Path, truth_obj: dict[str, Any]) -> None:
    """No bail-out to the Python path: the kernel's columns, the bad strings found among them."""
    path = _file(tmp_path, truth_obj, {j + 1: {"size": [H, W], "counts": c} for j, (c, _) in enumerate(BAD.values())
                                       if "\x00" not in c})
    assert taken(path, results=False)


def test_the_writers_take_what_was_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        truth_obj: dict[str, Any]) -> None:
    """The audit's case: every writer that rasterises masks raised ValueError on the string 'abc'."""
    path = _file(tmp_path, truth_obj, {0: {"size": [H, W], "counts": "abc"}})
    for native in ("1", "0"):
        monkeypatch.setenv("MASLOW_NATIVE", native)
        imp = io.import_dataset(path, "coco", check_files=False)
        assert imp.report.counts() == {"coco_bad_rle": 1}
        for fmt in ("yolo", "cvat", "labelstudio", "masks", "dota"):
            dst = tmp_path / f"{fmt}{native}" / ("out.xml" if fmt == "cvat" else "out.json" if fmt == "labelstudio"
                                                 else "")
            io.write(imp.dataset, dst, fmt)


def test_results_files_report_it_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                     truth_obj: dict[str, Any]) -> None:
    truth_path = tmp_path / "truth.json"
    truth_path.write_text(json.dumps(truth_obj))
    truth = coco.parse(truth_path)[0]
    img, cat = truth_obj["images"][0]["id"], truth_obj["categories"][0]["id"]
    recs = [{"image_id": img, "category_id": cat, "score": 0.9, "segmentation": {"size": [H, W], "counts": _valid()}},
            {"image_id": img, "category_id": cat, "score": 0.8, "bbox": [1, 2, 3, 4],
             "segmentation": {"size": [H, W], "counts": "abc"}},
            {"image_id": img, "category_id": cat, "score": 0.7, "segmentation": {"size": [H, W], "counts": "0"}}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(recs))
    pred, report = both_parse(monkeypatch, path, like=truth)
    assert [(i.record, i.field) for i in report.of_type("coco_bad_rle")] == \
        [("[1]", "segmentation.counts"), ("[2]", "segmentation.counts")]  # a list file: its records are [i]
    assert pred.annotations.mask is not None
    assert [m is not None for m in pred.annotations.mask.tolist()] == [True, False, False]


def test_seven_character_runs_read_exactly_on_both_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         truth_obj: dict[str, Any]) -> None:
    """rleToString writes a run 2^29 or more from the one two before in 7 characters (masks of 2^29 pixels or
    more): such a string whose runs cover its mask is kept on both paths (the kernel leaves it to the check)."""
    h = w = 2**15
    counts = _runs_string([2**30 - 1, 1], h, w)
    assert len(counts) == 8 and counts.count("P") + counts.count("o") >= 1  # a 7-character run, then one
    path = _file(tmp_path, truth_obj, {1: {"size": [h, w], "counts": counts}})
    ds, report = both_parse(monkeypatch, path)
    assert not report.of_type("coco_bad_rle") and report.of_type("coco_rle_size_mismatch")
    assert ds.annotations.mask is not None and sum(m is not None for m in ds.annotations.mask.tolist()) == 2


def test_string_id_files_read_by_the_python_path_with_the_kernels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                   truth_obj: dict[str, Any]) -> None:
    """String image ids make the C reader leave a file to the Python path, which then parses the counts strings
    with the rle kernel (where built): the same findings and masks as with numpy (MASLOW_NATIVE=0)."""
    top = json.loads(json.dumps(truth_obj))
    for im in top["images"]:
        im["id"] = f"img{im['id']}"
    for a in top["annotations"]:
        a["image_id"] = f"img{a['image_id']}"
    segs = {j + 1: {"size": [H, W], "counts": c} for j, (c, _) in enumerate(BAD.values())}
    segs[len(BAD) + 1] = {"size": [H, W], "counts": _valid()}
    path = _file(tmp_path, top, segs)
    assert not taken(path, results=False)
    ds, report = both_parse(monkeypatch, path)
    assert len(report.of_type("coco_bad_rle")) == len(BAD)
    assert ds.annotations.mask is not None and sum(m is not None for m in ds.annotations.mask.tolist()) == 2


@pytest.mark.skipif(load("rle") is None, reason="maslow._native.rle is not built")
def test_the_rle_kernel_sums_as_numpy_does() -> None:
    rng = np.random.default_rng(3)
    strings = _random_strings(rng, 20000) + [bytes(rng.integers(0, 128, 9).astype(np.uint8)) for _ in range(3000)]
    sizes = [(int(rng.choice([0, 1, 3, 2**32, 2**33, 2**70])), int(rng.integers(0, 100))) for _ in strings]
    with_kernel, numpy_only = rle_check._kernel_sums(strings, sizes), rle_check.run_sums(strings)
    assert with_kernel[0].tolist() == numpy_only[0].tolist() and with_kernel[1].tolist() == numpy_only[1].tolist()


# -- the check against pycocotools and against the kernel -------------------------------------------------------
def _random_strings(rng: np.random.Generator, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 14))
        out.append(bytes(rng.integers(48, 112, k).astype(np.uint8)))  # '0'..'o', the alphabet of rleToString
    return out


def test_sums_are_pycocotools_runs() -> None:
    """The vectorised parse gives the runs' sum of a reference parse (one string at a time, Python integers)."""
    rng = np.random.default_rng(0)
    strings = _random_strings(rng, 3000) + [bytes(rng.integers(32, 127, 9).astype(np.uint8)) for _ in range(500)]
    sums, why = rle_check.run_sums(strings)
    ok = why == rle_check.OK
    assert ok.sum() > 1000
    want = [int(string_counts(s).astype(np.int64).sum()) for s, good in zip(strings, ok, strict=True) if good]
    assert sums[ok].tolist() == want


@pytest.mark.parametrize("seed", range(3))
def test_kept_strings_are_what_pycocotools_decodes(seed: int) -> None:
    """pycocotools' strings of random runs on masks of exactly, fewer and more pixels: decode raises on more
    pixels (refused here), and every string kept decodes, to as many pixels as pycocotools' area."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        runs = [int(v) for v in rng.integers(0, rng.choice([4, 60, 5000]), int(rng.integers(1, 12)))]
        total = sum(runs)
        for w, verdict in ((total, True), (total + 1, False), (total - 1, False)):
            if w <= 0:
                continue
            s = _runs_string(runs, 1, w).encode()
            got = rle_check.check([s], [(1, w)]).get(0)
            assert (got is None) is verdict, (runs, w, got)
            rle = {"size": [1, w], "counts": s}
            if verdict:
                assert int(M.decode(rle).sum()) == int(mask_utils.area(rle))
            elif w < total:
                with pytest.raises(ValueError, match="Invalid RLE mask representation"):
                    M.decode(rle)


@needs_kernel
def test_the_kernel_leaves_no_box_exactly_where_the_check_looks() -> None:
    """The records kernel's box is NaN for every string the check refuses (so the reader looks at those only)
    and pycocotools' toBbox for the others (runs of at most 6 characters)."""
    assert KERNEL is not None
    rng = np.random.default_rng(1)
    strings = [s for s in _random_strings(rng, 4000) if s]
    sums, why = rle_check.run_sums(strings)
    recs: list[dict[str, Any]] = []
    verdicts, exact = [], []
    for s, total, code in zip(strings, sums.tolist(), why.tolist(), strict=True):
        if code != rle_check.OK:
            sizes = [(1, 5)]
        else:
            sizes = [(1, total), (1, total + 1)] if total else [(1, 1)]
        for h, w in sizes:
            recs.append({"image_id": 1, "category_id": 1, "score": 0.5,
                         "segmentation": {"size": [h, w], "counts": s.decode()}})
            verdict = 0 not in rle_check.check([s], [(h, w)])
            verdicts.append(verdict)
            exact.append(verdict and max(map(len, _run_texts(s))) <= 6)
    data = json.dumps(recs).encode()
    cols = KERNEL.parse(data, 0, len(data), True)
    assert isinstance(cols, dict)
    box = np.frombuffer(cols["rle_box"], np.float64).reshape(-1, 4)
    nan = np.isnan(box[:, 0])
    assert sum(verdicts) > 500 and (~np.asarray(verdicts)).sum() > 500
    assert nan[~np.asarray(verdicts)].all()  # refused: no box
    assert not nan[np.asarray(exact)].any()  # kept, runs of up to 6 characters: the kernel's box
    want = mask_utils.toBbox([{"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
                              for r, e in zip(recs, exact, strict=True) if e])
    assert box[np.asarray(exact)].tobytes() == np.asarray(want, np.float64).tobytes()


def _run_texts(s: bytes) -> list[bytes]:
    """The characters of each run of a counts string (a run ends at a character without bit 5)."""
    out, cur = [], b""
    for c in s:
        cur += bytes([c])
        if not (c - 48) & 0x20:
            out.append(cur)
            cur = b""
    return out + ([cur] if cur else [])


def test_dataset_masks_of_kept_strings_are_unchanged(truth_obj: dict[str, Any], tmp_path: Path) -> None:
    """A file of valid strings only: every mask kept, no finding (the check refuses nothing it must keep)."""
    path = _file(tmp_path, truth_obj, {j: {"size": [H, W], "counts": _valid()} for j in range(1, 6)})
    ds: Dataset
    ds, report = coco.parse(path)
    assert not report.of_type("coco_bad_rle")
    assert ds.annotations.mask is not None and sum(m is not None for m in ds.annotations.mask.tolist()) == 6


# -- the numpy parse (bulk run decoding) against a one-string-at-a-time reference, and against the kernel -----------
def _reference(s: bytes) -> tuple[int, int]:
    """(sum, code) of one counts string as the module documents ``rleFrString``: signed characters, runs of up to 7
    characters read exactly, deltas from the fourth run on, each run a uint32; NUL, then an end inside a run, then a
    run of more than 7 characters refuse it."""
    if 0 in s:
        return 0, rle_check.NUL
    runs: list[list[int]] = []
    run: list[int] = []
    for b in s:
        c = (b - 256 if b > 127 else b) - 48
        run.append(c)
        if not c & 0x20:
            runs.append(run)
            run = []
    if run:
        return 0, rle_check.ENDS_IN_RUN
    if any(len(r) > 7 for r in runs):
        return 0, rle_check.LONG_RUN
    counts: list[int] = []
    for m, r in enumerate(runs):
        x = 0
        for k, c in enumerate(r):
            x |= (c & 0x1F) << 5 * k
        if r[-1] & 0x10:
            x |= -1 << 5 * len(r)
        if m > 2:
            x += counts[m - 2]
        counts.append(x & 0xFFFFFFFF)
    return sum(counts), rle_check.OK


def _mixed_strings(rng: np.random.Generator, n: int) -> list[bytes]:
    """Counts strings of every kind: any bytes (NULs, bytes >= 128), rleToString's alphabet, runs of 3 to 9
    characters (continuation characters 'P'..'o'), negative deltas, empty strings, real masks."""
    out = []
    for i in range(n):
        size = int(rng.integers(0, 30))
        kind = i % 6
        if kind == 0:
            chars = rng.integers(0, 256, size)
        elif kind == 1:
            chars = rng.integers(48, 112, size)
        elif kind == 2:  # long runs: mostly characters that go on, each run ended by one that doesn't
            chars = np.where(rng.random(size) < 0.8, rng.integers(80, 112, size), rng.integers(48, 80, size))
        elif kind == 3:  # one-character runs with the sign bit: negative deltas, counts wrapping modulo 2^32
            chars = rng.choice([48, 63, 64, 79], size)
        elif kind == 4:
            chars = rng.choice([0, 47, 48, 79, 80, 111, 112, 127, 128, 255], size)
        else:
            m = np.zeros((int(rng.integers(1, 60)), int(rng.integers(1, 60))), np.uint8)
            m[int(rng.integers(0, 5)):int(rng.integers(5, 60)), int(rng.integers(0, 5)):int(rng.integers(5, 60))] = 1
            out.append(mask_utils.encode(np.asfortranarray(m))["counts"])
            continue
        out.append(bytes(np.asarray(chars).astype(np.uint8)))
    return out


@pytest.mark.parametrize("seed", range(3))
def test_run_sums_are_the_reference_parse_of_every_string(seed: int) -> None:
    """The runs are decoded in bulk (a table for runs of one or two characters, words for longer ones): the same
    sums and codes as a one-string-at-a-time parse, refused strings included, and as the kernel's (where built)."""
    rng = np.random.default_rng(seed)
    strings = _mixed_strings(rng, 3000)
    strings += [b"PPPPPPP0", b"PPPPPP0", b"oooooo?", b"PPP0", b"PPPP0", b"", b"P"]  # the batch ends in a long run
    sums, why = rle_check.run_sums(strings)
    want = [_reference(s) for s in strings]
    assert list(zip(sums.tolist(), why.tolist(), strict=True)) == want
    codes = set(why.tolist())
    assert codes == {rle_check.OK, rle_check.NUL, rle_check.ENDS_IN_RUN, rle_check.LONG_RUN}
    lengths = {len(r) for s, (_, code) in zip(strings, want, strict=True) if code == rle_check.OK
               for r in _run_texts(s)}
    assert {1, 2, 3, 4, 5, 6, 7} <= lengths  # every run length the decoding tells apart, in strings it keeps
    if load("rle") is not None:
        sizes = [(int(rng.integers(0, 3)), int(rng.integers(0, 100))) for _ in strings]
        kernel_sums, kernel_why = rle_check._kernel_sums(strings, sizes)
        assert kernel_sums.tolist() == sums.tolist() and kernel_why.tolist() == why.tolist()


def test_run_sums_of_one_string_each_are_those_of_the_batch() -> None:
    """Strings are decoded together: a run never takes a character of the next string (a string ending inside a
    run is refused alone), whatever the order."""
    rng = np.random.default_rng(7)
    strings = _mixed_strings(rng, 600)
    sums, why = rle_check.run_sums(strings)
    alone = [rle_check.run_sums([s]) for s in strings]
    assert sums.tolist() == [int(a[0][0]) for a in alone] and why.tolist() == [int(a[1][0]) for a in alone]
    order = rng.permutation(len(strings))
    shuffled = rle_check.run_sums([strings[i] for i in order])
    assert shuffled[0].tolist() == sums[order].tolist() and shuffled[1].tolist() == why[order].tolist()
