"""The target probe: a class that one small universal perturbation reaches far more easily."""

from __future__ import annotations

import pytest
import torch

from tests.defenses.conftest import make_lab
from ulrl_edge.defenses.patch_probe import probe_patch_target
from ulrl_edge.defenses.target_probe import probe_target_class
from ulrl_edge.defenses.ulrl import ULRLConfig, unlearn
from ulrl_edge.defenses.ulrl_config import PROBE_EPS, PROBE_MIN_GAP
from ulrl_edge.errors import BadInput
from ulrl_edge.scan import found_by

BLEND = "blend:alpha=0.2,seed=0"


@pytest.fixture(scope="module")
def blended_lab():
    lab = make_lab(BLEND, seed=0)
    assert lab.asr(lab.model) >= 0.9  # a real backdoor to find
    return lab


def test_probe_flags_the_target_of_a_blended_backdoor(blended_lab):
    lab = blended_lab
    data = lab.training_data()
    result = probe_target_class(lab.model, data, PROBE_EPS, 10, PROBE_MIN_GAP, seed=0)
    assert result.flagged == lab.target
    best = max(range(len(result.gap)), key=result.gap.__getitem__)
    assert result.top[best] == lab.target and result.gap[best] >= PROBE_MIN_GAP
    reach = result.reach[best]
    assert reach[lab.target] == max(reach) and len(reach) == 10


def test_probe_flags_nothing_on_a_clean_model(clean_lab):
    result = probe_target_class(
        clean_lab.model, clean_lab.training_data(), PROBE_EPS, 10, PROBE_MIN_GAP, seed=0
    )
    assert result.flagged is None
    assert all(g < PROBE_MIN_GAP for g in result.gap)


@pytest.mark.parametrize("patch", [False, True])
def test_probes_leave_the_model_unchanged(clean_lab, patch):
    model = clean_lab.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    try:
        if patch:
            probe_patch_target(model, clean_lab.training_data(), steps=2)
        else:
            probe_target_class(model, clean_lab.training_data(), (0.1,), 2, 0.3, seed=0)
        assert model.training
    finally:
        model.eval()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_probe_adds_the_target_that_unlearning_missed(blended_lab):
    lab = blended_lab
    data = lab.training_data()
    # No unlearning steps: the weight-change test has nothing to flag; the probe does. (The
    # patch probe, quiet on a blend as test_patch_probe checks, is left out: CI minutes.)
    cfg = ULRLConfig.auto(unlearn_epochs=0, seed=0, patch_probe=False)
    found = unlearn(lab.model, data, cfg.resolve(data.num_samples, 10))
    assert found["unlearning_flagged"] == []
    assert found["flagged"] == [lab.target] == [found["probe"]["flagged"]]
    assert found_by(found, lab.target) == ["target probe"]
    off = unlearn(lab.model, data, cfg.with_overrides(probe_eps=()).resolve(data.num_samples, 10))
    assert off["flagged"] == [] and "probe" not in off


def test_probe_settings_are_checked_and_paper_never_probes():
    assert ULRLConfig.paper().probe_eps == ()
    assert ULRLConfig.auto().probe_eps == PROBE_EPS
    assert ULRLConfig.paper(probe_eps=[0.1]).probe_eps == (0.1,)  # --set gives a list
    for bad in ({"probe_eps": [0.0]}, {"probe_eps": [1.5]}, {"probe_steps": 0},
                {"probe_min_gap": 2.0}):  # fmt: skip
        with pytest.raises(BadInput):
            ULRLConfig.auto(**bad)
