"""The Label Studio reader's labeling config (classes, attributes, controls) and its image URL mapping (see
labelstudio.py)."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree as ET

import numpy as np
from defusedxml import ElementTree as SafeET

from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef
from maslow.errors import FormatError

_CONTROLS = {"RectangleLabels": "box", "PolygonLabels": "polygon", "KeyPointLabels": "keypoint",
             "BrushLabels": "brush", "EllipseLabels": "ellipse", "Labels": "any", "Choices": "choices"}


@dataclass
class Config:
    classes: dict[str, set[str]] = field(default_factory=dict)  # name -> label types
    colors: dict[str, str] = field(default_factory=dict)
    kp_labels: dict[str, None] = field(default_factory=dict)  # <KeyPointLabels> labels, in the config's order
    attributes: dict[str, AttributeDef] = field(default_factory=dict)
    controls: dict[str, str] = field(default_factory=dict)  # control name -> tag, lower case (for JSON-MIN)
    per_region: set[str] = field(default_factory=set)  # control names with perRegion="true"
    declared: bool = False
    text: str = ""  # the XML read


def config_path(src: Path) -> Path:
    """Where the writer puts the labeling config of the export ``src``: ``<stem>.label_config.xml`` beside it
    (``tasks.json`` -> ``tasks.label_config.xml``), so exports in one folder keep a config each."""
    return src.with_name(f"{src.stem}.label_config.xml")


def read_config(cfg: str | Path | None, src: Path, *, choice_columns: frozenset[str] = frozenset()) -> Config:
    """The labeling config ``cfg`` (XML text or a path; default: ``config_path(src)``, else ``label_config.xml``
    beside ``src``, the one name exports written before had). Per-region controls become attributes; image-level
    ``<Choices>`` declare classes unless named in ``choice_columns`` (image columns, as image-level
    ``<TextArea>``/``<Number>``/``<Rating>``/``<DateTime>``: see ``_labelstudio_values``)."""
    out = Config()
    if cfg is None:
        cfg = next((p for p in (config_path(src), src.parent / "label_config.xml") if p.is_file()), None)
        if cfg is None:
            return out
    try:
        text = cfg if isinstance(cfg, str) and cfg.lstrip().startswith("<") else Path(cfg).read_text("utf-8")
        top = SafeET.fromstring(text)
    except (OSError, ET.ParseError, ValueError) as e:
        raise FormatError(f"label config must be readable XML: {e}", path=None if isinstance(cfg, str)
                          and cfg.lstrip().startswith("<") else cfg, record="label_config") from None
    out.declared, out.text = True, text
    for el in top.iter():
        if el.get("name") and el.get("toName"):
            out.controls[el.get("name", "")] = el.tag.lower()
        kind = _CONTROLS.get(el.tag)
        per_region = el.get("perRegion", "").lower() == "true"
        if per_region:
            out.per_region.add(el.get("name", ""))
        if el.tag in ("Number", "Rating", "TextArea", "DateTime") and not per_region:
            continue  # an image-level value: an image column
        if el.tag in ("Number", "Rating", "TextArea", "DateTime") or (kind == "choices" and per_region):
            vals = tuple(c.get("value", "") for c in el.iter("Choice"))
            again = next((v for j, v in enumerate(vals) if v in vals[:j]), None)
            if again is not None:
                raise FormatError(f"<Choice> values of <{el.tag} name={el.get('name', '')!r}> must be unique, got "
                                  f"{again!r} twice", path=None if cfg is text else cfg, record="label_config",
                                  field=el.get("name", ""))
            atype = ("number" if el.tag in ("Number", "Rating") else "text" if el.tag in ("TextArea", "DateTime")
                     else "bool" if set(vals) == {"true", "false"} else "enum")
            out.attributes[el.get("name", "")] = AttributeDef(el.get("name", ""), type=atype,
                                                              values=vals if atype == "enum" else ())
        elif kind is not None and not (kind == "choices" and el.get("name", "") in choice_columns):
            for lab in el.iter("Choice" if kind == "choices" else "Label"):
                name = lab.get("value", "")
                if kind == "keypoint":
                    out.kp_labels.setdefault(name)
                    continue
                out.classes.setdefault(name, set()).add(kind)
                if lab.get("background"):
                    out.colors.setdefault(name, lab.get("background", ""))
    return out


def keypoint_names(used: dict[str, list[str]], cfg: Config, classes: Collection[str]) -> dict[str, list[str]]:
    """Each class's keypoint names as the reader gives them, from ``used`` (class -> the labels of its keypoints with
    a ``parentID``, in order of first use): in the order of the config's ``<KeyPointLabels>`` (labels it lacks
    after them, as used). Where one class alone has such keypoints, the config's other keypoint labels that name no
    class (in ``classes``) are its too: names never placed, whose points are read as not labelled (v = 0)."""
    order = {n: i for i, n in enumerate(cfg.kp_labels)}
    out = {}
    for name, labels in used.items():
        labels = list(labels)
        if len(used) == 1:
            labels += [n for n in cfg.kp_labels if n not in labels and n not in classes]
        out[name] = sorted(labels, key=lambda n: order.get(n, len(order)))  # stable: the others as used
    return out


def keypoints_lost(ds: Dataset, used: dict[str, list[str]], cfg: Config) -> int:
    """How many classes' keypoint names (``ClassDef.keypoints``: K, order) the reader won't give back from the
    config ``cfg`` written and the labels ``used`` (class -> labels of its keypoints written with a parent)."""
    got = keypoint_names(used, cfg, set(cfg.classes) | set(ds.schema.names))
    return sum(tuple(got.get(c.name, ())) != c.keypoints for c in ds.schema.classes if c.keypoints)


def order_keypoints(ds: Dataset, cfg: Config) -> Dataset:
    """``ds`` (as read, keypoint names in order of first use) with each class's keypoint names and ``keypoints``
    columns as ``keypoint_names`` gives them: the config's order, and the names never placed."""
    kp = ds.annotations.keypoints
    used = {c.name: list(c.keypoints) for c in ds.schema.classes if c.keypoints}
    if kp is None or not used or not cfg.kp_labels:
        return ds
    names = keypoint_names(used, cfg, set(ds.schema.names))
    if names == used:
        return ds
    new = np.full((len(kp), max([kp.shape[1]] + [len(v) for v in names.values()]), 3), np.nan)
    rows = ~np.all(np.isnan(kp[:, :, 0]), axis=1)  # rows with keypoints (unplaced points are 0, not NaN)
    new[rows] = 0.0
    new[rows, : kp.shape[1]] = kp[rows]
    label = ds.annotations.label
    for c, cls in enumerate(ds.schema.classes):
        if cls.name in names:
            r = np.flatnonzero(rows & (label == c))
            new[r] = 0.0
            to = np.asarray([names[cls.name].index(n) for n in used[cls.name]], np.int64)
            new[np.ix_(r, to)] = kp[r, : len(used[cls.name])]
    classes = [dataclasses.replace(c, keypoints=tuple(names[c.name])) if c.name in names else c
               for c in ds.schema.classes]
    return ds.replace(schema=ds.schema.with_classes(classes),
                      annotations=dataclasses.replace(ds.annotations, keypoints=new))


