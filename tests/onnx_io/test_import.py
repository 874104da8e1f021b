"""import_model: graph fixes, extra converters, shared weights, unsupported ops, determinism."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from tests.fixtures.model_styles import style_file
from ulrl_edge.errors import EXIT_UNSUPPORTED_MODEL, UnsupportedModel
from ulrl_edge.onnx_io.graph_fixes import prepare_for_import
from ulrl_edge.onnx_io.load import load_model
from ulrl_edge.onnx_io.parity import check_parity
from ulrl_edge.onnx_io.to_torch import META_KEY, import_model, promote_buffers_to_parameters


def save(tmp_path, nodes, inits, opset=13, out_shape=("N", 3), name="m.onnx"):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, path)
    return path


def weight(seed=0, shape=(4, 3)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_unsupported_op_is_named(tmp_path):
    path = save(
        tmp_path,
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Hardmax", ["h"], ["y"])],
        [numpy_helper.from_array(weight(), "W")],
    )
    with pytest.raises(UnsupportedModel, match="Hardmax-13") as err:
        import_model(load_model(path))
    assert err.value.exit_code == EXIT_UNSUPPORTED_MODEL
    assert str(path) in str(err.value)


def test_shared_initializer_stays_one_parameter(tmp_path):
    path = save(
        tmp_path,
        [
            helper.make_node("MatMul", ["x", "W"], ["a"]),
            helper.make_node("MatMul", ["x", "W"], ["b"]),
            helper.make_node("Add", ["a", "b"], ["y"]),
        ],
        [numpy_helper.from_array(weight(), "W")],
    )
    model = import_model(load_model(path))
    params = dict(model.named_parameters())
    assert len(params) == 1
    (name,) = params
    assert model.meta[META_KEY]["initializers"][name] == "W"
    assert check_parity(path, model).passed


def test_reduce_mean_18_with_axes_input(tmp_path):
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    path = save(
        tmp_path,
        [
            helper.make_node("Reshape", ["x", "shape"], ["r"]),
            helper.make_node("ReduceMean", ["r", "axes"], ["y"], keepdims=0),
        ],
        [axes, numpy_helper.from_array(np.array([0, 2, 2], np.int64), "shape")],
        opset=18,
        out_shape=("N", 2),
    )
    model = import_model(load_model(path))
    assert check_parity(path, model).passed


def test_opset_22_conv_is_imported_through_the_alias(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 4, 4])
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["y"], pads=[1, 1, 1, 1])],
        "conv22",
        [x],
        [y],
        [numpy_helper.from_array(weight(shape=(2, 1, 3, 3)), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10
    path = tmp_path / "conv22.onnx"
    onnx.save(model, path)
    assert check_parity(path, import_model(load_model(path))).passed


def test_constant_nodes_become_initializers_and_parameters(tmp_path):
    loaded = load_model(style_file("constants", tmp_path))
    prepared, notes = prepare_for_import(loaded.proto)
    assert not [n for n in prepared.graph.node if n.op_type == "Constant"]
    assert "Constant" in notes[0]
    assert [n for n in loaded.proto.graph.node if n.op_type == "Constant"]  # source untouched
    model = import_model(loaded)
    assert sum(p.numel() for p in model.parameters()) == 9946


def test_allowzero_with_a_zero_in_the_shape_is_refused(tmp_path):
    path = save(
        tmp_path,
        [helper.make_node("Reshape", ["x", "shape"], ["y"], allowzero=1)],
        [numpy_helper.from_array(np.array([0, 4], np.int64), "shape")],
        opset=14,
        out_shape=(0, 4),
    )
    with pytest.raises(UnsupportedModel, match="allowzero"):
        import_model(load_model(path))


def test_import_is_deterministic_and_leaves_the_global_rng_alone(tmp_path):
    loaded = load_model(style_file("batchnorm", tmp_path))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = import_model(loaded)
    assert torch.equal(torch.rand(3), expected)
    second = import_model(loaded)
    a, b = first.state_dict(), second.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not first.training  # eval mode, BatchNorm uses its statistics


def test_promote_buffers_keeps_names_and_skips_integers():
    module = torch.nn.Module()
    module.register_buffer("w", torch.ones(2, 2))
    module.register_buffer("shape", torch.tensor([1, 2]))
    assert promote_buffers_to_parameters(module, ["w", "shape"]) == ["w"]
    assert isinstance(module.w, torch.nn.Parameter) and module.w.requires_grad
    assert "shape" in dict(module.named_buffers())
