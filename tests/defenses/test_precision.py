"""Mixed precision: which dtype runs where, float16 loss scaling, and ULRL under autocast.

CUDA is not needed: torch autocasts on the CPU too (float16 and bfloat16), which exercises
the same code paths as a GPU run; ``test_cuda.py`` covers a real device (``-m gpu``).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ulrl_edge import stages
from ulrl_edge.defenses import get_defense
from ulrl_edge.defenses.precision import (
    amp_dtype,
    backward_and_step,
    dtype_name,
    mixed_precision,
)
from ulrl_edge.defenses.training import BatchStream, cross_entropy, train_epoch
from ulrl_edge.defenses.ulrl import ULRLConfig


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


def test_amp_runs_only_on_cuda_and_prefers_bfloat16(monkeypatch):
    assert amp_dtype("cpu") is None
    assert amp_dtype("cuda", enabled=False) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype("cuda") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert amp_dtype("cuda:0") is torch.float16  # e.g. Jetson Xavier (Volta)
    assert [dtype_name(d) for d in (None, torch.bfloat16, torch.float16)] == [
        None, "bfloat16", "float16",
    ]


def test_only_defenses_that_declare_it_get_amp(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert get_defense("ulrl").amp and get_defense("ft").amp
    assert stages.precision_for("ulrl", "cuda", True) is torch.bfloat16
    assert stages.precision_for("ulrl", "cuda", False) is None
    assert stages.precision_for("ulrl", "cpu", True) is None
    assert stages.precision_for("sau", "cuda", True) is None  # its own unscaled loops


def test_full_precision_step_is_the_plain_backward_clip_step():
    x, y = torch.randn(32, 8, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 3
    plain, ours = _net(), _net()
    for net, use_ours in ((plain, False), (ours, True)):
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            loss = nn.functional.cross_entropy(net(x), y)
            if use_ours:
                assert backward_and_step(loss, opt, net.parameters(), clip_norm=0.5)
            else:
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(list(net.parameters()), 0.5)
                opt.step()
    for a, b in zip(plain.parameters(), ours.parameters(), strict=True):
        assert torch.equal(a, b)


def test_float16_steps_are_scaled_and_an_overflow_is_skipped():
    net = _net()
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(2))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    before = copy.deepcopy(net.state_dict())
    with mixed_precision("cpu", torch.float16):
        out = net(x)
        assert out.dtype == torch.float16
        # Scaled by 65536, this loss's float16 gradients overflow: the step must not move
        # the weights (a NaN step would wreck them).
        huge = out.float().sum() * 1e6
        assert backward_and_step(huge, opt, net.parameters(), clip_norm=20.0) is False
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
        assert value.dtype == torch.float32  # weights stay float32 for the export


def test_a_float32_step_with_gradients_that_are_not_finite_is_skipped():
    # Relearning against 0.15 perturbations once overflowed in float32 and every weight of
    # a ResNet became NaN (ACC 9%): such a step must leave the weights as they were.
    net = _net()
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(4))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    before = copy.deepcopy(net.state_dict())
    overflowing = net(x).sum() * torch.tensor(float("inf"))
    assert backward_and_step(overflowing, opt, net.parameters(), clip_norm=20.0) is False
    assert backward_and_step(net(x).sum() * float("inf"), opt, net.parameters()) is False
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert backward_and_step(net(x).pow(2).sum(), opt, net.parameters()) is True  # finite
    assert not torch.equal(net.state_dict()["0.weight"], before["0.weight"])


def test_forward_passes_see_every_step_inside_one_autocast_region():
    # A whole defense runs in one region; a cached cast of the weights would freeze them.
    net = _net()
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(3))
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    with mixed_precision("cpu", torch.bfloat16):
        first = net(x)
        backward_and_step(first.float().pow(2).sum(), opt, net.parameters())
        second = net(x)
    assert not torch.equal(first, second)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_training_under_autocast_learns(dtype, backdoored_lab):
    lab = backdoored_lab
    model = copy.deepcopy(lab.model)
    head_before = copy.deepcopy(model.state_dict())
    data = lab.training_data()
    stream = BatchStream(data, 32, torch.Generator().manual_seed(0), "cpu", augment=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    with mixed_precision("cpu", dtype):
        first = train_epoch(model, stream, opt, cross_entropy, clip_norm=20.0)
        last = first
        for _ in range(3):
            last = train_epoch(model, stream, opt, cross_entropy, clip_norm=20.0)
    changed = any(
        not torch.equal(v, head_before[k]) for k, v in model.state_dict().items()
    )
    assert changed and all(torch.isfinite(p).all() for p in model.parameters())
    assert last.loss <= first.loss + 1e-3 and last.acc >= 0.9


def test_ulrl_under_float16_autocast_removes_the_backdoor_as_float32_does(backdoored_lab):
    lab = backdoored_lab
    # float16 is emulated on the CPU, ~20x slower than float32: a short relearning, and no
    # probes (the unlearning runs flag the target on this model by themselves). What is
    # checked is that autocast changes nothing that matters: unlearning runs in float32
    # (under float16 it flagged a wrong class on this model's 400-image sibling).
    cfg = ULRLConfig.auto(patch_probe=False, probe_eps=(), relearn_epochs=3)
    full = get_defense("ulrl")(lab.model, lab.training_data(), cfg)
    with mixed_precision("cpu", torch.float16):
        half = get_defense("ulrl")(lab.model, lab.training_data(), cfg)
    assert half.details["flagged"] == full.details["flagged"] == [lab.target]
    assert half.details["unlearn"]["delta"] == full.details["unlearn"]["delta"]
    assert lab.asr(half.model) <= 0.10
    assert abs(lab.acc(half.model) - lab.acc(full.model)) <= 0.02
