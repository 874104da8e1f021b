"""SAU: shared adversarial unlearning (Wei et al., NeurIPS 2023).

Backdoored images behave like adversarial examples that fool the model the same way as the
original (poisoned) model. Each step, SAU runs PGD for *shared* adversarial examples of the
model f being purified and a frozen copy f₀ of the input model: an L∞-bounded per-image
perturbation maximising β₁ · (CE of whichever model is not yet fooled) minus β₂ · (the
Jensen-Shannon divergence between f and f₀ on the examples not yet shared). Then f takes one
Adam step on

    λ₁ · CE(f(x), y) + λ₂ · CE(f(x + δ), y) + λ₃ · L_shared,

where L_shared, on the examples that fool f₀ (away from both y and f₀'s clean prediction),
pushes f's probability of f₀'s adversarial class down and its other classes up.

Defaults are BackdoorBench's (``config/defense/sau/cifar10.yaml``, ``defense/sau.py``):
100 rounds over the clean samples, batch 256, no augmentation, Adam lr 1e-4 betas (0.9, 0.999),
no weight decay and no schedule (the yaml names CosineAnnealingLR, the loop never steps it),
both models in eval mode; PGD L∞ 0.2 in pixel units, 5 steps of 0.2 along the gradient's
sign starting from +0.2 everywhere, early exit once every example is shared; β₁ 0.01,
β₂ 1; λ₁ 1, λ₂ 0, λ₃ 1; one outer step per batch.

Adapted, and why:
- Images are perturbed in canonical pixel space (H×W×C in [0, 1]) and then normalised and
  laid out as the model expects, which is what BackdoorBench's denormalise → add →
  normalise does, for any input layout. Like BackdoorBench, x + δ is not clipped to [0, 1].
- The PGD loop is written from the paper's description and BackdoorBench's settings.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ulrl_edge.defenses.base import (
    DefenseResult,
    Progress,
    TrainingData,
    fresh_copy,
    model_device,
    seed_everything,
)
from ulrl_edge.defenses.config_tools import apply_overrides, require
from ulrl_edge.defenses.ibau import pixel_batches
from ulrl_edge.defenses.registry import register_defense
from ulrl_edge.defenses.training import eval_mode, record_round, rounds_result


@dataclass(frozen=True)
class SAUConfig:
    """Settings of SAU (BackdoorBench's CIFAR-10 defaults).

    Attributes:
        seed: Seeds the batch order (and augmentation when on).
        batch_size: Images per step.
        augment: Random crop and flips (BackdoorBench: off, it loads the test transform).
        n_rounds: Passes over the clean samples.
        lr: Adam learning rate.
        betas: Adam betas.
        weight_decay: Adam weight decay.
        trigger_norm: L∞ bound of the perturbation, in pixel units.
        adv_lr: PGD step size.
        adv_steps: PGD steps.
        pgd_init: Start at +bound (``max``), −bound (``min``) or 0 (``zero``).
        beta_1: Weight of the adversarial term in PGD.
        beta_2: Weight of the shared (JS divergence) term in PGD.
        lmd_1: Weight of the clean CE.
        lmd_2: Weight of adversarial training CE on x + δ.
        lmd_3: Weight of the shared-adversarial unlearning loss.
        outer_steps: Optimiser steps per batch with the same δ.
    """

    seed: int = 0
    batch_size: int = 256
    augment: bool = False
    n_rounds: int = 100
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    trigger_norm: float = 0.2
    adv_lr: float = 0.2
    adv_steps: int = 5
    pgd_init: Literal["max", "min", "zero"] = "max"
    beta_1: float = 0.01
    beta_2: float = 1.0
    lmd_1: float = 1.0
    lmd_2: float = 0.0
    lmd_3: float = 1.0
    outer_steps: int = 1

    def with_overrides(self, **overrides: Any) -> SAUConfig:
        """A copy with the given fields changed (None values ignored).

        Raises:
            BadInput: For a field that does not exist or a value out of range.
        """
        return apply_overrides(self, "SAU", overrides)

    def validate(self) -> None:
        """Raise BadInput for settings that cannot run."""
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.n_rounds >= 0 and self.adv_steps >= 0, "n_rounds, adv_steps must be >= 0"),
            (self.outer_steps >= 1, "outer_steps must be >= 1"),
            (self.lr > 0 and self.trigger_norm >= 0, "lr > 0 and trigger_norm >= 0"),
            (self.pgd_init in ("max", "min", "zero"), "pgd_init must be max, min or zero"),
        ]
        require("SAU", checks)


def shared_pgd(
    model: nn.Module, ref: nn.Module, x: torch.Tensor, y: torch.Tensor, to_input, cfg: SAUConfig
) -> torch.Tensor:
    """Per-image L∞ perturbations that fool ``model`` and ``ref`` into the same class.

    Args:
        model: The model being purified (eval mode).
        ref: The frozen input model.
        x: Canonical pixel images.
        y: Their labels.
        to_input: Canonical pixels -> model input.
        cfg: PGD settings.

    Returns:
        δ, detached, the shape of ``x``.
    """
    bound = cfg.trigger_norm
    start = {"max": bound, "min": -bound, "zero": 0.0}[cfg.pgd_init]
    delta = torch.full_like(x, start).clamp(-bound, bound).requires_grad_(True)
    with torch.no_grad():
        own = model(to_input(x)).argmax(-1)
        own_ref = ref(to_input(x)).argmax(-1)
    n = len(y)
    for _ in range(cfg.adv_steps):
        logits, logits_ref = model(to_input(x + delta)), ref(to_input(x + delta))
        pred, pred_ref = logits.argmax(-1), logits_ref.argmax(-1)
        fooled, fooled_ref = pred != own, pred_ref != own_ref
        shared = fooled & fooled_ref & (pred == pred_ref)
        # raise the CE of whichever model still resists (both halves averaged)
        adv = F.cross_entropy(logits, y, reduction="none")[~fooled].sum()
        adv = adv + F.cross_entropy(logits_ref, y, reduction="none")[~fooled_ref].sum()
        loss_adv = -adv / 2 / n
        p, q = F.softmax(logits, -1).clamp(min=1e-8), F.softmax(logits_ref, -1).clamp(min=1e-8)
        m = 0.5 * (p + q)
        js = 0.5 * (p * (p.log() - m.log()) + q * (q.log() - m.log()))
        loss_js = js[~shared].sum() / n
        grad = torch.autograd.grad(cfg.beta_1 * loss_adv + cfg.beta_2 * loss_js, delta)[0]
        with torch.no_grad():
            delta -= cfg.adv_lr * grad.sign()
            delta.clamp_(-bound, bound)
        if bool(shared.all()):
            break
    return delta.detach()


def shared_unlearning_loss(
    logits_adv: torch.Tensor, logits_adv_ref: torch.Tensor, logits_ref: torch.Tensor, y
) -> torch.Tensor:
    """L_shared: on the examples that fool the reference model, lower f's probability of the
    reference's adversarial class and raise the rest (mean over the whole batch)."""
    pred_ref = logits_adv_ref.argmax(-1)
    poison = (pred_ref != y) & (pred_ref != logits_ref.argmax(-1))
    if not bool(poison.any()):
        return logits_adv.sum() * 0.0
    prob = F.softmax(logits_adv, -1)
    one_hot = F.one_hot(pred_ref, logits_adv.shape[-1]).to(prob.dtype)
    pos = (prob * one_hot).sum(-1)[poison]
    neg = (prob * (1 - one_hot)).sum(-1)[poison]
    loss = -torch.log(1e-6 + neg.clamp(max=0.999)).sum()
    loss = loss - torch.log(1 + 1e-6 - pos.clamp(min=0.001)).sum()
    return loss / 2 / len(y)


@register_defense("sau", config_cls=SAUConfig)
def sau(
    model: nn.Module,
    clean: TrainingData,
    config: SAUConfig | None = None,
    progress: Progress | None = None,
) -> DefenseResult:
    """SAU: unlearn the adversarial examples the model shares with its backdoored original.

    Args:
        model: The model to defend; left unchanged.
        clean: The purify split and its preprocessing.
        config: Settings; default :class:`SAUConfig`.
        progress: Receives one event per round (phase ``unlearn``).
    """
    cfg = config or SAUConfig()
    seed_everything(cfg.seed, deterministic=None)
    t0 = time.perf_counter()
    net = fresh_copy(model)
    ref = copy.deepcopy(model)
    for p in ref.parameters():
        p.requires_grad_(False)
    device = model_device(net)
    to_input = clean.spec.to_model_input_torch
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(
        net.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay
    )
    curve: list[dict] = []
    with eval_mode(net), eval_mode(ref):
        for rnd in range(cfg.n_rounds):
            losses, shared_losses, correct, seen = [], [], 0, 0
            for x, y in pixel_batches(clean, cfg.batch_size, gen, cfg.augment, device):
                delta = shared_pgd(net, ref, x, y, to_input, cfg)
                for _ in range(cfg.outer_steps):
                    both = net(to_input(torch.cat([x, x + delta])))
                    logits, logits_adv = both[: len(y)], both[len(y) :]
                    with torch.no_grad():
                        logits_ref = ref(to_input(x))
                        logits_adv_ref = ref(to_input(x + delta))
                    shared = shared_unlearning_loss(logits_adv, logits_adv_ref, logits_ref, y)
                    loss = (
                        cfg.lmd_1 * F.cross_entropy(logits, y)
                        + cfg.lmd_2 * F.cross_entropy(logits_adv, y)
                        + cfg.lmd_3 * shared
                    )
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                losses.append(float(loss.detach()))
                shared_losses.append(float(shared.detach()))
                correct += int((logits.detach().argmax(-1) == y).sum())
                seen += len(y)
            point = {
                "round": rnd + 1,
                "loss": float(np.mean(losses)) if losses else float("nan"),
                "shared_loss": float(np.mean(shared_losses)) if losses else float("nan"),
                "acc": correct / max(seen, 1),
            }
            record_round(curve, point, progress, cfg.n_rounds)
    net.eval()
    return rounds_result(model, net, clean, "sau", cfg, curve, time.perf_counter() - t0)
