"""Reading a VOC folder reports progress over its xml files, with the total known from the first call."""

from __future__ import annotations

from pathlib import Path

from maslow.io import voc
from maslow.sample import shapes


def test_parse_reports_the_files_read(tmp_path: Path) -> None:
    ds = shapes(250, seed=0)
    voc.write(ds, tmp_path / "voc", images=False)
    calls: list[tuple[int, int]] = []
    back, _ = voc.parse(tmp_path / "voc", images_root=tmp_path, progress=lambda d, t: calls.append((d, t)))
    assert back.n_images == 250
    assert calls[0] == (0, 250) and calls[-1] == (250, 250)
    assert {t for _, t in calls} == {250} and [d for d, _ in calls] == sorted({d for d, _ in calls})  # monotone
    assert 3 < len(calls) <= 102  # throttled (registry.Ticks: about 100 calls however many files)
    assert voc.parse(tmp_path / "voc", images_root=tmp_path)[0].n_images == 250  # without a callback, as before


def test_yolo_parse_reports_the_files_read(tmp_path: Path) -> None:
    from maslow.io import yolo

    ds = shapes(120, seed=1)
    yolo.write(ds, tmp_path / "y", images=False)
    calls: list[tuple[int, int]] = []
    back, _ = yolo.parse(tmp_path / "y", images_root=tmp_path, image_size=(64, 64),
                         progress=lambda d, t: calls.append((d, t)))
    assert back.n_images == 120
    assert calls[0] == (0, 120) and calls[-1] == (120, 120)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})


def test_import_dataset_passes_progress_to_a_reader_that_counts(tmp_path: Path) -> None:
    """``maslow convert``/``import`` showed ``0/?`` while a big VOC folder was read: the reader's count reaches the
    bar now (then the image checks count again)."""
    from maslow import io

    ds = shapes(60, seed=2)
    voc.write(ds, tmp_path / "voc", images=False)
    calls: list[tuple[int, int]] = []
    io.import_dataset(tmp_path / "voc", "voc", images_root=tmp_path, check_files=False,
                      progress=lambda d, t: calls.append((d, t)))
    assert (0, 60) in calls and (60, 60) in calls
