"""The patch probe: a class that one small pasted patch sends nearly every image to."""

from __future__ import annotations

import pytest

from tests.defenses.conftest import make_lab
from ulrl_edge.defenses import get_defense
from ulrl_edge.defenses.patch_probe import PATCH_MIN_GAP, probe_patch_target
from ulrl_edge.defenses.ulrl import ULRLConfig, unlearn
from ulrl_edge.scan import found_by

BADNETS_BR = "badnets:size=3,pos=br"  # the digits model that auto's unlearning misses


@pytest.fixture(scope="module")
def patched_lab():
    lab = make_lab(BADNETS_BR, seed=0)
    assert lab.asr(lab.model) >= 0.9
    return lab


def test_patch_probe_finds_the_patch_trigger_unlearning_misses(patched_lab):
    lab = patched_lab
    result = probe_patch_target(lab.model, lab.training_data())
    assert result.flagged == lab.target
    best = result.gap.index(max(result.gap))
    assert result.places[best] == "bottom-right" and result.gap[best] >= PATCH_MIN_GAP
    assert result.size == 3  # a seventh of the 16-pixel side, rounded up
    # auto alone misses it (the strict xfail of the CLI test); with the patch probe it is
    # flagged first, and found_by says by what.
    data = lab.training_data()
    cfg = ULRLConfig.auto(patch_probe=True).resolve(data.num_samples, 10)
    found = unlearn(lab.model, data, cfg)
    assert found["flagged"][0] == lab.target
    assert "patch probe" in found_by(found, lab.target)


@pytest.mark.parametrize("trigger", [None, "blend:alpha=0.2,seed=0"])
def test_patch_probe_is_quiet_without_a_patch_trigger(trigger):
    lab = make_lab(trigger, seed=0)
    result = probe_patch_target(lab.model, lab.training_data())
    assert result.flagged is None
    assert max(result.gap) < PATCH_MIN_GAP / 2


def test_with_the_patch_probe_auto_removes_the_backdoor_unlearning_missed(patched_lab):
    lab = patched_lab
    result = get_defense("ulrl")(lab.model, lab.training_data(),
                                 ULRLConfig.auto(patch_probe=True))
    assert result.details["flagged"] == [lab.target]
    assert lab.asr(result.model) <= 0.10
    assert lab.acc(lab.model) - lab.acc(result.model) <= 0.03


def test_patch_probe_is_off_in_both_presets():
    assert not ULRLConfig.paper().patch_probe and not ULRLConfig.auto().patch_probe
