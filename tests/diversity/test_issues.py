"""Odd images (``image_issues``): each issue type planted among ordinary pictures is found and nothing else is;
the relative rules leave a uniform domain alone; grey files in every mode; unreadable files; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps
from typer.testing import CliRunner

from maslow.cli.main import app
from maslow.diversity import folder_dataset, image_issues
from maslow.diversity.issues import ISSUES, IssueRules
from maslow.errors import MaslowError


def _picture(rng: np.random.Generator, w: int = 160, h: int = 120) -> Image.Image:
    noise = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    im = Image.fromarray(noise).resize((w, h), Image.Resampling.BICUBIC)
    d = ImageDraw.Draw(im)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        d.rectangle([x0, y0, x0 + int(rng.integers(10, 40)), y0 + int(rng.integers(10, 40))],
                    fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def _odd(kind: str, im: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = im.size
    if kind == "dark":
        return ImageEnhance.Brightness(im).enhance(0.12)
    if kind == "light":
        a = np.asarray(im, np.float64)
        return Image.fromarray((255 - (255 - a) * 0.15).astype(np.uint8))
    if kind == "low_information":
        a = np.full((h, w, 3), 128.0) + rng.normal(0, 1.5, (h, w, 3))
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if kind == "blurry":
        return im.filter(ImageFilter.GaussianBlur(4))
    if kind == "odd_aspect_ratio":
        return im.crop((0, h // 2 - 16, w, h // 2 + 16))  # 5:1
    if kind == "odd_size":
        return im.resize((w // 6, h // 6))
    return ImageOps.grayscale(im).convert("RGB")  # grayscale, saved as RGB


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """16 ordinary pictures and one of each issue type (file names say which)."""
    rng = np.random.default_rng(0)
    for i in range(16):
        _picture(rng).save(tmp_path / f"normal_{i:02d}.png")
    for kind in ISSUES:
        _odd(kind, _picture(rng), rng).save(tmp_path / f"{kind}.png")
    return tmp_path


def test_each_planted_issue_is_found_and_nothing_else(planted: Path) -> None:
    r = image_issues(folder_dataset(planted))
    got = {r.paths[i]: r.issues_of(i) for i in range(r.n_images) if r.issues_of(i)}
    assert got == {f"{k}.png": (k,) for k in ISSUES}
    assert int(r.any.sum()) == len(ISSUES) and r.unreadable == ()
    d = r.to_dict()
    assert {t: d["issues"][t]["count"] for t in ISSUES} == dict.fromkeys(ISSUES, 1)
    assert d["issues"]["blurry"]["images"][0]["path"] == "blurry.png"
    assert r.to_pandas()[list(ISSUES)].to_numpy().sum() == len(ISSUES)


def test_values_are_measured_as_documented(planted: Path) -> None:
    r = image_issues(folder_dataset(planted))
    i = r.paths.index("odd_aspect_ratio.png")
    assert r.values["elongation"][i] == pytest.approx(5.0) and r.values["side"][i] == pytest.approx(np.sqrt(160 * 32))
    with Image.open(planted / "normal_00.png") as im:  # 160 x 120: under max_side, measured as stored
        grey = np.asarray(im.convert("RGB"), np.float64) @ np.array([0.299, 0.587, 0.114])
    j = r.paths.index("normal_00.png")
    assert r.values["p01"][j] == pytest.approx(np.percentile(grey, 1) / 255)
    assert r.values["p99"][j] == pytest.approx(np.percentile(grey, 99) / 255)
    assert r.limits["odd_aspect_ratio"] == pytest.approx(2 * 160 / 120)
    assert np.isnan(r.values["sharpness"][r.paths.index("low_information.png")])  # not measured: noise only


def test_relative_rules_leave_a_uniform_domain_alone(tmp_path: Path) -> None:
    """Every image soft, a strip and grey: nothing is odd about any of them (an absolute rule flagged them all)."""
    rng = np.random.default_rng(1)
    for i in range(8):
        im = _odd("odd_aspect_ratio", _picture(rng), rng).filter(ImageFilter.GaussianBlur(4))
        ImageOps.grayscale(im).save(tmp_path / f"{i}.png")
    r = image_issues(folder_dataset(tmp_path))
    assert not r.any.any()
    assert np.isnan(r.limits["grayscale"])  # a grey dataset: grayscale is not judged


def test_grey_files_in_every_mode_are_grayscale(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    for i in range(10):
        _picture(rng).save(tmp_path / f"colour_{i}.png")
    grey = ImageOps.grayscale(_picture(rng))
    grey.save(tmp_path / "mode_L.png")
    grey.convert("LA").save(tmp_path / "mode_LA.png")
    grey.convert("RGB").save(tmp_path / "rgb.jpg", quality=90)  # JPEG chroma of a grey picture stays neutral
    grey.convert("RGB").quantize(64).save(tmp_path / "palette.png")  # a palette of greys
    Image.fromarray((np.asarray(grey, np.uint16) * 257).astype(np.uint16)).save(tmp_path / "mode_I16.png")
    _picture(rng).convert("RGBA").save(tmp_path / "rgba.png")  # colour with alpha: not grey
    r = image_issues(folder_dataset(tmp_path))
    flagged = sorted(r.paths[i] for i in r.rows("grayscale"))
    assert flagged == ["mode_I16.png", "mode_L.png", "mode_LA.png", "palette.png", "rgb.jpg"]


def test_dark_images_are_not_blurry_and_low_information_images_not_grayscale(tmp_path: Path) -> None:
    """Sharpness is relative to the image's own contrast; colour is not judged without light."""
    rng = np.random.default_rng(3)
    for i in range(8):
        _picture(rng).save(tmp_path / f"n{i}.png")
    _odd("dark", _picture(rng), rng).save(tmp_path / "dark.png")
    Image.new("RGB", (160, 120), (10, 10, 10)).save(tmp_path / "black.png")
    r = image_issues(folder_dataset(tmp_path))
    assert r.issues_of(r.paths.index("dark.png")) == ("dark",)
    assert r.issues_of(r.paths.index("black.png")) == ("dark", "low_information")


