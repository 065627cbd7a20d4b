"""The commands README.md and docs/ show, run as written and in the order written, in a temporary folder.

``tests/test_docs.py`` runs every ```python block of docs/ on its own; this module runs the shell blocks (and README's
Python example, which reads the files its commands write), checks that every ``--option`` a page gives a ``maslow``
command is one of that command's options, and that every YAML block (training configs, a tuning config, a schema)
is read without error. Commands run in process (``CliRunner``); ``python scripts/...`` runs the repository's script
and ``printf FORMAT > FILE`` writes FILE. What a test cannot run as written is left out by name below: ``pip``, a
server on a host the docs name as an example, and the training commands, which run in the ``slow`` tests.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import shlex
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: The pages whose commands are checked (docs/metrics.md and docs/formats/ have their own owners and tests).
PAGES = [ROOT / "README.md", *(DOCS / f"{name}.md" for name in
                               ("index", "diversity", "embed", "ontology", "quality", "consensus", "models", "compare"))]
FENCE = re.compile(r"^(`{3,})(\w*)\s*$")
SHELL = {"", "bash", "sh", "text", "console"}
COMMAND = re.compile(r"(maslow|python|printf|pip|mlflow)\b")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
#: Options whose value is a file or folder the command writes.
WRITES = ("-o", "--out", "--html", "--plot")


@dataclass(frozen=True)
class Fence:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str


def fences(path: Path) -> list[Fence]:
    """The fenced blocks of a Markdown page, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip() != m.group(1):
            j += 1
        out.append(Fence(path.name, i + 1, m.group(2), "\n".join(lines[i + 1:j])))
        i = j + 1
    return out


def fence_with(path: Path, text: str, lang: str | None = None) -> Fence:
    """The first block of ``path`` holding ``text`` (of language ``lang`` when given)."""
    found = [f for f in fences(path) if text in f.text and (lang is None or f.lang == lang)]
    assert found, f"{path.name}: no block holds {text!r}: the page changed, update this test"
    return found[0]


def command_lines(fence: Fence) -> list[str]:
    """The commands of a shell block: a transcript's lines after ``$ ``, else the lines starting with a command;
    a trailing backslash or an indented line (a synopsis) continues the command above."""
    raw = fence.text.splitlines()
    transcript = any(r.startswith("$ ") for r in raw)
    out: list[str] = []
    for r in raw:
        if out and (out[-1].endswith("\\") or (r[:1].isspace() and r.strip() and not transcript)):
            out[-1] = out[-1].removesuffix("\\").rstrip() + " " + r.strip()
            continue
        line = r[2:] if transcript and r.startswith("$ ") else ("" if transcript else r)
        if COMMAND.match(line):
            out.append(line.strip())
    return out


