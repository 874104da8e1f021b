"""An export must run at any batch the original runs at, or be refused before writing."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from ulrl_edge.errors import UnsupportedModel
from ulrl_edge.onnx_io import export_model, import_model, load_model
from ulrl_edge.onnx_io.to_onnx import KEY_EXPORT, WRITTEN_BACK


class TinyAttention(nn.Module):
    """Patch embedding + one self-attention whose reshape reads the batch from x.shape."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(1, 16, 4, 4)
        self.pos = nn.Parameter(torch.randn(1, 4, 16) * 0.02)
        self.norm = nn.LayerNorm(16)
        self.qkv = nn.Linear(16, 48)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        h = self.norm(t)
        n, k, d = h.shape
        q, kk, v = self.qkv(h).reshape(n, k, 3, 2, d // 2).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ kk.transpose(-2, -1), dim=-1) @ v
        return self.head((t + a.permute(0, 2, 1, 3).reshape(n, k, d)).mean(1))


@pytest.fixture(scope="module")
def attention_onnx(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("attn") / "attention.onnx"
    torch.onnx.export(
        TinyAttention().eval(), (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False,
        opset_version=17, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}},
    )  # fmt: skip
    return path


def _runs_like_the_original(out, original) -> None:
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    reference = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"])
    for batch in (1, 3, 5):
        x = np.random.default_rng(batch).random((batch, 1, 8, 8), dtype=np.float32)
        got = session.run(None, {"input": x})[0]
        want = reference.run(None, {"input": x})[0]
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_attention_export_writes_weights_back_and_runs_at_any_batch(attention_onnx, tmp_path):
    source = load_model(attention_onnx)
    out = tmp_path / "out.onnx"
    export_model(import_model(source), source, out)
    assert load_model(out).metadata[KEY_EXPORT] == WRITTEN_BACK
    _runs_like_the_original(out, attention_onnx)


def test_attention_re_trace_runs_at_other_batches_or_is_refused(attention_onnx, tmp_path):
    source = load_model(attention_onnx)
    model = import_model(source)
    model.meta.pop("ulrl_edge")  # no import map: the exporter must re-trace
    out = tmp_path / "out.onnx"
    try:
        export_model(model, source, out)
    except UnsupportedModel as err:
        assert "froze its batch size" in str(err) and str(attention_onnx) in str(err)
        assert not out.exists() and list(tmp_path.iterdir()) == []
        return
    _runs_like_the_original(out, attention_onnx)
