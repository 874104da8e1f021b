"""FP (fine-pruning) on the tiny BadNets digits model."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import ulrl_edge.defenses.fp as fp
from tests.defenses.weights import same_weights, snapshot
from tests.fixtures.backdoor import cached_case
from ulrl_edge.defenses.registry import get_defense
from ulrl_edge.errors import BadInput, UnsupportedModel


@pytest.fixture(scope="module")
def run(backdoored_lab):
    before = snapshot(backdoored_lab.model)
    events: list[dict] = []
    result = get_defense("fp")(
        backdoored_lab.model, backdoored_lab.training_data(), None, events.append
    )
    return result, events, before


def test_registered_with_its_config():
    entry = get_defense("fp")
    assert entry.fn is fp.fine_pruning
    assert entry.config_cls is fp.FPConfig


def test_defaults_are_backdoorbench():
    cfg = fp.FPConfig()
    assert (cfg.acc_ratio, cfg.once_prune_ratio) == (0.1, 0.01)
    assert (cfg.lr, cfg.momentum, cfg.weight_decay) == (0.01, 0.9, 5e-4)
    assert (cfg.epochs, cfg.t_max, cfg.batch_size) == (100, 100, 256)
    assert cfg.bn == "train" and cfg.seed == 0


def test_overrides_checked():
    assert fp.FPConfig().with_overrides(epochs=3, lr=None).epochs == 3
    with pytest.raises(BadInput, match="unknown FP setting"):
        fp.FPConfig().with_overrides(nope=1)
    with pytest.raises(BadInput, match="acc_ratio"):
        fp.FPConfig().with_overrides(acc_ratio=0)


def test_new_model_and_input_unchanged(run, backdoored_lab):
    result, _, before = run
    assert result.model is not backdoored_lab.model
    assert same_weights(before, snapshot(backdoored_lab.model))
    assert not same_weights(before, snapshot(result.model))


def test_prunes_last_conv_and_keeps_it_pruned(run, backdoored_lab):
    result, _, _ = run
    d = result.details
    name, conv = fp.last_conv(result.model)
    assert d["layer"] == {"name": name, "channels": 32}
    assert name == "3"  # the second of the two convolutions, not the head
    pruned = d["pruned"]
    assert 0 < len(pruned) < conv.out_channels
    # Zero after 100 epochs of fine-tuning: the pruned channels never came back.
    assert torch.count_nonzero(conv.weight[pruned]) == 0
    assert torch.count_nonzero(conv.bias[pruned]) == 0
    kept = [k for k in range(conv.out_channels) if k not in pruned]
    assert torch.all(conv.weight[kept].flatten(1).abs().sum(1) > 0)
    # The least active channels went, and the stop rule held where pruning stopped.
    activation = torch.tensor(d["prune"]["activation"])
    assert activation[pruned].max() <= activation[kept].min()
    curve = d["prune"]["curve"]
    base = curve[0]["acc"]
    at = next(row for row in curve if row["pruned"] == len(pruned))
    assert abs(at["acc"] - base) / base < 0.1
    assert abs(curve[-1]["acc"] - base) / base >= 0.1
    assert d["prune"]["judged_on"] == "holdout"


def test_removes_most_of_the_backdoor(run, backdoored_lab):
    # Measured: undefended ACC 0.972 / ASR 1.000; FP 0.953 / 0.361 (FT alone: 0.933 / 0.673).
    result, _, _ = run
    assert backdoored_lab.asr(backdoored_lab.model) > 0.95
    assert backdoored_lab.asr(result.model) < 0.6
    assert backdoored_lab.acc(result.model) > 0.9


def test_progress_and_details(run):
    result, events, _ = run
    phases = [e["phase"] for e in events]
    sweep = result.details["prune"]["curve"]
    assert phases == ["prune"] * len(sweep) + ["finetune"] * 100
    assert [e["done"] for e in events[: len(sweep)]] == [row["pruned"] for row in sweep]
    assert events[-1]["epoch"] == events[-1]["epochs"] == 100
    d = result.details
    assert d["config"]["acc_ratio"] == 0.1 and len(d["finetune"]["curve"]) == 100
    assert d["timings"]["total_s"] >= d["timings"]["finetune_s"] > 0
    assert d["holdout_acc"]["before"] > 0.95


def test_deterministic(run, backdoored_lab):
    again = fp.fine_pruning(backdoored_lab.model, backdoored_lab.training_data())
    assert again.details["pruned"] == run[0].details["pruned"]
    assert same_weights(snapshot(again.model), snapshot(run[0].model))


def test_imported_graph(backdoored_lab):
    """Works on an onnx2torch GraphModule, and the result still has the graph's outputs."""
    from ulrl_edge.onnx_io.load import load_model
    from ulrl_edge.onnx_io.to_torch import import_model

    case = cached_case("badnets:size=3", seed=1)
    graph = import_model(load_model(case.onnx_path))
    cfg = fp.FPConfig(epochs=2)
    result = fp.fine_pruning(graph, backdoored_lab.training_data(), cfg)
    assert result.details["pruned"]
    x = torch.zeros(2, 1, 16, 16)
    assert result.model(x).shape == graph(x).shape == (2, 10)


def test_model_without_conv_refused(backdoored_lab):
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 10))
    with pytest.raises(UnsupportedModel, match="convolution"):
        fp.fine_pruning(copy.deepcopy(mlp), backdoored_lab.training_data(), fp.FPConfig(epochs=1))
