"""A disk cache of image embeddings, keyed by image content hash and embedder name.

Glossary:
    content hash: blake2b (16-byte digest) of the image file's bytes; for an image inside an IDX file
        (``file-idx3-ubyte.gz#17``) of its pixel array. A renamed or moved image hits the cache; an edited one
        does not.
    layout: ``<cache_dir>/<embedder name>/index.json`` maps hash -> [shard, row]; each ``shard-NNNNN.npy`` is an
        (r, d) float32 array. Shards and the index are written atomically (temp file, then rename), the shard
        before the index, so a crash leaves the cache consistent (at worst an unreferenced shard).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from maslow.core.atomic import atomic_path


def default_cache_dir(start: str | Path = ".") -> Path:
    """``.maslow/cache/embeddings`` of the enclosing workspace, else ``~/.cache/maslow/embeddings``
    (``$XDG_CACHE_HOME`` respected)."""
    p = Path(start).resolve()
    for d in (p, *p.parents):
        if (d / ".maslow").is_dir():
            return d / ".maslow" / "cache" / "embeddings"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "maslow" / "embeddings"


def content_hash(path: str | Path) -> str:
    """Hex blake2b digest of an image's content (see the module glossary)."""
    from maslow.io.images import idx_member, read_idx

    base, member = idx_member(path)
    h = hashlib.blake2b(digest_size=16)
    if member is not None:
        arr = read_idx(base)
        h.update(b"idx")
        h.update(str(arr.shape[1:]).encode())
        h.update(np.ascontiguousarray(arr[member]).tobytes())
        return h.hexdigest()
    from maslow.errors import FormatError

    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except FileNotFoundError:
        raise FormatError("image file not found", path=Path(path)) from None
    except OSError as e:
        raise FormatError(f"unreadable image: {e}", path=Path(path)) from None
    return h.hexdigest()


class EmbeddingCache:
    """Embeddings of one embedder under ``root/<name>``: ``get`` what is known, ``put`` new rows."""

    def __init__(self, root: str | Path, name: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        self.folder = Path(root) / safe
        self._index_path = self.folder / "index.json"
        self._index: dict[str, list[int]] = {}
        self._shards: dict[int, np.ndarray] = {}
        if self._index_path.exists():
            try:
                self._index = json.loads(self._index_path.read_text())
            except (OSError, ValueError):
                self._index = {}  # a damaged index: rebuild from scratch (the shards are only a cache)

    def __len__(self) -> int:
        return len(self._index)

    def _shard(self, s: int) -> np.ndarray | None:
        if s not in self._shards:
            p = self.folder / f"shard-{s:05d}.npy"
            try:
                self._shards[s] = np.load(p, allow_pickle=False)
            except (OSError, ValueError):
                return None
        return self._shards[s]

    def get(self, keys: list[str], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(len(keys), dim) float32 rows and a (len(keys),) bool ``found`` mask."""
        out = np.zeros((len(keys), dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for i, k in enumerate(keys):
            loc = self._index.get(k)
            if loc is None:
                continue
            arr = self._shard(loc[0])
            if arr is not None and loc[1] < len(arr) and arr.shape[1] == dim:
                out[i] = arr[loc[1]]
                found[i] = True
        return out, found

    def put(self, keys: list[str], rows: np.ndarray) -> None:
        """Store new rows as one shard, then update the index (both atomic)."""
        if not keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem.split("-")[1]) for p in self.folder.glob("shard-*.npy")]
        s = max(existing, default=-1) + 1
        with atomic_path(self.folder / f"shard-{s:05d}.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(rows, dtype=np.float32))
        for r, k in enumerate(keys):
            self._index[k] = [s, r]
        with atomic_path(self._index_path) as tmp:
            tmp.write_text(json.dumps(self._index))
