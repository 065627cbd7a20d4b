"""Checkpoints: the state a torch adapter writes after every epoch, so that an interrupted run can be resumed.

Glossary:
    checkpoint: ``last.pt``, written atomically (temp file, then rename) after each epoch by the torch adapters
        (``torchvision-classifier``, the detectors and segmenters) when ``fit`` is given ``checkpoint=``.
        ``maslow.models.train.train`` gives ``<out>.partial/last.pt``, a work folder beside the model folder
        (``partial_folder``), so a run that is interrupted or fails leaves a model already in ``<out>`` untouched;
        ``save`` keeps the checkpoint in the model folder beside ``weights.pt`` (the best epoch's weights), so a
        finished run can train on too, and the work folder is removed once the model folder is in place. A torch
        file of tensors and one JSON text (``torch.load(..., weights_only=True)`` reads it: no pickled code)::

            meta       JSON: format, adapter, config, schema, history (every epoch so far, best epoch, stopped),
                       data (fingerprint, n_train, n_val), loop (numpy generator state, optimiser steps taken,
                       CPU seconds used, whether params.cpu_budget_s ran out)
            net        the last epoch's weights (state dict)
            best       the best epoch's weights when it is not the last (else absent)
            optimizer  the optimiser's state dict (momentum / Adam moments, step counts)
            torch_rng  torch's CPU generator state (dropout, drop-connect, detector sampling); cuda_rng per device

    resume: ``fit(..., resume=read_checkpoint(folder))`` (``train(cfg, resume=folder)``, ``maslow train CONFIG
        --resume RUN_DIR``; ``checkpoint_file`` says which file: the interrupted run's in ``RUN_DIR.partial`` when
        there is one, else the finished run's in ``RUN_DIR``) restores all of that and trains the epochs left: on the
        CPU a run of N epochs stopped
        after k and resumed ends with the same weights, history and optimiser state as one that ran through (the
        data order and flips come from the seeded generator, restored with the rest).
    what may differ on resume: ``epochs`` (more epochs train on; the detectors' and segmenters' cosine schedule then
        stretches to the new total from the step reached, so the result is no longer the N-epoch run's),
        ``patience``, ``params.cpu_budget_s``, where the data and outputs live (``data``, ``format``,
        ``images_root``, ``out``), ``device``, ``threads``, ``tracking``, ``experiment``. Every other field, the
        classes, the training and validation images and their labels (``data_print``) and what the network
        starts from must be the checkpoint's: resuming continues the same run.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_path
from maslow.core.dataset import Dataset
from maslow.core.schema import LabelSchema
from maslow.errors import FormatError, MaslowError, SchemaError
from maslow.models.base import TrainConfig, TrainHistory

CHECKPOINT_FILE = "last.pt"
#: the suffix of a run's work folder, beside its model folder: ``runs/m.partial`` holds ``last.pt`` while it trains
PARTIAL_SUFFIX = ".partial"
CHECKPOINT_FORMAT = "maslow-checkpoint/1"
#: config fields a resumed run may change (see the module docstring); every other field must be the checkpoint's
RESUMABLE_FIELDS = ("epochs", "patience", "data", "format", "images_root", "device", "threads", "out", "tracking",
                    "experiment")
RESUMABLE_PARAMS = ("cpu_budget_s",)
_FIX = "resuming continues the same run; train a new one (without --resume) to change it"


@dataclass(frozen=True)
class DataPrint:
    """What identifies the data a run trains on: a SHA-256 over the training and validation images (paths and
    sizes) and their annotations (image, label, crowd, boxes, masks), and the image counts for messages."""

    fingerprint: str
    n_train: int
    n_val: int

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "n_train": self.n_train, "n_val": self.n_val}


def data_print(train: Dataset, val: Dataset | None) -> DataPrint:
    """The ``DataPrint`` of a run's training and validation images."""
    h = hashlib.sha256()
    for part in (train, val):
        h.update(b"|part|")
        if part is None:
            continue
        im, a = part.images, part.annotations
        h.update("\n".join(map(str, im.path.tolist())).encode())
        for col in (im.width, im.height, a.image, a.label, a.iscrowd, a.box):
            h.update(b"|" if col is None else np.ascontiguousarray(col).tobytes())
        if a.mask is not None:
            h.update(repr([None if m is None else (m.get("size"), m.get("counts")) for m in a.mask.tolist()]).encode())
    return DataPrint(h.hexdigest(), train.n_images, 0 if val is None else val.n_images)


