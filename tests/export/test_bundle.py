"""The Jetson bundle: its files, and a build_engine.sh whose trtexec line matches the options."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.export.conftest import tiny_model, trtexec_args
from ulrl_edge.data.spec import METADATA_KEY, resolve_spec
from ulrl_edge.errors import BadInput
from ulrl_edge.export import check_options
from ulrl_edge.export.bundle import SCRIPT_FILE, write_bundle
from ulrl_edge.onnx_io.load import load_model

FILES = ["README.md", "build_engine.sh", "metadata.json", "model.onnx", "preprocess.json"]


def _bundle(model_path, folder, **options):
    source = load_model(model_path)
    spec = resolve_spec(source.inputs[0].shape, source.metadata)
    opts = check_options("tensorrt", {"bundle": folder, **options})
    return write_bundle(source, folder, spec=spec, options=opts), spec


def test_fp16_bundle_files_and_trtexec_line(sample_model, tmp_path):
    bundle, spec = _bundle(sample_model, tmp_path / "b", fp16=True, shapes="1,4,32")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == FILES
    script = (tmp_path / "b" / SCRIPT_FILE).read_text()
    assert os.stat(tmp_path / "b" / SCRIPT_FILE).st_mode & stat.S_IXUSR
    args = trtexec_args(script)
    assert args == [
        "$TRTEXEC",
        "--onnx=model.onnx",
        "--saveEngine=$ENGINE",
        "--minShapes=input:1x1x28x28",
        "--optShapes=input:4x1x28x28",
        "--maxShapes=input:32x1x28x28",
        "--memPoolSize=workspace:1024",
        "--fp16",
    ]
    assert bundle.command[1:] == args[1:]
    assert subprocess.run(["bash", "-n", str(tmp_path / "b" / SCRIPT_FILE)]).returncode == 0
    meta = json.loads((tmp_path / "b" / "metadata.json").read_text())
    assert meta["precision"] == "fp16" and meta["input"] == "input" and meta["output"] == "logits"
    assert meta["profile"] == {
        "input": "input",
        "min": [1, 1, 28, 28],
        "opt": [4, 1, 28, 28],
        "max": [32, 1, 28, 28],
    }
    assert meta["source_sha256"] == load_model(sample_model).sha256
    assert json.loads((tmp_path / "b" / "preprocess.json").read_text()) == json.loads(
        spec.to_json()
    )
    readme = (tmp_path / "b" / "README.md").read_text()
    assert "./build_engine.sh" in readme and "--fp16" in readme and "GPU model" in readme


def test_bundled_model_is_the_same_graph_with_preprocessing(sample_model, tmp_path):
    _bundle(sample_model, tmp_path / "b", fp16=True)
    shipped = onnx.load(str(tmp_path / "b" / "model.onnx"))
    original = onnx.load(str(sample_model))
    assert shipped.graph == original.graph
    meta = {p.key: p.value for p in shipped.metadata_props}
    assert json.loads(meta[METADATA_KEY])["size"] == [28, 28]
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    run = [
        ort.InferenceSession(str(p)).run(None, {"input": x})[0]
        for p in (sample_model, tmp_path / "b" / "model.onnx")
    ]
    np.testing.assert_array_equal(run[0], run[1])


def test_fp32_static_model_has_no_shape_flags(tmp_path):
    model = tiny_model(tmp_path / "static.onnx", batch=1)
    _bundle(model, tmp_path / "b", workspace=256)
    args = trtexec_args((tmp_path / "b" / SCRIPT_FILE).read_text())
    assert not [a for a in args if "Shapes=" in a]
    assert "--memPoolSize=workspace:256" in args and "--noTF32" in args
    assert "--fp16" not in args and "--int8" not in args


def test_input_names_trtexec_would_split_are_quoted(tmp_path):
    model = tiny_model(tmp_path / "tf.onnx", name="input:0")
    _bundle(model, tmp_path / "b", fp16=True, dla=1)
    args = trtexec_args((tmp_path / "b" / SCRIPT_FILE).read_text())
    assert "--minShapes='input:0':1x1x4x4" in args
    assert "--maxShapes='input:0':32x1x4x4" in args
    assert args[-2:] == ["--useDLACore=1", "--allowGPUFallback"]


def test_int8_bundle_needs_the_calibration_cache(sample_model, tmp_path):
    with pytest.raises(BadInput, match="an int8 bundle needs the calibration cache"):
        _bundle(sample_model, tmp_path / "b", int8=True, calib="x")
    assert not (tmp_path / "b").exists()
    cache = tmp_path / "m.calib.cache"
    cache.write_bytes(b"TRT-100300-EntropyCalibration2\ninput: 3c010a14\n")
    source = load_model(sample_model)
    spec = resolve_spec(source.inputs[0].shape, source.metadata)
    opts = check_options("tensorrt", {"int8": True, "calib": "x", "bundle": tmp_path / "b"})
    write_bundle(source, tmp_path / "b", spec=spec, options=opts, calibration_cache=cache)
    args = trtexec_args((tmp_path / "b" / SCRIPT_FILE).read_text())
    assert args[-3:] == ["--fp16", "--int8", "--calib=model.calib.cache"]
    assert (tmp_path / "b" / "model.calib.cache").read_bytes() == cache.read_bytes()


def test_bundle_never_writes_over_the_model(tmp_path):
    model = tiny_model(tmp_path / "model.onnx")
    before = model.read_bytes()
    with pytest.raises(BadInput, match="output path is the input model"):
        _bundle(model, tmp_path, fp16=True)
    assert model.read_bytes() == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput, match="not a folder"):
        _bundle(model, tmp_path / "file", fp16=True)
    with pytest.raises(BadInput, match="parent"):
        _bundle(model, tmp_path / "missing" / "b", fp16=True)


@pytest.mark.skipif(shutil.which("python3") is None, reason="the sidecar step needs python3")
def test_script_runs_trtexec_and_writes_the_sidecar(sample_model, tmp_path):
    _bundle(sample_model, tmp_path / "b", fp16=True)
    stub = tmp_path / "trtexec"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        'printf "%s\\n" "$@" > "$ARGS_FILE"\n'
        'for a in "$@"; do case "$a" in --saveEngine=*) printf E > "${a#--saveEngine=}";; '
        "esac; done\n"
    )
    stub.chmod(0o755)
    env = {**os.environ, "TRTEXEC": str(stub), "ARGS_FILE": str(tmp_path / "args")}
    done = subprocess.run(
        ["bash", str(tmp_path / "b" / SCRIPT_FILE), "out.engine"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "args").read_text().splitlines()[:3] == [
        "--onnx=model.onnx",
        "--saveEngine=out.engine",
        "--minShapes=input:1x1x28x28",
    ]
    sidecar = json.loads((tmp_path / "b" / "out.engine.json").read_text())
    assert sidecar["engine_sha256"] == hashlib.sha256(b"E").hexdigest()
    assert sidecar["precision"] == "fp16" and sidecar["built_by"].startswith("trtexec")


def test_script_without_trtexec_exits_5(sample_model, tmp_path):
    path = "/usr/bin:/bin"
    if shutil.which("trtexec", path=path) or os.path.exists("/usr/src/tensorrt/bin/trtexec"):
        pytest.skip("this machine has trtexec")
    _bundle(sample_model, tmp_path / "b", fp16=True)
    done = subprocess.run(
        ["/bin/bash", str(tmp_path / "b" / SCRIPT_FILE)],
        env={"PATH": path, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 5 and "trtexec not found" in done.stderr
