"""Which class one small smooth warp sends nearly every image to: a probe for warping triggers.

A warping trigger (WaNet) moves where the pixels are rather than what they are, so neither
the target probe's L∞ perturbation (:mod:`.target_probe`) nor a pasted patch
(:mod:`.patch_probe`) imitates it. This crafts, for each class k, one universal smooth
displacement field of at most ``max_shift`` pixels
(:func:`~ulrl_edge.defenses.warp_adversary.warp_towards_class`) on half of the clean
images, and measures its *reach*: the share of the other half's images, those not of class
k, that the warp sends to k. A class whose reach exceeds every other class's by
``min_gap`` is flagged.

Measured on Fashion-MNIST with 480 clean images (1 pixel, 4×4 control points, 10 steps):
the WaNet target reached 1.00 with a lead of 0.92-0.99 on four VGGs where unlearning
flagged a wrong class, and 0.95 on a ResNet; SIG and Blend models led by at most 0.07 and
five clean models by at most 0.05. Part of ``auto`` (``warp_probe``); off in ``paper``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ulrl_edge.defenses.base import Progress, TrainingData, model_device, notify
from ulrl_edge.defenses.flagged_adversary import clean_inputs, grad_chunk
from ulrl_edge.defenses.target_probe import add_reach, flag_at_largest_gap, half_index
from ulrl_edge.defenses.training import eval_mode
from ulrl_edge.defenses.warp_adversary import warp, warp_towards_class

STEPS = 10
# A warping target leads by 0.92 or more (measured), clean models by at most 0.05.
WARP_MIN_GAP = 0.5
_EVAL_CHUNK = 64


@dataclass
class WarpProbeResult:
    """The warp probe's measurements and verdict.

    Attributes:
        max_shift: The warp's largest displacement, in pixels.
        grid: The warp's control points per side.
        reach: ``reach[0][k]``: share of held-back images of other classes that the warp
            crafted towards class k sends to k (one row, as the other probes' per setting).
        gap: The top class's reach minus the second's.
        top: The class with the highest reach.
        min_gap: The gap a class needs to be flagged.
        flagged: The top class, if its gap reaches ``min_gap``.
    """

    max_shift: float
    grid: int
    reach: list[list[float]] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)
    top: list[int] = field(default_factory=list)
    min_gap: float = WARP_MIN_GAP
    flagged: int | None = None

    def to_dict(self) -> dict:
        return {
            "max_shift": self.max_shift, "grid": self.grid, "reach": self.reach,
            "gap": self.gap, "top": self.top, "min_gap": self.min_gap, "flagged": self.flagged,
        }  # fmt: skip


def probe_warp_target(
    model: nn.Module,
    data: TrainingData,
    min_gap: float = WARP_MIN_GAP,
    seed: int = 0,
    progress: Progress | None = None,
    max_shift: float = 1.0,
    grid: int = 4,
    steps: int = STEPS,
) -> WarpProbeResult:
    """Measure every class's reach by one smooth warp; flag a standout class.

    Args:
        model: The model to probe; its weights and mode are left as they were.
        data: The clean images; even positions craft, odd positions measure.
        min_gap: How far the top class's reach must exceed the second's to be flagged.
        seed: Seeds the warps' random starts.
        progress: Receives ``{"phase": "warp probe", "done", "total"}`` after each class.
        max_shift: The largest displacement, in pixels.
        grid: Control points per side.
        steps: Signed-gradient steps per warp.
    """
    device = model_device(model)
    chunk = grad_chunk(device)
    x_craft, y_craft = clean_inputs(data, device, half_index(len(data.images), 0))
    x_test, y_test = clean_inputs(data, device, half_index(len(data.images), 1))
    result = WarpProbeResult(max_shift=float(max_shift), grid=int(grid), min_gap=float(min_gap))
    with eval_mode(model):
        with torch.no_grad():
            num_classes = int(model(x_test[:1]).shape[1])
        reach = []
        for k in range(num_classes):
            generator = torch.Generator().manual_seed(seed * 1000 + k)
            control = warp_towards_class(
                model, x_craft, y_craft, k, data.spec, max_shift, grid, steps, generator, chunk
            )
            held = x_test[y_test != k]
            with torch.no_grad():
                hits = sum(
                    int((model(warp(part, control, data.spec)).argmax(1) == k).sum())
                    for part in held.split(_EVAL_CHUNK)
                )
            reach.append(round(hits / max(len(held), 1), 4))
            notify(progress, phase="warp probe", done=k + 1, total=num_classes)
    add_reach(result, reach)
    result.flagged = flag_at_largest_gap(result.top, result.gap, min_gap)
    return result
