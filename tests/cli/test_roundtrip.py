"""``ulrl-edge roundtrip``: a passing round trip, a failing one, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from tests.fixtures.model_styles import style_file
from ulrl_edge.onnx_io.load import load_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("roundtrip")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("style", ["paddle", "reducemean18"])
def test_round_trip_passes_and_keeps_the_contract(run_cli, folder, tmp_path, style):
    src = style_file(style, folder, channels=1, height=12, width=10, num_classes=3)
    before = src.read_bytes()
    out = tmp_path / "rt.onnx"
    data = json.loads(run_cli(["roundtrip", src, "-o", out, "--json"]).stdout)
    assert data["passed"] and data["output"] == str(out)
    assert [r["batch"] for r in data["onnx_parity"]] == [1, 4]
    assert data["head"]["classes"] == 3
    assert data["sizes"]["opset_after"] == data["sizes"]["opset_before"]
    assert src.read_bytes() == before
    exported, original = load_model(out), load_model(src)
    assert exported.input_names == original.input_names
    assert exported.output_names == original.output_names


def test_human_output_and_closing_line(run_cli, folder, tmp_path):
    result = run_cli(["roundtrip", style_file("gemm", folder), "-o", tmp_path / "o.onnx"])
    assert "re-exported file" in result.stdout and "torch import" in result.stdout
    assert "PASSED" in result.stderr and "wrote" in result.stderr


def test_parity_failure_exits_1_and_keeps_the_file(run_cli, folder, tmp_path, monkeypatch):
    import ulrl_edge.onnx_io.to_torch as to_torch
    from ulrl_edge.head import find_head

    real_import = to_torch.import_model

    def tampered(loaded):
        model = real_import(loaded)
        find_head(model).reinit_rows(list(range(10)))
        return model

    monkeypatch.setattr(to_torch, "import_model", tampered)
    out = tmp_path / "rt.onnx"
    result = run_cli(["roundtrip", style_file("gemm", folder), "-o", out], expect_exit=1)
    (line,) = error_lines(result.stderr)
    assert "output kept" in line and str(out) in line
    assert out.exists()


def test_atol_zero_is_accepted_as_a_gate(run_cli, folder, tmp_path):
    # torch and onnxruntime differ in the last bits, so a zero tolerance must fail.
    out = tmp_path / "rt.onnx"
    result = run_cli(
        ["roundtrip", style_file("batchnorm", folder), "-o", out, "--atol", "0", "--json"],
        expect_exit=1,
    )
    assert json.loads(result.stdout)["passed"] is False
    assert out.exists()


def outside_external_data(folder):
    model = onnx.load(style_file("gemm", folder))
    tensor = model.graph.initializer[0]
    data = numpy_helper.to_array(tensor).tobytes()
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../weights.bin"), ("offset", "0"), ("length", "0")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    entry.value = str(len(data))
    inner = folder / "ext"
    inner.mkdir(exist_ok=True)
    (folder / "weights.bin").write_bytes(data)
    path = inner / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("kind", ["text", "truncated", "external_outside", "same_path", "dir"])
def test_bad_input_exits_3_and_writes_nothing(run_cli, folder, tmp_path, kind):
    out = tmp_path / "out.onnx"
    if kind == "text":
        src = tmp_path / "notes.onnx"
        src.write_text("not a model\n")
    elif kind == "truncated":
        src = tmp_path / "cut.onnx"
        src.write_bytes(style_file("gemm", folder).read_bytes()[:-100])
    elif kind == "external_outside":
        src = outside_external_data(tmp_path)
    elif kind == "same_path":
        src = tmp_path / "model.onnx"
        src.write_bytes(style_file("gemm", folder).read_bytes())
        out = src
    else:
        src = style_file("gemm", folder)
        out = tmp_path  # a folder, not a file
    before = src.read_bytes()
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    result = run_cli(["roundtrip", src, "-o", out], expect_exit=3)
    (line,) = error_lines(result.stderr)
    assert str(out if kind in ("same_path", "dir") else src) in line
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == listing  # no output, no temp file


def test_missing_size_for_free_spatial_axes_exits_3(run_cli, folder, tmp_path):
    model = onnx.load(style_file("gemm", folder))
    for axis in (2, 3):
        dim = model.graph.input[0].type.tensor_type.shape.dim[axis]
        dim.Clear()
        dim.dim_param = "?"
    src = tmp_path / "free.onnx"
    onnx.save(model, src)
    out = tmp_path / "rt.onnx"
    result = run_cli(["roundtrip", src, "-o", out], expect_exit=3)
    assert "--size" in result.stderr and not out.exists()
    run_cli(["roundtrip", src, "-o", out, "--size", "16", "16"])
    x = np.random.default_rng(0).random((2, 3, 16, 16), dtype=np.float32)
    from ulrl_edge.onnx_io.parity import check_parity

    assert check_parity(src, out, inputs={"input": x}).passed
