"""i-BAU: implicit backdoor adversarial unlearning (Zeng et al., ICLR 2022).

A minimax problem on the clean samples: the inner player finds one universal perturbation
δ that makes the model change its own predictions (maximise CE(f(x + δ), f(x)) with a small
L2 penalty); the outer player trains the model to classify perturbed images correctly.
The outer gradient is the implicit hypergradient through δ's fixed point: with the inner
map Φ(δ, θ) = δ − η ∇_δ L_in(δ, θ), v solves v = (∂Φ/∂δ)ᵀ v + ∂L_out/∂δ by K fixed-point
iterations, and θ moves along ∂L_out/∂θ + (∂Φ/∂θ)ᵀ v.

Defaults are BackdoorBench's (``config/defense/i-bau/cifar10.yaml`` and ``defense/i-bau.py``):
5 rounds, K 5, batch 256 (train augmentation, drawn once and reused), Adam lr 1e-4 betas
(0.9, 0.999) no weight decay and no schedule (the yaml names CosineAnnealingLR but the loop
never steps it), model in eval mode; δ by one pass of SGD lr 10 per round on
−CE(f(x + δ), argmax f(x)) + 0.001 ‖δ‖², unbounded and unclipped; inner map step η 0.1 on
the first batch; the outer loss is CE on each batch with δ added to ⌊1% of the batch⌋.

Adapted, and why:
- δ lives in canonical pixel space (H×W×C in [0, 1] units, added before the model's
  normalisation and layout change), so it is one image-shaped tensor whatever the model's
  input layout; BackdoorBench adds it after normalisation (the same for mean 0, std 1).
- The hypergradient is our own few lines of ``torch.autograd.grad`` (the fixed-point method
  of the hypertorch code that BackdoorBench vendors, without its early-stop tolerance).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ulrl_edge.data.augment import random_crop_flip
from ulrl_edge.defenses.base import (
    DefenseResult,
    Progress,
    TrainingData,
    fresh_copy,
    model_device,
    seed_everything,
)
from ulrl_edge.defenses.config_tools import apply_overrides, require
from ulrl_edge.defenses.registry import register_defense
from ulrl_edge.defenses.training import eval_mode, record_round, rounds_result

ce = nn.functional.cross_entropy


@dataclass(frozen=True)
class IBAUConfig:
    """Settings of i-BAU (BackdoorBench's CIFAR-10 defaults).

    Attributes:
        seed: Seeds batch order, augmentation and which images get δ.
        batch_size: Images per batch.
        augment: Random crop with padding, and flips where the data allows them.
        n_rounds: Outer rounds (one δ search and one pass of unlearning each).
        K: Fixed-point iterations of the hypergradient.
        lr: Adam learning rate of the model.
        betas: Adam betas.
        weight_decay: Adam weight decay.
        pert_lr: SGD learning rate of the universal perturbation.
        pert_reg: Weight of ‖δ‖² in the inner loss.
        inner_lr: Step of the inner gradient map Φ used by the hypergradient.
        portion: Share of each batch (rounded down) that gets δ in the outer loss.
        pert_norm: Project δ onto this L2 ball after its search (None: unbounded, as
            BackdoorBench; the authors' code has radius 10, commented out).
    """

    seed: int = 0
    batch_size: int = 256
    augment: bool = True
    n_rounds: int = 5
    K: int = 5
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    pert_lr: float = 10.0
    pert_reg: float = 0.001
    inner_lr: float = 0.1
    portion: float = 0.01
    pert_norm: float | None = None

    def with_overrides(self, **overrides: Any) -> IBAUConfig:
        """A copy with the given fields changed (None values ignored).

        Raises:
            BadInput: For a field that does not exist or a value out of range.
        """
        return apply_overrides(self, "i-BAU", overrides)

    def validate(self) -> None:
        """Raise BadInput for settings that cannot run."""
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.n_rounds >= 0 and self.K >= 0, "n_rounds and K must be >= 0"),
            (self.lr > 0 and self.pert_lr > 0, "learning rates must be > 0"),
            (0.0 <= self.portion <= 1.0, "portion must be in [0, 1]"),
            (self.pert_norm is None or self.pert_norm > 0, "pert_norm must be > 0"),
        ]
        require("i-BAU", checks)


def pixel_batches(
    data: TrainingData, batch_size: int, gen: torch.Generator, augment: bool, device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One shuffled pass of canonical (N×H×W×C, [0, 1]) images and labels."""
    order = torch.randperm(len(data.images), generator=gen).numpy()
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        x = torch.from_numpy(np.ascontiguousarray(data.images.x[index]))
        if augment:
            x = random_crop_flip(x, padding=data.crop_padding, flip=data.flip, generator=gen)
        y = torch.from_numpy(np.asarray(data.images.y[index], dtype=np.int64))
        yield x.to(device), y.to(device)


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], **kw) -> list[torch.Tensor]:
    got = torch.autograd.grad(out, inputs, allow_unused=True, **kw)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(got, inputs, strict=True)]


