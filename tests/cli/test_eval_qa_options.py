"""`maslow eval` and `maslow qa` as a user from pycocotools / scikit-learn meets them: ids off by one are refused with
the flag to pass, options the truth's task has no use for are refused instead of ignored, classification operating
points, a void class of label maps left out (`--ignore-index`), and pycocotools' area rule for segm results that
carry boxes (`--pred-area box`)."""

from __future__ import annotations

import contextlib
import io as _io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions, write_coco_results
from maslow.metrics import operating_point
from maslow.sample import write_shapes
from tests.helpers import run_cli
from tests.metrics.simulated import simulate


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audit4")
    truth = write_shapes(d / "shapes", 24, seed=3)
    io.write(truth, d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=3), d / "dets.json")
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "pred": d / "dets.json"}


def _shifted(files: dict[str, Path], name: str, *, images: bool) -> Path:
    records = json.loads(files["pred"].read_text())
    for r in records:
        r["category_id"] -= 1
        if images:
            r["image_id"] -= 1
    out = files["dir"] / name
    out.write_text(json.dumps(records))
    return out


def _stats(files: dict[str, Path], pred: Path, *extra: str) -> dict[str, Any]:
    code, out = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(pred), "--json", "-", *extra])
    assert code == 0, out
    return dict(json.loads(out)["map"]["stats"])


def test_eval_refuses_ids_off_by_one_with_the_flag_to_pass(files: dict[str, Path]) -> None:
    # before: exit 0 and an mAP near 0, the predictions paired with the wrong images and classes
    ref = _stats(files, files["pred"])
    both = _shifted(files, "zero_based.json", images=True)
    code, out = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(both), "--json", "-"])
    assert code == 2 and "Traceback" not in out
    assert "zero_based.json" in out and "field '" in out and "--id-offset 1" in out
    assert _stats(files, both, "--id-offset", "1") == ref
    cats = _shifted(files, "zero_based_classes.json", images=False)
    code, out = run_cli(["eval", "--gt", str(files["gt"]), "--pred", str(cats)])
    assert code == 2 and "field 'category_id'" in out and "--category-offset 1" in out
    assert "category_offset=" not in out  # the library's keyword, not the command's flag
    assert _stats(files, cats, "--category-offset", "1") == ref  # --id-offset 1 would shift the image ids too


def test_qa_takes_the_offsets_it_asks_for(files: dict[str, Path]) -> None:
    cats = _shifted(files, "qa_zero_based_classes.json", images=False)
    code, out = run_cli(["qa", "--gt", str(files["gt"]), "--pred", str(cats), "--out", str(files["dir"] / "x.json")])
    assert code == 2 and "--category-offset 1" in out and "field 'category_id'" in out
    ref, fixed = files["dir"] / "ref_issues.json", files["dir"] / "fixed_issues.json"
    assert run_cli(["qa", "--gt", str(files["gt"]), "--pred", str(files["pred"]), "--out", str(ref)])[0] == 0
    code, out = run_cli(["qa", "--gt", str(files["gt"]), "--pred", str(cats), "--out", str(fixed),
                         "--category-offset", "1"])
    assert code == 0, out
    assert json.loads(fixed.read_text()) == json.loads(ref.read_text())


def _images(n: int) -> Images:
    return Images(path=np.array([f"{i}.jpg" for i in range(n)], object), width=[32] * n, height=[32] * n)


