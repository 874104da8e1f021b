"""The patch probe: a class that one small pasted patch sends nearly every image to."""

from __future__ import annotations

import pytest
import torch

from tests.defenses.conftest import make_lab
from tests.fixtures.remembered_probes import probe_patch_target
from ulrl_edge.data import PreprocessSpec
from ulrl_edge.defenses import get_defense
from ulrl_edge.defenses.flagged_adversary import patch_mask, patch_towards_class
from ulrl_edge.defenses.patch_probe import PATCH_MIN_GAP
from ulrl_edge.defenses.ulrl import ULRLConfig
from ulrl_edge.scan import found_by

# Purifying the same model repeats the probes' questions; the first answer stands (the
# tests' own probe calls included: the probe runs once per model and images).
pytestmark = pytest.mark.usefixtures("remembered_probes")

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


def test_patch_probe_is_quiet_on_a_clean_model(clean_lab):
    # On a blended backdoor (no patch) too: checked on the CLI's scan (tests/cli/test_purify).
    lab = clean_lab
    result = probe_patch_target(lab.model, lab.training_data())
    assert result.flagged is None
    assert max(result.gap) < PATCH_MIN_GAP / 2


def test_with_the_patch_probe_auto_removes_the_backdoor_unlearning_missed(patched_lab):
    lab = patched_lab
    result = get_defense("ulrl")(lab.model, lab.training_data(), ULRLConfig.auto())
    # Unlearning alone misses it (the strict xfail of the CLI test); the patch probe flags
    # it first, and found_by says by what.
    found = result.details["unlearn"]
    assert lab.target not in found["unlearning_flagged"]
    assert result.details["flagged"] == [lab.target]
    assert "patch probe" in found_by(found, lab.target)
    assert lab.asr(result.model) <= 0.10
    assert lab.acc(lab.model) - lab.acc(result.model) <= 0.03


def test_the_patch_probe_and_its_adversary_are_autos_not_papers():
    assert ULRLConfig.auto().patch_probe and ULRLConfig.auto().patch_adversary
    assert not ULRLConfig.paper().patch_probe and not ULRLConfig.paper().patch_adversary


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_a_patch_mask_covers_its_square_in_the_models_layout(layout):
    spec = PreprocessSpec(layout=layout, size=(6, 5), channels="rgb")
    mask = patch_mask(spec, (6, 5, 3), (4, 1), 2, torch.device("cpu"))
    as_pixels = mask if layout == "nhwc" else mask.permute(0, 2, 3, 1)
    assert as_pixels.shape == (1, 6, 5, 3) and int(mask.sum()) == 2 * 2 * 3
    assert bool((as_pixels[0, 4:6, 1:3] == 1).all())


def test_a_crafted_patch_at_the_trigger_place_reaches_the_target(patched_lab):
    lab = patched_lab
    inputs, labels = lab.holdout_tensors()
    shape = lab.holdout.x.shape[1:]
    h, w = shape[:2]
    mask = patch_mask(lab.spec, tuple(shape), (h - 3, w - 3), 3, torch.device("cpu"))
    patch = patch_towards_class(
        lab.model, inputs, labels, lab.target, mask, lab.spec, 5, torch.Generator().manual_seed(0)
    )
    others = labels != lab.target
    with torch.no_grad():
        pasted = inputs[others] * (1 - mask) + mask * patch
        hits = (lab.model(pasted).argmax(1) == lab.target).float().mean()
        untouched = inputs[others] * (1 - mask) - pasted * (1 - mask)
    assert float(hits) >= 0.8
    assert float(untouched.abs().max()) == 0.0  # only the square changed


def test_chunked_gradients_give_the_same_patch(patched_lab):
    # The probe crafts in chunks on a GPU (memory); the patch must not depend on it.
    lab = patched_lab
    inputs, labels = lab.holdout_tensors(150)
    mask = patch_mask(lab.spec, tuple(lab.holdout.x.shape[1:]), (0, 0), 3, torch.device("cpu"))
    args = (lab.model, inputs, labels, lab.target, mask, lab.spec, 5)
    whole = patch_towards_class(*args, torch.Generator().manual_seed(0), 0.1)
    parts = patch_towards_class(*args, torch.Generator().manual_seed(0), 0.1, chunk=32)
    assert torch.equal(whole, parts)


def test_nothing_is_relearned_against_when_no_row_may_be_flagged(patched_lab):
    # --max-suspicious 0 (what a report suggests after a weak flag): the probe still
    # measures, but relearning is plain fine-tuning.
    lab = patched_lab
    cfg = ULRLConfig.auto(max_suspicious=0, patch_adversary=True, relearn_adversarial=1.0)
    result = get_defense("ulrl")(lab.model, lab.training_data(), cfg)
    assert result.details["flagged"] == []
    assert result.details["unlearn"]["patch_probe"]["flagged"] == lab.target
    assert result.details["relearn"]["adversary"] is None
