"""ANP: adversarial neuron pruning (Wu & Wang, NeurIPS 2021).

Backdoor neurons are the ones whose small multiplicative perturbation flips many clean
predictions. ANP learns a mask m ∈ [0, 1] per neuron on the clean samples, minimising

    α · CE(f_m(x), y) + (1 − α) · max_{|δ|,|ξ| ≤ ε} CE(f_{m+δ, 1+ξ}(x), y)

(the inner max by one signed-gradient step from a uniform random start, every batch), then
prunes every neuron whose mask is at most a FIXED threshold.

Defaults are BackdoorBench's (``config/defense/anp/cifar10.yaml``): 2000 iterations of 256
images drawn with replacement (train augmentation), mask SGD lr 0.01 momentum 0.9, noise
SGD lr ε / steps, ε 0.4, one step, α 0.2, pruning by threshold 0.2.

Adapted, and why:
- Neurons are output channels of every Conv and rows of every hidden Linear (not BatchNorm
  units): imported ONNX graphs have BatchNorm folded into the convolutions. Mask and weight
  noise scale the layer's weight row, bias noise its bias, via forward hooks
  (:mod:`ulrl_edge.defenses.neuron_perturb`). The classifier head is never masked.
- Pruning zeroes the neuron's weight row and keeps its bias, the analogue of BackdoorBench
  zeroing a BatchNorm γ (β stays): the pruned model computes exactly ``f_m`` with m = 0 for
  those neurons and 1 elsewhere; the graph and its IO contract are unchanged.
- BatchNorm layers, where a model still has them, stay in eval mode while masks learn
  (BackdoorBench trains in train mode, but its masks sit on BatchNorm itself; a mask on the
  conv before a train-mode BatchNorm would be normalised away).
- The threshold is fixed (0.2 by default). BackdoorBench sweeps thresholds up to 0.9 and
  keeps the one with the lowest test ASR, which needs triggered data a user does not have;
  that selection is deliberately not implemented.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
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
    locate_head,
    model_device,
    notify,
    seed_everything,
)
from ulrl_edge.defenses.config_tools import apply_overrides, require
from ulrl_edge.defenses.neuron_perturb import NeuronPerturbation, zero_neurons
from ulrl_edge.defenses.registry import register_defense
from ulrl_edge.defenses.training import freeze_batchnorm, with_holdout_accuracy


@dataclass(frozen=True)
class ANPConfig:
    """Settings of ANP (BackdoorBench's CIFAR-10 defaults).

    Attributes:
        seed: Seeds sampling, augmentation and the noise.
        batch_size: Images per mask step.
        augment: Random crop with padding, and flips where the data allows them.
        nb_iter: Mask optimisation steps.
        print_every: Steps per progress event (and per curve point).
        lr: Mask SGD learning rate.
        momentum: Mask SGD momentum.
        anp_eps: Bound of the neuron noise (0: no adversarial term).
        anp_steps: Signed-gradient steps of the noise per batch.
        anp_alpha: Weight of the clean loss (1 − α on the perturbed loss).
        threshold: Neurons whose mask ends at or below this are pruned.
        mask_linear: Also mask the rows of hidden Linear layers (not the head).
    """

    seed: int = 0
    batch_size: int = 256
    augment: bool = True
    nb_iter: int = 2000
    print_every: int = 500
    lr: float = 0.01
    momentum: float = 0.9
    anp_eps: float = 0.4
    anp_steps: int = 1
    anp_alpha: float = 0.2
    threshold: float = 0.2
    mask_linear: bool = True

    def with_overrides(self, **overrides: Any) -> ANPConfig:
        """A copy with the given fields changed (None values ignored).

        Raises:
            BadInput: For a field that does not exist or a value out of range.
        """
        return apply_overrides(self, "ANP", overrides)

    def validate(self) -> None:
        """Raise BadInput for settings that cannot run."""
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.nb_iter >= 0 and self.print_every >= 1, "nb_iter >= 0, print_every >= 1"),
            (self.anp_eps >= 0 and self.anp_steps >= 1, "anp_eps >= 0, anp_steps >= 1"),
            (0.0 <= self.anp_alpha <= 1.0, "anp_alpha must be in [0, 1]"),
            (0.0 <= self.threshold <= 1.0, "threshold must be in [0, 1]"),
        ]
        require("ANP", checks)


def _batch(data: TrainingData, cfg: ANPConfig, gen: torch.Generator, device) -> tuple:
    """One batch drawn with replacement, as BackdoorBench's RandomSampler does."""
    x_all, y_all = data.images.x, data.images.y
    index = torch.randint(0, len(y_all), (cfg.batch_size,), generator=gen).numpy()
    x = torch.from_numpy(np.ascontiguousarray(x_all[index]))
    if cfg.augment:
        x = random_crop_flip(x, padding=data.crop_padding, flip=data.flip, generator=gen)
    y = torch.from_numpy(np.asarray(y_all[index], dtype=np.int64))
    return data.spec.to_model_input_torch(x.to(device)), y.to(device)


def train_masks(
    model: nn.Module,
    data: TrainingData,
    cfg: ANPConfig,
    progress: Progress | None = None,
) -> tuple[list[dict], list[dict]]:
    """Optimise ANP's neuron masks on a copy of ``model``.

    Returns:
        Every neuron's final mask (``layer``, ``index``, ``value``) and the curve (one point
        per ``print_every`` steps: mean loss and clean accuracy on the batches).
    """
    net = fresh_copy(model).train()
    # batch statistics would cancel a channel's scale; keep BatchNorm (if any) in eval mode
    freeze_batchnorm(net)
    for p in net.parameters():
        p.requires_grad_(False)  # only masks and noise learn
    head = locate_head(net)
    exclude = [head.weight]
    if not cfg.mask_linear:
        exclude += [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    pert = NeuronPerturbation(net, exclude=exclude)
    mask_opt = torch.optim.SGD(pert.mask_parameters(), lr=cfg.lr, momentum=cfg.momentum)
    noise_opt = torch.optim.SGD(pert.noise_parameters(), lr=cfg.anp_eps / cfg.anp_steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    device = model_device(net)
    ce = nn.functional.cross_entropy
    curve: list[dict] = []
    chunks = -(-cfg.nb_iter // cfg.print_every)
    done = 0
    for chunk in range(chunks):
        losses, correct, seen = [], 0, 0
        for _ in range(min(cfg.print_every, cfg.nb_iter - done)):
            x, y = _batch(data, cfg, gen, device)
            if cfg.anp_eps > 0:
                # the adversarial neuron perturbation: one signed ascent step from random
                pert.reset_noise(cfg.anp_eps, gen)
                pert.perturbed = True
                for _ in range(cfg.anp_steps):
                    noise_opt.zero_grad(set_to_none=True)
                    (-ce(net(x), y)).backward()
                    for p in pert.noise_parameters():
                        if p.grad is not None:  # a layer off the path to the logits has none
                            p.grad = torch.sign(p.grad)
                    noise_opt.step()
                loss_rob = ce(net(x), y)
            else:
                loss_rob = torch.zeros((), device=device)
            pert.perturbed = False
            logits = net(x)
            loss = cfg.anp_alpha * ce(logits, y) + (1 - cfg.anp_alpha) * loss_rob
            mask_opt.zero_grad(set_to_none=True)
            loss.backward()
            mask_opt.step()
            pert.clip_masks()
            losses.append(float(loss.detach()))
            correct += int((logits.detach().argmax(-1) == y).sum())
            seen += len(y)
            done += 1
        point = {"iter": done, "loss": float(np.mean(losses)), "acc": correct / max(seen, 1)}
        curve.append(point)
        notify(
            progress,
            phase="mask",
            epoch=chunk + 1,
            epochs=chunks,
            **{k: point[k] for k in ("loss", "acc")},
        )
    values = pert.mask_values()
    pert.remove()
    return values, curve


@register_defense("anp", config_cls=ANPConfig)
def anp(
    model: nn.Module,
    clean: TrainingData,
    config: ANPConfig | None = None,
    progress: Progress | None = None,
) -> DefenseResult:
    """ANP: learn per-neuron masks under adversarial neuron noise, prune masks <= threshold.

    Args:
        model: The model to defend; left unchanged.
        clean: The purify split and its preprocessing.
        config: Settings; default :class:`ANPConfig`.
        progress: Receives one event per ``print_every`` mask steps (phase ``mask``).
    """
    cfg = config or ANPConfig()
    seed_everything(cfg.seed, deterministic=None)
    t0 = time.perf_counter()
    masks, curve = train_masks(model, clean, cfg, progress)
    t1 = time.perf_counter()
    pruned = [(m["layer"], m["index"]) for m in masks if m["value"] <= cfg.threshold]
    out = fresh_copy(model)
    zero_neurons(out, pruned)
    out.eval()
    per_layer: dict[str, int] = {}
    for name, _ in pruned:
        per_layer[name] = per_layer.get(name, 0) + 1
    details: dict[str, Any] = {
        "method": "anp",
        "config": asdict(cfg),
        "seed": cfg.seed,
        "num_samples": clean.num_samples,
        "neurons": len(masks),
        "pruned": [{"layer": name, "index": k} for name, k in pruned],
        "pruned_per_layer": per_layer,
        "mask_values": masks,
        "mask": curve,
        "timings": {"mask_s": t1 - t0, "total_s": time.perf_counter() - t0},
    }
    return with_holdout_accuracy(model, out, clean, details)
