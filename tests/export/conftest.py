"""Tiny ONNX models for the export tests, and the bundled sample model."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

SAMPLE = Path(__file__).resolve().parents[2] / "sample_models" / "backdoored.onnx"
SAMPLE_TEST = SAMPLE.with_name("test.npz")


def tiny_model(path: Path, *, batch="N", name: str = "x", size: int = 4, classes: int = 3):
    """``name`` [batch,1,size,size] → Flatten → MatMul → logits [batch, classes]."""
    weight = np.random.default_rng(0).standard_normal((size * size, classes)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", [name], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, 1, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def sample_model() -> Path:
    assert SAMPLE.is_file(), "sample_models/backdoored.onnx is part of the repository"
    return SAMPLE


def trtexec_args(script: str) -> list[str]:
    """The words of the script's trtexec command (continued lines joined)."""
    lines = script.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"$TRTEXEC"'))
    command = []
    for line in lines[start:]:
        command.append(line.rstrip("\\").strip())
        if not line.endswith("\\"):
            break
    return shlex.split(" ".join(command))
