"""`maslow check --html`: the annotator agreement the table and --json show is in the report, and images that are not
found are said (one warning line on stderr, a note at the top of the report) instead of a silent "(no image)"."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from maslow import io
from maslow.cli.main import app
from maslow.quality import annotator_agreement, check, write_html
from maslow.quality.report import missing_crop_images, missing_images
from maslow.sample import write_shapes

pytest.importorskip("jinja2")
runner = CliRunner()


def _two_annotators(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """shapes/ with its images and a COCO file of two annotators (b flips 5 classes and misses 3 objects)."""
    ds = write_shapes(tmp / "shapes", 12, seed=0)
    io.write(ds, tmp / "shapes" / "one.json", "coco")
    d = json.loads((tmp / "shapes" / "one.json").read_text())
    rng = np.random.default_rng(1)
    anns = [a for a in d["annotations"] if not a.get("iscrowd")]
    flip = set(rng.choice(len(anns), 5, replace=False).tolist())
    miss = set(range(len(anns) - 3, len(anns)))
    n_cats = len(d["categories"])
    out: list[dict[str, Any]] = []
    for k, a in enumerate(anns):
        for who in "ab":
            if who == "b" and k in miss:
                continue
            r = copy.deepcopy(a)
            r["id"], r["annotator"] = len(out) + 1, who
            r.pop("keypoints", None)  # a flipped class may have other keypoints (or none)
            r.pop("num_keypoints", None)
            if who == "b" and k in flip:
                r["category_id"] = r["category_id"] % n_cats + 1
            out.append(r)
    d["annotations"] = out
    (tmp / "shapes" / "two.json").write_text(json.dumps(d))
    return tmp / "shapes" / "two.json", d


def _invoke(args: list[str]) -> tuple[int, str, str]:
    res = runner.invoke(app, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def test_the_report_shows_the_agreement_of_the_table_and_json(tmp_path: Path) -> None:
    two, _ = _two_annotators(tmp_path)
    html = tmp_path / "r.html"
    code, out, err = _invoke(["check", str(two), "--from", "coco", "--html", str(html), "--json"])
    assert code == 0, out + err
    ag = json.loads(out)["agreement"]
    assert ag is not None and sorted(ag["per_annotator"]) == ["a", "b"]
    text = html.read_text(encoding="utf-8")
    assert "Annotator agreement" in text and "(no image)" not in text and "missing-images" not in text
    section = text[text.index('id="agreement"'):text.index("Issues per type")]
    assert f"Over {ag['n_objects']} objects of {ag['n_shared_images']} shared images" in section
    assert f"Krippendorff's alpha <b>{ag['krippendorff_alpha']:.3f}</b>" in section
    assert f"Fleiss' kappa <b>{ag['fleiss_kappa']:.3f}</b>" in section
    assert ag["krippendorff_alpha"] < 0.99  # the flips show: not a table of ones
    for name, v in ag["per_annotator"].items():
        assert (f'<tr><td>{name}</td><td class="num">{v["precision"]:.3f}</td><td class="num">{v["recall"]:.3f}'
                f"</td></tr>") in section
    assert f'<td>a and b</td><td class="num">{ag["cohen_kappa"]["a|b"]:.3f}</td>' in section
    # the table output prints the same alpha and kappa
    code, out, err = _invoke(["check", str(two), "--from", "coco"])
    assert code == 0 and (f"Krippendorff's alpha {ag['krippendorff_alpha']:.3f}, Fleiss' kappa "
                          f"{ag['fleiss_kappa']:.3f}") in " ".join(out.split())


def test_write_html_without_agreement_has_no_section(tmp_path: Path) -> None:
    two, _ = _two_annotators(tmp_path)
    ds = io.read(two, "coco")
    issues = check(ds)
    plain = write_html(issues, ds, tmp_path / "plain.html").read_text(encoding="utf-8")
    assert "Annotator agreement" not in plain
    ag = annotator_agreement(ds)
    assert ag is not None
    text = write_html(issues, ds, tmp_path / "ag.html", agreement=ag).read_text(encoding="utf-8")
    assert f"Krippendorff's alpha <b>{ag.krippendorff_alpha:.3f}</b>" in text


def test_images_not_found_are_said_once_on_stderr_and_at_the_top(tmp_path: Path) -> None:
    _, d = _two_annotators(tmp_path)
    away = tmp_path / "away"
    away.mkdir()
    (away / "two.json").write_text(json.dumps(d))  # its images stay in shapes/
    html = tmp_path / "r.html"
    code, out, err = _invoke(["check", str(away / "two.json"), "--from", "coco", "--html", str(html)])
    assert code == 0, out + err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, err
    m = re.match(r"warning: (\d+) of (\d+) images of the report's issues not found \(first tried: (\S+)\): the HTML "
                 r"report shows \"\(no image\)\" for their crops; pass --images-root FOLDER", warnings[0])
    assert m is not None, warnings[0]
    # every image of the issues, named where the reader looked: beside the COCO file
    assert m[1] == m[2] and int(m[1]) > 0 and not Path(m[3]).exists()
    assert m[3] in {str(away / im["file_name"]) for im in d["images"]}
    text = html.read_text(encoding="utf-8")
    assert text.count("(no image)") > 0
    note = text[text.index('id="missing-images"'):text.index("</p>", text.index('id="missing-images"'))]
    assert f"{m[1]} of the {m[2]} images" in note and m[3] in note and "--images-root" in note
    assert text.index('id="missing-images"') < text.index("Issues per type")  # at the top
    # --json: the same counts in the document, stderr stays quiet
    code, out, err = _invoke(["check", str(away / "two.json"), "--from", "coco", "--html", str(html), "--json"])
    assert code == 0 and "warning:" not in err
    assert json.loads(out)["missing_images"] == {"n_missing": int(m[1]), "n_checked": int(m[2]), "first": m[3]}
    # with --images-root: crops, no warning, no note
    code, out, err = _invoke(["check", str(away / "two.json"), "--from", "coco", "--html", str(html),
                              "--images-root", str(tmp_path / "shapes")])
    assert code == 0 and "warning:" not in err
    text = html.read_text(encoding="utf-8")
    assert "(no image)" not in text and "missing-images" not in text and "data:image/png;base64" in text


def test_outliers_say_when_their_images_are_not_found(tmp_path: Path) -> None:
    two, d = _two_annotators(tmp_path)
    away = tmp_path / "away"
    away.mkdir()
    (away / "two.json").write_text(json.dumps(d))
    code, out, err = _invoke(["check", str(away / "two.json"), "--from", "coco", "--outliers"])
    assert code == 0, out + err
    n = len({a["image_id"] for a in d["annotations"]})
    assert f"warning: {n} of {n} images not found" in err and "--outliers skipped their objects" in err
    code, out, err = _invoke(["check", str(two), "--from", "coco", "--outliers"])
    assert code == 0 and "warning:" not in err


def test_missing_images_counts_and_names_the_first(tmp_path: Path) -> None:
    ds = write_shapes(tmp_path / "s", 4, seed=0)
    (tmp_path / "s" / str(ds.images.path[2])).unlink()
    (tmp_path / "s" / str(ds.images.path[3])).unlink()
    got = missing_images(ds, [0, 1, 2, 3])
    assert (got.n_missing, got.n_checked, got.first) == (2, 4, str(tmp_path / "s" / str(ds.images.path[2])))
    assert missing_images(ds, [0, 1]).to_dict() == {"n_missing": 0, "n_checked": 2, "first": None}
    assert missing_crop_images(check(ds), ds, crop_size=0) is None  # no crops: nothing to say
