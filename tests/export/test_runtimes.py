"""Runners across runtimes agree: onnxruntime CPU/CUDA/TensorRT EPs and TensorRT engines.

CPU tests compare files on ort-cpu and check the engine runner's batching and errors; the
``gpu`` / ``trt`` tests (deselected by default, skipped without the hardware) compare the
GPU runtimes with ort-cpu on the sample model's test images.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from tests.export.conftest import SAMPLE, SAMPLE_TEST, tiny_model
from ulrl_edge.config import FP16_PARITY, FP32_PARITY, ParityTolerance
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.errors import BadInput, MissingDependency
from ulrl_edge.export.validate import (
    INT8_PARITY,
    parity_inputs,
    runtime_parity,
    tolerance_for,
)
from ulrl_edge.verify import OrtRunner, evaluate
from ulrl_edge.verify.engine_runner import EngineRunner
from ulrl_edge.verify.runners import RUNTIME_CHOICES, open_runner

SPEC = PreprocessSpec(layout="nchw", size=(28, 28), channels="gray")
GPU_GATE = ParityTolerance(atol=1e-2, rtol=1e-2, min_top1_agreement=0.995)  # TF32 convs


@pytest.fixture(scope="module")
def test_input():
    x, _, _ = parity_inputs(SPEC, SAMPLE_TEST)
    return x[:300]


@pytest.fixture(scope="module")
def roundtripped(tmp_path_factory):
    from ulrl_edge.onnx_io.round_trip import roundtrip

    out = tmp_path_factory.mktemp("rt") / "rt.onnx"
    assert roundtrip(SAMPLE, out).passed
    return out


def test_runtime_names():
    assert RUNTIME_CHOICES == ("ort-cpu", "ort-cuda", "ort-trt", "tensorrt")


def test_tolerances_by_precision():
    assert tolerance_for("fp32") == FP32_PARITY
    assert tolerance_for("fp16") == FP16_PARITY and FP16_PARITY.min_top1_agreement == 0.995
    assert tolerance_for("int8") == INT8_PARITY


def test_a_rewritten_graph_agrees_on_real_images(roundtripped, test_input):
    report = runtime_parity(SAMPLE, roundtripped, test_input, runtime="ort-cpu")
    assert report.passed, report.summary()
    assert report.batch == 300 and report.top1_agreement == 1.0
    assert report.max_abs_diff < FP32_PARITY.atol
    assert report.candidate.endswith("(ort-cpu)")


def test_a_changed_model_fails_parity(tmp_path):
    model = tiny_model(tmp_path / "a.onnx")
    proto = onnx.load(str(model))
    w = numpy_helper.to_array(proto.graph.initializer[0]).copy()
    w[:, 0] += 0.002
    proto.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, "w"))
    onnx.save(proto, str(tmp_path / "b.onnx"))
    x = np.random.default_rng(0).random((16, 1, 4, 4), dtype=np.float32)
    report = runtime_parity(model, tmp_path / "b.onnx", x)
    assert not report.passed and report.failures()[0].problem == "values"
    loose = runtime_parity(model, tmp_path / "b.onnx", x, tolerance=FP16_PARITY)
    assert loose.passed and loose.max_abs_diff > FP32_PARITY.atol


def test_random_probes_do_not_gate_top1(tmp_path):
    x, real, described = parity_inputs(SPEC, count=8)
    assert not real and described == "8 seeded random images" and x.shape == (8, 1, 28, 28)
    report = runtime_parity(SAMPLE, SAMPLE, x, tolerance=FP16_PARITY, real_images=False)
    assert report.tolerance.min_top1_agreement == 0.0 and report.notes
    assert report.passed and report.max_abs_diff == 0.0


def test_missing_runtimes_are_missing_dependencies(tmp_path):
    model = tiny_model(tmp_path / "m.onnx")
    with pytest.raises(BadInput, match="engine file not found"):
        open_runner(tmp_path / "absent.engine", "tensorrt")
    (tmp_path / "m.engine").write_bytes(b"engine")
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependency, match="running a TensorRT engine needs TensorRT"):
            open_runner(tmp_path / "m.engine", "tensorrt")
    for runtime, provider in (("ort-cuda", "CUDA"), ("ort-trt", "Tensorrt")):
        if f"{provider}ExecutionProvider" not in ort.get_available_providers():
            with pytest.raises(MissingDependency, match=provider):
                open_runner(model, runtime)
    assert isinstance(open_runner(model), OrtRunner)


def _bare_engine_runner(min_batch: int, max_batch: int, fixed: int | None = None):
    """An EngineRunner without TensorRT: its chunking and padding over a stub engine call."""
    runner = EngineRunner.__new__(EngineRunner)
    runner.path, runner.runtime, runner.output_name = SAMPLE, "tensorrt", "logits"
    runner.input_shape = (fixed or -1, 1, 2, 2)
    runner.output_shape = (fixed or -1, 3)
    runner.input_type = "tensor(float)"
    runner.min_batch, runner.max_batch = min_batch, max_batch
    runner.calls = []

    def run_chunk(chunk):
        runner.calls.append(len(chunk))
        return chunk.reshape(len(chunk), -1)[:, :3] * 2

    runner._run_chunk = run_chunk
    return runner


def test_engine_runner_chunks_to_its_profile():
    x = np.arange(7 * 4, dtype=np.float32).reshape(7, 1, 2, 2)
    runner = _bare_engine_runner(min_batch=2, max_batch=4)
    out = runner.run(x, batch_size=64)
    np.testing.assert_array_equal(out, x.reshape(7, 4)[:, :3] * 2)
    assert runner.calls == [4, 3]
    runner = _bare_engine_runner(min_batch=2, max_batch=4)
    out = runner.run(x, batch_size=3)  # 3 + 3 + 1: the single row padded to the min of 2
    assert runner.calls == [3, 3, 2] and out.shape == (7, 3)
    runner = _bare_engine_runner(min_batch=5, max_batch=5, fixed=5)
    assert runner.static_batch == 5
    assert runner.run(x).shape == (7, 3) and runner.calls == [5, 5]


def test_engine_load_failure_names_what_built_it():
    runner = EngineRunner.__new__(EngineRunner)
    runner.sidecar = {"tensorrt_version": "10.3.0", "gpu": {"name": "Orin (nvgpu)"}}
    runner._trt = type("trt", (), {"__version__": "10.16.1"})
    runner._logger = type("log", (), {"last_error": lambda self: "version tag mismatch"})()
    text = runner._mismatch()
    assert "built with TensorRT 10.3.0 on Orin (nvgpu)" in text
    assert "this is TensorRT 10.16.1" in text and "rebuild it here" in text
    assert "version tag mismatch" in text


def _needs_provider(name: str) -> None:
    if f"{name}ExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"onnxruntime has no {name}ExecutionProvider here")


@pytest.mark.gpu
@pytest.mark.parametrize(("runtime", "provider"), [("ort-cuda", "CUDA"), ("ort-trt", "Tensorrt")])
def test_gpu_execution_providers_agree_with_cpu(runtime, provider, test_input):
    _needs_provider(provider)
    report = runtime_parity(SAMPLE, SAMPLE, test_input, runtime=runtime, tolerance=GPU_GATE)
    assert report.passed, report.summary()


@pytest.mark.trt
@pytest.mark.parametrize("fp16", [False, True])
def test_engine_agrees_with_onnxruntime(fp16, tmp_path, test_input):
    pytest.importorskip("tensorrt")
    from ulrl_edge.data.sources import load_images
    from ulrl_edge.export import build_engine

    try:
        build = build_engine(SAMPLE, tmp_path / "m.engine", fp16=fp16)
    except MissingDependency as err:
        pytest.skip(str(err))
    runners = [EngineRunner(build.engine, memory=kind) for kind in ("auto", "cudart")]
    for runner in runners:
        report = runtime_parity(
            SAMPLE, runner, test_input, tolerance=tolerance_for(build.precision)
        )
        assert report.passed, report.summary()
    metrics = evaluate(runners[0], load_images(SAMPLE_TEST, SPEC), SPEC)
    assert metrics.accuracy > 0.85
    (tmp_path / "bad.engine").write_bytes(build.engine.read_bytes()[:100])
    with pytest.raises(BadInput, match="rebuild it here"):
        EngineRunner(tmp_path / "bad.engine")
