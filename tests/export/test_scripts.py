"""The benchmark scripts: they compile, and their CPU parts run."""

from __future__ import annotations

import importlib.util
import json
import py_compile
from pathlib import Path

import pytest

from tests.export.conftest import SAMPLE

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["latency", "gpu_check"])
def test_scripts_compile(name):
    py_compile.compile(str(BENCHMARKS / f"{name}.py"), doraise=True)


def test_latency_measures_both_models_at_batch_1_and_32(capsys):
    latency = _module("latency")
    args = [
        str(SAMPLE),
        str(SAMPLE),
        "--runs",
        "50",
        "--warmup",
        "1",
        "--runtimes",
        "ort-cpu",
        "--threads",
        "1",
    ]
    assert latency.main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(r["runtime"], r["batch"], r["runs"]) for r in result["rows"]] == [
        ("ort-cpu", 1, 50),
        ("ort-cpu", 32, 50),
    ]
    for r in result["rows"]:
        assert r["ratio"] == pytest.approx(r["purified_ms"] / r["original_ms"])
        assert r["original_img_s"] == pytest.approx(r["batch"] / r["original_ms"] * 1e3)
    assert result["machine"]["cores"] >= 1
    with pytest.raises(SystemExit):
        latency.main([str(SAMPLE), str(SAMPLE), "--runs", "10"])


def test_gpu_check_environment_and_cli():
    gpu_check = _module("gpu_check")
    env = gpu_check.environment()
    assert {"onnxruntime", "providers", "torch_cuda", "tensorrt"} <= set(env)
    summary: dict = {}
    result = gpu_check.step(summary, "boom", lambda: 1 / 0)
    assert result["ok"] is False and "ZeroDivisionError" in result["error"]
    assert gpu_check.cli("export", "--help")[-2:] == ["export", "--help"]
    import torch

    if not torch.cuda.is_available():
        assert "skipped" in gpu_check.amp_check(None, Path("/nonexistent"))
