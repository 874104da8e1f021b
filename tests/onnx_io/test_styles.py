"""Every vendor style: import, parity, head, trainability, export contract, determinism."""

from __future__ import annotations

import copy

import onnx
import pytest
import torch

from tests.fixtures.model_styles import STYLES, style_file
from ulrl_edge.head import find_head
from ulrl_edge.onnx_io.load import load_model
from ulrl_edge.onnx_io.parity import check_parity
from ulrl_edge.onnx_io.shapes import random_inputs
from ulrl_edge.onnx_io.to_onnx import KEY_SOURCE_SHA256, KEY_VERSION, export_model
from ulrl_edge.onnx_io.to_torch import import_model

CLASSES = 10


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("styles")


@pytest.fixture(scope="module", params=sorted(STYLES))
def case(request, folder):
    """(style, loaded original, imported model, exported path) for one style."""
    style = STYLES[request.param]
    loaded = load_model(style_file(style.name, folder))
    model = import_model(loaded)
    out = export_model(model, loaded, folder / f"{style.name}.exported.onnx")
    return style, loaded, model, out


def test_torch_import_matches_onnxruntime(case):
    _, loaded, model, _ = case
    report = check_parity(loaded, model)
    assert report.passed, report.summary()
    assert report.max_abs_diff <= 1e-5
    assert report.top1_agreement == 1.0


def test_head_is_found_with_classes_by_features(case):
    style, _, model, _ = case
    head = find_head(model)
    assert head.onnx_op == style.head_op
    assert head.num_classes == CLASSES
    assert head.in_features == 32
    assert isinstance(head.weight, torch.nn.Parameter)
    assert head.bias is not None and head.bias_values().numel() == CLASSES


def test_every_float_weight_is_a_trainable_parameter(case):
    _, _, model, _ = case
    params = {name for name, _ in model.named_parameters()}
    assert params and all(p.requires_grad for p in model.parameters())
    for name, buffer in model.named_buffers():
        if not buffer.is_floating_point():
            continue
        # Only BatchNorm statistics and graph scalars (epsilons, 0-d constants) stay buffers.
        assert name.endswith(("running_mean", "running_var")) or buffer.numel() <= 1, name


def test_gradients_reach_the_head_and_reinit_changes_outputs(case):
    _, loaded, shared, _ = case
    model = copy.deepcopy(shared)  # the module-scoped import stays untouched
    head = find_head(model)
    batch = 4 if _dynamic(loaded) else 1
    x = torch.from_numpy(random_inputs(loaded, batch)[loaded.input_names[0]])
    model(x).square().sum().backward()
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    assert head.bias.grad is not None
    before = model(x).detach().clone()
    saved = head.weight.detach().clone()
    head.reinit_rows([0, 3], generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(before, model(x).detach())
    assert torch.equal(head.rows()[1], head.rows(saved)[1])  # untouched rows stay
    assert not torch.equal(head.rows()[0], head.rows(saved)[0])
    assert head.bias_values()[3] == 0


def _dynamic(loaded) -> bool:
    return not isinstance(loaded.inputs[0].shape[0], int)


def _io(proto: onnx.ModelProto):
    def dims(value):
        return [
            d.dim_param if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim
        ]

    inits = {t.name for t in proto.graph.initializer}
    ins = [v for v in proto.graph.input if v.name not in inits]
    return (
        [(v.name, v.type.tensor_type.elem_type, dims(v)) for v in ins],
        [(v.name, v.type.tensor_type.elem_type, dims(v)) for v in proto.graph.output],
    )


def test_exported_file_keeps_the_io_contract_and_opset(case):
    style, loaded, _, out = case
    exported = load_model(out)
    ins, outs = _io(exported.proto)
    src_ins, src_outs = _io(loaded.proto)
    assert ins == src_ins
    if style.batch1_only:  # the frozen batch was made dynamic: names and types still match
        assert [o[:2] for o in outs] == [o[:2] for o in src_outs]
    else:
        assert outs == src_outs
    assert exported.opset == max(style.opset, 9)
    assert exported.metadata[KEY_SOURCE_SHA256] == loaded.sha256
    assert KEY_VERSION in exported.metadata


@pytest.mark.parametrize("batch", [1, 4])
def test_exported_file_matches_the_original_in_onnxruntime(case, batch):
    _, loaded, _, out = case
    if batch != 1 and not _dynamic(loaded):
        pytest.skip("static batch")
    report = check_parity(loaded, out, batch=batch)
    assert report.passed, report.summary()
    assert report.max_abs_diff <= 1e-4
    assert report.batch == batch


def test_exported_file_is_not_larger_than_the_original(case):
    style, loaded, _, out = case
    exported = load_model(out)
    assert len(exported.proto.graph.node) <= len(loaded.proto.graph.node)
    # Longer torch names and our metadata cost a few hundred bytes at most.
    assert out.stat().st_size <= loaded.path.stat().st_size * 1.01 + 2048
    ops = {n.op_type for n in exported.proto.graph.node}
    assert "BatchNormalization" not in ops and "Identity" not in ops
    if style.name == "nhwc":
        assert "Cast" not in ops  # float→float Cast chains are dropped


def test_export_is_byte_identical_when_repeated(case, tmp_path):
    _, loaded, model, out = case
    again = export_model(model, loaded, tmp_path / "again.onnx")
    assert again.read_bytes() == out.read_bytes()
    fresh = export_model(import_model(loaded), loaded, tmp_path / "fresh.onnx")
    assert fresh.read_bytes() == out.read_bytes()
