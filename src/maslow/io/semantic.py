"""Semantic segmentation label maps: a folder of single-channel PNGs whose pixel values are class ids.

Glossary:

- A *label map* is an (h, w) uint8 or uint16 PNG (modes ``L``, ``P`` as palette indices, ``I;16``); pixel value
  = class id. It belongs to the image with the same relative path and stem under ``images_root`` (default: the
  ``images/`` folder beside the labels folder), e.g. ``annotations/0016E5_07959.png`` <-> ``images/0016E5_07959.png``;
  of several such images (``a.jpg`` and ``a.png``) the one named like the label map is taken, and the
  ambiguity reported (``ambiguous_image``). A label map named after an image's whole name (``a.jpg.png``, the
  writer's name for the second of two such images) belongs to that image (``a.jpg``) when no ``a.jpg.png`` image
  exists; such images are left out of the others' matching.
- Colour-coded (RGB) maps need ``palette={(r, g, b): id}``; without one they are refused.
- Class names come from ``classes`` (a list, ``{id: name}``, or a text file), else ``classes.txt`` or
  ``labelmap.txt`` beside the label maps, else ``class_<id>``. Text files hold one class per line: ``name`` (id =
  line number from 0), ``id name``, or CVAT's ``name:r,g,b::`` (which also gives the palette); ``#`` starts a comment.
- The *background* value (``background_index``; default the ``# background N`` comment line of the class file,
  which maslow's writer adds when the value that fills uncovered pixels is no class): pixels of no class, left
  unannotated.
- The *ignore* value (``ignore_index``; default the ``# ignore N`` line of the class file, which maslow's writer
  adds when the crowd regions' class has a value other than 255, else 255 when it occurs) is kept as a class of its own (its name from
  the class list, else ``ignore``) whose annotations have ``iscrowd`` True (an ignored region), so a round trip
  gives back the same pixels.

Mapping to maslow: one annotation per class present in an image: ``mask`` (COCO RLE of that class's pixels), NaN
box; ``ClassDef(kind="semantic", id=<pixel value>)``; task ``semantic_segmentation``. Image stems of the form
``<sequence>_<digits>`` (CamVid's ``0016E5_07959``) fill ``images.extra["sequence"]`` (str) and
``images.extra["frame"]`` (int; -1 where the stem does not match).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maslow.core import masks as M
from maslow.core.atomic import atomic_dir
from maslow.core.dataset import Dataset
from maslow.core.issues import Report
from maslow.core.schema import ClassDef, LabelSchema, Task
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io._class_losses import lose_class_fields
from maslow.io._common import Collector, ExportReport
from maslow.io._export import count_lost
from maslow.io._walk import Skipped, files_under, suffix_of
from maslow.io.images import IMAGE_SUFFIXES, image_info, is_image_name, load_path
from maslow.io.registry import Progress, Ticks, warn_issues

_SEQ = re.compile(r"^(.+)_(\d+)$")
_MAX_ID = 65535  # a PNG label map holds 16 bits
Classes = Sequence[str] | Mapping[int, str] | str | Path


_DECLARED = re.compile(r"^#\s*(background|ignore)\s+(\d+)\s*$", re.IGNORECASE)  # "# background 0", "# ignore 11"


def _read_class_file(path: Path) -> tuple[dict[int, str], dict[tuple[int, int, int], int], dict[str, int]]:
    """(names by id, palette, the declared ``background`` and ``ignore`` values)."""
    names: dict[int, str] = {}
    declared: dict[str, int] = {}
    palette: dict[tuple[int, int, int], int] = {}
    id_line: dict[int, int] = {}  # where each id and name was given, to refuse a repeat
    name_line: dict[str, int] = {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise FormatError(f"class list must be a readable UTF-8 text file: {e}", path=path) from None
    k = 0
    for n, raw in enumerate(lines, 1):
        m = _DECLARED.match(raw.strip())
        if m:
            declared[m.group(1).lower()] = int(m.group(2))
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        given, name, rgb = _class_line(line)
        if rgb:
            try:
                r, g, b = (int(c) for c in rgb.split(","))
            except ValueError:
                raise FormatError(f"colour must be 'r,g,b', got {rgb!r}", path=path, record=f"line {n}") from None
            palette[(r, g, b)] = k
        if given is not None:
            k = given
        if k in id_line or name in name_line:
            what, first = ((f"id must be unique, got {k}", id_line[k]) if k in id_line
                           else (f"name must be unique, got {name!r}", name_line[name]))
            raise FormatError(f"class {what} again (first on line {first})", path=path, record=f"line {n}")
        names[k], id_line[k], name_line[name] = name, n, n
        k += 1
    return names, palette, declared


def _class_line(line: str) -> tuple[int | None, str, str | None]:
    """One class-file line (comment removed, stripped): (id or None, name, CVAT's 'r,g,b' text or None)."""
    if ":" in line:  # CVAT/Datumaro labelmap: name:r,g,b:parts:actions
        name, _, rest = line.partition(":")
        return None, name.strip(), rest.split(":", 1)[0]
    m = re.match(r"^(\d+)\s+(.+)$", line)
    if m:
        return int(m.group(1)), m.group(2).strip(), None
    return None, line, None


def _class_text(v: int, name: str, used: set[str]) -> str:
    """The ``id name`` line of ``classes.txt``; a name that would not read back as itself ('#', ':', a line
    break, spaces around it) is written with those characters replaced (the caller counts it as lost)."""
    lines = f"{v} {name}".splitlines()
    if len(lines) == 1 and _class_line(lines[0].split("#", 1)[0].strip()) == (v, name, None):
        return name
    clean = " ".join(name.replace("#", " ").replace(":", " ").split())
    out = clean if clean and clean not in used and _class_line(f"{v} {clean}") == (v, clean, None) else f"class_{v}"
    used.add(out)
    return out


def _class_names(classes: Classes | None, src: Path
                 ) -> tuple[dict[int, str] | None, dict[tuple[int, int, int], int], dict[str, int]]:
    """(names by id, palette, declared background and ignore values) from ``classes`` or the class file beside
    ``src``."""
    if classes is None:
        for d in (src, src.parent):
            for name in ("classes.txt", "labelmap.txt"):
                if (d / name).is_file():
                    return _read_class_file(d / name)
        return None, {}, {}
    if isinstance(classes, str | Path):
        return _read_class_file(Path(classes))
    if isinstance(classes, Mapping):
        return {int(k): str(v) for k, v in classes.items()}, {}, {}
    return {i: str(n) for i, n in enumerate(classes)}, {}, {}


def _check_value(name: str, value: Any, where: Path, *, in_range: bool = True) -> None:
    """Refuse a ``background_index``/``ignore_index`` that is not None or an integer (in 0..65535, a label map
    value, with ``in_range``)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)
                              or (in_range and not 0 <= value <= _MAX_ID)):
        raise FormatError(f"{name} must be a label map value, an integer 0..{_MAX_ID}, got {value!r}", path=where,
                          field=name)


_SUFFIX_RANK = {s: k for k, s in enumerate(IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES))}


def _exact_image(images_root: Path, rel: Path, by_stem: dict[str, list[Path]]) -> Path | None:
    """The image the writer named label map ``rel`` after in full, when no image is named like the label map:
    ``a.jpg`` for ``a.jpg.png`` (maslow's name for the map of an image that shares its path and stem with another)."""
    if not is_image_name(rel.stem) or (images_root / rel) in by_stem.get(rel.stem, ()):
        return None
    exact = images_root / rel.parent / rel.stem
    return exact if exact in by_stem.get(exact.stem, ()) else None


def _find_image(images_root: Path, rel: Path, by_stem: dict[str, list[Path]], claimed: set[Path]
                ) -> tuple[Path | None, list[Path]]:
    """The image of label map ``rel`` (``by_stem``: the image files under ``images_root`` by stem; ``claimed``: the
    images other label maps name in full, left to them) and, when several files share its relative path and stem,
    all of them: the one named like the label map (same suffix) is taken; else the image the map's stem names
    in full (``a.jpg`` for ``a.jpg.png``); else the first in ``IMAGE_SUFFIXES`` order; else the only image with
    that stem anywhere."""
    exact = _exact_image(images_root, rel, by_stem)
    if exact is not None:
        return exact, []
    named = images_root / rel
    hits = [p for p in by_stem.get(rel.stem, []) if p == named or p not in claimed]
    folder = images_root / rel.parent
    here = [p for p in hits if p.parent == folder] if hits else hits
    if len(here) == 1:
        return here[0], []
    if here:
        here.sort(key=lambda p: (p.name != rel.name, _SUFFIX_RANK.get(p.suffix, len(_SUFFIX_RANK)), p.name))
        return here[0], here
    return (hits[0] if len(hits) == 1 else None), []


def _to_ids(arr: np.ndarray, palette: Mapping[tuple[int, int, int], int] | None, file: Path,
            unknown_colours: Counter[tuple[int, int, int]]) -> np.ndarray:
    if arr.ndim == 2:
        return arr.astype(np.int64)
    if not palette:
        raise FormatError(f"label map must be single-channel (class ids), got shape {arr.shape}; pass "
                          "palette={(r, g, b): id} for colour-coded maps", path=file)
    rgb = arr[..., :3].astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    out = np.full(code.shape, -1, np.int64)
    for (r, g, b), v in palette.items():
        out[code == ((r << 16) | (g << 8) | b)] = int(v)
    if (out < 0).any():
        codes, counts = np.unique(code[out < 0], return_counts=True)
        for c, n in zip(codes.tolist(), counts.tolist(), strict=True):
            unknown_colours[((c >> 16) & 255, (c >> 8) & 255, c & 255)] += n
    return out


def parse(src: Path, *, images_root: Path | None = None, strict: bool = False, classes: Classes | None = None,
          ignore_index: int | None = None, background_index: int | None = None,
          palette: Mapping[tuple[int, int, int], int] | None = None) -> tuple[Dataset, Report]:
    """Read a folder of PNG label maps.

    Args:
        src: the folder of label maps (searched recursively for ``*.png``).
        images_root: the image folder; default ``src.parent / "images"``. Images are matched by relative path
            and stem (any image suffix), else by a unique stem anywhere under it.
        strict: raise FormatError on the first error or warning instead of reporting it.
        classes: class names: a list (id = position), ``{id: name}``, or a text file (see the glossary).
        ignore_index: the ignore value, kept as its own class with ``iscrowd`` True; default the class file's
            ``# ignore N`` line, else 255 when present.
        background_index: the value of pixels of no class (left unannotated); default the class file's
            ``# background N`` line, else none.
        palette: ``{(r, g, b): id}`` for colour-coded label maps.

    Returns:
        The Dataset (one semantic annotation per class present in each image) and the Report: label values
        not in the class list (``unknown_label``, with pixel and image counts), colours not in the palette,
        label maps whose size differs from their image, missing images.

    Raises:
        FormatError: ``src`` is not a folder of PNGs, a map is unreadable, or a colour map has no palette;
            ``classes`` is not a list, a mapping or a file; ``ignore_index`` or ``background_index`` is not a
            label value (an integer 0..65535).
    """
    src = Path(src)
    _check_value("ignore_index", ignore_index, src)
    _check_value("background_index", background_index, src)
    if classes is not None and not isinstance(classes, str | Path | Mapping | list | tuple):
        raise FormatError(f"classes must be a list of names, {{id: name}} or the path of a class file, got "
                          f"{classes!r}", path=src, field="classes")
    col = Collector(strict=strict)
    if not src.is_dir():
        raise FormatError("must be a folder of PNG label maps", path=src)
    # the .png files under src, sorted; linked folders followed, each real folder once
    skipped = Skipped()  # folders that can't be listed, broken links: reported
    files = [src.joinpath(*parts) for parts in files_under(str(src), lambda name: suffix_of(name) == ".png",
                                                           skipped=skipped)]
    if not files:
        raise FormatError(f"folder holds no PNG label maps{skipped.hint()}", path=src)
    root = Path(images_root) if images_root is not None else src.parent / "images"
    names, file_palette, declared = _class_names(classes, src)
    background = background_index if background_index is not None else declared.get("background")
    if ignore_index is None:
        ignore_index = declared.get("ignore")
    palette = dict(palette) if palette is not None else file_palette
    by_stem: dict[str, list[Path]] = {}
    if root.is_dir():
        for parts in files_under(str(root), is_image_name, skipped=skipped):
            p = root.joinpath(*parts)
            by_stem.setdefault(p.stem, []).append(p)
    skipped.report(col)
    exact = [_exact_image(root, f.relative_to(src), by_stem) for f in files]  # maps named a.jpg.png: a.jpg's
    claimed = {e for e in exact if e is not None}
    paths, widths, heights = [], [], []
    per_image: list[list[tuple[int, dict[str, Any]]]] = []
    pixels: Counter[int] = Counter()
    images_with: Counter[int] = Counter()
    first_in: dict[int, tuple[Path, int]] = {}  # the first label map holding each value
    colours: Counter[tuple[int, int, int]] = Counter()
    for i, f in enumerate(files):
        rel = f.relative_to(src)
        arr = _to_ids(load_path(f, exif=False), palette, f, colours)
        h, w = arr.shape
        img, several = _find_image(root, rel, by_stem, claimed)
        if several and img is not None:
            why = "named like the label map" if img.name == rel.name else "first by suffix"
            col.add("ambiguous_image", f"{len(several)} images share the label map's path and stem "
                    f"({', '.join(p.name for p in several)}): took {img.name!r} ({why}); the others are not read",
                    file=f, record=rel.as_posix(), image=i)
        if img is None:
            col.add("missing_image", f"no image with stem {rel.stem!r} under {root}", severity="error", file=f,
                    record=rel.as_posix(), image=i)
            path = rel.as_posix()
        else:
            path = img.relative_to(root).as_posix()
            info = image_info(img)
            if (info.width, info.height) != (w, h):
                col.add("size_mismatch", f"label map size must equal the image size {info.width}x{info.height}, "
                        f"got {w}x{h}", severity="error", file=f, record=rel.as_posix(), image=i)
            w, h = info.width, info.height
        paths.append(path)
        widths.append(w)
        heights.append(h)
        values, counts = np.unique(arr[(arr >= 0) & (arr != (-1 if background is None else background))],
                                   return_counts=True)
        per_image.append([(int(v), M.encode(arr == v)) for v in values.tolist()])
        for v, n in zip(values.tolist(), counts.tolist(), strict=True):
            pixels[int(v)] += n
            images_with[int(v)] += 1
            first_in.setdefault(int(v), (f, i))
    for (r, g, b), n in colours.items():
        col.add("unknown_colour", f"colour ({r}, {g}, {b}) is not in the palette: {n} pixels left unlabelled",
                severity="error", file=src, field="palette")
    if ignore_index is None and 255 in pixels:
        ignore_index = 255
    known = dict(names) if names is not None else {}
    for v in sorted(pixels):
        if v in known:
            continue
        if names is not None and v != ignore_index:
            f, i = first_in[v]
            col.add("unknown_label", f"label value {v} is not in the class list: {pixels[v]} pixels in "
                    f"{images_with[v]} images (first in {f.relative_to(src).as_posix()}); added as class_{v}",
                    severity="error", file=f, record=f.relative_to(src).as_posix(), field="classes", image=i)
        known[v] = "ignore" if v == ignore_index else f"class_{v}"
    ids = sorted(known) if names is None else [*names, *sorted(set(known) - set(names))]
    classes_out = tuple(ClassDef(known[v], kind="semantic", label_types=("mask",), id=v) for v in ids)
    label_of = {v: k for k, v in enumerate(ids)}
    rows = [(i, v, rle) for i, items in enumerate(per_image) for v, rle in items]
    n = len(rows)
    ann = Annotations(
        image=np.asarray([r[0] for r in rows], np.int64),
        label=np.asarray([label_of[r[1]] for r in rows], np.int64),
        box=np.full((n, 4), np.nan),
        mask=obj_array([r[2] for r in rows]),
        iscrowd=np.asarray([r[1] == ignore_index for r in rows], bool),
    )
    extra = _sequence_columns(paths)
    images = Images(path=obj_array(paths), width=np.asarray(widths, np.int64), height=np.asarray(heights, np.int64),
                    extra=extra)
    schema = LabelSchema(classes=classes_out, tasks=(Task.SEMANTIC_SEGMENTATION,))
    return Dataset(schema=schema, images=images, annotations=ann, root=root), col.report()


def read_semantic(src: str | Path, **options: Any) -> Dataset:
    """Read a folder of PNG label maps (see ``parse``); a MaslowWarning summarises import findings."""
    return warn_issues(*parse(Path(src), **options), source=src)


read_masks = read_semantic


def _class_ids(ds: Dataset) -> list[int]:
    given = [c.id for c in ds.schema.classes]
    valid = {i for i in given if i is not None and 0 <= i <= _MAX_ID and given.count(i) == 1}
    out, nxt = [], 0
    for i in given:
        if i is not None and i in valid:
            out.append(i)
            continue
        while nxt in valid or nxt in out:
            nxt += 1
        out.append(nxt)
        nxt += 1
    return out


def write(ds: Dataset, dst: Path, *, background_index: int | None = None,
          progress: Progress | None = None) -> ExportReport:
    """Write one PNG label map per image, plus ``classes.txt`` (``id name`` per line), into the folder ``dst``.

    A pixel takes the id (``ClassDef.id``, else the smallest free id) of the last annotation in row order whose
    mask (or rasterised polygon) covers it; overlapped pixels are counted in ``lost["overlap_pixels"]``.
    Uncovered pixels get ``background_index`` (default: the id of a class named ``ignore`` or ``void``, else the
    smallest value no class has, 0 when free: never a class's id by accident); when that value is no class's id, ``classes.txt`` declares it (``# background N``) so the reader leaves those
    pixels unannotated.
    Maps are uint8 when every id is < 256, else uint16; each is named after its image's relative path with a
    ``.png`` suffix; of images that would share that name (``a.png`` and ``a.jpg``) the one the reader pairs with it
    keeps it and the others get their whole name with ``.png`` after it (``a.jpg.png``), which the reader pairs
    with them; a map that can't be named so (a third record of one path) gets ``<stem>__<k>.png``, counted in
    ``lost["image_names"]`` and noted. Lost: annotations with only a box (``box``) or no geometry (``tag``), the annotations merged
    into their class's region of an image (``instances``: all but one per class and image), scores, keypoints,
    crowd flags, attributes, annotators, sources and extra columns (``count_lost``), images of unknown size
    without masks (``unknown_size``), class ids other than the value written (``class_id``) and supercategories.

    Args:
        ds: the dataset.
        dst: the output folder (replaced atomically).
        background_index: the value of pixels no annotation covers.
        progress: called as ``progress(done, total)`` over the images (``registry.Ticks``).

    Returns:
        What was written and what was lost.
    """
    dst = Path(dst)
    _check_value("background_index", background_index, dst, in_range=False)  # the range: checked below
    report = ExportReport(path=str(dst), format="masks", n_images=ds.n_images)
    ids = _class_ids(ds)
    if background_index is None:  # an ignore/void class, else the smallest value no class has (0 when free)
        bg = [ids[k] for k, c in enumerate(ds.schema.classes) if c.name.lower() in ("ignore", "void")]
        background_index = bg[0] if bg else next(v for v in range(len(ids) + 1) if v not in set(ids))
    if not 0 <= background_index <= _MAX_ID or max(ids, default=0) > _MAX_ID:
        what = (f"background_index {background_index}" if not 0 <= background_index <= _MAX_ID
                else f"{len(ids)} classes")
        raise FormatError(f"label map values must be 0..{_MAX_ID} (16-bit PNG), got {what}", path=dst)
    dtype = np.uint8 if max([*ids, background_index]) < 256 else np.uint16
    a = ds.annotations
    assert a.box is not None
    # scores, keypoints, attributes, annotators, sources, extra columns: a label map holds none; crowd flags and
    # the images' sequence and frame come back only where the reader derives them (_read_back_losses)
    lost = count_lost(ds, keep=("box", "mask", "polygon", "iscrowd", "images.extra"))
    ignore = _ignore_value(ds, ids)
    lost.update(_read_back_losses(ds, ids, ignore))
    names, unpaired = _map_names([str(p) for p in ds.images.path.tolist()])
    lost["image_names"] += len(unpaired)
    slices = ds.image_slices()
    n_before = 0
    tick = Ticks(progress, ds.n_images)
    with atomic_dir(dst) as tmp:
        for i in range(ds.n_images):
            tick(i)  # the images done before this one (one without a size is skipped below)
            h, w = int(ds.images.height[i]), int(ds.images.width[i])
            rows = range(slices[i], slices[i + 1])
            if (h, w) == (0, 0):
                sizes = [tuple(a.mask[r]["size"]) for r in rows if a.mask is not None and a.mask[r] is not None]
                if not sizes:
                    lost["unknown_size"] += 1
                    continue
                h, w = (int(x) for x in sizes[0])
            canvas = np.full((h, w), background_index, dtype)
            painted = np.zeros((h, w), bool)
            overlap = 0
            classes = set()
            for r in rows:
                binary = _binary(ds, r, h, w, lost)
                if binary is None:
                    continue
                overlap += int((binary & painted).sum())
                canvas[binary] = ids[a.label[r]]
                painted |= binary
                classes.add(int(a.label[r]))
                report.n_annotations += 1
            lost["overlap_pixels"] += overlap
            lost["instances"] += report.n_annotations - n_before - len(classes)  # merged into a class's region
            n_before = report.n_annotations
            out = tmp / names[i]
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(canvas).save(out, format="PNG")
        used = set(ds.schema.names)
        text = {v: _class_text(v, c.name, used) for v, c in zip(ids, ds.schema.classes, strict=True)}
        # the value of uncovered pixels, when it is no class: declared so that a reader leaves those pixels alone
        head = "" if background_index in text else f"# background {background_index}\n"
        head += "" if ignore == 255 else f"# ignore {ignore}\n"  # 255, the reader's default, goes unsaid
        (tmp / "classes.txt").write_text(head + "".join(f"{v} {text[v]}\n" for v in sorted(text)), encoding="utf-8")
        renamed = [c.name for v, c in zip(ids, ds.schema.classes, strict=True) if text[v] != c.name]
        lost["class_names"] += len(renamed)
    tick.end()
    report.lost.update({k: v for k, v in lost.items() if v})
    lose_class_fields(ds, report, fmt="a label map", back=ids, how="as label map values (ids must be unique, 0..65535)")
    if renamed:
        report.notes.append(f"class names that classes.txt can't hold as they are ('#', ':', line breaks, spaces "
                            f"around them) were written changed: {renamed[:5]}")
    if unpaired:
        report.notes.append(f"{len(unpaired)} label maps are named so that no image pairs with them on read (their "
                            f"images share a path and stem with others): {unpaired[:5]}; read back, those rows keep "
                            "the label map's name")
    if lost["instances"]:
        report.notes.append(f"{lost['instances']} annotations merged into the region of their class and image: a "
                            "label map holds one region per class, no instances (read back, each image has one "
                            "annotation per class)")
    if lost["overlap_pixels"]:
        report.notes.append(f"{lost['overlap_pixels']} pixels covered by several annotations: the later one won")
    return report


def _map_names(paths: list[str]) -> tuple[list[str], list[str]]:
    """Each image's label map name, and the names that pair with no image on read. A map is named after its
    image's relative path with a ``.png`` suffix; where several images would share that name (``a.png`` and
    ``a.jpg``, or one path listed twice), the image the reader pairs with it keeps it (the one named so, else the
    first by suffix) and each other one gets its whole name with ``.png`` after it (``a.jpg.png``), which the
    reader pairs with ``a.jpg``. Where that name is taken too (a third record of one path, ``a.jpg`` listed twice, an image named
    ``a.jpg.png`` beside ``a.jpg``), the map gets ``<stem>__<k>.png``, a name no image has (counted as lost)."""
    plain = [Path(p).with_suffix(".png").as_posix() for p in paths]
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(plain):
        groups.setdefault(t, []).append(i)
    images = set(paths)
    stems = {Path(p).stem for p in paths}
    taken = set(groups)
    out = list(plain)
    unpaired: list[str] = []
    for t, members in groups.items():
        if len(members) == 1:
            continue
        keeper = next((i for i in members if paths[i] == t), None)
        if keeper is None:  # the reader's pick among images of one path and stem: the first by suffix
            keeper = min(members, key=lambda i: (_SUFFIX_RANK.get(Path(paths[i]).suffix, len(_SUFFIX_RANK)),
                                                  Path(paths[i]).name))
        for i in members:
            if i == keeper:
                continue
            name = paths[i] + ".png"
            # a repeat of a keeper paired by its stem (``a.jpg`` twice): ``a.jpg.png`` would claim ``a.jpg`` and leave
            # the keeper's ``a.png`` without its image
            if name in taken or name in images or paths[i] == paths[keeper] != t:
                k = 2
                while (name := f"{t[:-4]}__{k}.png") in taken or Path(name).stem in stems:
                    k += 1
                unpaired.append(name)
            taken.add(name)
            out[i] = name
    return out, unpaired


def _ignore_value(ds: Dataset, ids: list[int]) -> int:
    """The value the reader takes for ignored (crowd) regions: the value of the class of every crowd region when
    one class has them all and nothing else (declared as ``# ignore N`` when not 255), else 255."""
    a = ds.annotations
    assert a.iscrowd is not None
    crowd = np.unique(a.label[a.iscrowd])
    if crowd.size == 1 and a.iscrowd[a.label == crowd[0]].all():
        return ids[int(crowd[0])]
    return 255


def _sequence_columns(paths: list[str]) -> dict[str, np.ndarray]:
    """``images.extra`` ``sequence`` and ``frame`` from ``<sequence>_<digits>`` stems (none when no stem is)."""
    matches = [_SEQ.match(Path(p).stem) for p in paths]
    if not any(matches):
        return {}
    return {"sequence": obj_array([m.group(1) if m else "" for m in matches]),
            "frame": np.asarray([int(m.group(2)) if m else -1 for m in matches], np.int64)}


def _read_back_losses(ds: Dataset, ids: list[int], ignore: int) -> Counter[str]:
    """What of the crowd flags and images.extra the reader gives back otherwise: an annotation is a crowd region
    when its value is the ``ignore`` value; ``sequence`` and ``frame`` come from ``<sequence>_<digits>`` stems."""
    lost: Counter[str] = Counter()
    a = ds.annotations
    assert a.iscrowd is not None
    lost["iscrowd"] = int(np.count_nonzero(a.iscrowd != (np.asarray(ids, np.int64)[a.label] == ignore)))
    derived = _sequence_columns([str(p) for p in ds.images.path.tolist()])
    for k, col in ds.images.extra.items():
        back = derived[k].tolist() if k in derived else [None] * len(col)
        lost["images.extra"] += sum(v is not None and v != "" and v != b for v, b in
                                    zip(col.tolist(), back, strict=True))
    return Counter({k: v for k, v in lost.items() if v})


def _binary(ds: Dataset, r: int, h: int, w: int, lost: Counter[str]) -> np.ndarray | None:
    a = ds.annotations
    assert a.box is not None
    if a.mask is not None and a.mask[r] is not None:
        if [int(x) for x in a.mask[r]["size"]] != [h, w]:
            lost["size_mismatch"] += 1
            return None
        return M.decode(a.mask[r])
    rings = a.polygon[r] if a.polygon is not None else None
    if rings:
        return M.decode(M.from_polygons(rings, h, w))
    lost["box" if not np.isnan(a.box[r, 0]) else "tag"] += 1
    return None


write_semantic = write
write_masks = write
