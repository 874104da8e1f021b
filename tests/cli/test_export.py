"""``ulrl-edge export``: ONNX, TensorRT without TensorRT (exit 5), the Jetson bundle, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest

from tests.export.conftest import SAMPLE, trtexec_args

MODEL = str(SAMPLE)


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # importing it fails, as without it


def test_onnx_export_carries_the_preprocessing(run_cli, tmp_path):
    out = tmp_path / "m.onnx"
    before = SAMPLE.read_bytes()
    result = run_cli(["export", MODEL, "--format", "onnx", "-o", out, "--json"])
    report = json.loads(result.stdout)
    assert report["passed"] and report["format"] == "onnx" and report["output"] == str(out)
    assert report["parity"]["max_abs_diff"] == 0.0 and report["bundle"] is None
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["ulrl_edge.preprocess"])["channels"] == "gray"
    assert SAMPLE.read_bytes() == before


def test_onnx_export_checks_on_given_images(run_cli, tmp_path):
    data = SAMPLE.with_name("test.npz")
    result = run_cli(["export", MODEL, "-f", "onnx", "-o", tmp_path / "m.onnx", "--data", data])
    assert "parity vs source on 1000 images" in result.stdout and ": ok" in result.stdout
    assert "PASSED" in result.stderr


@pytest.mark.parametrize("fmt", ["onnx", "tensorrt"])
def test_never_writes_over_the_model(run_cli, fmt, no_tensorrt):
    before = SAMPLE.read_bytes()
    result = run_cli(["export", MODEL, "--format", fmt, "-o", MODEL], expect_exit=3)
    assert "refusing to write over it" in result.stderr
    assert SAMPLE.read_bytes() == before


def test_bundle_when_tensorrt_has_no_gpu(run_cli, tmp_path, monkeypatch):
    from tests.export.fake_tensorrt import make_fake_tensorrt

    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(builder_fails=True))
    result = run_cli(
        [
            "export",
            MODEL,
            "-f",
            "tensorrt",
            "-o",
            tmp_path / "m.engine",
            "--bundle",
            tmp_path / "b",
        ],
        expect_exit=5,
    )
    assert "no usable NVIDIA GPU" in result.stderr and "bundle" in result.stderr
    assert (tmp_path / "b" / "model.onnx").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "tensorrtt"], "did you mean 'tensorrt'"),
        (["--format", "onnx", "--fp16"], "--fp16 does not apply to --format onnx"),
        (["--format", "tensorrt", "--int8"], "--int8 needs --calib"),
        (["--format", "tensorrt", "--shapes", "8,4,2"], "MIN ≤ OPT ≤ MAX"),
        (["--format", "tensorrt"], "give the output file (-o OUT.engine)"),
    ],
)
def test_option_errors_are_one_line_exit_3(run_cli, args, message):
    result = run_cli(["export", MODEL, *args], expect_exit=3)
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and message in error_lines[0]
    assert result.stdout == ""


def test_tensorrt_missing_exits_5_saying_how_to_get_it(run_cli, tmp_path, no_tensorrt):
    result = run_cli(
        ["export", MODEL, "--format", "tensorrt", "--fp16", "-o", tmp_path / "m.engine"],
        expect_exit=5,
    )
    assert "JetPack" in result.stderr and "pip install 'ulrl-edge[tensorrt]'" in result.stderr
    assert "--bundle DIR" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bundle_without_tensorrt(run_cli, tmp_path, no_tensorrt):
    folder = tmp_path / "jetson"
    result = run_cli(
        [
            "export",
            MODEL,
            "-f",
            "tensorrt",
            "--fp16",
            "--shapes",
            "1,1,16",
            "--bundle",
            folder,
            "--mean",
            "0.5",
            "--std",
            "0.5",
            "--json",
        ]
    )
    report = json.loads(result.stdout)
    assert report["output"] is None and report["precision"] == "fp16"
    assert report["bundle"]["files"] == [
        "model.onnx",
        "preprocess.json",
        "metadata.json",
        "build_engine.sh",
        "README.md",
    ]
    args = trtexec_args((folder / "build_engine.sh").read_text())
    assert "--maxShapes=input:16x1x28x28" in args and "--fp16" in args
    spec = json.loads((folder / "preprocess.json").read_text())
    assert spec["mean"] == [0.5] and spec["std"] == [0.5]


def test_bundle_then_exit_5_when_an_engine_was_asked_for(run_cli, tmp_path, no_tensorrt):
    result = run_cli(
        [
            "export",
            MODEL,
            "-f",
            "trt",
            "--fp16",
            "-o",
            tmp_path / "m.engine",
            "--bundle",
            tmp_path / "b",
        ],
        expect_exit=5,
    )
    assert "the Jetson bundle" in result.stderr and "build_engine.sh" in result.stderr
    assert (tmp_path / "b" / "build_engine.sh").is_file()
    assert not (tmp_path / "m.engine").exists()


def test_int8_bundle_without_a_calibration_cache(run_cli, tmp_path, no_tensorrt):
    calib = SAMPLE.with_name("clean")
    result = run_cli(
        ["export", MODEL, "-f", "tensorrt", "--int8", "--calib", calib, "--bundle", tmp_path / "b"],
        expect_exit=3,
    )
    assert "calibration cache" in result.stderr


def test_help_and_import_without_tensorrt(run_cli):
    assert "--bundle" in run_cli(["export", "--help"]).stdout
    code = (
        "import sys; sys.modules['tensorrt'] = None\n"
        "import ulrl_edge, ulrl_edge.export, ulrl_edge.verify.engine_runner\n"
        "from ulrl_edge.cli.main import app\n"
        "from ulrl_edge.export import FORMATS, build_engine, export\n"
        "print(sorted(FORMATS))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['onnx', 'tensorrt']"
