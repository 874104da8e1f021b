"""The onnxruntime runner: batching, static batch sizes, dtypes and providers."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ulrl_edge.errors import BadInput, MissingDependency, UnsupportedModel
from ulrl_edge.verify import OrtRunner, predict

WEIGHT = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)


def _model(path, *, batch="N", dtype=TensorProto.FLOAT, softmax=False, inputs=1, out4d=False):
    """x [batch,1,4,4] → Flatten → MatMul(16×3) [→ Softmax] [→ N×3×1×1]."""
    nodes = [helper.make_node("Flatten", ["x"], ["flat"])]
    if dtype != TensorProto.FLOAT:
        nodes = [
            helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
            helper.make_node("Flatten", ["xf"], ["flat"]),
        ]
    nodes.append(helper.make_node("MatMul", ["flat", "w"], ["logits"]))
    last = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", [last], ["probs"], axis=1))
        last = "probs"
    if out4d:
        nodes.append(helper.make_node("Reshape", [last, "shape4"], ["out4"]))
        last = "out4"
    graph_inputs = [helper.make_tensor_value_info("x", dtype, [batch, 1, 4, 4])]
    if inputs == 2:
        graph_inputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1]))
    graph = helper.make_graph(
        nodes,
        "g",
        graph_inputs,
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)],
        [
            numpy_helper.from_array(WEIGHT, "w"),
            numpy_helper.from_array(np.array([-1, 3, 1, 1], np.int64), "shape4"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _x(n: int) -> np.ndarray:
    return np.random.default_rng(1).random((n, 1, 4, 4), dtype=np.float32)


def test_predict_matches_plain_onnxruntime(tmp_path):
    path = _model(tmp_path / "m.onnx")
    x = _x(10)
    expected = ort.InferenceSession(str(path)).run(None, {"x": x})[0]
    np.testing.assert_allclose(predict(path, x, batch_size=3), expected, rtol=1e-6)
    np.testing.assert_allclose(x.reshape(10, 16) @ WEIGHT, expected, rtol=1e-5)


def test_static_batch_one_softmax_and_4d_outputs(tmp_path):
    x = _x(5)
    reference = x.reshape(5, 16) @ WEIGHT
    runner = OrtRunner(_model(tmp_path / "b1.onnx", batch=1, softmax=True))
    assert runner.static_batch == 1
    seen = []
    probs = runner.run(x, batch_size=64, on_batch=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    np.testing.assert_array_equal(probs.argmax(1), reference.argmax(1))
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    padded = OrtRunner(_model(tmp_path / "b4.onnx", batch=4)).run(x)  # 4 + 1 padded
    np.testing.assert_allclose(padded, reference, rtol=1e-5)
    flat = OrtRunner(_model(tmp_path / "o4.onnx", out4d=True)).run(x)
    assert flat.shape == (5, 3)


def test_unsupported_inputs(tmp_path):
    with pytest.raises(UnsupportedModel, match=r"tensor\(uint8\); ulrl-edge feeds float"):
        OrtRunner(_model(tmp_path / "u8.onnx", dtype=TensorProto.UINT8))
    with pytest.raises(UnsupportedModel, match="has 2 inputs"):
        OrtRunner(_model(tmp_path / "two.onnx", inputs=2))


def test_missing_files_and_providers(tmp_path):
    with pytest.raises(BadInput, match="model file not found"):
        OrtRunner(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(BadInput, match="onnxruntime cannot load the model"):
        OrtRunner(junk)
    path = _model(tmp_path / "m.onnx")
    with pytest.raises(BadInput, match="unknown runtime"):
        OrtRunner(path, "cuda")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(MissingDependency, match="onnxruntime-gpu"):
            OrtRunner(path, "ort-cuda")
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(MissingDependency, match="TensorrtExecutionProvider"):
            OrtRunner(path, "ort-trt")


@pytest.mark.gpu
def test_cuda_runtime_matches_cpu(tmp_path):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu with CUDA is not installed")
    path = _model(tmp_path / "m.onnx")
    x = _x(8)
    np.testing.assert_allclose(
        predict(path, x, runtime="ort-cuda"), predict(path, x), rtol=1e-4, atol=1e-5
    )
