"""`maslow eval` and `maslow compare` on bad label predictions (audit 19): a nan in `probs` exits 2 naming the file,
the row, the image and the field (not a traceback); predictions none of whose classes is a truth class exit 2
(every score would be 0.000), a partial mismatch is a note naming the classes; a duplicate or missing
classification and a label map of the wrong size name the file and the image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from tests.cli.test_compare_cli_labels import _maps
from tests.helpers import run_cli_streams

NAMES = ["cat", "dog", "fox"]
PROBS = [[.8, .1, .1], [.2, .7, .1], [.1, .1, .8], [.5, .4, .1]]


def _images(paths: list[str]) -> Images:
    return Images(path=np.array(paths, object), width=[8] * len(paths), height=[8] * len(paths))


def _cls(d: Path, name: str, image: list[int], label: list[int], probs: list[list[float]] | None = None,
         names: list[str] = NAMES, task: str = "classification") -> Path:
    extra = {} if probs is None else {"probs": np.asarray(probs, float)}
    ds = Dataset(LabelSchema.from_names(names, task=task), _images(["a.jpg", "b.jpg", "c.jpg", "d.jpg"]),
                 Annotations(image=image, label=label, extra=extra))
    io.write(ds, d / name, "parquet")
    return d / name


@pytest.fixture(scope="module")
def cls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cls")
    nan = [[np.nan, .1, .1], *PROBS[1:]]
    return {"gt": _cls(d, "gt", [0, 1, 2, 3], [0, 1, 2, 1]),
            "ok": _cls(d, "ok", [0, 1, 2, 3], [0, 1, 2, 0], PROBS),
            "nan": _cls(d, "nanprob", [0, 1, 2, 3], [0, 1, 2, 0], nan),
            "dup": _cls(d, "dup", [0, 1, 1, 2, 3], [0, 1, 0, 2, 0], [*PROBS, [.1, .1, .8]]),
            "missing": _cls(d, "missing", [0, 1, 2], [0, 1, 2], PROBS[:3]),
            "other": _cls(d, "othernames", [0, 1, 2, 3], [0, 1, 2, 1], names=["Cat", "Dog", "Fox"]),
            # one image of a class the truth lacks ('Cat'), the others of the truth's
            "partial": _cls(d, "partial", [0, 1, 2, 3], [3, 1, 2, 1], names=[*NAMES, "Cat"])}


def _eval(gt: Path, pred: Path, *extra: str) -> tuple[int, str, str]:
    code, out, err = run_cli_streams(["eval", "--gt", str(gt), "--from", "parquet", "--pred", str(pred),
                                      "--pred-format", "parquet", *extra])
    return code, out, " ".join(err.split())


def test_nan_probability_exits_2_naming_file_row_image_field(cls: dict[str, Path]) -> None:
    code, out, err = _eval(cls["gt"], cls["nan"])
    assert code == 2, out + err
    assert "Traceback" not in err
    for word in (str(cls["nan"]), "extra['probs'] row 0", "image 'a.jpg'", "must be numbers, got nan"):
        assert word in err, err


@pytest.mark.parametrize("order", ["nan-second", "nan-first"])
def test_compare_nan_probability_exits_2_naming_that_file(cls: dict[str, Path], order: str) -> None:
    a, b = (cls["ok"], cls["nan"]) if order == "nan-second" else (cls["nan"], cls["ok"])
    code, out, err = run_cli_streams(["compare", "--gt", str(cls["gt"]), "--from", "parquet", "--pred", str(a),
                                      "--pred", str(b), "--pred-format", "parquet", "--bootstrap", "10"])
    flat = " ".join(err.split())
    assert code == 2, out + err
    assert f"{cls['nan']}:" in flat and f"{cls['ok']}:" not in flat
    assert "extra['probs'] row 0 (image 'a.jpg')" in flat


@pytest.mark.parametrize("cmd", ["eval", "compare"])
def test_no_truth_class_exits_2(cls: dict[str, Path], cmd: str) -> None:
    if cmd == "eval":
        code, out, err = _eval(cls["gt"], cls["other"])
    else:
        code, out, err = run_cli_streams(["compare", "--gt", str(cls["gt"]), "--from", "parquet", "--pred",
                                          str(cls["ok"]), "--pred", str(cls["other"]), "--pred-format", "parquet"])
        err = " ".join(err.split())
    assert code == 2, out + err
    for word in (str(cls["other"]), "image 'a.jpg'", "field 'label'", "class 'Cat' is not a truth class",
                 "'cat', 'dog', 'fox'"):
        assert word in err, err
    if cmd == "eval":
        assert "no prediction is of a truth class" in err and "4 of 4 predictions" in err


def test_multilabel_no_truth_class_exits_2(tmp_path: Path) -> None:
    im = _images([f"{i}.jpg" for i in range(4)])
    gt = Dataset(LabelSchema.from_names(["sky", "sea"], task="multilabel"), im,
                 Annotations(image=[0, 0, 1, 2], label=[0, 1, 0, 1]))
    pred = Dataset(LabelSchema.from_names(["Sky", "Sea"], task="multilabel"), im,
                   Annotations(image=[0, 0, 1, 2], label=[0, 1, 0, 1], score=[.9] * 4))
    io.write(gt, tmp_path / "gt", "parquet")
    io.write(pred, tmp_path / "pred", "parquet")
    code, out, err = _eval(tmp_path / "gt", tmp_path / "pred")
    assert code == 2, out + err
    assert "no prediction is of a truth class: class 'Sky'" in err and "field 'label'" in err


def test_partial_class_mismatch_is_a_note_and_scored_as_wrong(cls: dict[str, Path]) -> None:
    code, out, err = _eval(cls["gt"], cls["partial"], "--json", "-")
    assert code == 0, err
    assert "1 of 4 predictions are of classes the truth lacks ('Cat': 1" in err
    d = json.loads(out)
    assert any("'Cat': 1" in n for n in d["notes"])
    assert d["summary"]["accuracy"] == pytest.approx(3 / 4)  # a.jpg (cat) predicted 'Cat': wrong; the rest right
    assert d["result"]["class_names"][-1] == "Cat"
    # compare keeps refusing any class the truth lacks (both models must predict the truth's classes)
    code, out, err = run_cli_streams(["compare", "--gt", str(cls["gt"]), "--from", "parquet", "--pred",
                                      str(cls["ok"]), "--pred", str(cls["partial"]), "--pred-format", "parquet"])
    assert code == 2 and "class 'Cat' is not a truth class" in " ".join(err.split())


@pytest.mark.parametrize(("key", "image", "got"), [("dup", "b.jpg", 2), ("missing", "d.jpg", 0)])
def test_duplicate_or_missing_classification_names_file_and_image(cls: dict[str, Path], key: str, image: str,
                                                                  got: int) -> None:
    code, out, err = _eval(cls["gt"], cls[key])
    assert code == 2, out + err
    assert f"{cls[key]}, image '{image}', field 'label': an image must have exactly one predicted class, got {got}" \
        in err, err


# -- semantic segmentation: label maps --------------------------------------------------------------------------


def _sem_eval(gt: Path, pred: Path) -> tuple[int, str, str]:
    code, out, err = run_cli_streams(["eval", "--gt", str(gt), "--from", "masks", "--pred", str(pred),
                                      "--pred-format", "masks"])
    return code, out, " ".join(err.split())


@pytest.fixture()
def sem_truth(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    rng = np.random.default_rng(3)
    maps = [np.repeat(np.repeat(rng.integers(0, 3, (3, 4)), 4, 0), 4, 1) for _ in range(4)]
    return _maps(tmp_path / "gt", maps, ["sky", "road", "car"], images=True), maps


def test_semantic_no_truth_class_exits_2_with_the_classes_txt_hint(tmp_path: Path,
                                                                   sem_truth: tuple[Path, list[np.ndarray]]) -> None:
    gt, maps = sem_truth
    pred = _maps(tmp_path / "p", maps, ["Sky", "Road", "Car"], images=False)
    code, out, err = _sem_eval(gt, pred)
    assert code == 2, out + err
    assert str(pred) in err and "no prediction is of a truth class" in err and "classes.txt" in err


def test_semantic_partial_class_mismatch_is_a_note(tmp_path: Path, sem_truth: tuple[Path, list[np.ndarray]]) -> None:
    gt, maps = sem_truth
    pred = _maps(tmp_path / "p", maps, ["sky", "road", "bus"], images=False)  # value 2 named 'bus', not 'car'
    code, _, err = _sem_eval(gt, pred)
    assert code == 0, err
    n_car = sum(int((m == 2).any()) for m in maps)
    assert f"predictions are of classes the truth lacks ('bus': {n_car}" in err and "count as missed" in err


def test_semantic_map_of_the_wrong_size_names_the_file_and_image(tmp_path: Path,
                                                                  sem_truth: tuple[Path, list[np.ndarray]]) -> None:
    gt, maps = sem_truth
    pred = _maps(tmp_path / "p", [*maps[:2], maps[2][:-2], maps[3]], ["sky", "road", "car"], images=False)
    code, out, err = _sem_eval(gt, pred)
    assert code == 2, out + err
    assert f"{pred}, image 'f_02.png', field 'mask'" in err and "must be the truth image's 16x12" in err, err
