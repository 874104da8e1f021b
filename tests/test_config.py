"""Limits can be raised from the environment; bad values are refused."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ulrl_edge.config import Limits, limits_from_env

SAMPLE = Path(__file__).resolve().parents[1] / "sample_models" / "backdoored.onnx"


def test_environment_overrides_each_limit():
    env = {"ULRL_EDGE_MAX_MODEL_BYTES": "123", "ULRL_EDGE_MAX_IMAGE_PIXELS": "9"}
    limits = limits_from_env(env)
    assert limits.max_model_bytes == 123 and limits.max_image_pixels == 9
    assert limits.max_tensor_elements == Limits().max_tensor_elements


def test_no_environment_gives_defaults():
    assert limits_from_env({}) == Limits()


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_bad_values_are_refused(value):
    with pytest.raises(ValueError, match="ULRL_EDGE_MAX_MODEL_BYTES"):
        limits_from_env({"ULRL_EDGE_MAX_MODEL_BYTES": value})


def test_cli_reads_the_environment():
    code = "from ulrl_edge.cli.main import app; app()"
    env = {**os.environ, "ULRL_EDGE_MAX_MODEL_BYTES": "1000"}
    run = subprocess.run(
        [sys.executable, "-c", code, "inspect", str(SAMPLE)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 3
    assert "above the 1000-byte limit" in run.stderr