def test_unreadable_files_are_listed_not_raised(planted: Path) -> None:
    (planted / "broken.png").write_bytes(b"not an image")
    r = image_issues(folder_dataset(planted))
    row = r.paths.index("broken.png")
    assert [i for i, _ in r.unreadable] == [row] and r.issues_of(row) == ()
    assert np.isnan(r.values["p01"][row])
    assert r.to_dict()["unreadable"][0]["image"] == "broken.png"


def test_too_few_images_for_the_blur_rule(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    for i in range(3):
        _odd("blurry", _picture(rng), rng).save(tmp_path / f"{i}.png")
    r = image_issues(folder_dataset(tmp_path))
    assert np.isnan(r.limits["blurry"]) and not r.flags["blurry"].any()


@pytest.mark.parametrize(("field", "value"), [("dark", 1.5), ("blur_share", -0.1), ("size_factor", 0.5),
                                              ("aspect_factor", float("inf")), ("grey_spread", 300)])
def test_bad_rules_are_refused(field: str, value: float) -> None:
    with pytest.raises(MaslowError, match=f"IssueRules.{field} must be"):
        IssueRules(**{field: value})


def test_rows_of_an_unknown_issue(planted: Path) -> None:
    with pytest.raises(MaslowError, match="issue must be one of"):
        image_issues(folder_dataset(planted)).rows("noisy")


def test_cli_issues_json_and_errors(planted: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["diversity", "issues", str(planted), "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["n_images"] == 16 + len(ISSUES) and d["n_flagged"] == len(ISSUES)
    assert [im["path"] for im in d["issues"]["dark"]["images"]] == ["dark.png"]
    res = runner.invoke(app, ["diversity", "issues", str(planted), "--blur-share", "0.5"])
    assert res.exit_code == 0 and "images have an issue" in res.stdout
    res = runner.invoke(app, ["diversity", "issues", str(planted), "--dark", "2"])
    assert res.exit_code == 2 and "diversity issues: --dark must be in [0, 1]" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(app, ["diversity", "issues", str(empty), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["n_images"] == 0


def test_a_noisy_blank_frame_is_low_information(tmp_path: Path) -> None:
    """Sensor noise spreads a blank frame's pixels over 10% of the grey scale; at 64 pixels a side it averages out,
    while a small object (the dot) still spans the range."""
    rng = np.random.default_rng(5)
    for i in range(6):
        _picture(rng).save(tmp_path / f"n{i}.png")
    blank = np.clip(np.full((120, 160, 3), 150.0) + rng.normal(0, 5, (120, 160, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(blank).save(tmp_path / "blank.png")
    dot = Image.fromarray(blank)
    ImageDraw.Draw(dot).ellipse([70, 50, 86, 66], fill=(20, 20, 200))
    dot.save(tmp_path / "dot.png")
    r = image_issues(folder_dataset(tmp_path))
    i, j = r.paths.index("blank.png"), r.paths.index("dot.png")
    assert r.values["p99"][i] - r.values["p01"][i] > 0.05 > r.values["range"][i]
    assert r.issues_of(i) == ("low_information",) and r.issues_of(j) == ()
