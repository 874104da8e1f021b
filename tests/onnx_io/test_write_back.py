"""Export by writing trained weights back into the source graph, and its fallback."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from tests.fixtures.model_styles import style_file
from ulrl_edge.onnx_io import export_model, import_model, load_model
from ulrl_edge.onnx_io.fold_batchnorm import fold_batchnorm
from ulrl_edge.onnx_io.parity import check_parity
from ulrl_edge.onnx_io.to_onnx import KEY_EXPORT, RETRACED, WRITTEN_BACK
from ulrl_edge.onnx_io.weight_sources import RESHAPE, SAME, TRANSPOSE, match_layout
from ulrl_edge.onnx_io.write_back import written_back


def _save(graph: onnx.GraphProto, path, opset: int = 13):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _init(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def _conv_bn_gemm_graph(rng: np.random.Generator, trans_b: int) -> onnx.GraphProto:
    """Conv (no bias) → BatchNorm → Relu → GAP → Flatten → Gemm(transB) → logits."""
    w = rng.normal(size=(4, 1, 3, 3))
    gemm_b = rng.normal(size=(4, 3) if trans_b == 0 else (3, 4))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "B", "C"], ["logits"], transB=trans_b),
    ]
    inits = [
        _init("w", w), _init("g", rng.uniform(0.5, 2, 4)), _init("b", rng.normal(size=4)),
        _init("m", rng.normal(size=4)), _init("v", rng.uniform(0.5, 2, 4)),
        _init("B", gemm_b), _init("C", rng.normal(size=3)),
    ]  # fmt: skip
    return helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 6, 6])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
        inits,
    )  # fmt: skip


def _run(path_or_proto, x: np.ndarray) -> np.ndarray:
    if isinstance(path_or_proto, onnx.ModelProto):
        data = path_or_proto.SerializeToString()
    else:
        data = str(path_or_proto)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_layouts_are_matched_by_value():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert match_layout(a, a.copy()) == SAME
    assert match_layout(a, a.T.copy()) == TRANSPOSE
    assert match_layout(a.reshape(6), a) == RESHAPE
    assert match_layout(a, a + 1) is None
    assert match_layout(a, np.arange(6, dtype=np.int64).reshape(2, 3)) is None  # not a weight


@pytest.mark.parametrize("trans_b", [0, 1])
def test_trained_weights_go_back_into_the_source_graph(tmp_path, trans_b):
    rng = np.random.default_rng(trans_b)
    source = load_model(_save(_conv_bn_gemm_graph(rng, trans_b), tmp_path / "src.onnx"))
    model = import_model(source)
    layouts = {layout for _, layout in model.meta["ulrl_edge"]["weights"].values()}
    assert (TRANSPOSE in layouts) == (trans_b == 0)  # Linear stores a transB=0 B transposed
    with torch.no_grad():  # a "defense": change every weight and the BN statistics
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.mul_(torch.empty_like(tensor).uniform_(0.8, 1.2))
    out = tmp_path / "out.onnx"
    export_model(model, source, out)
    written = load_model(out)
    assert written.metadata[KEY_EXPORT] == WRITTEN_BACK
    ops = [n.op_type for n in written.proto.graph.node]
    assert "BatchNormalization" not in ops and ops.count("Conv") == 1  # folded, with a bias
    assert [n.input[2] for n in written.proto.graph.node if n.op_type == "Conv"][0]
    x = rng.random((5, 1, 6, 6), dtype=np.float32)  # a batch the export never saw
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(out, x), expected, atol=1e-5)
    assert not np.allclose(_run(source.path, x), expected, atol=1e-3)  # the change is in


def test_a_change_outside_the_map_falls_back_to_a_re_trace(tmp_path):
    source = load_model(style_file("gemm", tmp_path))
    model = import_model(source)
    weights = model.meta["ulrl_edge"]["weights"]
    unmapped = next(iter(weights))
    del weights[unmapped]  # as if the import had not matched this tensor
    with torch.no_grad():
        model.get_parameter(unmapped).add_(0.5)
    out = tmp_path / "out.onnx"
    export_model(model, source, out)
    assert load_model(out).metadata[KEY_EXPORT] == RETRACED
    assert check_parity(out, model).passed  # the re-trace carries the change


def test_shared_weight_trained_apart_cannot_be_written_back(tmp_path):
    rng = np.random.default_rng(0)
    source = load_model(_save(_conv_bn_gemm_graph(rng, 1), tmp_path / "src.onnx"))
    model = import_model(source)
    weights = model.meta["ulrl_edge"]["weights"]
    assert written_back(model, source) is not None
    by_initializer = {name: key for key, (name, _) in weights.items()}
    # Two BatchNorm tensors of one shape now claim one initializer with different values.
    weights[by_initializer["v"]] = weights[by_initializer["g"]]
    assert written_back(model, source) is None
    weights[by_initializer["v"]] = weights[by_initializer["B"]]  # and one of another size
    assert written_back(model, source) is None


def test_model_without_an_import_map_is_re_traced(tmp_path):
    source = load_model(style_file("gemm", tmp_path))
    model = import_model(source)
    model.meta.pop("ulrl_edge")
    out = tmp_path / "out.onnx"
    export_model(model, source, out)
    assert load_model(out).metadata[KEY_EXPORT] == RETRACED
    assert check_parity(source, out).passed


def test_batchnorm_is_not_folded_when_the_conv_output_is_read_elsewhere(tmp_path):
    rng = np.random.default_rng(0)
    graph = _conv_bn_gemm_graph(rng, 1)
    graph.output.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, None))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert fold_batchnorm(model.graph) == 0
    graph = _conv_bn_gemm_graph(rng, 1)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    x = rng.random((2, 1, 6, 6), dtype=np.float32)
    before = _run(model, x)
    assert fold_batchnorm(model.graph) == 1
    np.testing.assert_allclose(_run(model, x), before, atol=1e-5)
