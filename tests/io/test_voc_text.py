"""Pascal VOC XML written as text and read by the C parser: the exact bytes ElementTree wrote, special characters
that round-trip, and defusedxml for every file with a DOCTYPE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maslow import Annotations, ClassDef, Dataset, FormatError, Images, LabelSchema
from maslow.io import voc

NAMES = ("a&b", "<tag>", 'say "hi"', "it's", "caf\u00e9 \u2603", "1 > 0")


def _dataset(root: Path) -> Dataset:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("x&y.png", "b.png"):
        Image.new("L", (20, 10)).save(root / name)
    schema = LabelSchema(classes=tuple(ClassDef(n) for n in NAMES))
    ann = Annotations(
        image=np.array([0, 0, 0, 1, 1, 1]), label=np.arange(6),
        box=np.array([[0, 0, 20, 10], [1.5, 2.25, 3, 4], [np.nan] * 4, [2, 2, 5, 5], [0, 1, 2, 3], [4, 4, 6, 6]]),
        attributes={"difficult": np.array([True, False, None, None, np.bool_(True), 1], object),
                    "note": np.array(["x < y & z", "", None, 'q"uote\'s', "caf\u00e9", " pad "], object),
                    "pose": np.array(["Left", None, None, "", None, None], object)})
    images = Images(path=np.array(["x&y.png", "b.png"], object), width=np.array([20, 20]),
                    height=np.array([10, 10]), split=np.array(["train", ""], object))
    return Dataset(schema=schema, images=images, annotations=ann, root=root)


def test_written_xml_is_the_bytes_elementtree_wrote(tmp_path: Path) -> None:
    rep = voc.write(_dataset(tmp_path / "src"), tmp_path / "out")
    assert (tmp_path / "out/Annotations/x&y.xml").read_text(encoding="utf-8") == (
        "<annotation>\n\t<folder>JPEGImages</folder>\n\t<filename>x&amp;y.png</filename>\n\t<size>\n"
        "\t\t<width>20</width>\n\t\t<height>10</height>\n\t\t<depth>3</depth>\n\t</size>\n"
        "\t<segmented>0</segmented>\n"
        "\t<object>\n\t\t<name>a&amp;b</name>\n\t\t<difficult>1</difficult>\n\t\t<pose>Left</pose>\n"
        "\t\t<attributes>\n\t\t\t<attribute>\n\t\t\t\t<name>note</name>\n\t\t\t\t<value>x &lt; y &amp; z</value>\n"
        "\t\t\t</attribute>\n\t\t</attributes>\n"
        "\t\t<bndbox>\n\t\t\t<xmin>1</xmin>\n\t\t\t<ymin>1</ymin>\n\t\t\t<xmax>20</xmax>\n\t\t\t<ymax>10</ymax>\n"
        "\t\t</bndbox>\n\t</object>\n"
        "\t<object>\n\t\t<name>&lt;tag&gt;</name>\n\t\t<difficult>0</difficult>\n"
        "\t\t<attributes>\n\t\t\t<attribute>\n\t\t\t\t<name>note</name>\n\t\t\t\t<value />\n"
        "\t\t\t</attribute>\n\t\t</attributes>\n"
        "\t\t<bndbox>\n\t\t\t<xmin>2.5</xmin>\n\t\t\t<ymin>3.25</ymin>\n\t\t\t<xmax>3</xmax>\n\t\t\t<ymax>4</ymax>\n"
        "\t\t</bndbox>\n\t</object>\n</annotation>")
    b = (tmp_path / "out/Annotations/b.xml").read_text(encoding="utf-8")
    assert "<name>say \"hi\"</name>" not in b  # the box-less object of class 'say "hi"' is not written
    assert "\t\t<name>it's</name>\n\t\t<pose />\n" in b and "<value>q\"uote's</value>" in b
    assert "\t\t<name>caf\u00e9 \u2603</name>\n\t\t<difficult>1</difficult>\n" in b
    assert "<name>1 &gt; 0</name>\n\t\t<difficult>1</difficult>" in b  # 1 is written as a flag too
    assert rep.lost["attributes"] == 1 and rep.lost["annotations"] == 1  # ' pad ' (stripped on reading)


def test_special_characters_round_trip(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "src")
    voc.write(ds, tmp_path / "out")
    back, report = voc.parse(tmp_path / "out")
    assert back.schema.names == NAMES
    assert back.images.path.tolist() == ["b.png", "x&y.png"]
    names = [back.schema.names[k] for k in back.annotations.label]
    assert names == ["it's", "caf\u00e9 \u2603", "1 > 0", "a&b", "<tag>"]
    assert back.annotations.attributes["note"].tolist() == ["q\"uote's", "caf\u00e9", "pad", "x < y & z", ""]
    assert back.annotations.attributes["difficult"].tolist() == [None, True, True, True, False]
    assert back.annotations.box is not None
    np.testing.assert_array_equal(back.annotations.box[3:], [[0, 0, 20, 10], [1.5, 2.25, 3, 4]])
    assert len(report) == 0


def _voc(tmp_path: Path, files: dict[str, bytes]) -> Path:
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    for name, data in files.items():
        (root / "Annotations" / f"{name}.xml").write_bytes(data)
    return root


_BODY = ("<annotation><filename>a.png</filename><size><width>9</width><height>9</height></size><object>"
         "<name>{}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox></object>"
         "</annotation>")


@pytest.mark.parametrize("data", [
    pytest.param(b'<?xml version="1.0"?><!DOCTYPE annotation>' + _BODY.format("cat").encode(), id="doctype"),
    pytest.param(('<?xml version="1.0" encoding="UTF-16"?>' + _BODY.format("cat")).encode("utf-16"), id="utf-16"),
    pytest.param(b"<!-- by hand -->\n" + _BODY.format("cat").encode(), id="comment-first"),
    pytest.param(b'<?xml version="1.0" encoding="ISO-8859-1"?>' + _BODY.format("caf\xe9").encode("latin-1"),
                 id="latin-1"),
    pytest.param(b"\xef\xbb\xbf" + _BODY.format("c&#97;t").encode(), id="bom-and-character-reference"),
])
def test_files_of_any_prolog_parse(tmp_path: Path, data: bytes) -> None:
    ds, report = voc.parse(_voc(tmp_path, {"a": data}))
    assert ds.schema.names in (("cat",), ("caf\u00e9",)) and ds.n_annotations == 1 and len(report) == 0


@pytest.mark.parametrize("prolog", [
    pytest.param('<!DOCTYPE annotation [<!ENTITY c "cat">]>', id="internal-entity"),
    pytest.param('<!DOCTYPE annotation [<!ENTITY c SYSTEM "file:///etc/passwd">]>', id="external-entity"),
    pytest.param('<!DOCTYPE annotation [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>',
                 id="entity-expansion"),
])
def test_entities_are_refused_as_defusedxml_refuses_them(tmp_path: Path, prolog: str) -> None:
    data = ('<?xml version="1.0"?>' + prolog + _BODY.format("&c;" if "c" in prolog else "&b;")).encode()
    with pytest.raises(FormatError, match=r"a\.xml: refused unsafe XML \((Entities|External)"):
        voc.parse(_voc(tmp_path, {"a": data}))


def test_malformed_files_name_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"a\.xml: malformed XML at line 1 column \d+: undefined entity"):
        voc.parse(_voc(tmp_path, {"a": _BODY.format("&nope;").encode()}))


def test_objects_of_unlisted_classes_add_no_attribute_columns(tmp_path: Path) -> None:
    obj = ("<object><name>{}</name>{}<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>3</xmax><ymax>3</ymax></bndbox>"
           "</object>")
    body = ("<annotation><filename>a.png</filename><size><width>9</width><height>9</height></size>"
            + obj.format("bird", "<wing>left</wing><part><x>1</x></part>")
            + obj.format("cat", "<colour>red</colour><difficult>yes</difficult>")
            + obj.format("cat", "<difficult>0</difficult><colour>tabby</colour><tail>long</tail>")
            + obj.format("dog", "") + "</annotation>")
    ds, report = voc.parse(_voc(tmp_path, {"a": body.encode()}), classes=["cat", "dog"])
    at = ds.annotations.attributes
    assert list(at) == ["colour", "difficult", "tail"]  # in order of first use; 'wing' only on the bird
    assert at["colour"].tolist() == ["red", "tabby", None]
    assert at["difficult"].tolist() == [True, False, None]
    assert at["tail"].tolist() == [None, "long", None]
    assert [i.type for i in report] == ["voc_nested_tag", "voc_unknown_class"]  # <part> of the bird too


def test_a_large_dataset_is_written_as_its_images_alone_are(tmp_path: Path) -> None:
    """Objects are made a few thousand images at a time: the last images' files are the bytes they get alone."""
    n = 4200
    rng = np.random.default_rng(1)
    box = np.column_stack([rng.uniform(0, 10, n), rng.uniform(0, 5, n), rng.uniform(10, 20, n), rng.uniform(5, 10, n)])
    ann = Annotations(image=np.arange(n), label=np.arange(n) % 2, box=box,
                      attributes={"note": np.array([f"n&{i}" if i % 3 else None for i in range(n)], object)})
    images = Images(path=np.array([f"im{i:05d}.png" for i in range(n)], object), width=np.full(n, 20),
                    height=np.full(n, 10))
    ds = Dataset(schema=LabelSchema(classes=(ClassDef("a"), ClassDef("b"))), images=images, annotations=ann)
    voc.write(ds, tmp_path / "all", images=False)
    voc.write(ds.select_images(np.arange(4190, n)), tmp_path / "part", images=False)
    for i in range(4190, n):
        rel = f"Annotations/im{i:05d}.xml"
        assert (tmp_path / "all" / rel).read_bytes() == (tmp_path / "part" / rel).read_bytes()
        assert (tmp_path / "all" / rel).read_bytes().count(b"<object>") == 1
