"""The Label Studio reader's labeling config (classes, attributes, controls) and its image URL mapping (see
labelstudio.py)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree as ET

from defusedxml import ElementTree as SafeET

from maslow.core.schema import AttributeDef
from maslow.errors import FormatError

_CONTROLS = {"RectangleLabels": "box", "PolygonLabels": "polygon", "KeyPointLabels": "keypoint",
             "BrushLabels": "brush", "EllipseLabels": "ellipse", "Labels": "any", "Choices": "choices"}


@dataclass
class Config:
    classes: dict[str, set[str]] = field(default_factory=dict)  # name -> label types
    colors: dict[str, str] = field(default_factory=dict)
    kp_labels: set[str] = field(default_factory=set)
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
                    out.kp_labels.add(name)
                    continue
                out.classes.setdefault(name, set()).add(kind)
                if lab.get("background"):
                    out.colors.setdefault(name, lab.get("background", ""))
    return out


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