def url_to_path(url: str) -> tuple[str, bool]:
    """(relative path, mappable) for an image URL (see the module glossary)."""
    u = urllib.parse.urlsplit(url)
    if u.scheme in ("http", "https") and u.path.startswith(("/data/upload/", "/data/local-files")):
        u = urllib.parse.urlsplit(u.path + ("?" + u.query if u.query else ""))
    if u.path.startswith("/data/local-files"):
        d = urllib.parse.parse_qs(u.query).get("d", [""])[0]
        return d, bool(d)
    if u.path.startswith("/data/upload/"):
        return "upload/" + urllib.parse.unquote(u.path[len("/data/upload/"):]), True
    if u.scheme in ("s3", "gs", "gcs", "azure-blob"):
        return f"{u.netloc}/{urllib.parse.unquote(u.path.lstrip('/'))}", True
    if u.scheme in ("http", "https", "data") or (u.scheme and len(u.scheme) > 1):
        return PurePosixPath(u.path).name if u.scheme != "data" else "", False
    if not u.scheme and u.path:  # a URL without a host: its path without the query, percent-decoded (a '#' is
        # kept: more often in a file name than a fragment); a file named so literally: see the reader
        return urllib.parse.unquote(urllib.parse.urlsplit(url, allow_fragments=False).path), True
    return url, True
