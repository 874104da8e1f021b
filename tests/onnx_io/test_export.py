"""export_model: output-path safety, atomic writes, metadata, mode restore, real changes."""

from __future__ import annotations

import json
import os

import onnx
import pytest
import torch

from tests.fixtures.model_styles import style_file
from ulrl_edge.config import ParityTolerance
from ulrl_edge.errors import EXIT_BAD_INPUT, BadInput
from ulrl_edge.head import find_head
from ulrl_edge.onnx_io.load import load_model
from ulrl_edge.onnx_io.parity import check_parity
from ulrl_edge.onnx_io.to_onnx import KEY_SOURCE_SHA256, export_model, export_opset
from ulrl_edge.onnx_io.to_torch import import_model


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    path = style_file("gemm", folder)
    model = onnx.load(path)
    onnx.helper.set_model_props(model, {"labels": "0,1,2,3,4,5,6,7,8,9"})
    onnx.save(model, path)
    loaded = load_model(path)
    return loaded, import_model(loaded)


def test_refuses_to_write_over_the_source(source):
    loaded, model = source
    before = loaded.path.read_bytes()
    for target in (loaded.path, loaded.path.parent / "." / loaded.path.name):
        with pytest.raises(BadInput, match="input model") as err:
            export_model(model, loaded, target)
        assert err.value.exit_code == EXIT_BAD_INPUT
    link = loaded.path.parent / "link.onnx"
    link.symlink_to(loaded.path)
    with pytest.raises(BadInput, match="input model"):
        export_model(model, loaded, link)
    link.unlink()
    assert loaded.path.read_bytes() == before


def test_refuses_missing_folder_and_folder_target(source, tmp_path):
    loaded, model = source
    with pytest.raises(BadInput, match="does not exist"):
        export_model(model, loaded, tmp_path / "missing" / "out.onnx")
    with pytest.raises(BadInput, match="is a folder"):
        export_model(model, loaded, tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_refuses_read_only_folder(source, tmp_path):
    loaded, model = source
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(BadInput, match="not writable"):
        export_model(model, loaded, locked / "out.onnx")


def test_writes_atomically_and_keeps_metadata(source, tmp_path):
    loaded, model = source
    out = tmp_path / "out.onnx"
    out.write_bytes(b"old content")
    export_model(model, loaded, out, metadata={"ulrl_edge.preprocess": json.dumps({"a": 1})})
    assert [p.name for p in tmp_path.iterdir()] == ["out.onnx"]  # no temp file left
    meta = load_model(out).metadata
    assert meta["labels"] == "0,1,2,3,4,5,6,7,8,9"  # vendor metadata carried over
    assert meta[KEY_SOURCE_SHA256] == loaded.sha256
    assert json.loads(meta["ulrl_edge.preprocess"]) == {"a": 1}


def test_failed_export_leaves_no_file(source, tmp_path):
    loaded, _ = source

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("cannot trace")

    from ulrl_edge.errors import UnsupportedModel

    with pytest.raises(UnsupportedModel, match="cannot export"):
        export_model(Broken(), loaded, tmp_path / "out.onnx")
    assert list(tmp_path.iterdir()) == []


def test_restores_training_mode_and_exports_changed_weights(source, tmp_path):
    loaded, model = source
    import copy

    changed = copy.deepcopy(model).train()
    head = find_head(changed)
    head.reinit_rows([2], generator=torch.Generator().manual_seed(1))
    out = export_model(changed, loaded, tmp_path / "changed.onnx")
    assert changed.training
    assert not check_parity(loaded, out).passed  # the change really is in the file
    assert check_parity(out, changed).passed  # and the file is exactly the torch model


def test_export_opset_is_clamped_to_what_torch_emits():
    assert export_opset(7) == 9
    assert export_opset(13) == 13
    assert export_opset(22) == 20


@pytest.mark.gpu
def test_model_on_cuda_exports_and_compares(source, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import copy

    loaded, model = source
    on_gpu = copy.deepcopy(model).cuda()
    out = export_model(on_gpu, loaded, tmp_path / "gpu.onnx")
    assert check_parity(loaded, out).passed
    assert check_parity(loaded, on_gpu, tolerance=ParityTolerance(atol=1e-3)).passed
