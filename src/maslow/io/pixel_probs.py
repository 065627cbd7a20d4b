"""Per-pixel class probabilities of a semantic-segmentation model: one array file per image, read one at a time.

Glossary:

- *probability file*: one ``.npy``, or ``.npz`` holding one array (or an array named ``probs``), per image, named
  after the image: its path relative to the dataset's root with the suffix replaced (``0016E5_07959.png`` ->
  ``0016E5_07959.npy``; ``seq/0001.jpg`` -> ``seq/0001.npy``), else its stem alone when no other image has it.
  Files are searched recursively under the folder.
- The array is the model's softmax of one image, (K, H, W) or (H, W, K); its shape, class count and values are
  checked where it is used (``find_label_issues(..., pixel_probs=)``, see ``maslow.quality._consensus_sem``), which
  names the file. A folder is read lazily: a 1,000-image 512 x 512 x 21 float32 set is 22 GB.
- An image *with labels* has a non-crowd annotation; only those are scored, so only those need a file.
- Folders under the folder that can't be listed and broken links (a link whose target is missing, or that loops)
  are skipped and said: ``unreadable_folder`` and ``broken_link`` warnings in ``ProbsFolder.report``, summarised in
  a MaslowWarning, and named in the error when an image with labels has no file.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.types import BoolArray
from maslow.errors import FormatError, MaslowWarning
from maslow.io._common import Collector
from maslow.io._walk import Skipped, files_under, suffix_of

_SUFFIXES = (".npy", ".npz")


class ProbsFolder(Sequence[np.ndarray]):
    """Per-image probability files of a folder, read one at a time (``read_pixel_probs``).

    ``probs[i]`` reads the array of image row ``i`` (FormatError for an image without a file: one with nothing to
    score); ``probs.source(i)`` is its file; ``probs.report`` what the search skipped (folders that can't be listed,
    broken links).
    """

    def __init__(self, folder: Path, files: list[Path | None], report: Report | None = None) -> None:
        self.folder = folder
        self.files = tuple(files)
        self.report = report if report is not None else Report(())

    def __len__(self) -> int:
        return len(self.files)

    @overload
    def __getitem__(self, i: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[np.ndarray]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        f = self.files[i]
        if f is None:
            raise FormatError(f"image row {i}: has no probability file", path=self.folder)
        return _load(f)

    def source(self, i: int) -> str:
        return str(self.files[i]) if self.files[i] is not None else f"{self.folder} (image row {i})"


def _load(f: Path) -> np.ndarray:
    try:
        if f.suffix.lower() == ".npz":
            with np.load(f, allow_pickle=False) as z:
                keys = list(z.keys())
                if "probs" in keys:
                    return np.asarray(z["probs"])
                if len(keys) != 1:
                    raise FormatError(f"an .npz file must hold one array or one named 'probs', got {keys}", path=f)
                return np.asarray(z[keys[0]])
        return np.asarray(np.load(f, allow_pickle=False))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"must be a numpy .npy/.npz array file, got {e}", path=f) from None


def labelled_images(ds: Dataset) -> BoolArray:
    """(n_images,) True for the images with a non-crowd annotation: those scored, which need a probability file."""
    a = ds.annotations
    out = np.zeros(ds.n_images, bool)
    crowd = np.zeros(len(a), bool) if a.iscrowd is None else np.asarray(a.iscrowd, bool)
    out[a.image[~crowd]] = True
    return out


def read_pixel_probs(folder: str | Path, *, like: Dataset) -> ProbsFolder:
    """The probability files of ``folder`` for the images of ``like`` (see the module glossary for names).

    Args:
        folder: one ``.npy``/``.npz`` per image (searched recursively).
        like: the ground truth whose images the files belong to.

    Returns:
        ProbsFolder, a sequence with one entry per image row of ``like``, read when indexed; its ``report`` holds what
        the search skipped (summarised in a MaslowWarning).

    Raises:
        FormatError: not a folder, two files of one image, a file of no image of ``like`` (named), or an image with
            labels and no file (the first named, with the count).

    Example:
        >>> import tempfile
        >>> from maslow.sample import shapes
        >>> truth = shapes(2, seed=0)  # images/shape_0000.png, images/shape_0001.png
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     for stem in ("shape_0000", "shape_0001"):
        ...         np.save(f"{folder}/{stem}.npy", np.full((3, 8, 8), 1 / 3, np.float32))
        ...     probs = read_pixel_probs(folder, like=truth)
        ...     print(len(probs), probs[1].shape, Path(probs.source(1)).name)
        2 (3, 8, 8) shape_0001.npy
    """
    root = Path(folder)
    if not root.is_dir():
        raise FormatError("must be a folder of .npy/.npz probability files, one per image", path=root)
    # sorted; linked folders followed, each real folder once
    skipped = Skipped()
    found = {"/".join(parts): root.joinpath(*parts)
             for parts in files_under(str(root), lambda name: suffix_of(name) in _SUFFIXES, skipped=skipped)}
    hint = skipped.hint() or (f" ({len(skipped.broken)} broken links, first: {min(skipped.broken)})"
                              if skipped.broken else "")
    by_key: dict[str, Path] = {}
    for rel, p in found.items():
        key = rel.rsplit(".", 1)[0]
        if key in by_key:
            raise FormatError(f"one probability file per image, got {by_key[key].name} and {p.name}", path=p)
        by_key[key] = p
    stems: dict[str, int] = {}
    paths = [str(x).split("#", 1)[0] for x in like.images.path.tolist()]
    for x in paths:
        stems[Path(x).stem] = stems.get(Path(x).stem, 0) + 1
    files: list[Path | None] = []
    used: set[str] = set()
    for x in paths:
        key = Path(x).with_suffix("").as_posix()
        stem = Path(x).stem
        if key not in by_key and stems[stem] == 1 and stem in by_key:
            key = stem
        files.append(by_key.get(key))
        if key in by_key:
            used.add(key)
    unknown = sorted(set(by_key) - used)
    if unknown:
        raise FormatError(f"every probability file must be named after an image of the ground truth (its path or "
                          f"stem, suffix .npy/.npz), got {by_key[unknown[0]].relative_to(root).as_posix()!r} "
                          f"({len(unknown)} such files)", path=root)
    lacking = [i for i in np.flatnonzero(labelled_images(like)).tolist() if files[i] is None]
    if lacking:
        i = lacking[0]
        raise FormatError(f"every image with labels must have a probability file, got none for image "
                          f"{paths[i]!r} (expected {Path(paths[i]).with_suffix('.npy').as_posix()!r}; "
                          f"{len(lacking)} such images){hint}", path=root)
    col = Collector()
    skipped.report(col)
    report = col.report()
    if len(report):
        from maslow.io.registry import issues_summary

        warnings.warn(issues_summary(report, source=root), MaslowWarning, stacklevel=2)
    return ProbsFolder(root, files, report)
