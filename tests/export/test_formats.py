"""The formats table: what each format takes, and how unknown names and options are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from ulrl_edge.errors import BadInput
from ulrl_edge.export import FORMATS, OPTIONS, BatchShapes, check_options, get_format
from ulrl_edge.export.formats import describe_formats


def test_table_lists_onnx_and_tensorrt_with_their_options():
    assert list(FORMATS) == ["onnx", "tensorrt"]
    assert FORMATS["onnx"].options == ()
    assert set(FORMATS["tensorrt"].options) == set(OPTIONS)
    assert FORMATS["tensorrt"].requires == "tensorrt"
    rows = {row["format"]: row for row in describe_formats()}
    assert rows["tensorrt"]["options"][:2] == ["--fp16", "--int8"]
    assert rows["onnx"]["suffix"] == ".onnx"


@pytest.mark.parametrize("name", ["tensorrt", "TensorRT", " trt ", "engine"])
def test_aliases_and_case(name):
    assert get_format(name).name == "tensorrt"


@pytest.mark.parametrize(
    ("name", "hint"), [("tensorrtt", "did you mean 'tensorrt'"), ("onx", "did you mean 'onnx'")]
)
def test_unknown_format_suggests_the_closest(name, hint):
    with pytest.raises(BadInput, match=hint) as err:
        get_format(name)
    assert "formats: onnx, tensorrt" in str(err.value)
    assert err.value.exit_code == 3


def test_unrelated_format_lists_them_without_a_guess():
    with pytest.raises(BadInput) as err:
        get_format("coreml")
    assert "did you mean" not in str(err.value) and "formats: onnx, tensorrt" in str(err.value)


def test_unknown_option_suggests_the_closest():
    with pytest.raises(BadInput, match=r"unknown export option 'fp61' \(did you mean 'fp16'\?\)"):
        check_options("tensorrt", {"fp61": True})


def test_option_of_another_format_is_refused_not_ignored():
    with pytest.raises(BadInput, match=r"--fp16 does not apply to --format onnx .*tensorrt"):
        check_options("onnx", {"fp16": True})
    with pytest.raises(BadInput, match="--bundle does not apply to --format onnx"):
        check_options("onnx", {"bundle": "dir"})
    # "not given" values (None / False) are fine for any format
    assert check_options("onnx", {"fp16": False, "dla": None}).precision == "fp32"


def test_defaults_and_normalisation():
    opts = check_options("tensorrt", {})
    assert (opts.fp16, opts.int8, opts.workspace, opts.dla, opts.shapes) == (
        False,
        False,
        1024,
        None,
        None,
    )
    opts = check_options("trt", {"fp16": True, "shapes": "8", "bundle": "b", "dla": 0})
    assert opts.precision == "fp16"
    assert opts.shapes == BatchShapes(1, 1, 8)
    assert opts.bundle == Path("b")
    assert opts.dla == 0
    assert check_options("tensorrt", {"int8": True, "calib": "c"}).precision == "int8"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"int8": True}, "--int8 needs --calib SRC"),
        ({"calib": "samples/"}, "--calib is only used with --int8"),
        ({"dla": 0}, "a DLA runs fp16 or int8"),
        ({"dla": -1, "fp16": True}, "give a DLA core number"),
        ({"workspace": 0}, "--workspace 0"),
        ({"workspace": "big"}, "--workspace 'big'"),
    ],
)
def test_options_that_need_each_other(options, message):
    with pytest.raises(BadInput, match=message):
        check_options("tensorrt", options)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32", (1, 1, 32)),
        ("1,8,32", (1, 8, 32)),
        ("4/4/4", (4, 4, 4)),
        (16, (1, 1, 16)),
        ([2, 2, 8], (2, 2, 8)),
    ],
)
def test_shapes_parse(text, expected):
    shapes = BatchShapes.parse(text)
    assert (shapes.min, shapes.opt, shapes.max) == expected
    assert BatchShapes.parse(shapes.text()) == shapes


@pytest.mark.parametrize("text", ["0", "1,2", "8,4,32", "a,b,c", "1,1,-3", ""])
def test_bad_shapes(text):
    with pytest.raises(BadInput, match="--shapes"):
        BatchShapes.parse(text)
