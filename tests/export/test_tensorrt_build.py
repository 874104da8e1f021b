"""build_engine's control flow over a stand-in tensorrt module (the real one needs a GPU)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests.export.conftest import tiny_model
from tests.export.fake_tensorrt import make_fake_tensorrt
from ulrl_edge.errors import BadInput, MissingDependency, UnsupportedModel
from ulrl_edge.export import build_engine
from ulrl_edge.export.cuda_memory import DeviceArray


@pytest.fixture
def fake_trt(monkeypatch):
    def install(**kwargs):
        trt = make_fake_tensorrt(**kwargs)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
        return trt

    return install


def test_without_tensorrt_says_how_to_get_it(monkeypatch, sample_model, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    with pytest.raises(MissingDependency) as err:
        build_engine(sample_model, tmp_path / "m.engine")
    text = str(err.value)
    assert err.value.exit_code == 5
    assert "JetPack" in text and "pip install 'ulrl-edge[tensorrt]'" in text
    assert not (tmp_path / "m.engine").exists()


def test_bad_input_comes_before_the_missing_dependency(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BadInput, match="no such file"):
        build_engine(tmp_path / "absent.onnx", tmp_path / "m.engine")


def test_old_tensorrt_is_refused(fake_trt, sample_model, tmp_path):
    fake_trt(version="8.6.1")
    with pytest.raises(MissingDependency, match="TensorRT 10 or newer; this is TensorRT 8.6.1"):
        build_engine(sample_model, tmp_path / "m.engine")


def test_fp32_engine_bytes_sidecar_and_profile(fake_trt, sample_model, tmp_path):
    trt = fake_trt()
    before = sample_model.read_bytes()
    build = build_engine(sample_model, tmp_path / "m.engine")
    assert (tmp_path / "m.engine").read_bytes() == b"FAKE-ENGINE-10.3.0"  # plain, no header
    assert sample_model.read_bytes() == before
    _network, config = trt.built[-1]
    assert "TF32" not in config.flags and "FP16" not in config.flags
    assert config.pools == {"WORKSPACE": 1024 << 20}
    assert config.profiles[0].shapes == {"input": ((1, 1, 28, 28), (1, 1, 28, 28), (32, 1, 28, 28))}
    meta = json.loads((tmp_path / "m.engine.json").read_text())
    assert meta == build.metadata
    assert meta["precision"] == "fp32" and meta["tensorrt_version"] == "10.3.0"
    assert meta["source"] == "backdoored.onnx" and len(meta["source_sha256"]) == 64
    assert meta["preprocess"]["size"] == [28, 28] and meta["preprocess"]["layout"] == "nchw"
    assert set(meta["gpu"]) == {"name", "compute_capability"}
    assert meta["profile"]["max"] == [32, 1, 28, 28]


def test_fp16_where_fast_and_a_note_where_not(fake_trt, sample_model, tmp_path):
    trt = fake_trt()
    build = build_engine(
        sample_model, tmp_path / "a.engine", fp16=True, shapes="1,8,64", workspace=64
    )
    config = trt.built[-1][1]
    assert "FP16" in config.flags and build.precision == "fp16" and not build.notes
    assert config.pools == {"WORKSPACE": 64 << 20}
    assert config.profiles[0].shapes["input"][1:] == ((8, 1, 28, 28), (64, 1, 28, 28))
    trt = fake_trt(fast_fp16=False)
    build = build_engine(sample_model, tmp_path / "b.engine", fp16=True)
    assert "FP16" not in trt.built[-1][1].flags
    assert build.precision == "fp32" and "no fast fp16" in build.notes[0]
    assert json.loads(build.sidecar.read_text())["requested_precision"] == "fp16"


def test_tensorrt_11_builds_fp32_and_refuses_implicit_fp16(fake_trt, sample_model, tmp_path):
    fake_trt(v11=True)
    assert build_engine(sample_model, tmp_path / "a.engine").precision == "fp32"
    with pytest.raises(MissingDependency, match="strongly typed") as err:
        build_engine(sample_model, tmp_path / "b.engine", fp16=True)
    assert "tensorrt-cu12>=10,<11" in str(err.value)
    assert not (tmp_path / "b.engine").exists()


def test_dla_only_where_there_are_dla_cores(fake_trt, sample_model, tmp_path):
    fake_trt(dla_cores=0)
    with pytest.raises(MissingDependency, match="no DLA core.*Jetson"):
        build_engine(sample_model, tmp_path / "a.engine", fp16=True, dla=0)
    trt = fake_trt(dla_cores=2)
    build_engine(sample_model, tmp_path / "b.engine", fp16=True, dla=1)
    config = trt.built[-1][1]
    assert (config.default_device_type, config.DLA_core) == ("DLA", 1)
    assert {"GPU_FALLBACK", "FP16"} <= config.flags
    with pytest.raises(BadInput, match="2 DLA core"):
        build_engine(sample_model, tmp_path / "c.engine", fp16=True, dla=2)


def test_parser_builder_and_gpu_failures(fake_trt, sample_model, tmp_path):
    fake_trt(parse_error="In node 3 (importFoo): UNSUPPORTED_NODE: No importer for op Foo")
    with pytest.raises(UnsupportedModel, match="No importer for op Foo") as err:
        build_engine(sample_model, tmp_path / "m.engine")
    assert err.value.exit_code == 4
    fake_trt(build_fails=True)
    with pytest.raises(UnsupportedModel, match="out of memory for tactic.*--workspace"):
        build_engine(sample_model, tmp_path / "m.engine")
    fake_trt(builder_fails=True)
    with pytest.raises(MissingDependency, match="no usable NVIDIA GPU.*CUDA initialization"):
        build_engine(sample_model, tmp_path / "m.engine")
    assert not (tmp_path / "m.engine").exists() and not (tmp_path / "m.engine.json").exists()


def test_paths_and_fixed_batches(fake_trt, tmp_path):
    trt = fake_trt()
    model = tiny_model(tmp_path / "b1.onnx", batch=1)
    with pytest.raises(BadInput, match="output path is the input model"):
        build_engine(model, model)
    with pytest.raises(BadInput, match="batch size is fixed at 1"):
        build_engine(model, tmp_path / "m.engine", shapes="1,1,8")
    build = build_engine(model, tmp_path / "m.engine")
    assert trt.built[-1][1].profiles == []  # a static input needs no profile
    assert build.metadata["profile"] == {"input": "x", "static": [1, 1, 4, 4]}


class FakeMemory:
    stream = 7

    def __init__(self):
        self.uploads = []

    def upload(self, host):
        self.uploads.append(host.shape)
        return DeviceArray(1000 + len(self.uploads), host.shape, host.dtype, host)


def _calibration_npz(path, n=70):
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8), y=np.arange(n) % 10)
    return path


def test_int8_calibrates_on_the_clean_samples(fake_trt, monkeypatch, sample_model, tmp_path):
    trt = fake_trt()
    memory = FakeMemory()
    monkeypatch.setattr("ulrl_edge.export.cuda_memory.open_cuda_memory", lambda: memory)
    calib = _calibration_npz(tmp_path / "calib.npz")
    build = build_engine(sample_model, tmp_path / "m.engine", int8=True, calib=calib)
    config = trt.built[-1][1]
    assert {"INT8", "FP16"} <= config.flags and build.precision == "int8"
    assert config.calibration_profile.shapes["input"][0] == (32, 1, 28, 28)
    assert config.int8_calibrator.batches_seen == 2  # 70 images: two full batches of 32
    assert memory.uploads == [(32, 1, 28, 28)] * 2
    cache = tmp_path / "m.calib.cache"
    assert cache.read_bytes().startswith(b"TRT-")
    assert build.calibration_cache == cache
    assert json.loads(build.sidecar.read_text())["calibration_cache"] == "m.calib.cache"


def test_int8_without_a_gpu_is_a_missing_dependency(fake_trt, sample_model, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    fake_trt()
    calib = _calibration_npz(tmp_path / "calib.npz")
    with pytest.raises(MissingDependency, match="CUDA|libcudart"):
        build_engine(sample_model, tmp_path / "m.engine", int8=True, calib=calib)
