"""`maslow compare`: exit codes, the parsed --json output (equal to the library's), the files it writes, bad input
(exit code 2 naming the file, record and field), and docs/compare.md's commands run as written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maslow import io
from maslow.io.coco import read_coco
from maslow.io.coco_results import read_coco_predictions, write_coco_results
from maslow.metrics.calibration import detection_calibration
from maslow.metrics.compare import compare_models
from maslow.sample import write_shapes
from tests.helpers import flat_text, run_cli, run_cli_streams
from tests.metrics.simulated import simulate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("compare")
    truth = write_shapes(d / "shapes", 30, seed=3)
    io.write(truth, d / "shapes" / "annotations.json", "coco")
    truth = read_coco(d / "shapes" / "annotations.json")
    write_coco_results(simulate(truth, seed=3), d / "a.json")
    write_coco_results(simulate(truth, seed=4, jitter=0.03), d / "b.json")
    return {"dir": d, "gt": d / "shapes" / "annotations.json", "a": d / "a.json", "b": d / "b.json"}


def _args(files: dict[str, Path], *extra: str, a: Path | None = None, b: Path | None = None) -> list[str]:
    return ["compare", "--gt", str(files["gt"]), "--pred", str(a or files["a"]), "--pred", str(b or files["b"]),
            "--bootstrap", "50", *extra]


def test_json_equals_the_library(files: dict[str, Path]) -> None:
    code, out, err = run_cli_streams([*_args(files, "--seed", "3"), "--json", "-"])
    assert code == 0, err
    d = json.loads(out)  # stdout holds the JSON alone
    truth = read_coco(files["gt"])
    a, b = (read_coco_predictions(files[k], like=truth) for k in ("a", "b"))
    ref = compare_models(truth, a, b, n_bootstrap=50, seed=3)
    assert d["comparison"] == json.loads(json.dumps(ref.to_dict()))
    assert d["n_images"] == 30 and d["n_pred"] == {"a": a.n_annotations, "b": b.n_annotations} and d["seed"] == 3
    assert d["calibration"]["b"]["ece"] == pytest.approx(detection_calibration(truth, b).ece)
    assert d["plots"] == {} and d["html"] is None


def test_tables_plots_html_and_json_file(files: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    out, plots, page = tmp_path / "c.json", tmp_path / "plots", tmp_path / "c.html"
    code, text = run_cli(_args(files, "--json", str(out), "--plot", str(plots), "--html", str(page)))
    assert code == 0, text
    flat = flat_text(text)
    assert "map_50_95" in flat and "AP@[.5:.95] per class, largest loss first" in flat and "ECE" in flat
    d = json.loads(out.read_text())
    assert sorted(p.name for p in plots.iterdir()) == ["ap_delta_per_class.png", "reliability.png"]
    assert d["plots"]["reliability"] == str(plots / "reliability.png") and d["html"] == str(page)
    html = page.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2 and str(files["a"]) in html
    i = [r["name"] for r in d["comparison"]["stats"]].index("map_50_95")
    row = d["comparison"]["stats"][i]
    flag = "B better" if row["lower"] > 0 else "B worse" if row["upper"] < 0 else None
    line = next(ln for ln in text.splitlines() if "map_50_95" in ln)
    assert (flag in line) if flag else ("better" not in line and "worse" not in line)


def test_logit_scores_compare_without_calibration(files: dict[str, Path], tmp_path: Path) -> None:
    recs = json.loads(files["b"].read_text())
    for r in recs:
        r["score"] = float(np.log(r["score"] / (1 - r["score"] + 1e-9) + 1e-9))  # logits, some negative
    logits = tmp_path / "logits.json"
    logits.write_text(json.dumps(recs))
    html = tmp_path / "report.html"
    code, out, err = run_cli_streams([*_args(files, b=logits), "--json", "-", "--html", str(html)])
    assert code == 0, err
    d = json.loads(out)
    assert d["calibration"]["b"] is None and d["calibration"]["a"] is not None
    assert "no calibration" in d["notes"]["b"][-1] and d["comparison"]["stats"][0]["b"] is not None
    page = html.read_text(encoding="utf-8")  # the HTML says why B has no calibration row, as stderr does
    assert "<h2>Notes</h2>" in page and "<li>B: " in page and "no calibration" in page


def _bad(files: dict[str, Path], tmp_path: Path, change: Any) -> Path:
    recs = json.loads(files["b"].read_text())
    change(recs)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(recs))
    return path


@pytest.mark.parametrize(("change", "expect"), [
    pytest.param(lambda r: r[4].update(image_id=987654), ["bad.json", "[4]", "image_id", "truth's images"],
                 id="image-not-in-truth"),
    pytest.param(lambda r: r[2].update(category_id=999), ["bad.json", "[2]", "category_id"], id="unknown-class"),
    pytest.param(lambda r: r[3].update(score="high"), ["bad.json", "[3]", "score"], id="bad-field"),
])
def test_bad_predictions_exit_2_naming_file_record_field(files: dict[str, Path], tmp_path: Path, change: Any,
                                                          expect: list[str]) -> None:
    code, out, err = run_cli_streams(_args(files, b=_bad(files, tmp_path, change)))
    flat = " ".join(err.split())
    assert code == 2, out + err
    for word in expect:
        assert word in flat, flat


def test_predictions_of_another_truth_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    other = write_shapes(tmp_path / "other", 12, seed=9)
    io.write(other, tmp_path / "other.json", "coco")
    other = read_coco(tmp_path / "other.json")
    coco = json.loads((tmp_path / "other.json").read_text())
    for im in coco["images"]:  # another dataset: its own image ids
        im["id"] += 100_000
    for ann in coco["annotations"]:
        ann["image_id"] += 100_000
    (tmp_path / "other.json").write_text(json.dumps(coco))
    write_coco_results(simulate(read_coco(tmp_path / "other.json"), seed=1), tmp_path / "other_dets.json")
    code, out, err = run_cli_streams(_args(files, b=tmp_path / "other_dets.json"))
    assert code == 2 and "other_dets.json" in err and "image_id" in err, out + err


@pytest.mark.parametrize(("args", "expect"), [
    pytest.param(["--pred-format", "nope"], "nope", id="unknown-format"),
    pytest.param(["--confidence", "1"], "--confidence", id="confidence-one"),
    pytest.param(["--iou-type", "box"], "box", id="unknown-iou-type"),
])
def test_bad_options_exit_2(files: dict[str, Path], args: list[str], expect: str) -> None:
    code, out, err = run_cli_streams(_args(files, *args))
    assert code == 2 and expect in out + err


def test_one_prediction_file_exits_2(files: dict[str, Path]) -> None:
    code, _, err = run_cli_streams(["compare", "--gt", str(files["gt"]), "--pred", str(files["a"])])
    assert code == 2 and "give --pred twice" in " ".join(err.split())


# --- docs/compare.md --------------------------------------------------------------------------------------------


def test_the_page_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/compare.md's shell block, run in a temporary folder; every --option the page gives exists."""
    from tests import test_docs_examples as docs

    page = ROOT / "docs" / "compare.md"
    wrong = []
    for line_no, line in docs._command_mentions(page):
        words = docs.words_of(line)
        if words[:1] != ["maslow"] or len(words) < 2:
            continue
        cmd, why = docs._resolve(words)
        wrong += [f"{line_no}: {why}"] if why else []
        if cmd is not None:
            wrong += [f"{line_no}: {o}" for w in words[2:] for o in docs.OPTION.findall(w) if o not in docs._options(cmd)]
    assert not wrong, wrong
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    lines = docs.command_lines(docs.fence_with(page, "maslow compare --gt shapes", "bash"))
    for line in lines:
        out = docs.run_ok(line, tmp_path)
    d = json.loads((tmp_path / "compare.json").read_text())
    stats = {r["name"]: r for r in d["comparison"]["stats"]}
    # the page quotes this run's numbers
    text = page.read_text(encoding="utf-8")
    m = stats["map_50_95"]
    assert f"{m['a']:.3f} │ {m['b']:.3f} │ {m['delta']:+.3f} │ {m['lower']:+.3f} to {m['upper']:+.3f}" in text
    assert f"{m['p_not_better']:.3f}" in text and "map_50_95" in out
