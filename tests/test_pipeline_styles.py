"""purify() runs on every vendor style and keeps each file's input/output contract."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.fixtures.model_styles import STYLES, style_file
from ulrl_edge.pipeline import DataOptions, purify
from ulrl_edge.verify import predict

QUICK = {"unlearn_epochs": 1, "relearn_epochs": 1, "unlearn_runs": 1, "unlearn_agreement": 1,
         "patch_probe": False}


def _contract(path):
    model = onnx.load(str(path))
    return [
        (v.name, v.type.tensor_type.elem_type,
         [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
        for v in list(model.graph.input) + list(model.graph.output)
    ]


@pytest.mark.parametrize("style", sorted(STYLES))
def test_purify_keeps_contract(tmp_path, style):
    model = style_file(style, tmp_path, channels=3, height=16, width=16, num_classes=4)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(40, 16, 16, 3), dtype=np.uint8)  # N×H×W×C is unambiguous
    np.savez(tmp_path / "clean.npz", x=x, y=np.repeat(np.arange(4), 10))
    out = tmp_path / "out.onnx"
    result = purify(model, DataOptions(tmp_path / "clean.npz"), out, config_overrides=QUICK)
    assert _contract(out) == _contract(model)
    assert result.report.parity["export"]["passed"]
    if STYLES[style].softmax:  # the trailing Softmax survives training on logits
        probs = predict(out, np.random.default_rng(1).random(
            (1, 3, 16, 16) if STYLES[style].layout == "nchw" else (1, 16, 16, 3),
            dtype=np.float32))
        assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
