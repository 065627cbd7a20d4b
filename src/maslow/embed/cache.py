"""A disk cache of image embeddings, keyed by image content hash and embedder name.

Glossary:
    content hash: blake2b (16-byte digest) of the image file's bytes; for an image inside an IDX file
        (``file-idx3-ubyte.gz#17``) of its pixel array (with its dtype and shape). A renamed or moved image hits
        the cache; an edited one does not.
    layout: ``<cache_dir>/<embedder name>/index.json`` holds the embedder's name, ``keys`` (hash -> [shard, row])
        and ``shards`` (shard -> blake2b of its file); each ``shard-NNNNN.npy`` is an (r, d) float32 array. A name
        with characters other than letters, digits and ``-_.`` gets a digest of the name appended to its folder.
    writes: shards and the index are written atomically (temp file, then rename), the shard before the index, so
        a crash leaves the cache consistent (at worst an unreferenced shard). Writers hold a lock file while they
        merge their rows into the index on disk, so concurrent writers neither lose entries nor reuse a shard
        number. A shard whose bytes no longer match its digest, or an index that can't be parsed, is ignored:
        those images are embedded again and written anew.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from maslow.core.atomic import atomic_path, file_lock


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
    from maslow.io.images import _idx_images, idx_member

    base, member = idx_member(path)
    h = hashlib.blake2b(digest_size=16)
    if member is not None:
        arr = _idx_images(base, member)
        h.update(b"idx")
        h.update(f"{arr.dtype.str}{arr.shape[1:]}".encode())
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


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class EmbeddingCache:
    """Embeddings of one embedder under ``root/<name>``: ``get`` what is known, ``put`` new rows."""

    def __init__(self, root: str | Path, name: str) -> None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        if safe != name or not name:  # two names must never share a folder
            safe = f"{safe}-{_digest(name.encode())[:8]}"
        self.name = name
        self.folder = Path(root) / safe
        self._index_path = self.folder / "index.json"
        self._keys, self._digests = self._read_index()
        self._shards: dict[int, np.ndarray | None] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def _read_index(self) -> tuple[dict[str, list[int]], dict[int, str]]:
        """(hash -> [shard, row], shard -> digest) from disk; empty when missing, damaged or another embedder's."""
        try:
            raw: Any = json.loads(self._index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}, {}  # missing or damaged: rebuilt as images are embedded again (the shards are only a cache)
        if not isinstance(raw, dict) or raw.get("embedder") != self.name:
            return {}, {}
        keys, shards = raw.get("keys"), raw.get("shards")
        if not isinstance(keys, dict) or not isinstance(shards, dict):
            return {}, {}
        digests = {int(s): d for s, d in shards.items() if s.isascii() and s.isdigit() and isinstance(d, str)}
        good = {k: v for k, v in keys.items()
                if isinstance(v, list) and len(v) == 2 and all(type(x) is int and x >= 0 for x in v)
                and v[0] in digests}
        return good, digests

    def _shard(self, s: int) -> np.ndarray | None:
        """Shard ``s``, or None when it is missing or its bytes don't match the digest in the index."""
        if s not in self._shards:
            arr = None
            try:
                data = (self.folder / f"shard-{s:05d}.npy").read_bytes()
                if _digest(data) == self._digests.get(s):
                    arr = np.load(io.BytesIO(data), allow_pickle=False)
            except (OSError, ValueError, EOFError):  # EOFError: an empty shard (np.load)
                pass
            ok = arr is not None and arr.ndim == 2 and arr.dtype == np.float32
            self._shards[s] = arr if ok else None
        return self._shards[s]

    def get(self, keys: list[str], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(len(keys), dim) float32 rows and a (len(keys),) bool ``found`` mask."""
        out = np.zeros((len(keys), dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        for i, k in enumerate(keys):
            loc = self._keys.get(k)
            if loc is None:
                continue
            arr = self._shard(loc[0])
            if arr is not None and loc[1] < len(arr) and arr.shape[1] == dim:
                out[i] = arr[loc[1]]
                found[i] = True
        return out, found


    def put(self, keys: list[str], rows: np.ndarray) -> None:
        """Store new rows as one shard, then merge them into the index on disk (both atomic, under the lock)."""
        if not keys:
            return
        data = io.BytesIO()
        np.save(data, np.ascontiguousarray(rows, dtype=np.float32))
        self.folder.mkdir(parents=True, exist_ok=True)
        with file_lock(self.folder / "index.lock"):
            self._keys, self._digests = self._read_index()  # what other writers stored meanwhile
            numbers = [p.stem[6:] for p in self.folder.glob("shard-*.npy")]
            existing = [int(n) for n in numbers if n.isascii() and n.isdigit()]
            s = max([*existing, *self._digests], default=-1) + 1  # never a number the index still names
            with atomic_path(self.folder / f"shard-{s:05d}.npy") as tmp:
                tmp.write_bytes(data.getvalue())
            self._digests[s] = _digest(data.getvalue())
            for r, k in enumerate(keys):
                self._keys[k] = [s, r]
            index = {"embedder": self.name, "shards": {str(k): v for k, v in self._digests.items()},
                     "keys": self._keys}
            with atomic_path(self._index_path) as tmp:
                tmp.write_text(json.dumps(index), encoding="utf-8")
        self._shards.pop(s, None)
