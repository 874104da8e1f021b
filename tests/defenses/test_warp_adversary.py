"""The smooth warp towards the flagged class, and relearning against it."""

from __future__ import annotations

import pytest
import torch

from ulrl_edge.defenses import get_defense
from ulrl_edge.defenses.ulrl import ULRLConfig
from ulrl_edge.defenses.warp_adversary import warp, warp_towards_class
from ulrl_edge.errors import BadInput

pytestmark = pytest.mark.usefixtures("remembered_probes")


def _one_pixel_right(size: int) -> torch.Tensor:
    """Control points that sample every pixel from its right-hand neighbour."""
    control = torch.zeros(1, 2, 4, 4)
    control[:, 0] = 2 / (size - 1)  # x, in grid_sample's [-1, 1] units
    return control


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_a_warp_moves_pixels_and_nothing_else(clean_lab, layout):
    spec = clean_lab.spec.updated(layout=layout)
    images = torch.rand(3, 2, 9, 9)  # NCHW, two channels
    inputs = images.permute(0, 2, 3, 1).contiguous() if layout == "nhwc" else images
    assert torch.allclose(warp(inputs, torch.zeros(1, 2, 4, 4), spec), inputs, atol=1e-5)
    shifted = warp(inputs, _one_pixel_right(9), spec)
    shifted = shifted.permute(0, 3, 1, 2) if layout == "nhwc" else shifted
    assert torch.allclose(shifted[..., :-1], images[..., 1:], atol=1e-5)
    assert torch.allclose(shifted[..., -1], images[..., -1], atol=1e-5)  # border kept


def test_the_warp_pushes_images_to_the_target_within_its_bound(clean_lab):
    lab, target = clean_lab, 3
    x, y = lab.holdout_tensors(200)
    size = x.shape[-1]
    control = warp_towards_class(
        lab.model, x, y, target, lab.spec, max_shift=2.0, grid=4, steps=10,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert control.shape == (1, 2, 4, 4)
    assert float(control.abs().max()) <= 2.0 * 2 / (size - 1) + 1e-6
    others = y != target
    with torch.no_grad():
        before = lab.model(x[others]).log_softmax(1)[:, target].mean()
        after = lab.model(warp(x[others], control, lab.spec)).log_softmax(1)[:, target].mean()
    assert float(after) > float(before) + 0.5, (float(before), float(after))


def _pull(model, lab, target: int) -> float:
    """How far a fresh warp (up to 2 pixels) moves the held-out images not of ``target``
    towards it: the gain in their mean log-probability of ``target``."""
    x, y = lab.holdout_tensors()
    control = warp_towards_class(
        model, x, y, target, lab.spec, max_shift=2.0, grid=4, steps=10,
        generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    others = x[y != target]
    with torch.no_grad():
        before = model(others).log_softmax(1)[:, target].mean()
        after = model(warp(others, control, lab.spec)).log_softmax(1)[:, target].mean()
    return float(after - before)


def test_relearning_against_warps_leaves_the_model_harder_to_warp_to_the_class(adversarial_lab):
    lab = adversarial_lab
    # auto's anchored relearning, with and without the warp (few epochs: CI time); the L∞
    # term runs in both.
    base = ULRLConfig.auto(relearn_epochs=8, patch_adversary=False, warp_shift=2.0)
    pull, details = {}, {}
    for warped in (False, True):
        result = get_defense("ulrl")(
            lab.model, lab.training_data(), base.with_overrides(warp_adversary=warped)
        )
        details[warped] = result.details
        pull[warped] = _pull(result.model, lab, lab.target)
        assert lab.asr(result.model) <= 0.10
    assert details[True]["relearn"]["adversary"] == "linf+warp"
    assert details[False]["relearn"]["adversary"] == "linf"
    assert details[True]["config"]["relearn_anchor"] == 5.0
    # Measured: 6.8 without the warp term, 5.5 with it (8 epochs; auto runs 40).
    assert pull[True] < 0.9 * pull[False], pull


@pytest.mark.parametrize("field,value", [("warp_shift", 0.0), ("warp_grid", 1)])
def test_bad_warp_settings_are_refused(field, value):
    with pytest.raises(BadInput, match=field):
        ULRLConfig.auto(**{field: value}).validate()
