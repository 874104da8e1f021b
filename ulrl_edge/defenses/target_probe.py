"""Which class a small universal perturbation reaches far more easily than any other.

A backdoor is a shortcut to its target class: one input pattern sends every image there.
So a single small perturbation, shared by all images, finds the target much more easily
than it finds any other class — on a clean model no class stands out. For each class k
this crafts one universal L∞ perturbation towards k on half of the clean images
(:func:`~ulrl_edge.defenses.flagged_adversary.towards_class`) and measures its *reach*:
the share of the other half's images (those not of class k) it sends to k. A class whose
reach exceeds every other class's by at least ``min_gap`` is flagged.

It complements the unlearning phase, whose weight-change test missed the target on some
models (measured on Fashion-MNIST with 600 clean images: nothing or a wrong class flagged
on 3 of 16 backdoored VGGs; the probe found all three). Measured there at ε = 0.05 and 0.1
(pixel units): additive triggers (BadNets, Blended, SIG) mostly stood out by 0.36–0.82,
clean models' top class by at most 0.15; warping triggers (WaNet) and patch triggers on the
16×16 digits did not stand out, so it adds a flag only on a large lead
(:data:`~ulrl_edge.defenses.ulrl_config.PROBE_MIN_GAP`) and never removes one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ulrl_edge.defenses.base import Progress, TrainingData, model_device, notify
from ulrl_edge.defenses.flagged_adversary import (
    clean_inputs,
    grad_chunk,
    model_space_eps,
    towards_class,
)
from ulrl_edge.defenses.training import eval_mode

# Images per half: enough for a stable rate, bounded so large vendor models stay cheap.
MAX_IMAGES_PER_HALF = 256
_EVAL_CHUNK = 64


@dataclass
class ProbeResult:
    """The probe's measurements and verdict.

    Attributes:
        eps: The perturbation bounds tried, in [0, 1] pixel units.
        reach: ``reach[i][k]``: share of held-back images of other classes that the
            perturbation crafted towards class k at ``eps[i]`` sends to k.
        gap: Per bound, the top class's reach minus the second's.
        top: Per bound, the class with the highest reach.
        min_gap: The gap a class needs to be flagged.
        flagged: The flagged class (the top class at the bound with the largest gap, if
            that gap reaches ``min_gap``), or None.
    """

    eps: list[float]
    reach: list[list[float]] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)
    top: list[int] = field(default_factory=list)
    min_gap: float = 0.0
    flagged: int | None = None

    def to_dict(self) -> dict:
        return {
            "eps": self.eps, "reach": self.reach, "gap": self.gap, "top": self.top,
            "min_gap": self.min_gap, "flagged": self.flagged,
        }  # fmt: skip


def probe_target_class(
    model: nn.Module,
    data: TrainingData,
    eps: tuple[float, ...],
    steps: int,
    min_gap: float,
    seed: int,
    progress: Progress | None = None,
) -> ProbeResult:
    """Measure every class's reach at each bound in ``eps`` and flag a standout class.

    Args:
        model: The model (left unchanged; run in eval mode).
        data: The clean images; even positions craft, odd positions measure.
        eps: L∞ bounds in [0, 1] pixel units.
        steps: Signed-gradient steps per perturbation.
        min_gap: How far the top class's reach must exceed the second's to be flagged.
        seed: Seeds the perturbations' random starts.
        progress: Receives ``{"phase": "probe", "done", "total"}`` after each class.
    """
    result = ProbeResult(eps=[float(e) for e in eps], min_gap=float(min_gap))
    device = model_device(model)
    chunk = grad_chunk(device)
    x_craft, y_craft = _half(data, 0, device)
    x_test, y_test = _half(data, 1, device)
    num_classes = int(_logits(model, x_test[:1]).shape[1])
    total, done = len(eps) * num_classes, 0
    for bound in eps:
        model_eps = model_space_eps(bound, data.spec)
        reach = []
        for k in range(num_classes):
            generator = torch.Generator().manual_seed(seed * 1000 + k)
            delta = towards_class(
                model, x_craft, y_craft, k, model_eps, steps, generator, chunk=chunk
            )
            others = x_test[y_test != k]
            hits = sum(
                int((_logits(model, part + delta).argmax(1) == k).sum())
                for part in others.split(_EVAL_CHUNK)
            )
            reach.append(round(hits / max(len(others), 1), 4))
            done += 1
            notify(progress, phase="probe", done=done, total=total)
        add_reach(result, reach)
    result.flagged = flag_at_largest_gap(result.top, result.gap, min_gap)
    return result


def standout(reach: list[float]) -> tuple[int, float]:
    """The class with the highest reach and its lead over the second (0 with one class)."""
    order = np.argsort(reach, kind="stable")[::-1]
    gap = round(reach[order[0]] - reach[order[1]], 4) if len(reach) > 1 else 0.0
    return int(order[0]), gap


def add_reach(result: Any, reach: list[float]) -> None:
    """Append one row of ``reach`` to a probe's result (a :class:`ProbeResult` or the patch
    probe's), with its top class and lead."""
    top, gap = standout(reach)
    result.reach.append(reach)
    result.top.append(top)
    result.gap.append(gap)


def flag_at_largest_gap(top: list[int], gap: list[float], min_gap: float) -> int | None:
    """The top class where the lead is largest, if that lead reaches ``min_gap``."""
    if not gap:
        return None
    best = int(np.argmax(gap))
    return top[best] if gap[best] >= min_gap else None


def half_index(n: int, parity: int) -> np.ndarray:
    """Every other position of ``n`` (from ``parity``), at most MAX_IMAGES_PER_HALF: one
    half crafts, the other measures."""
    return np.arange(parity, n, 2)[:MAX_IMAGES_PER_HALF]


def _half(data: TrainingData, parity: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """One half of the images (see :func:`half_index`) as model input."""
    return clean_inputs(data, device, half_index(len(data.images), parity))


def _logits(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with eval_mode(model), torch.no_grad():
        return model(inputs)
