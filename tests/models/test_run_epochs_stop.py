"""``stopped_early`` says whether patience cut epochs, not only that it ran out; ``maslow runs`` shows unset
settings as "-"."""

from __future__ import annotations

from maslow.cli.train import _short_param
from maslow.models.base import run_epochs


def _history(epochs: int, patience: int, values: list[float]) -> tuple[int, bool]:
    it = iter(values)
    h = run_epochs(lambda e: 1.0, epochs=epochs, evaluate=lambda: {"accuracy": next(it)}, metric="accuracy",
                   patience=patience)
    return len(h.epochs), h.stopped_early


def test_patience_running_out_on_the_last_epoch_is_not_an_early_stop() -> None:
    assert _history(3, 2, [0.9, 0.5, 0.4]) == (3, False)  # the last epoch ran: nothing was cut
    assert _history(5, 2, [0.9, 0.5, 0.4, 0.3, 0.2]) == (3, True)  # two epochs were cut
    assert _history(3, 0, [0.9, 0.5, 0.4]) == (3, False)


def test_unset_settings_show_as_a_dash() -> None:
    assert _short_param("None") == "-" and _short_param("0.000300") == "0.0003" and _short_param("12") == "12"
