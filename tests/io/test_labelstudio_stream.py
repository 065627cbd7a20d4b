"""Label Studio task lists read a piece at a time and written a batch at a time: tasks across piece boundaries,
strings that look like JSON structure, malformed JSON named by its task, memory that does not follow the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from maslow.core.dataset import Dataset
from maslow.core.schema import AttributeDef, LabelSchema
from maslow.core.tables import Annotations, Images
from maslow.core.types import obj_array
from maslow.errors import FormatError
from maslow.io import labelstudio as ls
from tests.helpers import assert_datasets_equal, traced_peak

#: Strings a boundary scan could take for structure: brackets, commas, quotes, escapes, non-ASCII, separators.
AWKWARD = ['}, {"data": [1, 2]}, {', 'a "quoted" word', "back\\slash\\", '\\"]}', "ünïcødé ☃ 😀", "\u2028\u2029",
           "\\\\\\", '"', "[{]}", "tab\there\nnewline", ""]


def _boxes(n_images: int, per_image: int = 3) -> Dataset:
    """Boxes with a text attribute and annotator names made of awkward strings, image URLs too."""
    n = n_images * per_image
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, (n, 2))
    words = [AWKWARD[k % len(AWKWARD)] for k in range(n)]
    return Dataset(
        schema=_schema(),
        images=Images(path=obj_array([f"img/{i} {AWKWARD[i % 9][:3]}.jpg".replace("\\", "_").replace('"', "q")
                                      for i in range(n_images)]),
                      width=np.full(n_images, 200), height=np.full(n_images, 160)),
        annotations=Annotations(image=np.repeat(np.arange(n_images), per_image), label=np.arange(n) % 2,
                                box=np.hstack([xy, xy + rng.uniform(1, 40, (n, 2))]).round(3),
                                attributes={"note": obj_array([w or None for w in words])},
                                annotator=obj_array([f"{w}@x.org" for w in words])),
    )


def _schema() -> LabelSchema:
    base = LabelSchema.from_names(["car", "person"])
    return LabelSchema(classes=base.classes, tasks=base.tasks, attributes=(AttributeDef("note"),))


def _same(a: Dataset, b: Dataset) -> None:
    assert_datasets_equal(a, b, attributes=("note",))
    assert a.annotations.annotator is not None and b.annotations.annotator is not None
    assert a.annotations.annotator.tolist() == b.annotations.annotator.tolist()
    for k in a.annotations.extra:
        assert a.annotations.extra[k].tolist() == b.annotations.extra[k].tolist(), k


@pytest.mark.parametrize("chunk_bytes", [1, 7, 300, 5000, 1 << 18])
@pytest.mark.parametrize("minified", [False, True], ids=["indented", "minified"])
def test_tasks_across_piece_boundaries_read_as_a_whole(tmp_path: Path, chunk_bytes: int, minified: bool) -> None:
    ds = _boxes(40)
    src = tmp_path / "tasks.json"
    ls.write(ds, src)
    if minified:  # no whitespace: every '}, {' inside a string sits next to real boundaries
        src.write_bytes(orjson.dumps(json.loads(src.read_bytes())))
    back, report = ls.parse(src, chunk_bytes=chunk_bytes)
    assert len(report) == 0
    assert_datasets_equal(ds, back, attributes=("note",))
    assert ds.annotations.annotator is not None and back.annotations.annotator is not None
    assert back.annotations.annotator.tolist() == ds.annotations.annotator.tolist()
    whole, _ = ls.parse(src, chunk_bytes=1 << 30)  # one piece
    _same(whole, back)


def _task(i: int) -> dict[str, object]:
    return {"id": i, "data": {"image": f"img/{i}.jpg"}, "annotations": [{"id": 100 + i, "result": [
        {"id": f"r{i}", "type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 100,
         "original_height": 100, "value": {"x": 1, "y": 2, "width": 3, "height": 4, "rectanglelabels": ["car"]}}]}]}


def _document(n: int = 6) -> str:
    return json.dumps([_task(i) for i in range(n)], indent=2)


def _break(text: str, what: str) -> str:
    start = text.index('"id": 3,')  # inside task 3 of 6
    if what == "missing-comma":
        at = text.index('"x": 1,', start) + len('"x": 1')
        return text[:at] + text[at + 1:]
    if what == "unterminated-string":
        at = text.index('"rectanglelabels": [', start)
        return text[:at] + '"rectangle' + "\x01" + text[at + 10:]
    if what == "bad-literal":
        at = text.index('"y": 2', start)
        return text[:at] + '"y": tru' + text[at + 6:]
    if what == "truncated":
        return text[:text.index('"value"', start)]
    if what == "stray-brace":
        at = text.index('"annotations"', start) - 1
        return text[:at] + "}}" + text[at:]
    raise AssertionError(what)


@pytest.mark.parametrize("what", ["missing-comma", "unterminated-string", "bad-literal", "truncated", "stray-brace"])
@pytest.mark.parametrize("chunk_bytes", [1, 200, 1 << 18])
def test_malformed_json_names_the_task_line_and_column(tmp_path: Path, what: str, chunk_bytes: int) -> None:
    text = _break(_document(), what)
    src = tmp_path / "tasks.json"
    src.write_text(text, encoding="utf-8")
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    with pytest.raises(FormatError) as got:
        ls.parse(src, chunk_bytes=chunk_bytes)
    e = want.value
    assert got.value.record == "task 3"
    assert str(got.value).endswith(f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param('{"data": {"image": "a.jpg"}}', "list of tasks, got dict", id="one-task-object"),
        pytest.param('{"data": {"image": "a.jpg"}}\n{"data": {"image": "b.jpg"}}',
                     "malformed JSON at line 2 column 1: Extra data", id="json-lines"),
        pytest.param('[{"data": {"image": "a.jpg"}}] []', r"after task 0: malformed JSON at line 1 column 32: Extra data",
                     id="trailing-data"),
        pytest.param('[{"data": {"image": "a.jpg"}},\n]', r"task 1: malformed JSON at line 2 column 1", id="trailing-comma"),
        pytest.param('[{"data": {"image": "a.jpg"}}', r"task 0: malformed JSON at line 1 column 30", id="no-closing"),
        pytest.param("", "malformed JSON at line 1 column 1: Expecting value", id="empty-file"),
        pytest.param('[{"data": {"image": "\xff"}}]', "must be UTF-8 text", id="latin-1"),
    ],
)
def test_documents_that_are_not_a_task_list(tmp_path: Path, text: str, match: str) -> None:
    src = tmp_path / "tasks.json"
    src.write_bytes(text.encode("latin-1" if "\xff" in text else "utf-8"))
    for chunk_bytes in (1, 1 << 18):
        with pytest.raises(FormatError, match=match):
            ls.parse(src, chunk_bytes=chunk_bytes)


@pytest.mark.parametrize(
    ("data", "n_images"),
    [
        pytest.param(b"[]", 0, id="empty"),
        pytest.param(b" \n\t[ \r\n ]\n\n", 0, id="empty-padded"),
        pytest.param(b"\xef\xbb\xbf" + _document(2).encode(), 2, id="byte-order-mark"),
        pytest.param(_document(3).replace('"from_name"', '"image_rotation": NaN, "from_name"').encode(), 3,
                     id="nan-literal"),  # orjson refuses NaN; the json module reads it, as before
    ],
)
def test_edge_documents_read_as_the_json_module_does(tmp_path: Path, data: bytes, n_images: int) -> None:
    src = tmp_path / "tasks.json"
    src.write_bytes(data)
    for chunk_bytes in (1, 1 << 18):
        ds, report = ls.parse(src, chunk_bytes=chunk_bytes)
        assert len(report) == 0
        assert ds.n_images == n_images and ds.n_annotations == n_images
        assert ds.images.path.tolist() == [f"img/{i}.jpg" for i in range(n_images)]


@pytest.fixture(scope="module")
def many() -> Dataset:
    return _boxes(1200, per_image=4)  # 4.8 MB of tasks: 19 batches of 64 when written


def test_reading_holds_pieces_not_the_document(many: Dataset, tmp_path: Path) -> None:
    src = tmp_path / "tasks.json"
    ls.write(many, src)
    size = src.stat().st_size
    holder: list[Dataset] = []
    peak = traced_peak(lambda: holder.append(ls.parse(src, chunk_bytes=1 << 14)[0]))
    assert peak < size // 2, (peak, size)  # the whole document as Python objects is about 2.5 times the file
    _same(holder[0], ls.parse(src, chunk_bytes=1 << 30)[0])


def test_writing_holds_batches_not_the_document(many: Dataset, tmp_path: Path) -> None:
    dst = tmp_path / "tasks.json"
    peak = traced_peak(lambda: ls.write(many, dst))
    data = dst.read_bytes()
    assert peak < len(data) // 2, (peak, len(data))  # the list of tasks and its bytes: 3 times the file
    # the bytes of one indented dump of the whole list, as before
    assert data == orjson.dumps(json.loads(data), option=orjson.OPT_INDENT_2)