@dataclass(frozen=True)
class Checkpoint:
    """A run's ``last.pt``, read back (``read_checkpoint``).

    Attributes:
        path: the file.
        config: the config the run trained with; ``schema`` its classes; ``history`` every epoch so far.
        data: the ``DataPrint`` of its training and validation images.
        loop: the loop's counters: ``rng`` (numpy generator state), ``step`` (optimiser steps taken), ``cpu_used``
            (CPU seconds counted against ``params.cpu_budget_s``), ``budget_spent``.
        state: the tensors: ``net``, ``best`` (or None), ``optimizer``, ``torch_rng``, ``cuda_rng``.
    """

    path: Path
    config: TrainConfig
    schema: LabelSchema
    history: TrainHistory
    data: DataPrint
    loop: Mapping[str, Any]
    state: Mapping[str, Any]

    @property
    def epochs_done(self) -> int:
        return len(self.history.epochs)

    def finished(self, config: TrainConfig) -> str | None:
        """Why the run has nothing left to train under ``config`` (its epochs, patience, CPU budget), or None."""
        done, h = self.epochs_done, self.history
        if done >= config.epochs:
            return f"trained {done} of {config.epochs} epochs"
        budget = config.params.get("cpu_budget_s")
        if self.loop.get("budget_spent") and budget and float(budget) <= float(self.loop.get("cpu_used", 0.0)):
            return f"params.cpu_budget_s ({float(budget):g} s of CPU) ran out after {done} of {config.epochs} epochs"
        if h.metric and config.patience and h.best_epoch >= 0 and done - 1 - h.best_epoch >= config.patience:
            return (f"stopped early after {done} of {config.epochs} epochs: {h.metric} was no better than epoch "
                    f"{h.best_epoch + 1}'s for {done - 1 - h.best_epoch} epochs (patience {config.patience})")
        return None


def partial_folder(out: str | Path) -> Path:
    """The work folder of a run whose model folder is ``out``: ``<out>.partial`` beside it, where ``train`` writes
    the checkpoint while the run trains (``runs/m`` -> ``runs/m.partial``)."""
    out = Path(out)
    if out.name in ("", "..", "."):  # ".", "..": the folder they stand for (a sibling needs a name)
        out = out.resolve()
    return out.with_name(out.name + PARTIAL_SUFFIX)


def run_folder(run: str | Path) -> Path:
    """The run (model) folder ``run`` names: itself, the folder of a checkpoint file (``runs/m/last.pt``), or the
    model folder of a work folder (``runs/m.partial``, ``runs/m.partial/last.pt``: ``runs/m``)."""
    run = Path(run)
    folder = run.parent if run.suffix == ".pt" else run
    if folder.name.endswith(PARTIAL_SUFFIX) and folder.name != PARTIAL_SUFFIX:
        folder = folder.with_name(folder.name.removesuffix(PARTIAL_SUFFIX))
    return folder


def checkpoint_file(run: str | Path) -> Path:
    """The checkpoint ``run`` names: a ``.pt`` file itself; for a run folder, the one in its work folder
    (``<run>.partial/last.pt``: a run interrupted, or still training) when there is one, else ``<run>/last.pt``
    (the finished run's, kept with its model)."""
    run = Path(run)
    if run.suffix == ".pt":
        return run
    if run.name.endswith(PARTIAL_SUFFIX):
        return run / CHECKPOINT_FILE
    work = partial_folder(run) / CHECKPOINT_FILE
    return work if work.is_file() else run / CHECKPOINT_FILE


