"""Keypoint findings carry the model's keypoints as data (``QualityIssues.keypoints``, ``suggestion["keypoints"]``):
the predictions' own keypoints for planted errors, NaN/None for every other finding; the column through ``block``,
``build``, ``take``, ``rows`` against a plain reading; and the HTML crops draw them (green dots, skeleton edges)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.metrics._iou import COCO_KEYPOINT_SIGMAS
from maslow.quality import QualityIssues, find_label_issues
from maslow.quality.consensus import object_scores
from maslow.quality.consensus_report import SUGGESTED_COLOUR, TRUTH_COLOUR, render_consensus_html
from tests.quality.test_consensus_keypoints import LEFT_WRIST, RIGHT_WRIST, persons, plant, simulate

NAMES = ("person", "dog")


def _noisy_person_run() -> tuple[Dataset, Dataset, Dataset, np.ndarray, np.ndarray, np.ndarray, QualityIssues]:
    clean = persons(60, seed=2)
    pred, src = simulate(clean, COCO_KEYPOINT_SIGMAS, seed=4)
    noisy, kind, dropped = plant(clean, 6, 4, 4, 3, n_off=3, swap=(LEFT_WRIST, RIGHT_WRIST), seed=6)
    return clean, noisy, pred, src, kind, dropped, find_label_issues(noisy, pred)


def _clean_rows(clean: Dataset, noisy: Dataset) -> np.ndarray:
    """The clean row of each noisy row (same image, same box), -1 for a spurious one (planted on an empty image)."""
    a_c, a_n = clean.annotations, noisy.annotations
    assert a_c.box is not None and a_n.box is not None
    out = np.full(len(a_n), -1)
    for r in range(len(a_n)):
        same = np.flatnonzero((a_c.image == a_n.image[r]) & (a_c.box == a_n.box[r]).all(1))
        out[r] = same[0] if same.size else -1
    return out


def test_keypoint_findings_carry_the_predictions_keypoints() -> None:
    clean, noisy, pred, src, kind, dropped, issues = _noisy_person_run()
    pk = pred.annotations.keypoints
    assert pk is not None and issues.keypoints is not None and issues.box is not None
    assert issues.keypoints.shape == (len(issues), 17, 3)
    has = ~np.isnan(issues.keypoints).all(axis=(1, 2))
    assert has.tolist() == np.isin(issues.type, ("low_iou", "missing")).tolist()  # the other types: none
    # planted errors: the model's prediction of the very object (simulated from its clean row) is the fix
    of_clean = _clean_rows(clean, noisy)
    low = issues.of_type("low_iou")
    assert low.keypoints is not None
    planted = 0
    for k, r in enumerate(low.annotation.tolist()):
        if kind[r] in (1, 2):
            p = np.flatnonzero(src == of_clean[r])
            assert p.size == 1
            np.testing.assert_array_equal(low.keypoints[k], pk[p[0]])
            planted += 1
    assert planted >= 7, planted
    miss = issues.of_type("missing")
    assert miss.keypoints is not None and miss.box is not None
    found = 0
    for d in dropped.tolist():
        p = int(np.flatnonzero(src == d)[0])
        k = np.flatnonzero((miss.image == pred.annotations.image[p]) & (miss.keypoints == pk[p]).all(axis=(1, 2)))
        found += k.size
    assert found == len(dropped)
    # every keypoint finding: the keypoints of the prediction behind it (low_iou: the suggested one; missing: the
    # prediction whose box and image it names)
    s = object_scores(noisy, pred)
    for k, r in enumerate(low.annotation.tolist()):
        np.testing.assert_array_equal(low.keypoints[k], pk[s.suggested_pred[r]])
    for k in range(len(miss)):
        p = np.flatnonzero((pred.annotations.image == miss.image[k]) & (s.pred_box == miss.box[k]).all(1))
        assert p.size == 1
        np.testing.assert_array_equal(miss.keypoints[k], pk[p[0]])
    rows = issues.rows(names=noisy.schema.names)
    for r, kp, h in zip(rows, issues.keypoints, has.tolist(), strict=True):
        assert r["suggestion"]["keypoints"] == (kp.tolist() if h else None)


def test_box_findings_have_no_keypoints() -> None:
    from tests.quality.test_consensus import _clean, _model, _plant

    clean = _clean(20)
    noisy, _, _ = _plant(clean)
    issues = find_label_issues(noisy, _model(clean), iou_type="bbox", min_score=0.0)
    assert issues.keypoints is not None and issues.keypoints.shape == (len(issues), 0, 3)
    rows = issues.rows(names=noisy.schema.names)
    assert rows and all(r["suggestion"] is None or r["suggestion"]["keypoints"] is None for r in rows)
    assert any(r["suggestion"] is not None and r["suggestion"]["box_xyxy"] is not None for r in rows)


def _kp_parts(seed: int) -> tuple[list[QualityIssues], list[dict[str, object]]]:
    """Random blocks, some with keypoints (width 3; NaN rows and NaN values), some without; the same rows as
    dicts in the order found, read from the docstring (a NaN value is None, an all-NaN row no keypoints)."""
    rng = np.random.default_rng(seed)
    parts, found = [], []
    for b in range(int(rng.integers(2, 6))):
        n = int(rng.integers(0, 6))
        score = rng.choice([0.0, 0.5, 1.0], n)
        label = rng.integers(-1, len(NAMES), n)
        kp = None
        if rng.random() < 0.6:
            kp = rng.uniform(0, 90, (n, 3, 3)).round(2)
            kp[rng.random(n) < 0.3] = np.nan
            kp[rng.random((n, 3, 3)) < 0.1] = np.nan
        text = "" if rng.random() < 0.5 else f"s{b}"
        parts.append(QualityIssues.block("low_iou", "info", image=np.arange(n), score=score,
                                         reason=[f"r{b}.{i}" for i in range(n)], suggestion=text, label=label,
                                         keypoints=kp))
        for i in range(n):
            pts = None
            if kp is not None and not np.isnan(kp[i]).all():
                pts = [[None if np.isnan(v) else float(v) for v in p] for p in kp[i]]
            cls = NAMES[int(label[i])] if label[i] >= 0 else None
            sug = None if cls is None and pts is None and not text else {"class": cls, "box_xyxy": None,
                                                                         "keypoints": pts, "text": text}
            found.append({"image": i, "annotation": -1, "other": -1, "type": "low_iou", "severity": "info",
                          "score": float(score[i]), "reason": f"r{b}.{i}", "suggestion": sug})
    return parts, found


@pytest.mark.parametrize("seed", range(5))
def test_keypoints_column_matches_a_plain_reading(seed: int) -> None:
    parts, found = _kp_parts(seed)
    issues = QualityIssues.build(parts)
    ranked = sorted(found, key=lambda r: -float(r["score"]))  # type: ignore[arg-type]
    assert issues.rows(names=NAMES) == ranked
    assert issues.top(3).rows(names=NAMES) == ranked[:3]
    mask = issues.score >= 0.5
    kept = [r for r in ranked if float(r["score"]) >= 0.5]  # type: ignore[arg-type]
    assert issues.take(mask).rows(names=NAMES) == kept
    assert [r for c in issues.row_chunks(names=NAMES, size=2) for r in c] == ranked
    assert QualityIssues.build([issues]).rows(names=NAMES) == ranked


def test_keypoints_column_is_checked() -> None:
    one = QualityIssues.block("low_iou", "info", image=[0, 1], score=0.5, reason="r", keypoints=[[1, 2, 2]] * 4)
    assert one.keypoints is not None and one.keypoints.shape == (2, 4, 3)  # one (K, 3) for every row
    assert one.rows()[1]["suggestion"] == {"class": None, "box_xyxy": None, "keypoints": [[1.0, 2.0, 2.0]] * 4,
                                           "text": ""}  # keypoints alone are a suggestion
    with pytest.raises(ValueError, match=r"keypoints: shape must be \(2, K, 3\), got \(2, 4, 2\)"):
        QualityIssues.block("low_iou", "info", image=[0, 1], score=0.5, reason="r", keypoints=np.zeros((2, 4, 2)))
    other = QualityIssues.block("low_iou", "info", image=[0], score=0.5, reason="r", keypoints=np.zeros((1, 5, 3)))
    with pytest.raises(ValueError, match=r"one width K across the parts, got \[4, 5\]"):
        QualityIssues.build([one, other])
    plain = QualityIssues.block("extra", "warning", image=[3], score=0.9, reason="r")
    both = QualityIssues.build([one, plain])
    assert both.keypoints is not None and both.keypoints.shape == (3, 4, 3)
    assert np.isnan(both.keypoints[both.type == "extra"]).all()


# -- the HTML crop ------------------------------------------------------------------------------------------

BOX = np.array([40.0, 40.0, 100.0, 100.0])
TRUTH_KP = np.array([[60.0, 50.0, 2.0], [50.0, 90.0, 2.0], [90.0, 90.0, 2.0]])
MODEL_KP = np.array([[70.0, 45.0, 1.0], [45.0, 70.0, 1.0], [95.0, 70.0, 1.0]])


def _one_triangle(tmp_path: Path, skeleton: tuple[tuple[int, int], ...]) -> Dataset:
    from PIL import Image

    Image.new("RGB", (140, 140), (128, 128, 128)).save(tmp_path / "img.png")
    schema = LabelSchema(classes=(ClassDef("tri", keypoints=("top", "left", "right"), skeleton=skeleton, id=1),),
                         tasks=(Task.KEYPOINTS,))
    ann = Annotations(image=np.array([0]), label=np.array([0]), box=BOX[None], keypoints=TRUTH_KP[None])
    images = Images(path=obj_array(["img.png"]), width=np.array([140]), height=np.array([140]))
    return Dataset(schema=schema, images=images, annotations=ann, root=tmp_path)


def _crop_pixels(truth: Dataset, issues: QualityIssues) -> np.ndarray:
    from PIL import Image

    page = render_consensus_html(issues, truth, crop_size=160)
    png = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert len(png) == 1
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(png[0]))).convert("RGB"))


def _near(mask: np.ndarray, x: float, y: float, r: float) -> bool:
    ys, xs = np.nonzero(mask)
    return bool((np.hypot(xs - x, ys - y) <= r).any())


@pytest.mark.parametrize("skeleton", [((0, 1), (1, 2), (2, 0)), ()], ids=["skeleton", "no-skeleton"])
def test_html_crop_draws_the_models_keypoints(tmp_path: Path, skeleton: tuple[tuple[int, int], ...]) -> None:
    pytest.importorskip("PIL")
    truth = _one_triangle(tmp_path, skeleton)
    issues = QualityIssues.block("low_iou", "info", image=[0], annotation=[0], score=0.6, reason="r",
                                 suggestion="use the model's keypoints", label=[0], keypoints=MODEL_KP[None])
    px = _crop_pixels(truth, issues)
    red = (px == TRUTH_COLOUR).all(axis=2)
    green = (px == SUGGESTED_COLOUR).all(axis=2)
    # the frame from the red box: its outline's outer edge is the box, scaled (the keypoints lie inside it)
    ys, xs = np.nonzero(red)
    x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
    scale = (x1 - x0) / (BOX[2] - BOX[0])
    assert scale == pytest.approx((y1 - y0) / (BOX[3] - BOX[1]), rel=0.05)

    def at(p: np.ndarray) -> tuple[float, float]:
        return x0 + (p[0] - BOX[0]) * scale, y0 + (p[1] - BOX[1]) * scale

    for p in MODEL_KP:  # a green dot on each of the model's keypoints
        assert _near(green, *at(p), 2.0), p
    for p in TRUTH_KP:
        assert _near(red, *at(p), 2.0), p
    # halfway along an edge, away from every dot: a line there only with a skeleton (the model's left-right, in
    # green; the annotation's top-left, in red)
    assert _near(green, *at((MODEL_KP[1] + MODEL_KP[2]) / 2), 1.5) == bool(skeleton)
    assert _near(red, *at((TRUTH_KP[0] + TRUTH_KP[1]) / 2), 1.5) == bool(skeleton)
