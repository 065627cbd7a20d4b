"""``select`` reports its steps (quality check, embedding, outliers, selection) with their own progress, and the
CLI shows a bar per step (one "embedding 0/?" bar stood still for the gate's decoding and the greedy picks); the
sequence summary counts the picks made; the strategy is named as it ran, with 0 images too."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow.diversity.select import STRATEGIES, folder_dataset, select
from tests.helpers import flat_text, run_cli, run_cli_streams


def _sequences(folder: Path, n_seq: int = 6, per: int = 4) -> Path:
    rng = np.random.default_rng(5)
    for s in range(n_seq):
        (folder / f"v{s}").mkdir(parents=True)
        base = rng.uniform(0, 255, 3)
        for k in range(per):
            arr = np.clip(base + rng.normal(0, 30, (48, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(folder / f"v{s}" / f"f{k}.png")
    return folder


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []
        self.name = ""

    def step(self, name: str) -> None:
        self.name = name
        self.events.append((name, -1, -1))

    def progress(self, done: int, total: int) -> None:
        self.events.append((self.name, done, total))

    def steps(self) -> list[str]:
        return [n for n, d, _ in self.events if d == -1]

    def of(self, name: str) -> list[tuple[int, int]]:
        return [(d, t) for n, d, t in self.events if n == name and d >= 0]


def test_a_dataset_selection_reports_each_step_with_its_progress(tmp_path: Path) -> None:
    ds = folder_dataset(_sequences(tmp_path / "v"))
    rec = _Recorder()
    sel = select(ds, budget=5, embedder="light", use_cache=False, rng=0, progress=rec.progress, step=rec.step)
    assert rec.steps() == ["checking image quality", "embedding", "finding outliers", "selecting"]
    assert rec.of("checking image quality")[-1] == (24, 24)
    assert rec.of("embedding")[-1] == (24, 24)
    assert rec.of("finding outliers") == []
    picks = rec.of("selecting")
    assert picks[0] == (0, 5) and picks[-1] == (5, 5) and len(sel) == 5
    assert [d for d, _ in picks] == sorted(d for d, _ in picks)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_counts_its_picks_to_the_budget(strategy: str) -> None:
    x = np.random.default_rng(0).normal(size=(300, 8))
    rec = _Recorder()
    sel = select(x, budget=40, strategy=strategy,  # type: ignore[arg-type]
                 strata=np.arange(300) % 4, rng=0, progress=rec.progress, step=rec.step)
    assert rec.steps() == ["finding outliers", "selecting"]
    picks = rec.of("selecting")
    assert picks[0] == (0, 40) and picks[-1] == (40, 40) and len(sel) == 40
    assert all(t == 40 for _, t in picks) and len(picks) <= 102  # throttled, about 100 calls at most
    assert [d for d, _ in picks] == sorted(d for d, _ in picks)


def test_without_the_gate_no_quality_or_outlier_step(tmp_path: Path) -> None:
    ds = folder_dataset(_sequences(tmp_path / "v", 2, 3))
    rec = _Recorder()
    select(ds, budget=2, embedder="light", use_cache=False, quality_gate=False, progress=rec.progress, step=rec.step)
    assert rec.steps() == ["embedding", "selecting"]


def test_the_cli_shows_a_bar_per_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import maslow.cli.render as cli_render

    bars: list[tuple[str, list[tuple[int, int]]]] = []

    @contextlib.contextmanager
    def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
        updates: list[tuple[int, int]] = []
        bars.append((description, updates))
        yield lambda done, total: updates.append((done, total))

    monkeypatch.setattr(cli_render, "progress_bar", progress_bar)  # step_bars opens one per step
    folder = _sequences(tmp_path / "v")
    code, out = run_cli(["select", str(folder), "--budget", "4", "--embedder", "light", "--no-cache"])
    assert code == 0, out
    assert [d for d, _ in bars] == ["checking image quality", "embedding", "finding outliers", "selecting"]
    by_name = dict(bars)
    assert by_name["checking image quality"][-1] == (24, 24)
    assert by_name["embedding"][-1] == (24, 24)
    assert by_name["selecting"][-1] == (4, 4)
    bars.clear()  # outliers: the kNN step has its own bar after the embedding's
    code, out = run_cli(["outliers", str(folder), "--embedder", "light", "--no-cache"])
    assert code == 0, out
    assert [d for d, _ in bars] == ["embedding", "finding outliers"] and dict(bars)["embedding"][-1] == (24, 24)


def test_the_sequence_summary_counts_the_picks_made(tmp_path: Path) -> None:
    folder = _sequences(tmp_path / "v")
    code, out = run_cli(["select", str(folder), "--budget", "3", "--embedder", "light", "--no-cache"])
    assert code == 0, out
    assert "The first 3 picks cover 3 of the 6 sequences" in flat_text(out)
    code, out = run_cli(["select", str(folder), "--budget", "1", "--embedder", "light", "--no-cache"])
    assert code == 0, out
    assert "The first pick covers 1 of the 6 sequences" in flat_text(out)
    code, out = run_cli(["select", str(folder), "--budget", "30", "--embedder", "light", "--no-cache"])
    assert "The first 6 picks cover 6 of the 6 sequences" in flat_text(out)


def test_the_strategy_is_named_as_it_ran_with_no_image(tmp_path: Path) -> None:
    assert select(np.zeros((0, 4)), budget=3).strategy == "facility"
    assert select(np.zeros((0, 4)), budget=3, strategy="kcenter").strategy == "kcenter"
    assert select(np.random.default_rng(0).normal(size=(40, 4)), budget=3).strategy == "facility"
    (tmp_path / "empty").mkdir()
    code, out, err = run_cli_streams(["select", str(tmp_path / "empty"), "--json"])
    assert code == 0 and "no images found" in err
    assert json.loads(out)["strategy"] == "facility"