def test_eval_classification_operating_points(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 80
    y = rng.integers(0, 3, n)
    probs = rng.dirichlet(np.ones(3), n)
    probs[np.arange(n), y] += 0.4
    probs /= probs.sum(1, keepdims=True)
    truth = Dataset(LabelSchema.from_names(["a", "b", "c"], task="classification"), _images(n),
                    Annotations(image=np.arange(n), label=y))
    pred = truth.replace(annotations=Annotations(image=np.arange(n), label=probs.argmax(1), extra={"probs": probs}))
    io.write(truth, tmp_path / "gt.parquet", "parquet")
    io.write(pred, tmp_path / "pred.parquet", "parquet")
    code, out = run_cli(["eval", "--gt", str(tmp_path / "gt.parquet"), "--from", "parquet", "--pred",
                         str(tmp_path / "pred.parquet"), "--pred-format", "parquet", "--target-precision", "0.9",
                         "--json", "-"])
    assert code == 0, out
    doc = json.loads(out)["operating_points"]  # before: the option was ignored, no operating points
    ref = operating_point(truth, pred, target_precision=0.9)
    assert [c["threshold"] for c in doc["classes"]] == [None if np.isinf(t) else t for t in ref.threshold.tolist()]
    for k in range(3):  # each threshold is the lowest score at which the class's precision reaches 0.9
        scores = probs[:, k]
        ok = [t for t in np.unique(scores) if (y[scores >= t] == k).mean() >= 0.9]
        assert doc["classes"][k]["threshold"] == (min(ok) if ok else None)


def test_eval_refuses_options_the_task_ignores(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 30
    img, lab = np.nonzero(rng.random((n, 3)) < 0.4)
    truth = Dataset(LabelSchema.from_names(["x", "y", "z"], task="multilabel"), _images(n),
                    Annotations(image=img, label=lab))
    io.write(truth, tmp_path / "tags.parquet", "parquet")
    base = ["eval", "--gt", str(tmp_path / "tags.parquet"), "--from", "parquet", "--pred",
            str(tmp_path / "tags.parquet"), "--pred-format", "parquet"]
    assert run_cli(base)[0] == 0
    for extra, flag in ((["--cost-fn", "5"], "--cost-fp/--cost-fn"), (["--slice-by", "split"], "--slice-by"),
                        (["--ignore-index", "0"], "--ignore-index")):
        code, out = run_cli([*base, *extra])
        assert code == 2 and flag in out and "multilabel" in out, out


def _label_maps(root: Path, maps: list[np.ndarray]) -> Path:
    from PIL import Image

    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    for i, m in enumerate(maps):
        Image.fromarray(m.astype(np.uint8)).save(root / "annotations" / f"f_{i:03d}.png")
        Image.new("RGB", (m.shape[1], m.shape[0])).save(root / "images" / f"f_{i:03d}.png")
    return root / "annotations"


def test_semantic_void_class_left_out_with_ignore_index(tmp_path: Path) -> None:
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(2)
    truth = [np.repeat(np.repeat(rng.integers(0, 4, (6, 8)), 5, 0), 5, 1) for _ in range(4)]  # 3 = void
    pred = []
    for t in truth:
        p = np.roll(t, 2, axis=1)
        p[p == 3] = 0  # the model never predicts void
        noise = rng.random(p.shape) < 0.05
        p[noise] = rng.integers(0, 3, int(noise.sum()))
        pred.append(p)
    gt, pr = _label_maps(tmp_path / "gt", truth), _label_maps(tmp_path / "pred", pred)
    base = ["eval", "--gt", str(gt), "--from", "masks", "--pred", str(pr), "--pred-format", "masks", "--json", "-"]
    code, out = run_cli([*base, "--ignore-index", "3"])
    assert code == 0, out
    summary = json.loads(out)["summary"]
    t, p = np.concatenate([m.ravel() for m in truth]), np.concatenate([m.ravel() for m in pred])
    keep = t != 3
    iou = sk.jaccard_score(t[keep], p[keep], labels=[0, 1, 2], average=None)
    assert summary["miou"] == pytest.approx(iou.mean(), abs=1e-12)
    assert summary["pixel_accuracy"] == pytest.approx((t[keep] == p[keep]).mean(), abs=1e-12)
    code, out = run_cli([*base, "--ignore-index", "7"])
    assert code == 2 and "ignore_index" in out
    # qa: without --ignore-index every void region the model calls road is a wrong_class finding; with it, none
    names = io.read_masks(gt).schema.names
    found = []
    for extra in ([], ["--ignore-index", "3"]):
        out_file = tmp_path / f"issues{len(extra)}.json"
        code, out = run_cli(["qa", "--gt", str(gt), "--from", "masks", "--pred", str(pr), "--pred-format", "masks",
                             "--out", str(out_file), *extra])
        assert code == 0, out
        found.append({r["class"] for r in json.loads(out_file.read_text())})
    assert names[3] in found[0] and names[3] not in found[1]
    # a model's output folder holds the maps alone: they are paired with the truth's images (no "missing image" each)
    import shutil

    shutil.rmtree(tmp_path / "pred" / "images")
    code, out = run_cli(["qa", "--gt", str(gt), "--from", "masks", "--pred", str(pr), "--pred-format", "masks",
                         "--out", str(tmp_path / "bare.json"), "--ignore-index", "3"])
    assert code == 0, out
    assert "missing_image" not in out and "import issues" not in out, out
    assert {r["class"] for r in json.loads((tmp_path / "bare.json").read_text())} == found[1]


def test_pred_area_box_reproduces_pycocotools_on_segm_results_with_boxes(files: dict[str, Path]) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from maslow.core import masks as M

    truth = read_coco(files["gt"])
    pred = read_coco_predictions(files["pred"], like=truth)
    a = pred.annotations
    assert a.box is not None
    h, w = truth.images.height[a.image], truth.images.width[a.image]
    masks = []
    for k in range(len(a)):  # a mask per predicted box, shrunk: its area differs from the box's
        m = np.zeros((int(h[k]), int(w[k])), np.uint8)
        x1, y1, x2, y2 = np.round(a.box[k]).astype(int)
        m[max(y1, 0):max(y2 - 3, 0), max(x1, 0):max(x2 - 3, 0)] = 1
        masks.append(M.encode(m))
    coco_ids = {r: int(v) for r, v in enumerate(truth.images.extra["coco_id"].tolist())}
    cat_ids = [c.id for c in truth.schema.classes]
    records = [{"image_id": coco_ids[int(a.image[k])], "category_id": cat_ids[int(a.label[k])],
                "bbox": [float(v) for v in (a.box[k, 0], a.box[k, 1], a.box[k, 2] - a.box[k, 0],
                                            a.box[k, 3] - a.box[k, 1])],
                "segmentation": {"size": masks[k]["size"], "counts": masks[k]["counts"].decode()
                                 if isinstance(masks[k]["counts"], bytes) else masks[k]["counts"]},
                "score": float(a.score[k])} for k in range(len(a))]  # type: ignore[index]
    path = files["dir"] / "segm_with_boxes.json"
    path.write_text(json.dumps(records))
    with contextlib.redirect_stdout(_io.StringIO()):
        gt = COCO(str(files["gt"]))
        ev = COCOeval(gt, gt.loadRes(str(path)), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ref = [None if v == -1 else float(v) for v in ev.stats]
    geometry = list(_stats(files, path, "--iou-type", "segm").values())
    assert list(_stats(files, path, "--iou-type", "segm", "--pred-area", "box").values()) == ref
    assert geometry != ref  # the default (the masks' own areas) puts some predictions in other area ranges
