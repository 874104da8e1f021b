"""load_model: what a good file yields, and a clear BadInput for every bad one."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.fixtures.model_styles import style_file
from ulrl_edge.config import Limits
from ulrl_edge.errors import EXIT_BAD_INPUT, BadInput
from ulrl_edge.onnx_io.load import TensorInfo, load_model, sha256_file


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tmp_path_factory.mktemp("load_models")


def tiny_model(weight: np.ndarray | None = None) -> onnx.ModelProto:
    """y = x @ W, with W an initializer (4 × 3)."""
    w = weight if weight is not None else np.arange(12, dtype=np.float32).reshape(4, 3)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {"labels": "a,b,c"})
    return model


def external_model(folder: Path, location: str) -> Path:
    """A tiny model whose W is stored as external data at ``location``."""
    model = tiny_model()
    tensor = model.graph.initializer[0]
    data = numpy_helper.to_array(tensor).tobytes()
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(data)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    target = (folder / location) if not os.path.isabs(location) else Path(location)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_loads_a_style_file_with_io_opset_and_hash(models):
    path = style_file("softmax", models)
    loaded = load_model(path)
    assert loaded.inputs == [TensorInfo("input", ("batch", 3, 16, 16), "float32")]
    assert loaded.outputs == [TensorInfo("4195", ("batch", 10), "float32")]
    assert loaded.opset == 13
    assert loaded.producer.startswith("pytorch")
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)


def test_metadata_and_unknown_dims(tmp_path):
    model = tiny_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].Clear()
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    loaded = load_model(path)
    assert loaded.metadata == {"labels": "a,b,c"}
    assert loaded.inputs[0].shape == (None, 4)


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"this is a text file, not a model\n" * 20, "not an ONNX model"),
    ],
)
def test_refuses_non_models(tmp_path, content, words):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(BadInput) as err:
        load_model(path)
    assert words in str(err.value) and str(path) in str(err.value)
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert "\n" not in err.value.one_line()


def test_refuses_truncated_model(models, tmp_path):
    data = style_file("gemm", models).read_bytes()
    for cut in (len(data) // 2, len(data) - 7, 40):
        path = tmp_path / f"cut{cut}.onnx"
        path.write_bytes(data[:cut])
        with pytest.raises(BadInput, match="not .*(ONNX|valid)"):
            load_model(path)


def test_refuses_missing_folder_and_oversized(tmp_path, models):
    with pytest.raises(BadInput, match="no such file"):
        load_model(tmp_path / "nope.onnx")
    with pytest.raises(BadInput, match="not a file"):
        load_model(tmp_path)
    with pytest.raises(BadInput, match="limit"):
        load_model(style_file("gemm", models), Limits(max_model_bytes=1000))
    with pytest.raises(BadInput, match="elements"):
        load_model(style_file("gemm", models), Limits(max_tensor_elements=100))


def test_refuses_invalid_graph(tmp_path):
    model = tiny_model()
    model.graph.node[0].input[1] = "does_not_exist"
    path = tmp_path / "invalid.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(BadInput, match="not a valid ONNX model"):
        load_model(path)


def test_loads_external_data_inside_the_folder(tmp_path):
    path = external_model(tmp_path, "weights/w.bin")
    loaded = load_model(path)
    weight = numpy_helper.to_array(loaded.proto.graph.initializer[0])
    np.testing.assert_array_equal(weight, np.arange(12, dtype=np.float32).reshape(4, 3))


@pytest.mark.parametrize("location", ["../outside.bin", "sub/../../outside.bin"])
def test_refuses_external_data_leaving_the_folder(tmp_path, location):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "sub").mkdir()
    path = external_model(folder, location)
    with pytest.raises(BadInput, match="external data location") as err:
        load_model(path)
    assert str(path) in str(err.value)


def test_refuses_absolute_and_symlinked_external_data(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    secret = tmp_path / "secret.bin"
    path = external_model(folder, str(secret))
    with pytest.raises(BadInput, match="not a plain path"):
        load_model(path)
    path = external_model(folder, "link.bin")
    (folder / "link.bin").unlink()
    (folder / "link.bin").symlink_to(secret)
    with pytest.raises(BadInput, match="resolves outside"):
        load_model(path)


def test_refuses_missing_external_file(tmp_path):
    path = external_model(tmp_path, "w.bin")
    (tmp_path / "w.bin").unlink()
    with pytest.raises(BadInput, match="missing"):
        load_model(path)
