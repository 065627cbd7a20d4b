"""Regressions found by property checks of the core tables and schema: nothing is silently cut, cast or split."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from maslow.core.schema import AttributeDef, ClassDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.errors import InvalidDatasetError, SchemaError


@pytest.mark.parametrize(
    ("cols", "match"),
    [
        pytest.param({"label": [0, 1, 2]}, r"annotations\.label: length must be 2, got 3", id="long-label-was-cut"),
        pytest.param({"label": [0]}, r"annotations\.label: length must be 2, got 1", id="short-label-indexerror"),
        pytest.param({"label": [0, 0], "box": [[0, 0, 1, 1]] * 3}, r"annotations\.box: length must be 2, got 3",
                     id="long-box"),
        pytest.param({"label": [0, 0], "keypoints": np.zeros((4, 2, 3))},
                     r"annotations\.keypoints: length must be 2, got 4", id="long-keypoints"),
        pytest.param({"label": [0, 0], "attributes": {"a": [1, 2, 3]}},
                     r"annotations\.attributes\['a'\]: length must be 2, got 3", id="long-attribute"),
    ],
)
def test_sort_rows_refuses_columns_of_the_wrong_length(cols: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidDatasetError, match=match):
        Annotations.sort_rows(image=[1, 0], **cols)


def test_sort_rows_names_a_bad_image_row_in_the_callers_order() -> None:
    with pytest.raises(InvalidDatasetError, match=r"annotations\.image row 1: must be an integer, got nan"):
        Annotations.sort_rows(image=[2, np.nan, 0], label=[0, 1, 2])
    with pytest.raises(InvalidDatasetError, match=r"annotations\.image row 2: must be an integer, got 1\.5"):
        Annotations.sort_rows(image=[2, 0, 1.5], label=[0, 1, 2])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        pytest.param({"iscrowd": [2]}, r"annotations\.iscrowd row 0: must be a boolean \(or 0/1\), got 2", id="two"),
        pytest.param({"iscrowd": [np.nan]}, r"annotations\.iscrowd row 0: must be a boolean", id="nan"),
        pytest.param({"iscrowd": ["no"]}, r"annotations\.iscrowd: must be booleans, got dtype <U2", id="str"),
        pytest.param({"iscrowd": [[0, 1]]}, r"annotations\.iscrowd: must be 1-D", id="2d"),
        pytest.param({"image": [1e30]}, r"annotations\.image row 0: must be an integer, got 1e\+30", id="huge-float"),
        pytest.param({"image": np.array([2**63 + 5], np.uint64)}, r"annotations\.image row 0: must fit in int64",
                     id="uint64-wraps"),
        pytest.param({"mask": np.empty((1, 2), object)}, r"annotations\.mask: must be 1-D", id="2d-mask"),
        pytest.param({"extra": {"x": np.array(5)}}, r"annotations\.extra\['x'\]: must be a column of 1 values",
                     id="0d-extra-typeerror"),
        pytest.param({"attributes": {"x": "a"}}, r"annotations\.attributes\['x'\]: must be a column of 1 values",
                     id="str-attribute"),
    ],
)
def test_annotations_refuse_instead_of_casting(kw: dict[str, Any], match: str) -> None:
    cols: dict[str, Any] = {"image": [0], "label": [0], **kw}
    with pytest.raises(InvalidDatasetError, match=match):
        Annotations(**cols)


def test_iscrowd_accepts_booleans_and_zero_one_numbers() -> None:
    for crowd in ([0, 1], [0.0, 1.0], np.array([False, True]), np.array([False, True], object)):
        a = Annotations(image=[0, 0], label=[0, 0], iscrowd=crowd)
        assert a.iscrowd is not None and a.iscrowd.dtype == bool and a.iscrowd.tolist() == [False, True]


def test_negative_label_names_the_first_bad_row() -> None:
    with pytest.raises(InvalidDatasetError, match=r"annotations\.label row 1: must be >= 0, got -1 \(2 rows\)"):
        Annotations(image=[0, 0, 0], label=[0, -1, -5])


def test_images_refuse_a_str_path_and_huge_sizes() -> None:
    with pytest.raises(InvalidDatasetError, match=r"images\.path: must be a column of paths, got the str 'abc'"):
        Images(path="abc", width=[1, 1, 1], height=[1, 1, 1])  # type: ignore[arg-type]
    with pytest.raises(InvalidDatasetError, match=r"images\.width row 0: must be an integer, got 1e\+20"):
        Images(path=["a"], width=[1e20], height=[1])


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda: ClassDef("a", keypoints="nose"), r"class 'a': keypoints: must be a list of names, got the str",
                     id="str-keypoints"),
        pytest.param(lambda: ClassDef("a", label_types="box"), r"class 'a': label_types: must be a list", id="str-types"),
        pytest.param(lambda: ClassDef("a", keypoints=("x", "y"), skeleton=((0.5, 1),)),
                     r"skeleton pair \(0\.5, 1\) must be two ints", id="float-skeleton"),
        pytest.param(lambda: ClassDef("a", keypoints=("x", "y"), skeleton=(1,)), r"skeleton entries must be pairs",
                     id="int-skeleton-typeerror"),
        pytest.param(lambda: ClassDef("a", id="1"), r"class 'a': id must be an int or None, got '1'", id="str-id"),
        pytest.param(lambda: AttributeDef("a", type="enum", values="abc"), r"attribute 'a': values: must be a list",
                     id="str-values"),
        pytest.param(lambda: AttributeDef("a", classes="car"), r"attribute 'a': classes: must be a list", id="str-classes"),
        pytest.param(lambda: AttributeDef("a", required="false"), r"attribute 'a': required must be true or false",
                     id="str-required"),
        pytest.param(lambda: LabelSchema(classes=(ClassDef("a"),), tasks="detection"),
                     r"schema\.tasks: must be a list of tasks, got the str 'detection'", id="str-tasks"),
        pytest.param(lambda: LabelSchema(classes=(ClassDef("a"),), version="2"), r"schema\.version: must be an int",
                     id="str-version"),
        pytest.param(lambda: LabelSchema.from_dict({"classes": [{"name": "a", "keypoints": "nose"}]}),
                     r"class 'a': keypoints: must be a list", id="from-dict-str-keypoints"),
        pytest.param(lambda: LabelSchema.from_dict({"classes": [{"name": "a", "keypoints": ["x", "y"],
                                                                 "skeleton": [[0.7, 1]]}]}),
                     r"skeleton pair \(0\.7, 1\) must be two ints", id="from-dict-float-skeleton"),
        pytest.param(lambda: LabelSchema.from_dict({"classes": [{"name": "a"}],
                                                    "attributes": [{"name": "x", "required": "false"}]}),
                     r"required must be true or false", id="from-dict-str-required"),
    ],
)
def test_schema_refuses_instead_of_splitting_or_casting(make: Any, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        make()


def test_schema_built_from_lists_is_hashable_and_round_trips() -> None:
    s = LabelSchema(
        classes=(ClassDef("p", label_types=["box", "keypoints"], keypoints=["x", "y"], skeleton=[[0, 1]],  # type: ignore[arg-type]
                          id=np.int64(3)),),  # type: ignore[arg-type]
        attributes=(AttributeDef("lvl", type="enum", values=["lo", "hi"], classes=["p"], required=np.bool_(True)),),  # type: ignore[arg-type]
        version=np.int64(2),  # type: ignore[arg-type]
    )
    hash(s)
    c = s.classes[0]
    assert c.skeleton == ((0, 1),) and type(c.id) is int and type(s.version) is int
    assert LabelSchema.from_dict(json.loads(json.dumps(s.to_dict()))) == s
