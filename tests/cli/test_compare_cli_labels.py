"""`maslow compare` on classification, multi-label and semantic segmentation truths: the parsed --json output equals
compare_labels on the same files, the tables, plots and HTML report, bad predictions (exit code 2 naming the file,
record and field), options of another task refused, and docs/compare.md's examples of these tasks run as written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.metrics.compare import compare_labels
from tests.helpers import flat_text, run_cli, run_cli_streams

ROOT = Path(__file__).resolve().parents[2]


def _images(n: int) -> Images:
    return Images(path=np.array([f"img/{i:03d}.jpg" for i in range(n)], object), width=[16] * n, height=[16] * n)


def _classifier(truth: Dataset, seed: int, skill: float) -> Dataset:
    rng = np.random.default_rng(seed)
    n, k = truth.n_images, len(truth.schema.names)
    probs = rng.dirichlet(np.ones(k), n)
    probs[np.arange(n), truth.annotations.label] += rng.uniform(0, skill, n)
    probs /= probs.sum(axis=1, keepdims=True)
    return truth.replace(annotations=Annotations(image=np.arange(n), label=probs.argmax(axis=1),
                                                 score=probs.max(axis=1), extra={"probs": probs}))


@pytest.fixture(scope="module")
def cls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cls")
    n = 120
    y = np.random.default_rng(0).integers(0, 4, n)
    truth = Dataset(LabelSchema.from_names(["ant", "bee", "cow", "dog"], task="classification"), _images(n),
                    Annotations(image=np.arange(n), label=y))
    for name, ds in (("gt", truth), ("a", _classifier(truth, 1, 0.3)), ("b", _classifier(truth, 2, 0.9))):
        io.write(ds, d / name, "parquet")
    return {"dir": d, "gt": d / "gt", "a": d / "a", "b": d / "b"}


def _args(f: dict[str, Path], *extra: str, a: Path | None = None, b: Path | None = None) -> list[str]:
    return ["compare", "--gt", str(f["gt"]), "--from", "parquet", "--pred", str(a or f["a"]), "--pred",
            str(b or f["b"]), "--bootstrap", "60", *extra]


def test_classification_json_equals_the_library(cls: dict[str, Path]) -> None:
    code, out, err = run_cli_streams([*_args(cls, "--seed", "4"), "--json", "-"])
    assert code == 0, err
    d = json.loads(out)
    truth = io.read_parquet(cls["gt"])
    a, b = (io.read_parquet(cls[k]).replace(images=truth.images) for k in ("a", "b"))  # the same paths, in order
    ref = compare_labels(truth, a, b, n_bootstrap=60, seed=4)
    assert d["comparison"] == json.loads(json.dumps(ref.to_dict()))
    assert d["task"] == "classification" and d["n_images"] == 120 and d["seed"] == 4
    assert d["comparison"]["mcnemar"]["b_only"] > d["comparison"]["mcnemar"]["a_only"]  # B is the better one
    assert d["plots"] == {} and d["html"] is None


def test_classification_tables_plots_html_and_json_file(cls: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    out, plots, page = tmp_path / "c.json", tmp_path / "plots", tmp_path / "c.html"
    code, text = run_cli(_args(cls, "--json", str(out), "--plot", str(plots), "--html", str(page)))
    assert code == 0, text
    flat = flat_text(text)
    assert "classification: B vs A on 120 images" in flat and "F1 per class, largest loss first" in flat
    assert "Recall per class" in flat and "McNemar's exact test (accuracy)" in flat
    d = json.loads(out.read_text())
    assert sorted(p.name for p in plots.iterdir()) == ["f1_delta_per_class.png", "recall_delta_per_class.png"]
    assert d["plots"]["f1_delta_per_class"] == str(plots / "f1_delta_per_class.png") and d["html"] == str(page)
    html = page.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2 and "A alone is right on" in html
    row = next(r for r in d["comparison"]["stats"] if r["name"] == "accuracy")
    line = next(ln for ln in text.splitlines() if "│ accuracy " in ln)
    flag = "B better" if row["lower"] > 0 else "B worse" if row["upper"] < 0 else None
    assert (flag in line) if flag else ("better" not in line and "worse" not in line)


def test_multilabel_hamming_loss_reads_lower_as_better(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    rng = np.random.default_rng(3)
    n = 80
    has = rng.random((n, 4)) < 0.3
    img, lab = np.nonzero(has)
    schema = LabelSchema.from_names(list("wxyz"), task="multilabel")
    truth = Dataset(schema, _images(n), Annotations(image=img, label=lab))

    def tagger(noise: float, seed: int) -> Dataset:
        score = np.clip(0.25 + 0.5 * has + np.random.default_rng(seed).normal(0, noise, has.shape), 0, 1)
        i, t = np.nonzero(score > 0.1)
        return truth.replace(annotations=Annotations(image=i, label=t, score=score[i, t]))

    for name, ds in (("gt", truth), ("a", tagger(0.35, 1)), ("b", tagger(0.05, 2))):
        io.write(ds, tmp_path / name, "parquet")
    code, out, err = run_cli_streams(_args({"gt": tmp_path / "gt", "a": tmp_path / "a", "b": tmp_path / "b"},
                                           "--json", "-"))
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["comparison"]["stats"]}
    loss = rows["hamming_loss"]
    assert not loss["higher_better"] and loss["delta"] < 0 and loss["upper"] < 0 and loss["p_not_better"] == 0.0
    code, text = run_cli(_args({"gt": tmp_path / "gt", "a": tmp_path / "a", "b": tmp_path / "b"}))
    line = next(ln for ln in text.splitlines() if "│ hamming_loss" in ln)
    assert "lower is better" in line and "B better" in line  # a negative delta of a loss is B's gain


# -- semantic segmentation: label maps --------------------------------------------------------------------------


def _maps(root: Path, maps: list[np.ndarray], names: list[str] | None, images: bool) -> Path:
    (root / "annotations").mkdir(parents=True)
    for i, m in enumerate(maps):
        Image.fromarray(m.astype(np.uint8)).save(root / "annotations" / f"f_{i:02d}.png")
        if images:
            (root / "images").mkdir(exist_ok=True)
            Image.new("RGB", (m.shape[1], m.shape[0])).save(root / "images" / f"f_{i:02d}.png")
    if names is not None:
        (root / "annotations" / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return root / "annotations"


@pytest.fixture(scope="module")
def sem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("sem")
    rng = np.random.default_rng(5)
    truth = [np.repeat(np.repeat(rng.integers(0, 3, (5, 6)), 6, 0), 6, 1) for _ in range(10)]
    preds = {}
    for name, frac in (("a", 0.2), ("b", 0.05)):
        out = []
        for m in truth:
            p = np.roll(m, 1, axis=1)
            noise = rng.random(p.shape) < frac
            p[noise] = rng.integers(0, 3, int(noise.sum()))
            out.append(p)
        preds[name] = out
    names = ["sky", "road", "car"]
    return {"dir": d, "names": names, "truth": truth, "preds": preds,
            "gt": _maps(d / "gt", truth, names, images=True),
            "a": _maps(d / "a", preds["a"], names, images=False), "b": _maps(d / "b", preds["b"], names, images=False)}


def _sem_args(s: dict[str, Any], *extra: str, b: Path | None = None) -> list[str]:
    return ["compare", "--gt", str(s["gt"]), "--from", "masks", "--pred", str(s["a"]), "--pred", str(b or s["b"]),
            "--pred-format", "masks", "--bootstrap", "40", *extra]


def test_semantic_label_maps_equal_sklearn_and_the_library(sem: dict[str, Any], tmp_path: Path) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    code, out, err = run_cli_streams([*_sem_args(sem), "--json", "-"])
    assert code == 0, err
    d = json.loads(out)
    assert d["task"] == "semantic_segmentation" and d["comparison"]["mcnemar"] is None
    t = np.concatenate([m.ravel() for m in sem["truth"]])
    per = {r["name"]: r for r in d["comparison"]["per_class"]}
    rows = {r["name"]: r for r in d["comparison"]["stats"]}
    for side in ("a", "b"):
        p = np.concatenate([m.ravel() for m in sem["preds"][side]])
        iou = sk.jaccard_score(t, p, labels=[0, 1, 2], average=None)
        assert [per[n][side] for n in sem["names"]] == pytest.approx(iou.tolist(), abs=1e-12)
        assert rows["miou"][side] == pytest.approx(iou.mean(), abs=1e-12)
        assert rows["pixel_accuracy"][side] == pytest.approx(sk.accuracy_score(t, p), abs=1e-12)
    truth = io.read_masks(sem["gt"])
    a, b = (io.read_masks(sem[k], images_root=truth.root) for k in ("a", "b"))  # the truth's images
    ref = compare_labels(truth, a, b, n_bootstrap=40)
    assert d["comparison"] == json.loads(json.dumps(ref.to_dict()))


def _edited(sem: dict[str, Any], tmp_path: Path, change: Any) -> Path:
    maps = [m.copy() for m in sem["preds"]["b"]]
    names = list(sem["names"])
    maps, names = change(maps, names)
    return _maps(tmp_path / "bad", maps, names, images=False)


@pytest.mark.parametrize(("change", "expect"), [
    pytest.param(lambda m, n: ([*m[:3], m[3][:-2], *m[4:]], n),
                 ["bad/annotations", "f_03.png", "field 'mask'", "must be the truth image's 36x30"], id="map-size"),
    pytest.param(lambda m, n: ([*m[:2], np.where(m[2] == 2, 7, m[2]), *m[3:]], n),
                 ["f_02.png", "field 'classes'", "label value 7 is not in the class list"], id="unknown-value"),
    pytest.param(lambda m, n: (m, ["sky", "road", "bus"]),
                 ["bad/annotations", "annotations row", "field 'label'", "class 'bus' is not a truth class"],
                 id="unknown-class"),
    pytest.param(lambda m, n: (m[:9], n), ["bad/annotations", "f_09.png", "field 'image'", "has no prediction"],
                 id="missing-map"),
    pytest.param(lambda m, n: ([*m, m[0]], n), ["bad/annotations", "f_10.png", "field 'image'",
                                                "not one of the truth's images"], id="extra-map"),
])
def test_bad_label_maps_exit_2_naming_file_record_field(sem: dict[str, Any], tmp_path: Path, change: Any,
                                                         expect: list[str]) -> None:
    out = tmp_path / "c.json"
    code, stdout, err = run_cli_streams([*_sem_args(sem, b=_edited(sem, tmp_path, change)), "--json", str(out)])
    flat = " ".join(err.split())
    assert code == 2, stdout + err
    for word in expect:
        assert word in flat, flat
    assert not out.exists()


def _bad_cls(cls: dict[str, Path], tmp_path: Path, edit: Any) -> Path:
    pred = io.read_parquet(cls["b"])
    io.write(edit(pred), tmp_path / "bad", "parquet")
    return tmp_path / "bad"


@pytest.mark.parametrize(("edit", "expect"), [
    pytest.param(lambda p: p.replace(images=Images(
        path=np.array([*p.images.path[:5].tolist(), "elsewhere/x.jpg", *p.images.path[6:].tolist()], object),
        width=p.images.width, height=p.images.height)),
        ["annotations row 5", "field 'image'", "'elsewhere/x.jpg'", "not one of the truth's images"],
        id="image-not-in-truth"),
    pytest.param(lambda p: p.replace(schema=LabelSchema.from_names(["ant", "bee", "cow", "dingo"],
                                                                   task="classification")),
                 ["field 'label'", "class 'dingo' is not a truth class"], id="unknown-class"),
    pytest.param(lambda p: p.select(np.arange(p.n_annotations) != 7),
                 ["img/007.jpg", "field 'label'", "exactly one predicted class, got 0"], id="image-without-class"),
])
def test_bad_classifications_exit_2_naming_file_record_field(cls: dict[str, Path], tmp_path: Path, edit: Any,
                                                             expect: list[str]) -> None:
    code, out, err = run_cli_streams(_args(cls, b=_bad_cls(cls, tmp_path, edit)))
    flat = " ".join(err.split())
    assert code == 2, out + err
    assert "bad" in flat
    for word in expect:
        assert word in flat, flat


@pytest.mark.parametrize(("extra", "expect"), [
    pytest.param(["--iou-type", "segm"], "--iou-type applies to detection", id="iou-type"),
    pytest.param(["--kpt-sigmas", "0.5"], "--kpt-sigmas applies to detection", id="kpt-sigmas"),
    pytest.param(["--ignore-index", "0"], "--ignore-index applies to semantic segmentation", id="ignore-index"),
])
def test_options_of_another_task_exit_2(cls: dict[str, Path], extra: list[str], expect: str) -> None:
    code, out, err = run_cli_streams(_args(cls, *extra))
    assert code == 2 and expect in " ".join(err.split()), out + err


def test_coco_results_for_a_classification_truth_exit_2(cls: dict[str, Path], tmp_path: Path) -> None:
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "score": 0.5}]))
    code, out, err = run_cli_streams(_args(cls, a=dets))
    assert code == 2 and "dets.json" in err and "--pred-format" in " ".join(err.split()), out + err


def test_ignore_index_of_a_semantic_truth(sem: dict[str, Any], tmp_path: Path) -> None:
    code, out, err = run_cli_streams([*_sem_args(sem, "--ignore-index", "2"), "--json", "-"])
    assert code == 0, err
    d = json.loads(out)["comparison"]
    assert [r["name"] for r in d["per_class"]] == ["sky", "road"]  # car (value 2) left out as void
    code, _, err = run_cli_streams(_sem_args(sem, "--ignore-index", "9"))
    assert code == 2 and "ignore_index" in err


# --- docs/compare.md --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("python_marker", "shell_marker", "output_marker"), [
    pytest.param("compare_labels(truth, model_a, model_b", "maslow compare --gt animals/gt",
                 "McNemar's exact test (accuracy)", id="classifiers"),
    pytest.param("compare_labels(truth, tagger(", None, None, id="taggers"),
    pytest.param("compare_labels(truth, seg_a, seg_b", "maslow compare --gt seg/gt", None, id="segmenters"),
])
def test_the_page_examples_run_as_written(python_marker: str, shell_marker: str | None, output_marker: str | None,
                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A section's Python example (which writes the files), then its command, in a temporary folder: the lines the
    page shows are what they print."""
    from tests import test_docs_examples as docs

    page = ROOT / "docs" / "compare.md"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    code = docs.fence_with(page, python_marker, "python")
    docs._exec_python(code)
    printed = " ".join(capsys.readouterr().out.split())
    shown = next(f for f in docs.fences(page) if f.line > code.line and f.lang == "text")  # the output shown
    for line in shown.text.splitlines():
        assert " ".join(line.split()) in printed, line
    if shell_marker is None:
        return
    (line,) = docs.command_lines(docs.fence_with(page, shell_marker, "bash"))
    out = docs.run_ok(line, tmp_path)
    assert re.search(r"B vs A on \d+ images", out)
    if output_marker is not None:
        for s in docs.fence_with(page, output_marker, "text").text.splitlines():
            assert docs._shown(s.replace("│", " "), out), (s, out)