def hypergradient(
    params: list[torch.Tensor], delta: torch.Tensor, inner_loss, outer_loss, K: int, eta: float
) -> list[torch.Tensor]:
    """d L_out / d θ through δ's fixed point of Φ(δ, θ) = δ − η ∇_δ L_in(δ, θ).

    Args:
        params: The model parameters θ.
        delta: The inner solution (detached here).
        inner_loss: δ -> L_in(δ, θ).
        outer_loss: δ -> L_out(δ, θ).
        K: Fixed-point iterations for v = (∂Φ/∂δ)ᵀ v + ∂L_out/∂δ.
        eta: Step of the inner map.
    """
    w = delta.detach().requires_grad_(True)
    o = outer_loss(w)
    g_w = _grads(o, [w], retain_graph=True)[0]
    g_theta = _grads(o, params)
    mapped = w - eta * torch.autograd.grad(inner_loss(w), w, create_graph=True)[0]
    v = torch.zeros_like(w)
    for _ in range(K):
        v = _grads(mapped, [w], grad_outputs=v, retain_graph=True)[0] + g_w
    g_phi = _grads(mapped, params, grad_outputs=v)
    return [a + b for a, b in zip(g_phi, g_theta, strict=True)]


@register_defense("ibau", config_cls=IBAUConfig)
def ibau(
    model: nn.Module,
    clean: TrainingData,
    config: IBAUConfig | None = None,
    progress: Progress | None = None,
) -> DefenseResult:
    """i-BAU: unlearn a universal adversarial perturbation with implicit hypergradients.

    Args:
        model: The model to defend; left unchanged.
        clean: The purify split and its preprocessing.
        config: Settings; default :class:`IBAUConfig`.
        progress: Receives one event per round (phase ``unlearn``).
    """
    cfg = config or IBAUConfig()
    seed_everything(cfg.seed, deterministic=None)
    t0 = time.perf_counter()
    net = fresh_copy(model)
    device = model_device(net)
    spec = clean.spec
    gen = torch.Generator().manual_seed(cfg.seed)
    params = [p for p in net.parameters()]
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    # drawn (and augmented) once, reused every round, as the reference caches its loader
    batches = list(pixel_batches(clean, cfg.batch_size, gen, cfg.augment, device))
    x_inner, y_inner = batches[0]
    shape = (1, *clean.images.x.shape[1:])
    curve: list[dict] = []
    with eval_mode(net):
        for rnd in range(cfg.n_rounds):
            delta = torch.zeros(shape, device=device, requires_grad=True)
            pert_opt = torch.optim.SGD([delta], lr=cfg.pert_lr)
            for x, _ in pixel_batches(clean, cfg.batch_size, gen, cfg.augment, device):
                with torch.no_grad():
                    own = net(spec.to_model_input_torch(x)).argmax(-1)
                loss = -ce(net(spec.to_model_input_torch(x + delta)), own)
                pert_opt.zero_grad(set_to_none=True)
                (loss + cfg.pert_reg * delta.pow(2).sum()).backward()
                pert_opt.step()
            delta = delta.detach()
            if cfg.pert_norm is not None:
                delta = delta * min(1.0, cfg.pert_norm / max(float(delta.norm()), 1e-12))

            def inner_loss(d: torch.Tensor) -> torch.Tensor:
                per = ce(net(spec.to_model_input_torch(x_inner + d)), y_inner, reduction="none")
                return (-per).mean() + cfg.pert_reg * d.pow(2).sum()

            with torch.no_grad():  # how universal δ is: predictions it changes
                flips = [
                    (
                        net(spec.to_model_input_torch(x + delta)).argmax(-1)
                        != net(spec.to_model_input_torch(x)).argmax(-1)
                    ).float()
                    for x, _ in batches
                ]
            flip_rate = float(torch.cat(flips).mean())
            losses, correct, seen = [], 0, 0
            for x, y in batches:
                n = int(len(y) * cfg.portion)
                pick = torch.randperm(len(y), generator=gen)[:n].to(device)

                def outer_loss(d: torch.Tensor, x=x, y=y, pick=pick) -> torch.Tensor:
                    patch = torch.zeros_like(x)
                    patch[pick] = d[0]
                    return ce(net(spec.to_model_input_torch(x + patch)), y)

                opt.zero_grad(set_to_none=True)
                grads = hypergradient(params, delta, inner_loss, outer_loss, cfg.K, cfg.inner_lr)
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                opt.step()
                with torch.no_grad():
                    logits = net(spec.to_model_input_torch(x))
                losses.append(float(ce(logits, y)))
                correct += int((logits.argmax(-1) == y).sum())
                seen += len(y)
            point = {
                "round": rnd + 1,
                "loss": float(np.mean(losses)),
                "acc": correct / max(seen, 1),
                "delta_l2": float(delta.norm()),
                "delta_flip_rate": flip_rate,
            }
            record_round(curve, point, progress, cfg.n_rounds)
    net.eval()
    return rounds_result(model, net, clean, "ibau", cfg, curve, time.perf_counter() - t0)