def read_checkpoint(run: str | Path) -> Checkpoint:
    """The checkpoint of a run: ``run`` is the run (model) folder (``checkpoint_file`` says which ``last.pt``: an
    interrupted run's in ``<run>.partial`` first), or the file itself.

    Raises:
        FormatError: naming the file: there is none (``train`` writes it after each epoch of a torch adapter), it
            is damaged, or a field is missing or malformed (naming the field).
    """
    from maslow.models._torchdata import require_torch

    torch, _ = require_torch()
    path = checkpoint_file(run)
    must = "must be the checkpoint that training wrote"
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        has_model = (path.parent / "model.json").is_file()
        why = (" (the folder holds a model saved without one: embed-logreg fits in one pass, and tuning trials and "
               "models trained before checkpoints were written have none)") if has_model else ""
        raise FormatError(f"checkpoint not found{why}; train writes it after each epoch of a torch adapter into "
                          f"the work folder beside the run folder ({partial_folder(run_folder(path)).name}/) and keeps "
                          "it in the run folder when the run ends", path=path) from None
    except IsADirectoryError:
        raise FormatError(f"{must}, got a folder", path=path) from None
    except (OSError, RuntimeError, EOFError, ValueError, LookupError, AttributeError, TypeError,
            pickle.UnpicklingError, zipfile.BadZipFile) as e:  # what a damaged or foreign file makes torch.load raise
        first = (str(e).strip().splitlines() or [""])[0].split(". ")[0][:200]  # torch's first sentence
        raise FormatError(f"{must}, got an unreadable file ({type(e).__name__}: {first})", path=path) from None
    if not isinstance(doc, Mapping) or not isinstance(doc.get("meta"), str):
        raise FormatError(f"{must}, got no JSON text in it", path=path, field="meta")
    try:
        meta = json.loads(doc["meta"])
    except ValueError as e:
        raise FormatError(f"{must}: not JSON ({e})", path=path, field="meta") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise FormatError(f"must be {CHECKPOINT_FORMAT!r}, got {got!r}", path=path, field="meta.format")
    try:
        field = "meta.config"
        config = TrainConfig.from_dict(meta["config"], where="config")
        field = "meta.schema"
        schema = LabelSchema.from_dict(meta["schema"])
        field = "meta.history"
        history = TrainHistory.from_dict(meta["history"])
        field = "meta.data"
        data = DataPrint(str(meta["data"]["fingerprint"]), int(meta["data"]["n_train"]), int(meta["data"]["n_val"]))
        field = "meta.loop"
        loop = dict(meta["loop"])
        lacking = [k for k in ("rng", "step", "cpu_used") if k not in loop]
        if lacking:
            raise KeyError(lacking[0])
    except (KeyError, TypeError, ValueError, AttributeError, MaslowError) as e:
        raise FormatError(f"{must}: missing or malformed ({type(e).__name__}: {e})", path=path, field=field) from None
    for key in ("net", "optimizer"):
        if not isinstance(doc.get(key), Mapping):
            raise FormatError(f"{must}: a state dict, got {type(doc.get(key)).__name__}", path=path, field=key)
    if not isinstance(doc.get("torch_rng"), torch.Tensor):
        raise FormatError(f"{must}: torch's generator state, got {type(doc.get('torch_rng')).__name__}", path=path,
                          field="torch_rng")
    if history.epochs and not 0 <= history.best_epoch < len(history.epochs) and history.metric:
        raise FormatError(f"must be an epoch of the history (0..{len(history.epochs) - 1}), got {history.best_epoch}",
                          path=path, field="meta.history.best_epoch")
    state = {k: doc.get(k) for k in ("net", "best", "optimizer", "torch_rng", "cuda_rng")}
    return Checkpoint(path, config, schema, history, data, loop, state)


def check_resume(ckpt: Checkpoint, config: TrainConfig, *, schema: LabelSchema, data: DataPrint) -> None:
    """Check that ``config`` (as the adapter normalised it), ``schema`` and the data continue ``ckpt``'s run.

    Raises:
        MaslowError: naming the checkpoint file and the config field that differs (``model`` first), or the data;
            SchemaError (a MaslowError): other classes.
    """
    where = ckpt.path
    old_cfg = ckpt.config
    if config.model != old_cfg.model:
        raise MaslowError(f"{where}: config field 'model' must be {old_cfg.model!r} to resume this run (the "
                          f"checkpoint's), got {config.model!r}; {_FIX}")
    if schema.names != ckpt.schema.names or schema.task != ckpt.schema.task:
        raise SchemaError(f"{where}: the classes must be {list(ckpt.schema.names)} ({ckpt.schema.task.value}) to "
                          f"resume this run (the checkpoint's), got {list(schema.names)} ({schema.task.value}); "
                          f"{_FIX}")
    old, new = old_cfg.to_dict(), config.to_dict()
    for f in dataclasses.fields(TrainConfig):
        name = f.name
        if name in RESUMABLE_FIELDS or name == "params":
            continue
        if old[name] != new[name]:
            raise MaslowError(f"{where}: config field {name!r} must be {old[name]!r} to resume this run (the "
                              f"checkpoint's), got {new[name]!r}; {_FIX}")
    unset = object()
    for key in sorted(set(old["params"]) | set(new["params"])):
        if key in RESUMABLE_PARAMS:
            continue
        a, b = old["params"].get(key, unset), new["params"].get(key, unset)
        if a != b:
            raise MaslowError(f"{where}: config field 'params.{key}' must be {'unset' if a is unset else repr(a)} to "
                              f"resume this run (the checkpoint's), got {'unset' if b is unset else repr(b)}; {_FIX}")
    if data.fingerprint != ckpt.data.fingerprint:
        d = ckpt.data
        same = (d.n_train, d.n_val) == (data.n_train, data.n_val)
        raise MaslowError(f"{where}: the training and validation images and their labels must be the checkpoint's to "
                          f"resume this run ({d.n_train} training and {d.n_val} validation images then, "
                          f"{data.n_train} and {data.n_val} now{', with other paths, sizes or labels' if same else ''})"
                          f"; {_FIX}")


