"""``ulrl-edge inspect``: the report, JSON mode, and exit codes for bad or odd models."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.fixtures.model_styles import style_file


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("inspect")


def hardmax_model(path):
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Hardmax", ["h"], ["y"])],
        "hardmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(np.ones((4, 3), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_json_report_for_an_nhwc_model(run_cli, folder):
    path = style_file("nhwc", folder, channels=1, height=8, width=8, num_classes=4)
    result = run_cli(["inspect", path, "--json"])
    data = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert data["inputs"] == [
        {"name": "input:0", "shape": ["batch", 8, 8, 1], "dtype": "float32", "layout": "nhwc"}
    ]
    assert data["opset"] == 9 and data["op_histogram"]["Cast"] == 2
    assert data["converts"] is True and data["convert_error"] is None
    assert data["head"]["onnx_op"] == "Gemm" and data["head"]["classes"] == 4
    assert data["parity"]["torch"]["passed"] and data["parity"]["onnx"]["passed"]
    assert data["parity"]["onnx"]["max_abs_diff"] <= 1e-4
    assert data["parameter_count"] > 0


def test_human_report(run_cli, folder):
    result = run_cli(["inspect", style_file("conv1x1_gap", folder)])
    assert "layout nchw" in result.stdout
    assert "Conv classifier/Conv" in result.stdout
    assert "parity re-export" in result.stdout
    assert "PASSED" in result.stderr


def test_unconvertible_model_is_reported_with_exit_0_or_4_with_check(run_cli, tmp_path):
    path = hardmax_model(tmp_path / "hardmax.onnx")
    data = json.loads(run_cli(["inspect", path, "--json"]).stdout)
    assert data["converts"] is False and "Hardmax" in data["convert_error"]
    result = run_cli(["inspect", path, "--check"], expect_exit=4)
    assert "Hardmax" in result.stderr and "no" in result.stdout


def test_unknown_spatial_size_is_reported_until_given(run_cli, folder, tmp_path):
    model = onnx.load(style_file("gemm", folder))
    for axis in (2, 3):
        dim = model.graph.input[0].type.tensor_type.shape.dim[axis]
        dim.Clear()
        dim.dim_param = "?"
    path = tmp_path / "free.onnx"
    onnx.save(model, path)
    data = json.loads(run_cli(["inspect", path, "--json"]).stdout)
    assert data["parity"] is None and "--size" in data["parity_error"]
    data = json.loads(run_cli(["inspect", path, "--json", "--size", "16", "16"]).stdout)
    assert data["parity"]["onnx"]["passed"]


@pytest.mark.parametrize("kind", ["text", "truncated", "empty", "missing"])
def test_bad_files_exit_3_with_one_line(run_cli, folder, tmp_path, kind):
    path = tmp_path / f"{kind}.onnx"
    if kind == "text":
        path.write_text("hello, I am not a model\n" * 10)
    elif kind == "truncated":
        path.write_bytes(style_file("gemm", folder).read_bytes()[:1000])
    elif kind == "empty":
        path.write_bytes(b"")
    before = path.read_bytes() if path.exists() else None
    result = run_cli(["inspect", path], expect_exit=3)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0]
    assert result.stdout == ""
    assert (path.read_bytes() if path.exists() else None) == before
