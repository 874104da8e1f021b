"""RNP (reconstructive neuron pruning) and the channel masks it uses."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ulrl_edge.defenses.rnp as rnp
from tests.defenses.weights import same_weights, snapshot
from ulrl_edge.defenses.channel_masks import ChannelMasks, maskable_layers, zero_channels
from ulrl_edge.defenses.registry import get_defense
from ulrl_edge.errors import BadInput, UnsupportedModel


@pytest.fixture(scope="module")
def run(backdoored_lab):
    before = snapshot(backdoored_lab.model)
    events: list[dict] = []
    result = get_defense("rnp")(
        backdoored_lab.model, backdoored_lab.training_data(), None, events.append
    )
    return result, events, before


def test_registered_with_its_config():
    entry = get_defense("rnp")
    assert entry.fn is rnp.reconstructive_neuron_pruning
    assert entry.config_cls is rnp.RNPConfig


def test_defaults_are_backdoorbench():
    cfg = rnp.RNPConfig()
    assert cfg.batch_size == 256
    assert (cfg.unlearn_lr, cfg.unlearn_momentum, cfg.unlearn_weight_decay) == (0.01, 0.9, 5e-4)
    assert (cfg.unlearn_milestones, cfg.unlearn_gamma) == ((10, 20), 0.1)
    assert (cfg.unlearn_epochs, cfg.clean_threshold, cfg.unlearn_check) == (20, 0.2, "epoch")
    assert (cfg.recover_lr, cfg.recover_momentum, cfg.recover_epochs) == (0.2, 0.9, 20)
    assert (cfg.alpha, cfg.pruning_threshold) == (0.2, 0.7)
    assert cfg.mask_linear and not cfg.mask_bias  # every hidden layer; γ-like (weights only)


def test_overrides_checked():
    cfg = rnp.RNPConfig().with_overrides(unlearn_milestones=[5], alpha=None)
    assert cfg.unlearn_milestones == (5,) and cfg.alpha == 0.2
    with pytest.raises(BadInput, match="unknown RNP setting"):
        rnp.RNPConfig().with_overrides(threshold=0.5)
    with pytest.raises(BadInput, match="pruning_threshold"):
        rnp.RNPConfig().with_overrides(pruning_threshold=1.5)


def test_new_model_and_input_unchanged(run, backdoored_lab):
    result, _, before = run
    assert result.model is not backdoored_lab.model
    assert same_weights(before, snapshot(backdoored_lab.model))
    assert not same_weights(before, snapshot(result.model))


def test_prunes_the_original_model_by_mask(run, backdoored_lab):
    """Channels whose mask is <= 0.7 are zeroed in the ORIGINAL weights; nothing else moves."""
    result, _, before = run
    d = result.details
    assert set(d["masks"]) == {"0", "3", "7"}  # two convs and the hidden Linear, not the head
    assert d["neurons"] == 16 + 32 + 64
    after = result.model.state_dict()
    for name, values in d["masks"].items():
        low = [k for k, v in enumerate(values) if v <= 0.7]
        assert d["pruned"].get(name, []) == low
        assert all(0.0 <= v <= 1.0 for v in values)
        weight, bias = after[f"{name}.weight"], after[f"{name}.bias"]
        assert torch.count_nonzero(weight[low]) == 0
        high = [k for k in range(len(values)) if k not in low]
        assert torch.equal(weight[high], before[f"{name}.weight"][high])
        # BatchNorm analogue: the mask scales weights only, so the bias (β) is kept.
        assert torch.equal(bias, before[f"{name}.bias"])
    assert torch.equal(after["9.weight"], before["9.weight"])  # the head is never pruned


def test_removes_the_backdoor(run, backdoored_lab):
    # Measured with BackdoorBench's defaults: undefended ACC 0.972 / ASR 1.000, RNP
    # 0.106 / 0.000. Unlearning overshoots in 3 epochs (loss 90) and the masks collapse:
    # at this scale (112 neurons, 300 images) RNP removes the backdoor with the accuracy.
    result, _, _ = run
    assert backdoored_lab.asr(backdoored_lab.model) > 0.95
    assert backdoored_lab.asr(result.model) < 0.2
    unlearn = result.details["unlearn"]["curve"]
    assert unlearn[-1]["acc"] <= 0.2 < unlearn[0]["acc"]
    assert len(unlearn) < 20


def test_progress_and_details(run):
    result, events, _ = run
    d = result.details
    phases = [e["phase"] for e in events]
    assert phases.count("unlearn") == d["unlearn"]["epochs_used"]
    assert phases.count("recover") == 20 and phases[-1] == "recover"
    assert d["pruned_count"] == sum(len(v) for v in d["pruned"].values())
    assert d["config"]["pruning_threshold"] == 0.7
    assert d["timings"]["total_s"] > 0 and "after" in d["holdout_acc"]


def test_deterministic(run, backdoored_lab):
    again = rnp.reconstructive_neuron_pruning(backdoored_lab.model, backdoored_lab.training_data())
    assert again.details["masks"] == run[0].details["masks"]
    assert same_weights(snapshot(again.model), snapshot(run[0].model))


def test_model_without_maskable_layer_refused(backdoored_lab):
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x.flatten(1)[:, :10] * self.w

    with pytest.raises(UnsupportedModel):
        rnp.reconstructive_neuron_pruning(Scale(), backdoored_lab.training_data())


# ---- channel_masks --------------------------------------------------------------------------


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.Linear(5, 3)
    )


def test_masks_of_one_change_nothing_and_remove_cleanly():
    net, x = _net(), torch.randn(2, 1, 8, 8)
    ref = net(x)
    layers = maskable_layers(net, exclude=[net[4]])
    assert [name for name, _ in layers] == ["0", "3"]
    with ChannelMasks(layers) as masks:
        assert torch.allclose(net(x), ref)
        masks.set_(0.0)
        assert torch.allclose(net(x), net[4].bias.expand(2, 3))  # everything masked away
    assert torch.equal(net(x), ref)


def test_mask_equals_zeroing_the_channel():
    net, x = _net(), torch.randn(2, 1, 8, 8)
    with ChannelMasks(maskable_layers(net, linear=False)) as masks:
        masks.set_({"0": torch.tensor([1.0, 0.0, 1.0, 0.0])})
        masked = net(x)
        assert masks.values()[:2] == [("0", 0, 1.0), ("0", 1, 0.0)]
    assert zero_channels(net[0], [3, 1]) == 2
    assert torch.allclose(net(x), masked, atol=1e-6)


def test_weight_only_mask_and_noise():
    net, x = _net(), torch.randn(2, 1, 8, 8)
    with ChannelMasks([("0", net[0])], mask_bias=False) as masks:
        masks.set_(0.0)
        conv_out = net[0](x)
        assert torch.allclose(conv_out, net[0].bias.view(1, -1, 1, 1).expand_as(conv_out))
        noise = masks.enable_noise()
        assert len(noise) == 2 and len(masks.noise_parameters()) == 2
        with torch.no_grad():
            noise[1].fill_(-1.0)  # bias × (1 + ξ) = 0
        assert torch.count_nonzero(net[0](x)) == 0
        masks.disable_noise()
        masks.clamp_(0.5, 1.0)
        assert all(v == 0.5 for _, _, v in masks.values())