def check_start(ckpt: Checkpoint, weights: str) -> None:
    """The rebuilt network must start as the checkpoint's did (same architecture, pretrained or not: a pretrained
    backbone has frozen batch norms and stages, so its weights and optimiser state have another shape).

    Raises:
        MaslowError: naming the checkpoint file and both starts.
    """
    if weights != ckpt.history.weights:
        raise MaslowError(f"{ckpt.path}: the network must start from {ckpt.history.weights!r} to resume this run "
                          f"(the checkpoint's), got {weights!r} (were the offline ImageNet weights added or removed?)")


@dataclass(frozen=True)
class CheckpointWriter:
    """Writes a run's checkpoint after each epoch (``write``); built by an adapter's ``fit``."""

    path: Path
    config: TrainConfig
    schema: LabelSchema
    data: DataPrint

    def write(self, history: TrainHistory, *, net: Any, optimizer: Any, rng: np.random.Generator,
              best: Mapping[str, Any] | None, loop: Mapping[str, Any]) -> None:
        """Write ``last.pt`` atomically: ``history`` so far, the network, the best epoch's weights (None when
        it is the last), the optimiser, the generators, and ``loop`` (``step``, ``cpu_used``, ``budget_spent``)."""
        import torch

        from maslow.models.base import _jsonable

        meta = {"format": CHECKPOINT_FORMAT, "adapter": self.config.model, "config": self.config.to_dict(),
                "schema": self.schema.to_dict(), "history": history.to_dict(), "data": self.data.to_dict(),
                "loop": {**loop, "rng": rng.bit_generator.state}}
        doc: dict[str, Any] = {"meta": json.dumps(meta, default=_jsonable), "net": net.state_dict(), "best": best,
                               "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()}
        cuda: Any = torch.cuda  # (typed or not, with torch installed or not: one spelling for mypy)
        if cuda.is_available() and cuda.is_initialized():
            doc["cuda_rng"] = cuda.get_rng_state_all()
        with atomic_path(self.path) as tmp:
            torch.save(doc, tmp)


def restore(ckpt: Checkpoint, *, net: Any, optimizer: Any, rng: np.random.Generator,
            best: dict[str, Any]) -> Mapping[str, Any]:
    """Put the checkpoint's state back: network, optimiser, numpy ``rng``, torch's generators, and ``best["state"]``
    (the best epoch's weights, for ``restore_best``). Returns ``loop`` (``step``, ``cpu_used``, ...).

    Raises:
        FormatError: naming the file and the field whose state does not fit the network this config builds.
    """
    import torch

    field = "net"
    try:
        net.load_state_dict(ckpt.state["net"])
        field = "optimizer"
        optimizer.load_state_dict(ckpt.state["optimizer"])
        field = "meta.loop.rng"
        rng.bit_generator.state = ckpt.loop["rng"]
        field = "torch_rng"
        torch.set_rng_state(ckpt.state["torch_rng"])
        field = "best"
        if ckpt.state.get("best") is not None:
            best["state"] = dict(ckpt.state["best"])
            net_keys = set(net.state_dict())
            if set(best["state"]) != net_keys:
                raise ValueError(f"{len(set(best['state']) ^ net_keys)} keys differ from the network's")
        elif ckpt.history.best_epoch >= 0 and ckpt.history.best_epoch == ckpt.epochs_done - 1:
            best["state"] = copy.deepcopy(net.state_dict())
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise FormatError(f"must hold the state of the network this config builds: {first}", path=ckpt.path,
                          field=field) from None
    cuda = ckpt.state.get("cuda_rng")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    return ckpt.loop


def writer_for(config: TrainConfig, train: Dataset, val: Dataset | None, *, checkpoint: str | Path | None,
               resume: Checkpoint | None, weights: str) -> CheckpointWriter | None:
    """What an adapter's ``fit`` does with its ``checkpoint`` and ``resume`` arguments before training: check that
    ``resume`` continues this run (``check_resume``, ``check_start``), and the writer for ``checkpoint`` (None
    without one).

    Raises:
        MaslowError: the config, classes, data or network differ from the checkpoint's (see ``check_resume``).
    """
    if checkpoint is None and resume is None:
        return None
    data = data_print(train, val)
    if resume is not None:
        check_resume(resume, config, schema=train.schema, data=data)
        check_start(resume, weights)
    return None if checkpoint is None else CheckpointWriter(Path(checkpoint), config, train.schema, data)


def carry(src: Path | None, folder: Path) -> None:
    """Put the checkpoint ``src`` (written during ``fit``) into the model folder being saved (a hard link when the
    file system allows, else a copy), so the saved run can be resumed or trained on."""
    if src is None or not src.is_file():
        return
    dst = folder / CHECKPOINT_FILE
    try:
        os.link(src, dst)
    except OSError:
        import shutil

        shutil.copyfile(src, dst)
