"""Seeded runs repeat bit for bit; the input model is never changed; details are complete."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.defenses.weights import same_weights
from tests.fixtures.remembered_probes import patch_probes
from ulrl_edge.defenses import get_defense, seed_everything
from ulrl_edge.defenses.ft import FTConfig
from ulrl_edge.defenses.patch_probe import probe_patch_target
from ulrl_edge.defenses.target_probe import probe_target_class
from ulrl_edge.defenses.ulrl import ULRLConfig

QUICK = {"unlearn_epochs": 3, "relearn_epochs": 2}



def _third(lab):
    # A third of the images: every phase still runs (auto's probes included), in a third of
    # the CI time.
    data = lab.training_data()
    return replace(data, images=data.images.subset(np.arange(100)))


@pytest.mark.parametrize("preset", ["paper", "auto"])
def test_same_seed_same_weights(backdoored_lab, preset, monkeypatch):
    data = _third(backdoored_lab)
    cfg = getattr(ULRLConfig, preset)(**QUICK)
    run = get_defense("ulrl")
    # auto's probes repeat on their own (test_probes_repeat_bit_for_bit); here the second run
    # takes the first run's answers (their minute of CI time), and everything else repeats.
    patch_probes(monkeypatch)
    first = run(backdoored_lab.model, data, cfg)
    second = run(backdoored_lab.model, data, cfg)
    assert same_weights(first.model, second.model)
    assert first.details["unlearn"]["delta"] == second.details["unlearn"]["delta"]


def test_probes_repeat_bit_for_bit(backdoored_lab):
    # Two steps per patch or perturbation instead of 20 and 10: the same code, every class
    # and place, in seconds.
    data = _third(backdoored_lab)
    patch = [probe_patch_target(backdoored_lab.model, data, steps=2) for _ in range(2)]
    assert patch[0].to_dict() == patch[1].to_dict()
    auto = ULRLConfig.auto()
    target = [probe_target_class(backdoored_lab.model, data, auto.probe_eps, 2,
                                 auto.probe_min_gap, auto.seed) for _ in range(2)]
    assert target[0].to_dict() == target[1].to_dict()
    assert patch[0].reach != [[0.0] * 10] * 5 and target[0].reach  # they measured something


def test_another_seed_gives_other_weights(backdoored_lab):
    # paper: the seed reaches unlearning and relearning (auto's probes take the same seed).
    data = _third(backdoored_lab)
    cfg = ULRLConfig.paper(**QUICK)
    run = get_defense("ulrl")
    first = run(backdoored_lab.model, data, cfg)
    other = run(backdoored_lab.model, data, cfg.with_overrides(seed=1))
    assert not same_weights(first.model, other.model)


def test_input_model_is_left_unchanged(backdoored_lab):
    before = {k: v.clone() for k, v in backdoored_lab.model.state_dict().items()}
    result = get_defense("ulrl")(
        backdoored_lab.model, backdoored_lab.training_data(), ULRLConfig.paper(**QUICK)
    )
    after = backdoored_lab.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert result.model is not backdoored_lab.model
    assert not result.model.training


def test_details_and_progress(backdoored_lab):
    events = []
    result = get_defense("ulrl")(
        backdoored_lab.model,
        backdoored_lab.training_data(),
        ULRLConfig.paper(**QUICK),
        events.append,
    )
    d = result.details
    json.dumps(d, allow_nan=True)  # JSON-ready (plain types only)
    assert d["config"]["unlearn_lr"] == 0.01 and d["seed"] == 0
    un = d["unlearn"]
    assert len(un["delta"]) == 10 and len(un["mad"]["z"]) == 10
    assert {"median", "mad", "threshold", "flagged", "candidates"} <= set(un["mad"])
    run = un["runs"][0]
    assert run["epochs_used"] == len(run["curve"]) >= 1
    assert {"loss", "acc", "lr"} <= set(run["curve"][0])
    assert len(d["relearn"]["curve"]) == 2
    assert set(d["relearn"]["curve"][0]["cos"]) == {str(k) for k in d["flagged"]}
    assert {"unlearn_s", "relearn_s", "total_s"} <= set(d["timings"])
    assert {"before", "after"} == set(d["holdout_acc"])
    phases = {e["phase"] for e in events}
    assert phases == {"unlearn", "relearn"}
    assert all({"epoch", "epochs", "loss", "acc", "lr"} <= set(e) for e in events)


def test_fine_tune_is_seeded(backdoored_lab):
    data = backdoored_lab.training_data()
    cfg = FTConfig(epochs=2)
    a = get_defense("ft")(backdoored_lab.model, data, cfg)
    b = get_defense("ft")(backdoored_lab.model, data, cfg)
    assert same_weights(a.model, b.model)
    assert a.details["flagged"] == [] and len(a.details["finetune"]["curve"]) == 2


def test_seed_everything_repeats_global_draws():
    seed_everything(5)
    a = torch.rand(3)
    seed_everything(5, deterministic=None)
    assert torch.equal(a, torch.rand(3))
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()  # ops without one still run
    seed_everything(5, deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()
