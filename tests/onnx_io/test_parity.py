"""check_parity: names → shapes → values, every output collected, clear verdicts."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from tests.fixtures.model_styles import style_file
from ulrl_edge.config import ParityTolerance
from ulrl_edge.errors import EXIT_CHECK_FAILED, BadInput, CheckFailed
from ulrl_edge.head import find_head
from ulrl_edge.onnx_io.load import load_model
from ulrl_edge.onnx_io.parity import check_parity, raise_if_failed
from ulrl_edge.onnx_io.shapes import random_inputs
from ulrl_edge.onnx_io.to_torch import import_model


@pytest.fixture(scope="module")
def gemm(tmp_path_factory):
    loaded = load_model(style_file("gemm", tmp_path_factory.mktemp("parity")))
    return loaded, import_model(loaded)


def two_output_model(path, scale: float = 1.0, second_shape=("N", 3)) -> None:
    """y1 = x @ W * scale and y2 = x @ W (or a reshaped y2 of another shape)."""
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Mul", ["h", "s"], ["y1"]),
    ]
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.float32(scale), "s")]
    if second_shape == ("N", 3):
        nodes.append(helper.make_node("Identity", ["h"], ["y2"]))
    else:
        inits.append(numpy_helper.from_array(np.array([-1, 1, 3], np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["h", "shape"], ["y2"]))
    graph = helper.make_graph(
        nodes,
        "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [
            helper.make_tensor_value_info("y1", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("y2", TensorProto.FLOAT, list(second_shape)),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def test_identical_models_pass_with_statistics(gemm):
    loaded, model = gemm
    report = check_parity(loaded, model, batch=3, seed=1)
    assert report.passed and report.batch == 3
    data = report.to_dict()
    assert data["outputs"][0]["name"] == "logits"
    assert data["outputs"][0]["top1_agreement"] == 1.0
    assert data["max_abs_diff"] < 1e-5
    raise_if_failed(report, "torch vs original")  # no exception


def test_changed_head_fails_and_is_reported(gemm):
    loaded, model = gemm
    broken = copy.deepcopy(model)
    head = find_head(broken)
    with torch.no_grad():
        head.bias_values()[0] += 5.0  # class 0 wins everywhere
    report = check_parity(loaded, broken)
    assert not report.passed
    (entry,) = report.failures()
    assert entry.problem == "values" and entry.max_abs_diff == pytest.approx(5.0, abs=1e-4)
    with pytest.raises(CheckFailed, match="logits: max abs diff 5") as err:
        raise_if_failed(report, "torch vs original")
    assert err.value.exit_code == EXIT_CHECK_FAILED


def test_top1_gate_is_separate_from_atol(gemm):
    loaded, model = gemm
    broken = copy.deepcopy(model)
    x = torch.from_numpy(random_inputs(loaded, 4)["input"])
    winners = set(model(x).argmax(1).tolist())
    loser = next(k for k in range(10) if k not in winners)
    with torch.no_grad():
        find_head(broken).bias_values()[loser] += 50.0  # now it wins every row
    loose = ParityTolerance(atol=100.0, min_top1_agreement=1.0)
    report = check_parity(loaded, broken, tolerance=loose)
    assert not report.passed and report.failures()[0].problem == "top1"


def test_every_output_is_compared_before_the_verdict(tmp_path):
    ref, scaled, reshaped = tmp_path / "ref.onnx", tmp_path / "scaled.onnx", tmp_path / "r.onnx"
    two_output_model(ref)
    two_output_model(scaled, scale=2.0)
    two_output_model(reshaped, second_shape=("N", 1, 3))
    report = check_parity(ref, scaled)
    assert [o.problem for o in report.outputs] == ["values", None]
    report = check_parity(ref, reshaped)
    assert [o.problem for o in report.outputs] == [None, "shape"]
    assert "y2: shape [4, 1, 3] != [4, 3]" in report.summary()


def test_missing_output_is_named(tmp_path, gemm):
    loaded, _ = gemm

    class Nothing(torch.nn.Module):
        def forward(self, x):
            return ()

    report = check_parity(loaded, Nothing())
    assert report.failures()[0].problem == "missing"
    assert "logits: missing" in report.summary()


def test_candidate_that_crashes_is_a_failure_not_an_exception(gemm):
    loaded, _ = gemm

    class Crash(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    report = check_parity(loaded, Crash())
    assert not report.passed and "boom" in report.notes[0]


def test_unknown_spatial_size_is_refused_unless_given(tmp_path):
    path = style_file("gemm", tmp_path)
    model = onnx.load(path)
    for axis in (2, 3):
        dim = model.graph.input[0].type.tensor_type.shape.dim[axis]
        dim.Clear()
        dim.dim_param = "?"
    free = tmp_path / "free.onnx"
    onnx.save(model, free)
    with pytest.raises(BadInput, match="--size"):
        check_parity(free, free)
    assert check_parity(free, free, size=(16, 16)).passed


def test_frozen_batch_reference_is_run_row_by_row(tmp_path):
    loaded = load_model(style_file("paddle", tmp_path))
    model = import_model(loaded)
    report = check_parity(loaded, model, batch=4)
    assert report.passed and report.batch == 4
    assert "one row at a time" in report.notes[0]
