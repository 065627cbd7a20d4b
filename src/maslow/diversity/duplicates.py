"""Exact, perceptual and semantic duplicate images, their clusters, and leakage across splits.

Glossary:
- *exact* duplicates: identical file bytes (blake2b content hash, 128 bits).
- *pHash*: the 64-bit perceptual hash of Zauner (2010): the greyscale image reduced to 32x32, its 2-D DCT-II,
  the 8x8 lowest frequencies, one bit per coefficient (above their median). The 64 coefficients are two small
  matrix products (numpy; no scipy). JPEG files are decoded at 1/8 scale (Pillow's draft mode), which is where
  the speed comes from.
- *variants*: per image maslow stores 26 hashes. The full image and its 7 flips and quarter turns, computed
  from the same DCT (mirroring flips the sign of odd horizontal frequencies, a vertical flip that of odd
  vertical ones, transposing swaps the two axes): ``full``, ``mirror``, ``flip``, ``rot180``, ``transpose``,
  ``rot90`` and ``rot270`` (counter-clockwise, as ``numpy.rot90``), ``transverse``. Then crops at two
  scales, each at a 3 x 3 grid of offsets: 9 keeping 90% of each side and 9 keeping 95% (pHash is
  shift-sensitive: one central crop finds a third of 10% crops; the 90% grid alone missed 11-13% of crops
  keeping 90-96% of each side). Two images are *near* duplicates when the full hash of one is within
  ``threshold`` bits (Hamming distance) of any variant of the other, so re-encodes, resizes, brightness and
  colour changes, flipped or rotated copies (augmentation exports hold them) and crops of up to about 10%
  match while each hash stays 64 bits.
- *search*: a multi-index (Norouzi et al. 2012): the 64 bits are cut into ``b`` blocks; when two hashes are
  within ``threshold`` bits, by pigeonhole one block differs in at most ``r`` bits with
  ``b * (r + 1) > threshold``. Each block is a dense lookup table; candidates are verified with XOR+popcount.
- *small* images: shorter side under ``min_side`` (default 32, the hash's own grid). They are not hashed, so
  they have exact (and semantic) duplicates only: a 28 x 28 digit is upsampled into the grid, and sets of
  such images (MNIST, glyphs, icons) share their low frequencies (513,070 pHash pairs among MNIST's 10,000
  test digits, which have no duplicate).
- *semantic* duplicates: pairs of images whose embeddings have cosine similarity >= a threshold.
- *cluster*: a kept image and its duplicates (star clustering, which does not chain). Images are visited
  in keep order (the most pixels, then the largest file, then the first row); one not yet in a cluster is
  *kept* and takes every image not yet in a cluster that is a duplicate of it, so each dropped image is a
  duplicate of its kept copy. Identical files stay together: a group of exact duplicates is one unit.
  (Connected components, ``clusters_of``, chain: 101 consecutive video frames, 1,052 of 5,050 pairs near,
  become one component.)
- *leak*: a cluster whose images lie in more than one split (e.g. train and test): it inflates metrics.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maslow.core.dataset import Dataset
from maslow.core.types import FloatArray, IntArray
from maslow.diversity._decode import open_grey
from maslow.diversity._graph import unit_stars
from maslow.diversity._search import hamming as hamming
from maslow.diversity._search import hash_pairs
from maslow.diversity._search import search_hashes as search_hashes
from maslow.errors import FormatError, MaslowError, MaslowWarning

Progress = Callable[[int, int], None]

_HASH_SIDE = 32
_LOW = 8


def _dct_rows(n: int, low: int) -> np.ndarray:
    """(low, n) orthonormal DCT-II basis (the ``norm="ortho"`` rows of scipy.fft.dct): coef = C @ x."""
    k = np.arange(low)[:, None]
    c: np.ndarray = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n))
    c[0] /= np.sqrt(2.0)
    return c


_DCT = _dct_rows(_HASH_SIDE, _LOW)
_SIGN = np.where(np.arange(_LOW) % 2 == 0, 1.0, -1.0)
# coefficient (u, v) (u vertical, v horizontal frequency) of the mirrored image is (-1)^v times the original's,
# of the vertically flipped one (-1)^u times; the transposed image has the transposed coefficients
_MIRROR_SIGN = _SIGN[None, :]
_FLIP_SIGN = _SIGN[:, None]
#: the full image's variants, in the order of ``HashTable.hashes``' first columns
FLIPS = ("full", "mirror", "flip", "rot180", "transpose", "rot270", "rot90", "transverse")
_COS_TOL = 1e-12  # cosine rounding error of unit float64 vectors is about d * 1e-16
_BITS = (np.uint64(1) << np.arange(64, dtype=np.uint64)).astype(np.uint64)


def file_digest(path: str | Path) -> str:
    """blake2b (128-bit) hex digest of a file's bytes (of the pixels for an IDX member ``file#17``).

    Raises:
        OSError: the file can't be read. FormatError: a malformed IDX file.
    """
    from maslow.io.images import idx_member, read_idx

    h = hashlib.blake2b(digest_size=16)
    base, member = idx_member(path)
    if member is not None:
        arr = read_idx(base)
        if member >= len(arr):
            raise FormatError(f"IDX member must be < {len(arr)}, got {member}", path=base)
        h.update(np.ascontiguousarray(arr[member]).tobytes())
        return h.hexdigest()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pack(bits: np.ndarray) -> np.ndarray:
    """(..., 64) bool -> (...) uint64."""
    out: np.ndarray = (bits.astype(np.uint64) * _BITS).sum(axis=-1, dtype=np.uint64)
    return out


def _low_dct(grey32: np.ndarray) -> np.ndarray:
    """(..., 8, 8) lowest 2-D DCT-II coefficients (orthonormal) of (..., 32, 32) arrays."""
    out: np.ndarray = _DCT @ np.asarray(grey32, np.float64) @ _DCT.T
    return out


def _bits(coef: np.ndarray) -> np.ndarray:
    """(...) uint64 pHashes of (..., 8, 8) coefficients: one bit per coefficient above their median."""
    flat = coef.reshape(*coef.shape[:-2], -1)
    return _pack(flat > np.median(flat, axis=-1, keepdims=True))


def _flipped(coef: np.ndarray) -> list[np.ndarray]:
    """The coefficients of the 8 flips and quarter turns of an image, in the order of ``FLIPS``."""
    t = np.swapaxes(coef, -1, -2)
    both = _FLIP_SIGN * _MIRROR_SIGN
    return [coef, coef * _MIRROR_SIGN, coef * _FLIP_SIGN, coef * both, t, t * _MIRROR_SIGN, t * _FLIP_SIGN, t * both]


def phash_arrays(grey32: np.ndarray) -> np.ndarray:
    """(..., 2) uint64 pHashes (plain, mirrored) of (..., 32, 32) greyscale arrays."""
    coef = _low_dct(grey32)
    return np.stack([_bits(coef), _bits(coef * _MIRROR_SIGN)], axis=-1)


def variant_names(grid: int = 3, crop: float = 0.9) -> tuple[str, ...]:
    """Column names of ``HashTable.hashes``: ``FLIPS``, then crop_<row>_<col> over the crop grid (keeping
    ``crop`` of each side), then crop<pct>_<row>_<col> (keeping ``(1 + crop) / 2``, e.g. crop95)."""
    inner = round(100 * (1 + crop) / 2)
    return (*FLIPS, *[f"crop_{r}_{c}" for r in range(grid) for c in range(grid)],
            *[f"crop{inner}_{r}_{c}" for r in range(grid) for c in range(grid)])


def _crop_boxes(crop: float, grid: int) -> list[tuple[float, float, float, float]]:
    boxes = []
    for keep in (crop, (1 + crop) / 2):
        steps = [(1 - keep) / 2] if grid == 1 else [(1 - keep) * k / (grid - 1) for k in range(grid)]
        boxes += [(x, y, x + keep, y + keep) for y in steps for x in steps]
    return boxes


@dataclass(frozen=True, eq=False)
class HashTable:
    """Perceptual hashes of images.

    Attributes:
        hashes: (m, v) uint64, columns ``variant_names(grid, crop)``: the full image and its flips and quarter
            turns (``FLIPS``), then crops keeping ``crop`` of each side at ``grid`` x ``grid`` offsets, then crops
            keeping ``(1 + crop) / 2``. Rows of unreadable files are 0.
        valid: (m,) bool, False where the file could not be decoded.
        pixels: (m,) int64 stored width x height (0 when unreadable).
        errors: (row, message) of the unreadable files.
        side: (m,) int64 shorter stored side in pixels (0 when unreadable).
    """

    hashes: np.ndarray
    valid: np.ndarray
    pixels: IntArray
    errors: tuple[tuple[int, str], ...]
    side: IntArray


def image_hashes(
    paths: Sequence[str | Path], *, crop: float = 0.9, grid: int = 3, progress: Progress | None = None,
    batch: int = 64,
) -> HashTable:
    """pHash variants of image files (see the module glossary); unreadable files are flagged, not raised.

    Args:
        paths: image files.
        crop: side share kept by the outer crop variants (a 10% crop of an image matches one of them); the
            inner ones keep ``(1 + crop) / 2`` (95% for the default 0.9).
        grid: crop offsets per axis (``grid`` x ``grid`` crops at each of the two scales; 0 for none).
        progress: ``progress(done, total)`` callback.
        batch: images per DCT batch (bounds memory).
    """
    if not 0 < crop <= 1:
        raise MaslowError(f"image_hashes: crop must be in (0, 1], got {crop}")
    m = len(paths)
    boxes = _crop_boxes(crop, grid) if grid > 0 else []
    hashes = np.zeros((m, len(FLIPS) + len(boxes)), np.uint64)
    valid = np.zeros(m, bool)
    pixels = np.zeros(m, np.int64)
    shorter = np.zeros(m, np.int64)
    errors: list[tuple[int, str]] = []
    side = (_HASH_SIDE, _HASH_SIDE)
    box_ = Image.Resampling.BOX
    for s in range(0, m, batch):
        chunk = paths[s:s + batch]
        grey = np.zeros((len(chunk), 1 + len(boxes), _HASH_SIDE, _HASH_SIDE))
        for k, p in enumerate(chunk):
            try:
                im, w, h = open_grey(p, _HASH_SIDE)
                with im:
                    iw, ih = im.size
                    grey[k, 0] = np.asarray(im.resize(side, box_))
                    for b, (x0, y0, x1, y1) in enumerate(boxes, 1):
                        grey[k, b] = np.asarray(im.resize(side, box_, box=(x0 * iw, y0 * ih, x1 * iw, y1 * ih)))
                valid[s + k], pixels[s + k], shorter[s + k] = True, w * h, min(w, h)
            except (FormatError, OSError, ValueError) as e:
                errors.append((s + k, str(e)))
        coef = _low_dct(grey)  # (k, 1 + crops, 8, 8)
        hashes[s:s + len(chunk), :len(FLIPS)] = np.stack([_bits(c) for c in _flipped(coef[:, 0])], axis=1)
        hashes[s:s + len(chunk), len(FLIPS):] = _bits(coef[:, 1:])
        if progress is not None:
            progress(s + len(chunk), m)
    hashes[~valid] = 0
    return HashTable(hashes=hashes, valid=valid, pixels=pixels, errors=tuple(errors), side=shorter)


def near_pairs(table: HashTable, threshold: int = 8, *, progress: Progress | None = None) -> tuple[IntArray, IntArray]:
    """(i, j) image pairs with i < j whose full hash is within ``threshold`` of any variant of the other.

    Returns:
        (pairs (p, 2) int64, distance (p,) int64): the smallest distance over the variants; sorted by i then j.
    """
    rows = np.flatnonzero(table.valid)
    pairs, d = hash_pairs(table.hashes[rows], threshold, progress=progress)
    return rows[pairs].reshape(-1, 2), d


def semantic_pairs(features: np.ndarray, *, threshold: float = 0.95, chunk: int = 2048,
                   progress: Progress | None = None) -> tuple[IntArray, FloatArray]:
    """(i, j) pairs (i < j) of rows of ``features`` (m, d) with cosine similarity >= ``threshold``.

    Rows are aligned with the images of a dataset; a zero row has no direction and never matches. Similarities
    within ``1e-12`` of ``threshold`` count as ties and match (rounding must not decide: identical rows match at
    1.0, orthogonal ones at 0.0). Rows are compared ``chunk`` at a time (fewer when a chunk's similarities would
    pass 16 million numbers); ``progress(done, total)`` counts the rows compared.

    Returns:
        (pairs (p, 2) int64, similarity (p,) float64), sorted by i then j.

    Raises:
        MaslowError: ``features`` is not a numeric (m, d) array.
        InvalidDatasetError: a row holds NaN or infinity (named; as the nearest-neighbour search refuses them).
    """
    x = _features(features, where="semantic_pairs")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    ok = norm[:, 0] > 0
    x = np.where(ok[:, None], x / np.where(norm > 0, norm, 1), 0.0)
    out_i, out_j, out_s = [], [], []
    chunk = max(1, min(chunk, 16_000_000 // max(len(x), 1)))
    for s in range(0, len(x), chunk):
        sim = np.clip(x[s:s + chunk] @ x.T, -1.0, 1.0)
        i, j = np.nonzero(sim >= threshold - _COS_TOL)
        i = i + s
        keep = (i < j) & ok[i] & ok[j]
        out_i.append(i[keep])
        out_j.append(j[keep])
        out_s.append(sim[i[keep] - s, j[keep]])
        if progress is not None:
            progress(min(s + chunk, len(x)), len(x))
    if not out_i:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    return np.stack([np.concatenate(out_i), np.concatenate(out_j)], axis=1).astype(np.int64), np.concatenate(out_s)


def _features(features: np.ndarray, *, where: str) -> np.ndarray:
    """(m, d) float64 ``features``, refused unless numeric, 2-d and finite (NaN or infinity named by row, as
    ``as_features`` names them for the nearest-neighbour analyses)."""
    from maslow.errors import InvalidDatasetError

    f = np.asarray(features)
    if f.dtype.kind not in "biuf":
        raise MaslowError(f"{where}: features must be numbers, got dtype {f.dtype}")
    if f.ndim != 2:
        raise MaslowError(f"{where}: features must be (m, d), got shape {f.shape}")
    x = f.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise InvalidDatasetError(f"{where}: features row {bad[0]} must be finite, got NaN or inf ({bad.size} "
                                  f"row{'s' if bad.size > 1 else ''})")
    return x


@dataclass(frozen=True)
class DuplicateCluster:
    """A kept image and its duplicates (see the module glossary: star clusters, which do not chain).

    Attributes:
        images: image rows, ascending. ``keep``: the row to keep (most pixels, then largest file, then first);
            every other member is a duplicate of it (or an identical file of such a duplicate).
        kind: "exact" when every member has the same (readable) bytes, else "near" when a member is a near
            (pHash) duplicate of the kept image, else "semantic".
        splits: the splits its members are in (sorted); a leak when there are several.
    """

    images: tuple[int, ...]
    keep: int
    kind: str
    splits: tuple[str, ...]

    @property
    def leak(self) -> bool:
        return len(self.splits) > 1

    @property
    def drop(self) -> tuple[int, ...]:
        return tuple(i for i in self.images if i != self.keep)


@dataclass(frozen=True, eq=False)
class DuplicateReport:
    """Duplicate pairs and clusters of a dataset's images.

    Attributes:
        paths: image paths (``images.path``), for display.
        pairs: (p, 2) image rows i < j; ``kind``: (p,) "exact" / "near" / "semantic"; ``distance``: (p,)
            Hamming bits for exact/near pairs (0 for exact), 1 - cosine for semantic ones. Every pair found,
            including pairs whose images ended in different clusters.
        cross_split: (p,) bool, the pair's images lie in different splits (a leak, whatever the clusters).
        clusters: kept images with their duplicates, largest first. ``threshold``: Hamming threshold used.
        min_side: images with a shorter side under it were not hashed; ``small``: (k,) their rows.
        unreadable: (row, message) of files that could not be hashed.
    """

    paths: tuple[str, ...]
    pairs: IntArray
    kind: tuple[str, ...]
    distance: FloatArray
    cross_split: np.ndarray
    clusters: tuple[DuplicateCluster, ...]
    threshold: int
    min_side: int
    small: IntArray
    unreadable: tuple[tuple[int, str], ...]

    @property
    def leaks(self) -> tuple[DuplicateCluster, ...]:
        """Clusters spanning several splits."""
        return tuple(c for c in self.clusters if c.leak)

    @property
    def to_drop(self) -> IntArray:
        """Image rows to remove: each is a duplicate of the copy kept in its cluster."""
        return np.asarray(sorted(i for c in self.clusters for i in c.drop), np.int64)

    def to_dict(self) -> dict[str, Any]:
        def cl(c: DuplicateCluster) -> dict[str, Any]:
            return {"images": [self.paths[i] for i in c.images], "keep": self.paths[c.keep], "kind": c.kind,
                    "splits": list(c.splits)}

        return {
            "threshold": self.threshold,
            "min_side": self.min_side,
            "n_small": len(self.small),
            "n_pairs": len(self.pairs),
            "n_cross_split_pairs": int(np.count_nonzero(self.cross_split)),
            "n_clusters": len(self.clusters),
            "n_duplicate_images": int(sum(len(c.images) - 1 for c in self.clusters)),
            "clusters": [cl(c) for c in self.clusters],
            "leaks": [cl(c) for c in self.leaks],
            "pairs": [{"a": self.paths[a], "b": self.paths[b], "kind": k, "distance": float(d), "cross_split": x}
                      for (a, b), k, d, x in zip(self.pairs.tolist(), self.kind, self.distance.tolist(),
                                                 self.cross_split.tolist(), strict=True)],
            "unreadable": [{"image": self.paths[i], "error": e} for i, e in self.unreadable],
        }

    def to_pandas(self) -> Any:
        """One row per pair: a, b (paths), kind, distance, cross_split."""
        import pandas as pd

        return pd.DataFrame({"a": [self.paths[a] for a in self.pairs[:, 0]],
                             "b": [self.paths[b] for b in self.pairs[:, 1]],
                             "kind": list(self.kind), "distance": self.distance, "cross_split": self.cross_split})


def find_duplicates(
    ds: Dataset,
    *,
    threshold: int = 8,
    near: bool = True,
    min_side: int = 32,
    crop: float = 0.9,
    grid: int = 3,
    features: np.ndarray | None = None,
    cosine: float = 0.95,
    progress: Progress | None = None,
    step: Callable[[str], None] | None = None,
) -> DuplicateReport:
    """Exact (file bytes), near (pHash variants) and, given ``features``, semantic duplicates of ``ds``'s images.

    Args:
        ds: the dataset; its image files are read from ``ds.root``.
        threshold: Hamming distance (bits of 64) for near duplicates.
        near: hash pixels; False finds exact duplicates only (no decoding).
        min_side: near duplicates only between images whose shorter side is at least this many pixels
            (default 32, the hash grid); smaller ones get exact and semantic duplicates only. 0 hashes all.
        crop, grid: crop variants hashed for crop robustness (see ``image_hashes``).
        features: optional (m, d) embeddings aligned with ``ds.images`` for semantic duplicates.
        cosine: cosine-similarity threshold for semantic duplicates.
        progress: ``progress(done, total)`` within each step: the images hashed, the pieces of the near search,
            the feature rows compared, the images visited by the clustering.
        step: called with the name of each step as it starts (``"hashing images"``, ``"searching near
            duplicates"``, ``"comparing features"``, ``"clustering"``); ``progress`` then counts from 0.

    Returns:
        DuplicateReport: every pair, and star clusters (a kept image and its duplicates; see the module glossary).

    Raises:
        MaslowError: ``min_side`` below 0, ``threshold`` outside 0..32, or ``features`` not a numeric (m, d)
            array with one row per image (checked before any image is read).
        InvalidDatasetError: a ``features`` row holds NaN or infinity (named; before any image is read).

    Warns:
        MaslowWarning: ``features`` rows of zeros (named): they have no direction, so their images get no semantic
            duplicate (they are legal features: the nearest-neighbour analyses take them).
    """
    from maslow.io.images import image_path

    if min_side < 0:
        raise MaslowError(f"find_duplicates: min_side must be >= 0, got {min_side}")
    m = ds.n_images
    # checked before hashing, the slow part (a bad threshold or feature file was refused only after every image)
    if near and not 0 <= threshold <= 32:
        raise MaslowError(f"find_duplicates: threshold must be in 0..32 (bits of 64), got {threshold}")
    if features is not None:
        features = _features(features, where="find_duplicates")
        if len(features) != m:
            raise MaslowError(f"find_duplicates: features must have one row per image ({m}), got {len(features)}")
        zero = np.flatnonzero(~features.any(axis=1)).tolist()
        if zero:
            warnings.warn(f"find_duplicates: features rows {', '.join(map(str, zero[:5]))}{', ...' * (len(zero) > 5)} "
                          f"({len(zero)} of {m}) are all zeros: a zero vector has no direction, so their images get "
                          "no semantic duplicate", MaslowWarning, stacklevel=2)
    say = step if step is not None else (lambda _: None)
    say("hashing images")
    paths = [image_path(ds, i) for i in range(m)]
    unreadable: dict[int, str] = {}
    digests = np.full(m, "", dtype=object)
    sizes = np.zeros(m, np.int64)
    for i, p in enumerate(paths):
        try:
            digests[i] = file_digest(p)
            sizes[i] = p.stat().st_size if p.exists() else 0
        except OSError as e:
            unreadable[i] = f"{p}: {e.strerror or e}"
        except FormatError as e:
            unreadable[i] = str(e)
        if progress is not None and not near and (i % 64 == 63 or i == m - 1):
            progress(i + 1, m)
    w, h = ds.images.width.astype(np.int64), ds.images.height.astype(np.int64)
    pixels = w * h
    small = np.zeros(m, bool)
    found = [_exact_pairs(digests)]  # (pairs, kind code, distance): exact pairs win over near, near over semantic
    if near and m:
        small = (w > 0) & (h > 0) & (np.minimum(w, h) < min_side)  # known from the headers: not even decoded
        readable = [i for i in range(m) if i not in unreadable and not small[i]]
        table = image_hashes([paths[i] for i in readable], crop=crop, grid=grid, progress=progress)
        rows = np.asarray(readable, np.int64)
        for r, msg in table.errors:
            unreadable[int(rows[r])] = msg
        pixels[rows] = np.where(pixels[rows] > 0, pixels[rows], table.pixels)
        late = table.valid & (table.side < min_side)  # sizes unknown before decoding
        small[rows[late]] = True
        say("searching near duplicates")
        pr, dist = near_pairs(replace(table, valid=table.valid & ~late), threshold, progress=progress)
        found.append((rows[pr].reshape(-1, 2), 1, dist.astype(np.float64)))
    if features is not None:
        say("comparing features")
        sp, sim = semantic_pairs(features, threshold=cosine, progress=progress)
        found.append((sp, 2, 1.0 - sim))
    key = np.concatenate([p[:, 0] * m + p[:, 1] for p, _, _ in found])
    code = np.concatenate([np.full(len(p), c, np.int8) for p, c, _ in found])
    distance = np.concatenate([d for _, _, d in found])
    by = np.lexsort((code, key))  # each pair once, of the first kind that found it
    key, code, distance = key[by], code[by], distance[by]
    first = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else np.zeros(0, bool)
    key, code, distance = key[first], code[first], distance[first]
    pairs = np.stack([key // max(m, 1), key % max(m, 1)], axis=1).astype(np.int64)
    split = ds.images.split.astype(str) if ds.images.split is not None else np.full(m, "")
    say("clustering")
    order = np.lexsort((np.arange(m), -sizes, -pixels)).astype(np.int64)  # the keep rule
    clusters = [DuplicateCluster(images=tuple(members.tolist()), keep=keep, kind=kind,
                                 splits=tuple(sorted({str(sp_) for sp_ in split[members]})))
                for members, keep, kind in unit_stars(m, pairs, code == 1, _units(digests, order), order,
                                                      progress=progress)]
    clusters.sort(key=lambda c: (-len(c.images), c.images[0]))
    return DuplicateReport(
        paths=tuple(str(p) for p in ds.images.path.tolist()),
        pairs=pairs,
        kind=tuple(np.asarray(_KINDS, dtype=object)[code].tolist()),
        distance=distance,
        cross_split=split[pairs[:, 0]] != split[pairs[:, 1]],
        clusters=tuple(clusters),
        threshold=threshold,
        min_side=min_side,
        small=np.flatnonzero(small).astype(np.int64),
        unreadable=tuple(sorted(unreadable.items())),
    )


_KINDS = ("exact", "near", "semantic")


def _exact_pairs(digests: np.ndarray) -> tuple[IntArray, int, FloatArray]:
    """(pairs i < j of files with equal digests, kind code 0, distances 0): built by numpy, a group size at a time
    (no Python tuple per pair). ``digests`` holds "" for unreadable files."""
    rows = np.flatnonzero(digests != "")
    groups = np.unique(digests[rows].astype(str), return_inverse=True)[1] if len(rows) else np.zeros(0, np.int64)
    by = np.argsort(groups, kind="stable")  # rows of each group, ascending
    rows, groups = rows[by], groups[by]
    size = np.bincount(groups)
    out = [np.zeros((0, 2), np.int64)]
    for g in np.unique(size[size > 1]).tolist():  # groups of one size at once: (k, g) rows, all pairs of columns
        members = rows[np.isin(groups, np.flatnonzero(size == g))].reshape(-1, g)
        a, b = np.triu_indices(g, 1)
        out.append(np.stack([members[:, a].ravel(), members[:, b].ravel()], axis=1))
    pairs = np.concatenate(out)
    return pairs, 0, np.zeros(len(pairs))


def _units(digests: np.ndarray, order: IntArray) -> IntArray:
    """(m,) each image's group of identical files, named by its first row in keep ``order`` (itself when
    unreadable)."""
    m = len(digests)
    unit = np.arange(m, dtype=np.int64)
    o = order[digests[order] != ""]
    if len(o):
        _, first, inv = np.unique(digests[o].astype(str), return_index=True, return_inverse=True)
        unit[o] = o[first][inv]
    return unit


def plot_rows(report: DuplicateReport, *, max_clusters: int = 12,
              max_per_cluster: int = 6) -> list[tuple[tuple[int, ...], int]]:
    """What ``plot_duplicates`` draws: per cluster (the first ``max_clusters``), the image rows of its thumbnails,
    the copy to keep first and then the others in row order (at most ``max_per_cluster``), and how many it leaves
    out (said as "+N more" at the end of the row)."""
    rows = []
    for c in report.clusters[:max_clusters]:
        shown = (c.keep, *c.drop)[:max(max_per_cluster, 1)]
        rows.append((shown, len(c.images) - len(shown)))
    return rows


def plot_duplicates(report: DuplicateReport, ds: Dataset, out_dir: str | Path, *, max_clusters: int = 12,
                    max_per_cluster: int = 6) -> list[Path]:
    """Write ``duplicates.png`` into ``out_dir`` (atomically): thumbnails of the first clusters, one per row.

    Each row starts with the copy to keep, framed in green (then its duplicates in row order); a cluster of more
    than ``max_per_cluster`` images ends with "+N more". Leaks are titled in red with their splits. Nothing is
    written when there is no cluster.

    Raises:
        MissingDependencyError: matplotlib is not installed (extra ``reports``).
    """
    from maslow.diversity.coverage import _figure, _save
    from maslow.io.images import image_path, load_path

    rows = plot_rows(report, max_clusters=max_clusters, max_per_cluster=max_per_cluster)
    if not rows:
        return []
    cols = max(len(shown) for shown, _ in rows) + any(more for _, more in rows)  # a last column for "+N more"
    fig = _figure(2.2 * cols, 2.0 * len(rows))
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for r, (c, (shown, more)) in enumerate(zip(report.clusters, rows, strict=False)):
        for j in range(cols):
            ax = axes[r, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(shown):
                ax.set_axis_off()
                if j == len(shown) and more:
                    ax.text(0.5, 0.5, f"+{more} more", ha="center", va="center", fontsize=11)
                continue
            i = shown[j]
            try:
                ax.imshow(load_path(image_path(ds, i)), cmap="gray")
            except (FormatError, OSError, ValueError):
                ax.text(0.5, 0.5, "unreadable", ha="center", va="center")
            split = str(ds.images.split[i]) if ds.images.split is not None else ""
            under = ", ".join(w for w in ("keep" if i == c.keep else "", split) if w)
            ax.set_title(f"{Path(report.paths[i]).name}\n{under}", fontsize=7, color="tab:red" if c.leak else "black")
            if i == c.keep:
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:green")
                    spine.set_linewidth(3)
    return [_save(fig, Path(out_dir) / "duplicates.png")]
