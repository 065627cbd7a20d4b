"""What a Label Studio export holds that maslow has no column for, kept so that writing Label Studio gives it back
(see labelstudio.py for the mapping):

- ``images.extra[<key>]``: each key of a task's ``data`` other than the image (image metadata: ``site``,
  ``camera``...; any other ``images.extra`` column is written to ``data``, so COCO's ``coco_id`` survives too);
- ``images.extra["ls_task"]``: the task's other keys (``meta``, ``file_upload``, ``created_at``, ``drafts``...);
- ``images.extra["ls_annotations"]``: ``{"annotations": [...], "predictions": [...]}``, each annotation and
  prediction of the task in order without the results maslow holds as rows: its other keys (``completed_by``,
  ``ground_truth``, ``lead_time``, ``was_cancelled``, ``model_version``...) and the results left (relations,
  ``taxonomy``, result types maslow has no mapping for, regions that could not be imported, every result of a
  cancelled annotation, and the image-level ``textarea``/``number``/``rating``/``datetime`` results: the one an
  image column holds marked ``"_value": true``, see ``_labelstudio_values``). Empty annotations are kept this way
  too;
- ``annotations.extra["ls_result"]``: a region's result keys and ``value`` keys maslow has no column for
  (``origin``, ``meta``, ``readonly``, an annotation result's ``score``, a keypoint's ``width``...; ``_score``
  marks a prediction result without a score of its own), with
  ``"attributes": {from_name: {...}}`` for those of its per-region results and ``"keypoints": {label: {...}}``
  for its keypoints (their ``id``, ``from_name`` and keys);
- ``Dataset.info["labelstudio"]``: ``label_config`` (the labeling config read, written back while it declares
  every class and attribute written) and ``image_key`` (when not ``image``).
"""

from __future__ import annotations

import json
import math
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
from defusedxml import ElementTree as SafeET

from maslow.core.dataset import Dataset

#: images.extra columns of the Label Studio reader (the others are task data)
OWN_IMAGE_EXTRA = ("ls_task_id", "ls_url", "ls_task", "ls_annotations")
#: task keys with a place of their own
TASK_KEYS = frozenset({"id", "data", "annotations", "completions", "predictions"})
_RESULT_KEYS = frozenset({"id", "type", "from_name", "to_name", "original_width", "original_height", "value",
                          "parentID"})
#: value keys held in columns, per region kind (the label key, ``labels`` included)
_VALUE_KEYS = {"box": {"x", "y", "width", "height", "rotation"}, "polygon": {"points"},
               "ellipse": {"x", "y", "radiusX", "radiusY", "rotation"}, "keypoint": {"x", "y"},
               "brush": {"format", "rle"}, "choices": {"choices"}, "textarea": {"text"}, "number": {"number"},
               "rating": {"rating"}, "datetime": {"datetime"}}


def leftover(res: dict[str, Any], kind: str, rtype: str, *, scored: bool) -> dict[str, Any] | None:
    """The keys of result ``res`` (of region ``kind``) that no column holds; ``scored``: ``score`` is in the score
    column (a prediction's)."""
    out = {k: v for k, v in res.items() if k not in _RESULT_KEYS}
    rot = out.get("image_rotation")
    if rot is None or (isinstance(rot, int | float) and not isinstance(rot, bool) and not (math.isfinite(rot) and rot)):
        out.pop("image_rotation", None)
    if scored and "score" not in res:
        out["_score"] = "prediction"  # the row's score is its prediction's: not written on the result
    elif scored:
        out.pop("score", None)
    value = res.get("value")
    if isinstance(value, dict):
        skip = _VALUE_KEYS.get(kind, set()) | {rtype, "labels"}
        extra = {k: v for k, v in value.items() if k not in skip and not (k == "closed" and v is True)}
        if extra:
            out["value"] = extra
    return out or None


def merge(res: dict[str, Any], kept: Any) -> dict[str, Any]:
    """``res`` with the keys ``leftover`` kept put back (``value`` keys into its value)."""
    if not isinstance(kept, dict):
        return res
    for k, v in kept.items():
        if k == "value" and isinstance(v, dict):
            res["value"] = {**res.get("value", {}), **v}
        elif k not in ("id", "type", "from_name", "to_name", "attributes", "keypoints") and not k.startswith("_"):
            res[k] = v
    return res


def header(group: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """An annotation or prediction without the results rows hold: its keys, and ``results`` (those left)."""
    return {**{k: v for k, v in group.items() if k != "result"}, "result": results}


def json_value(v: Any) -> tuple[Any, bool]:
    """``(value, present)``: a column value as JSON (numpy scalars and arrays as Python values); absent for None
    and NaN."""
    if isinstance(v, np.ndarray):
        v = v.tolist()
    elif isinstance(v, np.generic):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None, False
    return v, True


def task_data(ds: Dataset, i: int, image_key: str, url: str, lost: dict[str, int],
              skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A task's ``data``: the image URL and the image's ``extra`` columns (not Label Studio's own, nor ``skip``:
    image-level values, written as results)."""
    data: dict[str, Any] = {image_key: url}
    for k, col in ds.images.extra.items():
        if k in OWN_IMAGE_EXTRA or k in skip:
            continue
        v, present = json_value(col[i])
        if not present:
            continue
        if type(v) not in (str, int, bool) and not (type(v) is float and math.isfinite(v)):
            try:
                json.dumps(v, allow_nan=False)
            except (TypeError, ValueError):
                v = None
        if k == image_key or v is None:
            lost[f"images.extra.{k}"] = lost.get(f"images.extra.{k}", 0) + 1
            continue
        data[k] = v
    return data


# -- the labeling config read ----------------------------------------------------------------------------------
def controls(xml: str) -> tuple[dict[str, tuple[str, set[str]]], set[str]]:
    """Control name -> (tag in lower case, its label/choice values), and the names of the object tags
    (``<Image name value="$image">``) of a labeling config."""
    top = SafeET.fromstring(xml)
    out: dict[str, tuple[str, set[str]]] = {}
    objects: set[str] = set()
    for el in top.iter():
        name = el.get("name")
        if not name:
            continue
        if el.get("toName"):
            out[name] = (el.tag.lower(), {c.get("value", "") for c in el.iter() if c.tag in ("Label", "Choice")})
        elif str(el.get("value", "")).startswith("$"):
            objects.add(name)
    return out, objects


def misfit(xml: str, regions: dict[tuple[str, str], list[str]], choices: dict[str, list[str]],
           attributes: dict[str, Any], to_names: set[str], values: dict[str, tuple[str, list[str]]]) -> str | None:
    """Why the labeling config ``xml`` can't hold what is written (None: it can): a control, label or object it
    does not declare (``values``: image-level value controls, name -> result type and choices)."""
    try:
        ctl, objects = controls(xml)
    except (ET.ParseError, ValueError) as e:
        return f"it is not readable XML ({e})"
    wanted = [(tag.lower(), name, labels) for (tag, name), labels in regions.items()]
    wanted += [("choices", name, labels) for name, labels in choices.items()]
    wanted += [(rtype, name, labels) for name, (rtype, labels) in values.items()]
    for tag, name, labels in wanted:
        have = ctl.get(name)
        if have is None or have[0] != tag:
            return f"it has no <{tag}> named {name!r}"
        extra = [x for x in labels if x not in have[1]]
        if extra:
            return f"<{have[0]} name={name!r}> does not declare {extra[0]!r}"
    for name in attributes:
        if name not in ctl:
            return f"it has no control named {name!r} (an attribute)"
    unknown = sorted(to_names - objects)
    if unknown:
        return f"it has no object named {unknown[0]!r}"
    return None
