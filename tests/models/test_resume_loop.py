"""What resuming rests on, without torch: the shared epoch loop goes on from a run's history (best epoch and
patience count included) exactly as the uninterrupted run did, and when a checkpointed run has nothing left to
train (its epochs, patience or CPU budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maslow.core.schema import LabelSchema
from maslow.models.base import EpochResult, TrainConfig, TrainHistory, run_epochs
from maslow.models.checkpoint import Checkpoint, DataPrint


def test_run_epochs_goes_on_from_a_history_as_the_whole_run_did() -> None:
    values = [0.5, 0.6, 0.4, 0.3, 0.2, 0.9]

    def run(epochs: int, start: TrainHistory | None) -> TrainHistory:
        it = iter(values[0 if start is None else len(start.epochs):])
        return run_epochs(lambda e: float(e), epochs=epochs, evaluate=lambda: {"accuracy": next(it)},
                          metric="accuracy", patience=2, start=start)

    def seen(h: TrainHistory) -> tuple[Any, ...]:  # all but the seconds each epoch took
        return tuple((e.epoch, e.loss, dict(e.metrics)) for e in h.epochs), h.best_epoch, h.stopped_early

    whole = run(6, None)
    assert seen(whole)[1:] == (1, True) and len(whole.epochs) == 4
    for k in (1, 2, 3):
        assert seen(run(6, run(k, None))) == seen(whole), k  # the best so far and the patience count go on
    assert seen(run(6, whole)) == seen(whole)  # patience had run out: nothing more trains


def _ckpt(history: TrainHistory, **loop: Any) -> Checkpoint:
    return Checkpoint(Path("last.pt"), TrainConfig(data="x"), LabelSchema.from_names(["a"]), history,
                      DataPrint("", 1, 1), {"rng": {}, "step": 0, "cpu_used": 0.0, **loop}, {})


def test_when_a_run_is_finished() -> None:
    h = TrainHistory(tuple(EpochResult(i, 1.0, {"accuracy": v}, 0.0) for i, v in enumerate([0.9, 0.5, 0.4])),
                     "accuracy", 0, True, "")
    cfg = TrainConfig(data="x", epochs=10, patience=2)
    assert "stopped early after 3 of 10 epochs" in str(_ckpt(h).finished(cfg))
    assert _ckpt(h).finished(cfg.with_overrides(patience=5)) is None  # more patience: it trains on
    assert _ckpt(h).finished(cfg.with_overrides(epochs=3)) == "trained 3 of 3 epochs"
    spent = _ckpt(h, budget_spent=True, cpu_used=60.0)
    assert "cpu_budget_s" in str(spent.finished(cfg.with_overrides(patience=0, params={"cpu_budget_s": 60})))
    assert spent.finished(cfg.with_overrides(patience=0, params={"cpu_budget_s": 120})) is None
