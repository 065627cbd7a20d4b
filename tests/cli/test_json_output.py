"""Machine-readable and report outputs: strict JSON on stdout (NaN and infinities as null), plots whose labels
are user text, HTML with hostile names escaped, and nothing written when an output path is refused."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maslow import io
from maslow.cli.render import json_text
from maslow.sample import write_shapes
from tests.helpers import run_cli_streams as _run
from tests.helpers import shapes_coco

EVIL = "<img src=x onerror=alert(1)>\"&'"


def _strict(text: str) -> Any:
    def refuse(c: str) -> None:
        raise ValueError(f"{c} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _tags(page: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    from html.parser import HTMLParser

    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    parser = Tags()
    parser.feed(page)
    parser.close()
    return found


class _Result:
    def to_dict(self) -> dict[str, Any]:
        return {"nan": float("nan"), "inf": np.float32("inf"), "arr": np.array([np.nan, -np.inf, 1.5]),
                "nested": [{"x": np.float64("nan")}], "n": np.int64(3), "ok": np.bool_(True)}


def test_json_text_is_strict_inside_to_dict_and_arrays() -> None:
    d = _strict(json_text({"result": _Result(), "top": math.inf}))
    assert d == {"result": {"nan": None, "inf": None, "arr": [None, None, 1.5], "nested": [{"x": None}], "n": 3,
                            "ok": True}, "top": None}


def test_select_json_is_strict_when_images_are_held_back(tmp_path: Path) -> None:
    """Images held back by the quality gate have no score (NaN in the library): null in the JSON, not NaN."""
    from maslow.diversity.select import folder_dataset, select

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"n{i}.png")
    Image.new("RGB", (32, 32), (128, 128, 128)).save(folder / "blank.png")
    code, out, err = _run(["select", str(folder), "--embedder", "light", "--json"])
    assert code == 0, err
    d = _strict(out)
    sel = select(folder_dataset(folder), budget=100, rng=0, embedder="light")
    assert np.isnan(sel.score).any()
    assert [p["score"] for p in d["picks"]] == [None if np.isnan(s) else pytest.approx(float(s)) for s in sel.score]
    assert {g["path"] for g in d["gated"]} == {"blank.png"}


@pytest.fixture(scope="module")
def dollar(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("dollar")
    coco = shapes_coco(d, 12, seed=4)
    coco["categories"][0]["name"] = "cost $5_$ each"
    coco["categories"][1]["name"] = r"$\frac{a$"
    gt = d / "gt.json"
    gt.write_text(json.dumps(coco))
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
             for a in coco["annotations"] if not a.get("iscrowd")]
    (d / "pred.json").write_text(json.dumps(preds))
    return {"dir": d, "gt": gt, "pred": d / "pred.json", "root": d / "shapes"}


def _pngs(folder: Path) -> list[Path]:
    files = sorted(folder.iterdir())
    assert files and all(p.suffix == ".png" for p in files), files  # no temporary file left behind
    for p in files:
        with Image.open(p) as im:
            im.load()
            assert im.format == "PNG" and im.size[0] > 0
    return files


def test_plots_draw_dollar_signs_in_names_as_text(dollar: dict[str, Path]) -> None:
    """A '$' in a class name is not mathtext: the plots are written, not a ParseException traceback."""
    plots = dollar["dir"] / "plots"
    code, out, err = _run(["eval", "--gt", str(dollar["gt"]), "--pred", str(dollar["pred"]), "--plot",
                           str(plots / "eval"), "--json", str(dollar["dir"] / "eval.json")])
    assert code == 0, err
    assert [p.name for p in _pngs(plots / "eval")] == ["ap_per_class.png", "confusion_matrix.png", "pr_curves.png"]
    code, out, err = _run(["diversity", "balance", str(dollar["gt"]), "--from", "coco", "--images-root",
                           str(dollar["root"]), "--plot", str(plots / "balance"), "--json"])
    assert code == 0, err
    assert _strict(out)["plots"] == [str(p) for p in _pngs(plots / "balance")]


def test_eval_json_into_a_folder_is_refused_before_anything_is_written(dollar: dict[str, Path]) -> None:
    folder = dollar["dir"] / "a-folder"
    folder.mkdir()
    plots = dollar["dir"] / "refused-plots"
    code, out, err = _run(["eval", "--gt", str(dollar["gt"]), "--pred", str(dollar["pred"]), "--plot", str(plots),
                           "--json", str(folder)])
    assert code == 2 and out == "" and "is a folder" in err
    assert not plots.exists() and not any(folder.iterdir())


def test_check_json_keys_do_not_depend_on_html(dollar: dict[str, Path]) -> None:
    base = ["check", str(dollar["gt"]), "--from", "coco", "--images-root", str(dollar["root"]), "--json"]
    code, out, err = _run(base)
    assert code == 0, err
    plain = _strict(out)
    html = dollar["dir"] / "check.html"
    code, out, err = _run([*base, "--html", str(html)])
    assert code == 0, err
    with_html = _strict(out)
    assert plain["html"] is None and with_html["html"] == str(html)
    assert plain.keys() == with_html.keys()


def test_html_reports_escape_hostile_names_and_match_the_json(tmp_path: Path) -> None:
    """Class, file and attribute values that are HTML are shown as text in both reports; counts equal --json's."""
    import html as html_lib
    import re

    ds = write_shapes(tmp_path / "shapes", 9, seed=5)
    io.write(ds, tmp_path / "shapes" / "annotations.json", "coco")
    coco = json.loads((tmp_path / "shapes" / "annotations.json").read_text())
    coco["categories"][0]["name"] = EVIL
    coco["categories"][1]["name"] = "<script>alert(2)</script>"
    for im in coco["images"]:  # every file renamed: the reports name a hostile file whichever issue comes first
        new = f"images/{EVIL}_{im['id']}.png"
        (tmp_path / "shapes" / im["file_name"]).rename(tmp_path / "shapes" / new)
        im["file_name"] = new
    anns = [a for a in coco["annotations"] if not a.get("iscrowd")]
    anns[0]["bbox"][2] = 0  # a zero-area box: check reports it, with its file and class
    gt = tmp_path / "shapes" / "evil.json"
    gt.write_text(json.dumps(coco))
    preds = [{"image_id": a["image_id"], "category_id": 3, "bbox": a["bbox"], "score": 0.9} for a in anns[1:]]
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(preds))

    check_html, qa_html = tmp_path / "check.html", tmp_path / "qa.html"
    code, out, err = _run(["check", str(gt), "--from", "coco", "--json", "--html", str(check_html)])
    assert code == 0, err
    check = _strict(out)
    code, out, err = _run(["qa", "--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "issues.json"),
                           "--html", str(qa_html), "--json", "--top", "1000"])
    assert code == 0, err
    qa = _strict(out)
    for page in (check_html.read_text(encoding="utf-8"), qa_html.read_text(encoding="utf-8")):
        assert page.startswith("<!doctype html>") and "<script" not in page.lower()
        assert "<img src=x" not in page and "onerror=alert(1)>" not in page
        tags = _tags(page)
        assert {t for t, _ in tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "b",
                                        "span", "table", "tr", "th", "td", "img"}
        attrs = [(k, v or "") for _, a in tags for k, v in a]
        assert not [k for k, _ in attrs if k.startswith("on")]  # no event attribute on any tag
        assert all(v.startswith("data:") for k, v in attrs if k in ("src", "href"))  # crops inline: opens offline
        assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;" in page  # shown as text
        assert f"images/{EVIL}_" in html_lib.unescape(page)  # the file name too, quotes and ampersand included
    page = check_html.read_text(encoding="utf-8")
    counts = {html_lib.unescape(t): int(c) for t, c in
              re.findall(r"<tr><td>([^<]*)</td><td class=\"\w+\">\w+</td><td class=\"num\">(\d+)</td></tr>", page)}
    assert counts == check["counts"] and f"<b>{check['n_issues']}</b> issues" in page
    page = qa_html.read_text(encoding="utf-8")
    assert {t: int(c) for t, c in re.findall(r"<tr><td>([a-z_]+)</td><td>(\d+)</td></tr>", page)} == qa["counts"]
    assert f"<b>{qa['n_issues']}</b> issues" in page
