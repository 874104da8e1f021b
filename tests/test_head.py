"""find_head on plain torch modules and imported graphs; logits_module."""

from __future__ import annotations

import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from tests.fixtures.model_styles import STYLES, build_model, style_file
from ulrl_edge.errors import UnsupportedModel
from ulrl_edge.head import find_head, logits_module
from ulrl_edge.onnx_io.load import load_model
from ulrl_edge.onnx_io.to_torch import import_model


class RawMatMul(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 5)
        self.w = nn.Parameter(torch.randn(5, 3))
        self.register_buffer("b", torch.zeros(3))  # a bias stored as a buffer

    def forward(self, x):
        return torch.softmax(torch.relu(self.body(x)) @ self.w + self.b, dim=1)


class ConvHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.cls = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.cls(self.conv(x)), 1), 1)


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.b = nn.Linear(8, 2)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace it
            x = x * 2
        return self.b(self.a(x))


def test_sequential_linear_with_dropout_and_softmax():
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Dropout(), nn.Linear(4, 3), nn.Softmax(1))
    head = find_head(model)
    assert head.kind == "linear" and head.name == "3"
    assert head.weight is model[3].weight and head.bias is model[3].bias
    assert tuple(head.rows().shape) == (3, 4)


def test_raw_matmul_head_promotes_a_buffer_bias_on_the_user_module():
    model = RawMatMul()
    head = find_head(model)
    assert head.kind == "matmul" and head.weight is model.w
    assert tuple(head.rows().shape) == (3, 5)
    assert isinstance(model.b, nn.Parameter) and head.bias is model.b
    model(torch.randn(2, 6)).sum().backward()  # the user's forward reads the parameter
    assert model.b.grad is not None


def test_conv1x1_head_before_global_pool():
    model = ConvHead()
    head = find_head(model)
    assert head.kind == "conv1x1" and head.weight is model.cls.weight
    assert tuple(head.rows().shape) == (4, 8)
    assert head.rows().data_ptr() == model.cls.weight.data_ptr()  # a view, not a copy


def test_untraceable_module_falls_back_to_the_last_linear():
    model = Untraceable()
    head = find_head(model)
    assert head.weight is model.b.weight


def test_no_head_names_the_op_where_the_walk_stopped():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(UnsupportedModel, match="stopped at ReLU"):
        find_head(model)


def test_imported_graph_ending_in_a_3x3_conv_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "W"], ["y"])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 3, 3])],
        [numpy_helper.from_array(torch.randn(2, 1, 3, 3).numpy(), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "conv.onnx")
    imported = import_model(load_model(tmp_path / "conv.onnx"))
    with pytest.raises(UnsupportedModel, match="stopped at Conv"):
        find_head(imported)


@pytest.mark.parametrize("style", ["softmax", "paddle"])
def test_logits_module_drops_the_softmax_and_shares_parameters(tmp_path, style):
    loaded = load_model(style_file(style, tmp_path))
    model = import_model(loaded)
    logits = logits_module(model)
    assert logits is not model
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(logits(x), 1), model(x).reshape(2, -1))
    assert {id(p) for p in logits.parameters()} == {id(p) for p in model.parameters()}
    assert find_head(logits).weight is find_head(model).weight


def test_logits_module_returns_the_model_without_softmax(tmp_path):
    model = import_model(load_model(style_file("gemm", tmp_path)))
    assert logits_module(model) is model


@pytest.mark.parametrize("style", sorted(STYLES))
def test_plain_style_models_have_their_head_found(style):
    model = build_model(style, 1, 8, 8, 4)
    head = find_head(model)
    assert head.kind == STYLES[style].head
    assert tuple(head.rows().shape) == (4, 32)
    expected = model.weight if STYLES[style].head == "matmul" else model.classifier.weight
    assert head.weight is expected
