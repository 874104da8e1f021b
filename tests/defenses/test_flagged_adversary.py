"""The flagged-class perturbation and ULRL's opt-in adversarial relearning."""

from __future__ import annotations

import pytest
import torch

from ulrl_edge.defenses import get_defense
from ulrl_edge.defenses.flagged_adversary import (
    model_space_eps,
    perturbation_bank,
    towards_class,
)
from ulrl_edge.defenses.ulrl import ULRLConfig, _adversarial_cross_entropy
from ulrl_edge.defenses.ulrl_config import ADVERSARIAL_RELEARN_LR
from ulrl_edge.errors import BadInput

# Purifying the same model from the same images repeats the probes' questions (the
# end-to-end test's too: adversarial_lab); the first answer stands.
pytestmark = pytest.mark.usefixtures("remembered_probes")


def _hits(model, x, target):
    with torch.no_grad():
        return float((model.eval()(x).argmax(1) == target).float().mean())


def test_the_perturbation_pushes_images_to_the_target_within_its_bound(clean_lab):
    lab, target = clean_lab, 3
    x, y = lab.holdout_tensors(200)
    eps = model_space_eps(0.3, lab.spec)
    delta = towards_class(lab.model, x, y, target, eps, 10, torch.Generator().manual_seed(0))
    assert delta.shape == (1, *x.shape[1:])  # one perturbation for the whole batch
    assert float(delta.abs().max()) <= eps + 1e-6
    others = y != target
    before = _hits(lab.model, x[others], target)
    after = _hits(lab.model, x[others] + delta, target)
    assert after >= before + 0.2, (before, after)


def test_crafting_leaves_the_model_mode_and_batchnorm_statistics_alone(clean_lab):
    model = clean_lab.model
    x, y = clean_lab.holdout_tensors(64)
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    try:
        towards_class(model, x, y, 0, 0.5, 3, torch.Generator().manual_seed(0))
        assert model.training
    finally:
        model.eval()
    assert all(torch.equal(buffers[k], v) for k, v in model.state_dict().items())


def test_eps_is_given_in_pixel_units(clean_lab):
    # A 0.1 change of every pixel moves the model's input by exactly the converted bound.
    spec = clean_lab.spec.updated(mean=(0.3,), std=(0.25,))
    pixels = torch.full((1, 8, 8, 1), 0.4)
    moved = spec.to_model_input_torch(pixels + 0.1) - spec.to_model_input_torch(pixels)
    assert torch.allclose(moved, torch.full_like(moved, model_space_eps(0.1, spec)))
    assert model_space_eps(0.1, spec) == pytest.approx(0.4)


# The L∞ adversary (what relearning meets when the patch probe found nothing: Blend, SIG,
# WaNet) on the BadNets lab, with the patch adversary off; auto's pasted patches run in
# test_ulrl_end_to_end. 15 relearning epochs instead of auto's 40 (CI time); measured
# (ACC 0.969, ASR 1.0 before): per-batch perturbations ACC 0.986, ASR 0.0; a bank of 4 with
# the fooled-images loss ACC 0.972, ASR 0.0. Without the warp and the anchor that auto adds
# beside it: this module measures the L∞ term alone.
BEFORE_WARP = {"warp_adversary": False, "relearn_anchor": 0.0, "relearn_alpha": 0.7}
LINF = {"relearn_epochs": 15, "patch_adversary": False, **BEFORE_WARP}


def test_adversarial_relearning_removes_the_backdoor_and_keeps_accuracy(adversarial_lab):
    lab = adversarial_lab
    cfg = ULRLConfig.auto(relearn_adversarial=1.0, **LINF)
    result = get_defense("ulrl")(lab.model, lab.training_data(), cfg)
    assert result.details["flagged"] == [lab.target]
    assert result.details["config"]["relearn_adversarial"] == 1.0
    relearned = result.details["relearn"]
    assert relearned["adversary"] == "linf" and relearned["bank"] == 0  # crafted per batch
    assert relearned["lr"] == ADVERSARIAL_RELEARN_LR  # the term ran
    assert lab.asr(result.model) <= 0.10
    assert lab.acc(lab.model) - lab.acc(result.model) <= 0.03


def test_fooled_loss_counts_only_the_images_sent_to_the_flagged_class():
    # Whichever attack made them (perturbation or pasted patch), the same loss is applied.
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.0, 3.0, 0.0], [5.0, 0.0, 1.0]])
    labels = torch.tensor([1, 1, 2])  # images 0 and 2 are sent to class 0, image 1 is not
    each = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    fooled = _adversarial_cross_entropy(logits, labels, 0, "fooled")
    assert float(fooled) == pytest.approx(float((each[0] + each[2]) / 3))
    assert float(_adversarial_cross_entropy(logits, labels, 0, "all")) == pytest.approx(
        float(each.mean())
    )
    assert float(_adversarial_cross_entropy(logits, labels, 2, "fooled")) == 0.0


@pytest.mark.parametrize(
    "field,value",
    [
        ("relearn_adversarial", -1.0),
        ("adversarial_eps", 0.0),
        ("adversarial_steps", 0),
        ("adversarial_bank", -1),
        ("adversarial_loss", "some"),
    ],
)
def test_bad_adversarial_settings_are_refused(field, value):
    with pytest.raises(BadInput, match=field):
        ULRLConfig.auto(**{field: value}).validate()


def test_chunked_gradients_give_the_same_perturbation(clean_lab):
    # The probe takes gradients in chunks on a GPU; the direction must not depend on it.
    x, y = clean_lab.holdout_tensors(150)
    args = (clean_lab.model, x, y, 3, model_space_eps(0.1, clean_lab.spec), 5)
    whole = towards_class(*args, torch.Generator().manual_seed(0))
    parts = towards_class(*args, torch.Generator().manual_seed(0), chunk=32)
    assert torch.allclose(whole, parts, atol=1e-6)


def test_a_bank_holds_distinct_perturbations_that_each_reach_the_target(clean_lab):
    lab, target = clean_lab, 3
    x, y = lab.holdout_tensors(200)
    eps = model_space_eps(0.3, lab.spec)
    bank = perturbation_bank(lab.model, x, y, target, eps, 10, 4, torch.Generator().manual_seed(0))
    assert bank.shape == (4, *x.shape[1:])
    assert float(bank.abs().max()) <= eps + 1e-6
    assert not torch.equal(bank[0], bank[1])  # crafted on different halves, random starts
    others = y != target
    before = _hits(lab.model, x[others], target)
    assert all(_hits(lab.model, x[others] + d, target) >= before + 0.2 for d in bank)
    again = perturbation_bank(lab.model, x, y, target, eps, 10, 4, torch.Generator().manual_seed(0))
    assert torch.equal(bank, again)


def test_relearning_from_a_bank_on_the_fooled_images_removes_the_backdoor(adversarial_lab):
    # Both opt-in forms in one run: perturbations crafted once, and the adversarial
    # cross-entropy only on the images they send to the flagged class.
    lab = adversarial_lab
    cfg = ULRLConfig.auto(relearn_adversarial=1.0, adversarial_bank=4, adversarial_steps=10,
                          adversarial_loss="fooled", **LINF)
    result = get_defense("ulrl")(lab.model, lab.training_data(), cfg)
    assert result.details["config"]["adversarial_loss"] == "fooled"
    assert result.details["flagged"] == [lab.target]
    relearned = result.details["relearn"]
    assert relearned["adversary"] == "linf" and relearned["bank"] == 4
    assert lab.asr(result.model) <= 0.10
    assert lab.acc(lab.model) - lab.acc(result.model) <= 0.03
