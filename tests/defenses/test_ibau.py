"""i-BAU: BackdoorBench defaults, the implicit hypergradient, a universal perturbation."""

from __future__ import annotations

import json

import pytest
import torch

import ulrl_edge.defenses.ibau  # noqa: F401  (registers "ibau")
from tests.defenses.weights import same_weights
from ulrl_edge.defenses import get_defense
from ulrl_edge.defenses.ibau import IBAUConfig, hypergradient
from ulrl_edge.errors import BadInput


def test_defaults_are_backdoorbench_values():
    cfg = IBAUConfig()
    assert (cfg.batch_size, cfg.n_rounds, cfg.K) == (256, 5, 5)
    assert (cfg.lr, cfg.betas, cfg.weight_decay) == (1e-4, (0.9, 0.999), 0.0)
    assert (cfg.pert_lr, cfg.pert_reg, cfg.inner_lr, cfg.portion) == (10.0, 0.001, 0.1, 0.01)
    assert cfg.pert_norm is None and cfg.augment and cfg.seed == 0
    assert get_defense("ibau").config_cls is IBAUConfig
    with pytest.raises(BadInput, match="unknown i-BAU"):
        cfg.with_overrides(rounds=3)


@pytest.mark.parametrize("eta, k", [(0.5, 40), (0.1, 5)])
def test_hypergradient_matches_the_fixed_point_closed_form(eta, k):
    # inner: δ*(θ) = argmin ½‖δ − θ‖² = θ; outer: Σ c·δ + ‖θ‖², so dL/dθ = c + 2θ exactly;
    # K fixed-point iterations recover the implicit part up to (1 − (1 − η)^K)
    theta = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    c = torch.tensor([1.0, 2.0, -3.0])
    grads = hypergradient(
        [theta],
        theta.detach().clone(),
        lambda d: 0.5 * (d - theta).pow(2).sum(),
        lambda d: (c * d).sum() + theta.pow(2).sum(),
        K=k,
        eta=eta,
    )
    expected = c * (1 - (1 - eta) ** k) + 2 * theta.detach()
    assert torch.allclose(grads[0], expected, atol=1e-5)


def test_ibau_runs_keeps_accuracy_and_finds_a_universal_perturbation(backdoored_lab):
    lab = backdoored_lab
    before = {k: v.clone() for k, v in lab.model.state_dict().items()}
    events = []
    result = get_defense("ibau")(lab.model, lab.training_data(), IBAUConfig(), events.append)
    assert all(torch.equal(v, lab.model.state_dict()[k]) for k, v in before.items())
    assert result.model is not lab.model and not same_weights(result.model, lab.model)
    assert [e["epoch"] for e in events] == [1, 2, 3, 4, 5]
    curve = result.details["unlearn"]
    json.dumps(result.details)
    # the inner player: one perturbation for all images changes most predictions
    assert min(p["delta_flip_rate"] for p in curve) >= 0.5
    # measured at BackdoorBench's defaults: ACC 0.972 -> 0.975, ASR 1.000 -> 0.997 (its
    # Adam 1e-4 for 10 steps barely moves a model trained on 300 digits)
    assert lab.acc(result.model) >= 0.95
    assert lab.asr(result.model) <= lab.asr(lab.model)


def test_same_seed_same_model(backdoored_lab):
    lab, quick = backdoored_lab, IBAUConfig(n_rounds=1, batch_size=128)
    run = get_defense("ibau")
    a = run(lab.model, lab.training_data(), quick)
    b = run(lab.model, lab.training_data(), quick)
    assert same_weights(a.model, b.model)
    c = run(lab.model, lab.training_data(), quick.with_overrides(seed=1))
    assert not same_weights(a.model, c.model)
