"""The warp probe: a class that one slight smooth warp sends nearly every image to."""

from __future__ import annotations

import pytest

from tests.defenses.conftest import make_lab
from tests.fixtures.remembered_probes import probe_warp_target
from ulrl_edge.defenses.ulrl import ULRLConfig, unlearn
from ulrl_edge.defenses.warp_probe import WARP_MIN_GAP
from ulrl_edge.errors import BadInput
from ulrl_edge.scan import found_by

pytestmark = pytest.mark.usefixtures("remembered_probes")

WANET = "wanet:s=1"  # a warping trigger the digits net learns (ASR 0.997 measured)


@pytest.fixture(scope="module")
def warped_lab():
    lab = make_lab(WANET, seed=0)
    assert lab.asr(lab.model) >= 0.9
    return lab


def test_warp_probe_finds_the_warping_trigger(warped_lab):
    lab = warped_lab
    result = probe_warp_target(lab.model, lab.training_data())
    assert result.flagged == lab.target
    assert result.top == [lab.target] and result.gap[0] >= WARP_MIN_GAP
    assert result.reach[0][lab.target] >= 0.9
    assert (result.max_shift, result.grid) == (1.0, 4)


@pytest.mark.parametrize("lab_name", ["clean_lab", "backdoored_lab"])
def test_warp_probe_is_quiet_without_a_warping_trigger(lab_name, request):
    # A clean model, and a patch trigger (BadNets) that a one-pixel warp cannot imitate.
    lab = request.getfixturevalue(lab_name)
    result = probe_warp_target(lab.model, lab.training_data())
    assert result.flagged is None
    assert result.gap[0] < WARP_MIN_GAP


def test_warp_probe_leaves_the_model_as_it_was(warped_lab):
    lab = warped_lab
    before = {k: v.clone() for k, v in lab.model.state_dict().items()}
    lab.model.train()
    try:
        # The real probe (a remembered answer would not touch the model).
        from ulrl_edge.defenses.warp_probe import probe_warp_target as real_probe

        real_probe(lab.model, lab.training_data(), steps=1)
        assert lab.model.training
    finally:
        lab.model.eval()
    assert all(before[k].equal(v) for k, v in lab.model.state_dict().items())


def test_warp_probe_adds_the_target_unlearning_did_not_flag(warped_lab):
    lab = warped_lab
    data = lab.training_data()
    # No unlearning steps and no other probe: only the warp probe can flag the target.
    cfg = ULRLConfig.auto(unlearn_epochs=0, seed=0, patch_probe=False, probe_eps=())
    found = unlearn(lab.model, data, cfg.resolve(data.num_samples, 10))
    assert found["unlearning_flagged"] == []
    assert found["flagged"] == [lab.target] == [found["warp_probe"]["flagged"]]
    assert found_by(found, lab.target) == ["warp probe"]
    without = cfg.with_overrides(warp_probe=False)
    off = unlearn(lab.model, data, without.resolve(data.num_samples, 10))
    assert off["flagged"] == [] and "warp_probe" not in off


def test_the_warp_probe_is_autos_not_papers():
    assert ULRLConfig.auto().warp_probe and not ULRLConfig.paper().warp_probe
    with pytest.raises(BadInput):
        ULRLConfig.auto(warp_probe=True, warp_grid=1)