def words_of(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:  # a synopsis or a sentence with a lone quote: the words as written
        return line.split()


def _slow(words: list[str]) -> bool:
    """Training (the ``slow`` tests run these): train, crossval, tune, qa with --model, an ONNX export."""
    return words[:1] == ["maslow"] and (words[1] in ("train", "crossval", "tune")
                                        or "--onnx" in words or (words[1] == "qa" and "--model" in words))


def run(line: str, cwd: Path) -> tuple[int, str]:
    """Run one documented command in ``cwd`` (already the working folder): (exit code, output)."""
    from maslow.cli.main import app

    words = words_of(line)
    if words[0] == "maslow":
        res = CliRunner().invoke(app, words[1:])
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        return res.exit_code, res.output
    if words[0] == "python":  # a script of the repository: the docs run it from the repository root
        p = subprocess.run([sys.executable, str(ROOT / words[1]), *words[2:]], cwd=cwd, capture_output=True,
                           text=True, check=False)
        return p.returncode, p.stdout + p.stderr
    if words[0] == "printf" and len(words) == 4 and words[2] == ">" and "%" not in words[1]:
        (cwd / words[3]).write_text(words[1].replace("\\n", "\n"), encoding="utf-8")
        return 0, ""
    raise AssertionError(f"no way to run {line!r} in a test")


def run_ok(line: str, cwd: Path) -> str:
    """Run a documented command: it must exit 0 and write the files its options name."""
    code, out = run(line, cwd)
    assert code == 0, f"{line}\nexit code {code}:\n{out}"
    words = words_of(line)
    for flag, value in itertools.pairwise(words):
        if flag in WRITES:
            assert (cwd / value).exists(), f"{line}: wrote no {value}\n{out}"
    return out


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder of a page's commands; caches and tracking stay inside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@pytest.fixture
def review_visit(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``maslow review ISSUES.json`` serves until Ctrl+C: its server loop (``uvicorn.run``, the process edge) is one
    reviewer's visit here, accepting the top finding through the app's HTTP API; no browser is opened."""
    for module in ("fastapi", "uvicorn", "httpx", "sqlalchemy", "alembic"):
        pytest.importorskip(module)
    import webbrowser

    import uvicorn

    with warnings.catch_warnings():  # starlette's TestClient warns on import that it prefers httpx2
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    visits: list[dict[str, Any]] = []

    def visit(app: Any, host: str = "127.0.0.1", port: int = 8765, **_: Any) -> None:
        with TestClient(app, base_url=f"http://{host}:{port}") as client:
            r = client.post("/api/findings/1/decision", json={"status": "accepted"})
            assert r.status_code == 200, r.text
            visits.append(r.json())

    monkeypatch.setattr(uvicorn, "run", visit)
    monkeypatch.setattr(webbrowser, "open", lambda *a, **k: True)
    return visits


def _exec_python(fence: Fence) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # examples may show warnings on purpose (as tests/test_docs.py runs them)
        exec(compile(fence.text, f"<{fence.page}:{fence.line}>", "exec"), {"__name__": "__doc_example__"})


def _changed(fixed: Path, truth: Path) -> bool:
    """Whether the dataset ``review apply`` wrote differs from the truth (an accepted finding changed it)."""
    from maslow import io

    a, b = io.read_coco(fixed).annotations, io.read_coco(truth).annotations
    if len(a) != len(b):
        return True
    assert a.box is not None and b.box is not None
    return not (np.array_equal(a.label, b.label) and np.allclose(a.box, b.box))


# --- every option a page gives a command exists ----------------------------------------------------------------


def _command_mentions(path: Path) -> Iterator[tuple[int, str]]:
    """(line, command) for every ``maslow ...`` of the shell blocks and of the inline code spans of a page."""
    text = path.read_text(encoding="utf-8")
    for f in fences(path):
        if f.lang in SHELL:
            for line in command_lines(f):
                yield f.line, line
    prose = re.sub(r"^(`{3,})\w*\s*$.*?^\1\s*$", "", text, flags=re.S | re.M)  # the blocks' text left out
    for m in re.finditer(r"`(maslow [^`]+)`", prose):
        yield text.count("\n", 0, text.find(m.group(0))) + 1, m.group(1).replace("\\|", "|")


def _options(cmd: Any) -> set[str]:
    return {"--help"} | {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


@functools.cache
def _root_command() -> Any:
    import typer.main

    from maslow.cli.main import app

    return typer.main.get_command(app)


def _resolve(words: list[str]) -> tuple[Any, str | None]:
    """The command ``maslow WORDS`` runs, or (None, why not)."""
    cmd: Any = _root_command()
    for w in words[1:]:
        if not hasattr(cmd, "commands") or w.startswith("-"):
            break
        sub = cmd.commands.get(w)
        if sub is None and "serve" in cmd.commands:  # `maslow review ISSUES.json` is `maslow review serve ...`
            sub = cmd.commands["serve"]
        if sub is None:
            return None, (None if "|" in w and cmd.name != "maslow" else f"no command {w!r} in {cmd.name!r}")
        cmd = sub
    if hasattr(cmd, "commands"):
        return None, None  # a group named alone (`maslow schema`)
    return cmd, None


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_documented_option_exists(page: Path) -> None:
    wrong = []
    for line_no, line in _command_mentions(page):
        words = words_of(line)
        if words[:1] != ["maslow"] or len(words) < 2:
            continue
        cmd, why = _resolve(words)
        if why is not None:
            wrong.append(f"{page.name}:{line_no}: {why}: {line}")
        if cmd is None:
            continue
        known = _options(cmd)
        for opt in (o for w in words[2:] for o in OPTION.findall(w)):
            if opt not in known:
                wrong.append(f"{page.name}:{line_no}: maslow {cmd.name}: no option {opt}: {line}")
    assert not wrong, "\n".join(wrong)


def test_the_option_check_sees_a_wrong_option(tmp_path: Path) -> None:
    """The check above reads blocks, synopses and inline code: a misspelt option in each is found."""
    page = tmp_path / "p.md"
    page.write_text("Run `maslow check x --from coco --htm r.html`.\n\n```\nmaslow select DATASET --budget N\n"
                    "              [--no-gates]\n```\n\n```bash\nmaslow qa --gt a.json --pred b.json \\\n"
                    "  --out i.json --rule\nmaslow nope x\n```\n", encoding="utf-8")
    found = []
    for _, line in _command_mentions(page):
        cmd, why = _resolve(words_of(line))
        found += [why] if why else sorted(o for o in OPTION.findall(line) if cmd and o not in _options(cmd))
    assert found == ["--no-gates", "--rule", "no command 'nope' in 'maslow'", "--htm"]


# --- YAML blocks ---------------------------------------------------------------------------------------------------


def _yaml_blocks() -> list[Any]:
    return [pytest.param(f, id=f"{f.page}:{f.line}") for p in PAGES for f in fences(p) if f.lang == "yaml"]


@pytest.mark.parametrize("fence", _yaml_blocks())
def test_yaml_blocks_are_read(fence: Fence, tmp_path: Path) -> None:
    """A schema (``classes:`` with names) by ``load_schema``, a config with ``search:`` by ``read_tune_config``, any
    other by ``read_config``: each is refused (FormatError naming the field) when a field is wrong."""
    path = tmp_path / "block.yaml"
    path.write_text(fence.text + "\n", encoding="utf-8")
    if re.search(r"^classes:\s*$", fence.text, re.M):
        from maslow.ontology import load_schema

        assert load_schema(path).names
    elif re.search(r"^search:\s*$", fence.text, re.M):
        from maslow.models.tune import read_tune_config

        cfg, space = read_tune_config(path)
        assert cfg.data and space
    else:
        from maslow.models import read_config

        assert read_config(path).model


# --- the commands, run ---------------------------------------------------------------------------------------------


def test_readme_use_it(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """README's "Use it" block up to the training commands, then its Python example on the files they wrote."""
    from maslow.models import read_config

    ran = []
    for line in command_lines(fence_with(ROOT / "README.md", "maslow sample shapes/", "bash")):
        words = words_of(line)
        if words[0] == "pip":
            continue
        if _slow(words):
            break  # training from here on: test_readme_training (slow)
        run_ok(line, folder)
        ran.append(words[1] if words[0] == "maslow" else words[0])
    assert {"sample", "import", "eval", "check", "printf"} <= set(ran)
    assert read_config(folder / "model.yaml").model == "fasterrcnn"  # the config the next lines train
    capsys.readouterr()
    _exec_python(fence_with(ROOT / "README.md", "io.read_coco(", "python"))
    assert capsys.readouterr().out  # it prints what it shows


@pytest.mark.slow
def test_readme_training(folder: Path, review_visit: list[dict[str, Any]]) -> None:
    """The whole "Use it" block: train, out-of-fold predictions, qa, review (one accepted finding), apply, runs,
    ONNX; ``maslow tune --trials 20`` (twenty trainings of this config) is left out."""
    for module in ("torch", "torchvision", "onnx", "onnxruntime", "mlflow"):
        pytest.importorskip(module)
    qa_out = ""
    for line in command_lines(fence_with(ROOT / "README.md", "maslow sample shapes/", "bash")):
        words = words_of(line)
        if words[0] == "pip" or words[1:2] == ["tune"]:
            continue
        if words[1:2] == ["review"] and not json.loads((folder / "ISSUES.json").read_text()):
            # the 2-epoch smoke model may see none of the objects: qa then scores nothing and says why
            assert "explain none of the annotations" in " ".join(qa_out.split()), qa_out
            continue
        out = run_ok(line, folder)
        qa_out = out if words[1:2] == ["qa"] else qa_out
    if json.loads((folder / "ISSUES.json").read_text()):
        assert len(review_visit) == 1
        assert _changed(folder / "fixed.json", folder / "shapes" / "annotations.json")
    assert (folder / "runs" / "model" / "model.onnx").is_file()


def test_diversity_commands(folder: Path) -> None:
    for line in command_lines(fence_with(DOCS / "diversity.md", "maslow diversity balance")):
        run_ok(line, folder)
    assert sorted(p.name for p in (folder / "plots").iterdir()) == [
        "coverage_images.png", "coverage_metadata.png", "coverage_objects.png"]


def test_consensus_commands_and_review(folder: Path, review_visit: list[dict[str, Any]]) -> None:
    """The command-line block (but the training line), then the review block in a workspace holding `shapes`, as its
    last line asks: one finding accepted in the review applies to the file and commits a version."""
    from maslow.models import read_config

    for line in command_lines(fence_with(DOCS / "consensus.md", "maslow sample shapes/", "bash")):
        if not _slow(words_of(line)):
            run_ok(line, folder)
    assert read_config(folder / "train.yaml").model == "fasterrcnn"
    run_ok("maslow init", folder)
    run_ok("maslow import shapes/annotations.json --from coco --name shapes", folder)
    lines = command_lines(fence_with(DOCS / "consensus.md", "maslow review apply", "bash"))
    assert any(w[:3] == ["maslow", "review", "issues.json"] for w in map(words_of, lines))
    for line in lines:
        if "postgresql://" in line:
            continue  # a database server the page names as an example
        run_ok(line, folder)
    assert len(review_visit) == 1
    assert _changed(folder / "fixed.json", folder / "shapes" / "annotations.json")
    code, out = run("maslow log shapes --json", folder)
    assert code == 0 and len(json.loads(out)) == 2  # the import and the reviewed version


@pytest.mark.slow
def test_consensus_model_line(folder: Path) -> None:
    """`maslow qa --model train.yaml`: the smoke-test config must leave the 2-epoch models predicting something."""
    pytest.importorskip("torchvision")
    for line in command_lines(fence_with(DOCS / "consensus.md", "maslow sample shapes/", "bash")):
        words = words_of(line)
        if words[:2] == ["maslow", "sample"] or words[0] == "printf" or _slow(words):
            run_ok(line, folder)
    assert (folder / "issues.json").is_file()


def test_models_predict_line(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`maslow predict model images/` on the model and images of the page's first example."""
    pytest.importorskip("sklearn")
    from maslow import io

    _exec_python(next(f for f in fences(DOCS / "models.md") if f.lang == "python"))  # the page's first example
    line = next(c for c in command_lines(fence_with(DOCS / "models.md", "maslow predict model images/"))
                if c.startswith("maslow predict model images/"))
    run_ok(line, folder)
    capsys.readouterr()
    pred = io.read_parquet(folder / "images-pred.parquet")
    assert pred.n_images == 36 and pred.n_annotations == 36  # one class per image of the 36


def _shown(expected: str, out: str) -> bool:
    """Whether an output line the page shows is in ``out`` (whitespace and table rules aside)."""
    flat = " ".join(re.sub(r"[│┃]", " ", out).split())
    return " ".join(expected.split()) in flat


def _no_clock(text: str) -> str:
    """A progress line without its bar, clock and loss (its fourth decimal may differ on another CPU)."""
    return re.sub(r"━+|\b\d+:\d\d:\d\d\b|(?<=loss )\d+\.\d+", " ", text)


#: The lines of a training transcript whose numbers come out of the training itself (epochs trained, early stop, best
#: epoch, accuracy): deterministic on one machine, but another CPU's float32 kernels can end this tiny run elsewhere.
_TRAINED = re.compile(r"^(training\b|Trained |\s*[0-9a-f]{8}\s)")


def _shape(text: str) -> str:
    """A trained line with its outcome left out: numbers (but those of the data) and "(stopped early)"."""
    text = _no_clock(text).replace(" (stopped early)", "")
    return re.sub(r"(?<![\w.])\d+(\.\d+)?(?![\w.])(?! images| val| test)", "#", text)


def _trained(out: str) -> dict[str, Any]:
    """What a ``maslow train`` output says about its run: epochs trained, resumed from, best epoch, final accuracy."""
    flat = " ".join(re.sub(r"[│┃]", " ", out).split())
    m = re.search(r"for (\d+) epochs?(?:, resumed from epoch (\d+) of (\d+))?( \(stopped early\))?; best epoch (\d+)",
                  flat)
    acc = re.search(r"\baccuracy (\d\.\d{3})\b", flat)
    assert m is not None and acc is not None, out
    return {"epochs": int(m[1]), "resumed_from": None if m[2] is None else int(m[2]), "of": m[3],
            "stopped": m[4] is not None, "best": int(m[5]), "accuracy": acc[1]}


@pytest.mark.slow
def test_models_training_transcripts(folder: Path) -> None:
    """The page's `$ maslow train`, resume, `$ maslow runs` and `$ maslow export --onnx` transcripts, in page order, on
    the data its Python example writes: the lines they show are what the commands print. The numbers the training
    gives are the page's machine's: they must be these where the first run gives the page's numbers (one CPU's
    kernels: the runs are deterministic), and elsewhere hold together (the resume goes on from the epochs the first
    run trained, to 10, and the runs table shows both runs' final accuracy); the rest of every line must match."""
    for module in ("torch", "torchvision", "onnx", "onnxruntime", "mlflow"):
        pytest.importorskip(module)
    _exec_python(fence_with(DOCS / "models.md", "from maslow.models.train import train", "python"))
    (folder / "train.yaml").write_text(fence_with(DOCS / "models.md", "# train.yaml", "yaml").text + "\n",
                                       encoding="utf-8")
    markers = ("$ maslow train train.yaml --set epochs=5", "--resume runs/try1", "$ maslow runs --experiment",
               "$ maslow export runs/try1 --onnx")
    outs, same_cpu = [], True
    for marker in markers:
        fence = fence_with(DOCS / "models.md", marker, "text")
        (line,) = command_lines(fence)
        out = run_ok(line, folder)
        outs.append(out)
        shown = [s for s in fence.text.splitlines()[1:] if s.strip() and "..." not in s]
        if marker == markers[0]:  # the page's numbers are this machine's when its first run gives them
            same_cpu = all(_shown(_no_clock(s), _no_clock(out)) for s in shown if _TRAINED.match(s))
        for s in shown:
            if _TRAINED.match(s) and not same_cpu:
                s, text = _shape(s), _shape(out)
            else:
                text = _no_clock(out)
            if "max |diff|" in s:  # the float32 difference and its bound vary by machine
                assert re.search(r"onnxruntime vs torch: max \|diff\| \S+ \(bound \S+\) on batch sizes 1 and 3", out), out
            elif re.match(r"\s*[0-9a-f]{8}\s", s):  # a run: its id is new each time
                assert _shown(s.split(None, 1)[1], text), (s, out)
            else:
                assert _shown(_no_clock(s), text), (s, out)
    first, resumed = _trained(outs[0]), _trained(outs[1])
    assert first["resumed_from"] is None and first["epochs"] <= 5
    assert (resumed["resumed_from"], resumed["of"], resumed["epochs"]) == (first["epochs"], "10", 10), outs[1]
    assert not resumed["stopped"]  # patience 0: every epoch trains
    rows = re.findall(r"torchvision-classifier-try1 +imagenet +(\d+) +(\d+) +(\d\.\d{3})",
                      " ".join(re.sub(r"[│┃]", " ", outs[2]).split()))
    assert rows == [("10", "0", resumed["accuracy"]), ("5", "3", first["accuracy"])], outs[2]  # newest first
