"""ANP: BackdoorBench defaults, conv-channel masks by hooks, fixed-threshold pruning."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

import ulrl_edge.defenses.anp  # noqa: F401  (registers "anp")
from tests.defenses.weights import same_weights
from ulrl_edge.defenses import get_defense
from ulrl_edge.defenses.anp import ANPConfig
from ulrl_edge.defenses.neuron_perturb import NeuronPerturbation, zero_neurons
from ulrl_edge.errors import BadInput

# BackdoorBench's 2000 iterations of 256 images take minutes on CPU: fewer, smaller, faster
# steps (the rest stays at its defaults). At its mask rate 0.01, 400 iterations left the
# masks unsettled (ASR 0.81 on one machine, 0.95-0.98 on another); 800 took ~100 s a run.
SHORT = {"nb_iter": 300, "batch_size": 64, "print_every": 75, "lr": 0.08}



def test_defaults_are_backdoorbench_values():
    cfg = ANPConfig()
    assert (cfg.batch_size, cfg.nb_iter, cfg.print_every) == (256, 2000, 500)
    assert (cfg.lr, cfg.momentum) == (0.01, 0.9)
    assert (cfg.anp_eps, cfg.anp_steps, cfg.anp_alpha) == (0.4, 1, 0.2)
    assert cfg.threshold == 0.2 and cfg.augment and cfg.seed == 0
    assert get_defense("anp").config_cls is ANPConfig


def test_bad_settings_are_rejected():
    with pytest.raises(BadInput, match="unknown ANP"):
        ANPConfig().with_overrides(pruning_max=0.9)
    with pytest.raises(BadInput, match="threshold"):
        ANPConfig().with_overrides(threshold=1.5)


def test_hooks_equal_scaled_weights_and_detach():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 5))
    x = torch.randn(2, 1, 8, 8)
    base = net(x)
    pert = NeuronPerturbation(net, exclude=[net[3].weight])
    assert [name for name, _ in pert.layers] == ["0"]
    with torch.no_grad():
        pert.masks[0].copy_(torch.tensor([1.0, 0.0, 0.5, 1.0]))
        pert.noise_bias[0].fill_(0.3)  # ignored while unperturbed
    hooked = net(x)
    pert.remove()
    assert torch.allclose(net(x), base)
    scaled = copy.deepcopy(net)
    with torch.no_grad():
        scaled[0].weight[1] = 0.0
        scaled[0].weight[2] *= 0.5
    assert torch.allclose(hooked, scaled(x), atol=1e-6)
    zero_neurons(net, [("0", 1)])
    assert torch.count_nonzero(net[0].weight[1]) == 0 and net[0].bias[1] != 0


def test_anp_prunes_by_fixed_threshold_and_lowers_asr(backdoored_lab):
    lab = backdoored_lab
    before = {k: v.clone() for k, v in lab.model.state_dict().items()}
    events = []
    result = get_defense("anp")(lab.model, lab.training_data(), ANPConfig(**SHORT), events.append)
    assert all(torch.equal(v, lab.model.state_dict()[k]) for k, v in before.items())
    assert result.model is not lab.model
    assert [e["epoch"] for e in events] == [1, 2, 3, 4] and events[0]["phase"] == "mask"
    d = result.details
    pruned = {(p["layer"], p["index"]) for p in d["pruned"]}
    low = {(m["layer"], m["index"]) for m in d["mask_values"] if m["value"] <= 0.2}
    assert pruned == low and 0 < len(pruned) < d["neurons"] // 4
    modules = dict(result.model.named_modules())
    assert all(torch.count_nonzero(modules[n].weight[k]) == 0 for n, k in pruned)
    assert "9" not in d["pruned_per_layer"]  # the head is never masked
    json.dumps(d)
    # measured: ACC 0.969 -> 0.958, ASR 1.000 -> 0.389 (200 iterations: 0.782)
    assert lab.asr(lab.model) >= 0.99
    assert lab.asr(result.model) <= 0.75
    assert lab.acc(result.model) >= 0.88


def test_same_seed_same_model(backdoored_lab):
    lab, quick = backdoored_lab, ANPConfig(nb_iter=30, batch_size=32, print_every=10)
    run = get_defense("anp")
    a = run(lab.model, lab.training_data(), quick)
    b = run(lab.model, lab.training_data(), quick)
    assert a.details["mask_values"] == b.details["mask_values"] and same_weights(a.model, b.model)
    c = run(lab.model, lab.training_data(), quick.with_overrides(seed=1))
    assert a.details["mask_values"] != c.details["mask_values"]


def test_layers_off_the_logits_path_are_skipped(backdoored_lab):
    """Imported graphs can hold a layer whose output never reaches the logits."""

    class WithDeadBranch(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.unused = nn.Conv2d(1, 4, 3)

        def forward(self, x):
            return self.inner(x)

    lab = backdoored_lab
    model = WithDeadBranch(copy.deepcopy(lab.model))
    quick = ANPConfig(nb_iter=10, batch_size=32, print_every=10)
    result = get_defense("anp")(model, lab.training_data(), quick)
    assert torch.equal(result.model.unused.weight, model.unused.weight)
