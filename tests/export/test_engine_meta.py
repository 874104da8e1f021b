"""Profiles filled from the preprocessing, sidecar files, and the CUDA memory fallbacks."""

from __future__ import annotations

import pytest

from tests.export.conftest import tiny_model
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.errors import BadInput, MissingDependency, UnsupportedModel
from ulrl_edge.export.cuda_memory import open_cuda_memory
from ulrl_edge.export.engine_meta import (
    calibration_cache_path,
    profile_for,
    read_sidecar,
    sidecar_path,
)
from ulrl_edge.export.formats import BatchShapes
from ulrl_edge.onnx_io.load import load_model


def test_dynamic_sizes_are_filled_from_the_spec(tmp_path):
    import onnx

    path = tiny_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    onnx.save(proto, str(path))
    spec = PreprocessSpec(layout="nchw", size=(6, 5), channels="gray")
    profile = profile_for(load_model(path), spec, BatchShapes(2, 4, 16))
    assert (profile.min, profile.opt, profile.max) == ((2, 1, 6, 5), (4, 1, 6, 5), (16, 1, 6, 5))
    assert profile.dynamic and profile.max_batch == 16


def test_fixed_batch_with_dynamic_size_keeps_a_profile(tmp_path):
    import onnx

    path = tiny_model(tmp_path / "m.onnx", batch=2)
    proto = onnx.load(str(path))
    proto.graph.input[0].type.tensor_type.shape.dim[3].dim_param = "W"
    onnx.save(proto, str(path))
    spec = PreprocessSpec(size=(4, 7), channels="gray")
    profile = profile_for(load_model(path), spec, None)
    assert profile.min == profile.max == (2, 1, 4, 7) and profile.dynamic
    assert profile_for(load_model(path), spec, BatchShapes(2, 2, 2)).max_batch == 2


def test_two_inputs_are_unsupported(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    path = tiny_model(tmp_path / "m.onnx")
    proto = onnx.load(str(path))
    proto.graph.input.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1]))
    onnx.save(proto, str(path))
    with pytest.raises(UnsupportedModel, match="2 inputs"):
        profile_for(load_model(path), PreprocessSpec(size=(4, 4), channels="gray"), None)


def test_sidecar_paths_and_reading(tmp_path):
    engine = tmp_path / "model.engine"
    assert sidecar_path(engine).name == "model.engine.json"
    assert calibration_cache_path(engine).name == "model.calib.cache"
    assert read_sidecar(engine) == {}
    sidecar_path(engine).write_text('{"tensorrt_version": "10.3.0"}')
    assert read_sidecar(engine)["tensorrt_version"] == "10.3.0"
    sidecar_path(engine).write_text("[1, 2]")
    with pytest.raises(BadInput, match="not a JSON object"):
        read_sidecar(engine)
    sidecar_path(engine).write_text("{broken")
    with pytest.raises(BadInput, match="not valid JSON"):
        read_sidecar(engine)


def test_cuda_memory_without_a_gpu_is_a_missing_dependency():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(MissingDependency, match="PyTorch sees no CUDA device"):
        open_cuda_memory("torch")
    for kind in ("cudart", "auto"):  # no driver: libcudart fails, or is not there at all
        with pytest.raises(MissingDependency, match="CUDA cannot be used here|no CUDA runtime"):
            open_cuda_memory(kind)
    with pytest.raises(ValueError, match="unknown CUDA memory kind"):
        open_cuda_memory("opencl")
