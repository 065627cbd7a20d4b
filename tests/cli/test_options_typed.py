"""``--read-option``/``--write-option`` values checked against the reader's or writer's type annotations
(``maslow.cli._options.parse_options``), and the value ranges the readers and writers check themselves: a bad
value is a MaslowError (exit 2) naming the flag, the key, the type expected and the value, never a traceback or
a value taken as something else (``indent=abc`` wrote invalid JSON, ``images=maybe`` read as true).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from typer.testing import CliRunner

from maslow import io
from maslow.cli import data as cli_data
from maslow.cli._options import parse_options
from maslow.cli.main import app
from maslow.errors import FormatError, MaslowError
from maslow.sample import shapes, write_shapes

runner = CliRunner()


def _parse(fmt: str, kind: str, *pairs: str) -> dict[str, Any]:
    spec = io.get_format(fmt)
    func = spec.parse if kind == "reader" else spec.write
    flag = "--read-option" if kind == "reader" else "--write-option"
    return parse_options(list(pairs), func, flag=flag, what=f"{fmt} {kind}")


# the audit's values: each crashed (traceback, exit 1) or was taken silently
BAD = [
    pytest.param("yolo", "writer", "decimals=abc", "an integer or null", id="yolo-decimals"),
    pytest.param("masks", "writer", "background_index=abc", "an integer or null", id="masks-background"),
    pytest.param("labelstudio", "writer", "url_prefix=5", "a text", id="labelstudio-url-prefix"),
    pytest.param("parquet", "writer", "row_group_size=abc", "an integer", id="parquet-row-group"),
    pytest.param("masks", "reader", "classes=5", "a list of texts or a mapping of integers to texts",
                 id="masks-classes"),
    pytest.param("openimages", "reader", "class_descriptions=5", "a text or a path or null", id="oi-descriptions"),
    pytest.param("coco", "writer", "indent=abc", "an integer or null", id="coco-indent"),
    pytest.param("yolo", "writer", "images=maybe", "true or false", id="yolo-images"),
    pytest.param("yolo", "writer", "copy_images=abc", "true or false", id="yolo-copy-images"),
    pytest.param("voc", "writer", "integer_coordinates=abc", "true or false", id="voc-integer"),
    pytest.param("coco", "writer", "obb=abc", "true or false", id="coco-obb"),
    pytest.param("openimages", "writer", "images=abc", "true or false", id="oi-images"),
    pytest.param("masks", "reader", "ignore_index=abc", "an integer or null", id="masks-ignore"),
    pytest.param("coco", "reader", "chunk_bytes=abc", "an integer", id="coco-chunk-bytes"),
    pytest.param("yolo", "writer", "images=", "true or false", id="empty-value-for-a-bool"),
    pytest.param("yolo", "reader", "kpt_shape=[17]", "a list of 2 integers or null", id="tuple-length"),
    pytest.param("yolo", "reader", "names=[1, b]", "a list of texts", id="list-item"),
    pytest.param("yolo", "writer", "decimals=true", "an integer", id="bool-is-no-int"),
]


@pytest.mark.parametrize(("fmt", "kind", "pair", "expected"), BAD)
def test_a_value_of_another_type_is_refused_naming_flag_key_type_and_value(fmt: str, kind: str, pair: str,
                                                                            expected: str) -> None:
    key, _, text = pair.partition("=")
    with pytest.raises(MaslowError) as err:
        _parse(fmt, kind, pair)
    msg = str(err.value)
    flag = "--read-option" if kind == "reader" else "--write-option"
    assert msg.startswith(f"{flag} {key}: the {fmt} {kind}'s {key} must be ") and expected in msg, msg
    assert f"got {text!r} (read as " in msg, msg


def test_a_number_for_a_text_option_says_how_to_quote_it() -> None:
    with pytest.raises(MaslowError, match=r"url_prefix must be a text, got '5' \(read as an integer\)\. "
                                          r"Quote it to pass it as text: url_prefix='5'"):
        _parse("labelstudio", "writer", "url_prefix=5")


@pytest.mark.parametrize(("fmt", "kind", "pairs", "want"), [
    pytest.param("yolo", "writer", ["decimals=4", "images=false", "task=detect"],
                 {"decimals": 4, "images": False, "task": "detect"}, id="scalars"),
    pytest.param("yolo", "writer", ["decimals="], {"decimals": None}, id="null-for-optional"),
    pytest.param("yolo", "reader", ["kpt_shape=[17, 3]", "names={0: a, 2: b}"],
                 {"kpt_shape": (17, 3), "names": {0: "a", 2: "b"}}, id="tuple-and-mapping"),
    pytest.param("masks", "reader", ["classes=[road, sky]", "ignore_index=255"],
                 {"classes": ["road", "sky"], "ignore_index": 255}, id="list"),
    pytest.param("masks", "reader", ["classes=classes.txt"], {"classes": "classes.txt"}, id="text-before-path"),
    pytest.param("mnist", "reader", ["labels=t10k-labels.gz"], {"labels": Path("t10k-labels.gz")}, id="path"),
    pytest.param("coco-panoptic", "reader", ["png_folder=panoptic"], {"png_folder": Path("panoptic")},
                 id="path-or-text"),
    pytest.param("parquet", "writer", ["compression=snappy", "row-group-size=1024"],
                 {"compression": "snappy", "row_group_size": 1024}, id="dash-in-key"),
])
def test_good_values_pass_converted(fmt: str, kind: str, pairs: list[str], want: dict[str, Any]) -> None:
    got = _parse(fmt, kind, *pairs)
    assert got == want
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


def test_literal_float_and_untyped_parameters() -> None:
    def write(ds: Any, dst: Path, *, layout: Literal["csv", "kaggle"] = "csv", scale: float = 1.0,
              anything: Any = None) -> None: ...

    assert parse_options(["layout=kaggle", "scale=2", "anything=[1, x]"], write, flag="--write-option", what="w") \
        == {"layout": "kaggle", "scale": 2, "anything": [1, "x"]}
    with pytest.raises(MaslowError, match=r"layout must be one of 'csv', 'kaggle', got 'tsv'"):
        parse_options(["layout=tsv"], write, flag="--write-option", what="w")
    with pytest.raises(MaslowError, match=r"scale must be a number, got 'yes' \(read as true/false\)"):
        parse_options(["scale=yes"], write, flag="--write-option", what="w")


@pytest.mark.parametrize(("pair", "match"), [
    ("decimals", "must be KEY=VALUE"),
    ("nope=1", "'nope': the yolo writer takes task, images, copy_images, flip_idx, decimals"),
    ("decimals=[1", "VALUE must be YAML"),
])
def test_malformed_pairs_and_unknown_keys(pair: str, match: str) -> None:
    with pytest.raises(MaslowError, match=match):
        _parse("yolo", "writer", pair)


def test_every_registered_reader_and_writer_annotation_is_understood() -> None:
    """A value of the default's own type passes for every keyword option of every format (no annotation the
    checker refuses everything for)."""
    import inspect

    for fmt, spec in io.registry.FORMATS.items():
        funcs = [("reader", spec.parse)] + ([("writer", spec.write)] if spec.can_write else [])
        for kind, func in funcs:
            for name, p in inspect.signature(func).parameters.items():
                default = p.default
                if p.kind is not p.KEYWORD_ONLY or name in ("images_root", "strict", "progress") or \
                        not isinstance(default, bool | int | float | str) or default is None:
                    continue
                text = json.dumps(default) if not isinstance(default, str) else f"'{default}'"
                got = parse_options([f"{name}={text}"], func, flag="--x", what=f"{fmt} {kind}")
                assert got == {name: default}, (fmt, kind, name)


# -- the ranges a type can't say: the readers and writers refuse them themselves ------------------------------
@pytest.mark.parametrize(("call", "match"), [
    pytest.param(lambda ds, d: io.get_format("yolo").write(ds, d, decimals="abc"), "decimals must be an integer 0",
                 id="yolo-decimals-text"),
    pytest.param(lambda ds, d: io.get_format("yolo").write(ds, d, decimals=-1), "decimals must be an integer 0",
                 id="yolo-decimals-negative"),
    pytest.param(lambda ds, d: io.get_format("masks").write(ds, d, background_index="abc"),
                 "background_index must be a label map value", id="masks-background"),
    pytest.param(lambda ds, d: io.get_format("parquet").write(ds, d, compression="foo"),
                 "compression must be one of zstd, snappy", id="parquet-compression"),
    pytest.param(lambda ds, d: io.get_format("parquet").write(ds, d, row_group_size="abc"),
                 "row_group_size must be an integer >= 1", id="parquet-row-group-text"),
    pytest.param(lambda ds, d: io.get_format("parquet").write(ds, d, row_group_size=0),
                 "row_group_size must be an integer >= 1", id="parquet-row-group-0"),
    pytest.param(lambda ds, d: io.get_format("coco").write(ds, d / "x.json", indent="abc"),
                 "indent must be an integer >= 0", id="coco-indent"),
    pytest.param(lambda ds, d: io.get_format("coco").write(ds, d / "x.json", obb="abc"), "obb must be True or False",
                 id="coco-obb"),
])
def test_writers_refuse_values_out_of_range(tmp_path: Path, call: Any, match: str) -> None:
    with pytest.raises(FormatError, match=match):
        call(shapes(3, seed=1), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parquet_takes_its_codecs_in_any_case(tmp_path: Path) -> None:
    rep = io.get_format("parquet").write(shapes(3, seed=1), tmp_path / "pq", compression="GZIP")
    assert rep.n_images == 3


def test_readers_refuse_values_out_of_range(tmp_path: Path) -> None:
    write_shapes(tmp_path / "s", 3, seed=1)
    io.get_format("masks").write(shapes(3, seed=1), tmp_path / "maps")
    with pytest.raises(FormatError, match="chunk_bytes must be an integer >= 1"):
        io.get_format("coco").parse(tmp_path / "s" / "annotations.json", chunk_bytes="abc")
    with pytest.raises(FormatError, match=r"classes must be a list of names, \{id: name\} or the path"):
        io.get_format("masks").parse(tmp_path / "maps", classes=5)
    with pytest.raises(FormatError, match=r"ignore_index must be a label map value, an integer 0\.\.65535, got 'abc'"):
        io.get_format("masks").parse(tmp_path / "maps", ignore_index="abc")
    io.get_format("openimages").write(shapes(3, seed=1), tmp_path / "oi", images=False)
    with pytest.raises(FormatError, match="class_descriptions must be the path of a CSV file, got 5"):
        io.get_format("openimages").parse(tmp_path / "oi", class_descriptions=5)


# -- through the CLI ------------------------------------------------------------------------------------------
def _convert(tmp_path: Path, *args: str) -> tuple[int, str]:
    write_shapes(tmp_path / "s", 3, seed=1)
    res = runner.invoke(app, ["convert", str(tmp_path / "s" / "annotations.json"), str(tmp_path / "out"),
                              "--from", "coco", *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


@pytest.mark.parametrize("args", [
    pytest.param(["--to", "yolo", "--write-option", "decimals=abc"], id="yolo-decimals"),
    pytest.param(["--to", "parquet", "--write-option", "compression=foo"], id="parquet-compression"),
    pytest.param(["--to", "masks", "--write-option", "background_index=abc"], id="masks-background"),
    pytest.param(["--to", "coco", "--write-option", "indent=abc"], id="coco-indent"),
])
def test_cli_exits_2_without_a_traceback(tmp_path: Path, args: list[str]) -> None:
    code, out = _convert(tmp_path, *args)
    assert code == 2, out
    assert "Traceback" not in out and not (tmp_path / "out").exists()


@pytest.mark.skipif(not hasattr(cli_data, "parse_options"), reason="cli/data.py does not use cli._options yet")
@pytest.mark.parametrize("args", [
    pytest.param(["--to", "yolo", "--write-option", "images=maybe"], id="yolo-images"),
    pytest.param(["--to", "voc", "--write-option", "integer_coordinates=abc"], id="voc-integer"),
    pytest.param(["--to", "yolo", "--read-option", "chunk_bytes=abc"], id="coco-chunk-bytes"),
])
def test_cli_refuses_values_the_callee_would_take_silently(tmp_path: Path, args: list[str]) -> None:
    code, out = _convert(tmp_path, *args)
    assert code == 2 and "must be" in out, out
    assert not (tmp_path / "out").exists()
