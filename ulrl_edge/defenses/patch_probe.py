"""Which class one small pasted patch sends nearly every image to: a probe for patch triggers.

The target probe (:mod:`.target_probe`) moves every pixel a little (L∞), which cannot imitate
a small patch trigger such as BadNets'. This pastes one universal square patch, its pixel
values free in [0, 1], at each of five places (the four corners and the centre) and
optimises it towards each class k on half of the clean images; its *reach* is the share of
the other half's images, those not of class k, that it sends to k. A class whose reach
exceeds every other class's by ``min_gap`` at some place is flagged.

Measured on Fashion-MNIST models trained on 54,000 images (480 clean images, 4×4 patches,
20 steps): BadNets targets reached 1.00 with a lead of 0.98, on two VGGs where unlearning and
the target probe both missed them; five clean models and Blend, SIG and WaNet models at most
0.15 (lead ≤ 0.09). Part of ``auto`` (``patch_probe``); off in ``paper``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ulrl_edge.defenses.base import Progress, TrainingData, model_device, notify
from ulrl_edge.defenses.flagged_adversary import (
    clean_inputs,
    grad_chunk,
    paste,
    patch_mask,
    patch_towards_class,
)
from ulrl_edge.defenses.target_probe import add_reach, flag_at_largest_gap, half_index
from ulrl_edge.defenses.training import eval_mode

# The patch's side as a share of the image's shorter side (4 pixels on 28, 5 on 32).
PATCH_FRACTION = 1 / 7
STEPS = 20
STEP_SIZE = 0.1  # pixel units per signed-gradient step
# A patch target leads by far more than this (0.98 measured), clean models by < 0.1.
PATCH_MIN_GAP = 0.5


@dataclass
class PatchProbeResult:
    """The patch probe's measurements and verdict.

    Attributes:
        size: The patch's side in pixels.
        places: Where the patch was pasted (``top-left``, …, ``centre``).
        reach: ``reach[i][k]``: share of held-back images of other classes that the patch
            optimised towards class k at ``places[i]`` sends to k.
        gap: Per place, the top class's reach minus the second's.
        top: Per place, the class with the highest reach.
        min_gap: The gap a class needs to be flagged.
        flagged: The top class at the place with the largest gap, if it reaches ``min_gap``.
    """

    size: int
    places: list[str] = field(default_factory=list)
    reach: list[list[float]] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)
    top: list[int] = field(default_factory=list)
    min_gap: float = PATCH_MIN_GAP
    flagged: int | None = None

    def to_dict(self) -> dict:
        return {
            "size": self.size, "places": self.places, "reach": self.reach, "gap": self.gap,
            "top": self.top, "min_gap": self.min_gap, "flagged": self.flagged,
        }  # fmt: skip

    def target_origins(self, h: int, w: int) -> list[tuple[int, int]]:
        """(row, column) of each place, on H×W images, where the flagged class stood out."""
        if self.flagged is None:
            return []
        origins = _places(h, w, self.size)
        return [
            origins[name]
            for name, top, gap in zip(self.places, self.top, self.gap, strict=True)
            if top == self.flagged and gap >= self.min_gap
        ]


def _places(h: int, w: int, p: int) -> dict[str, tuple[int, int]]:
    return {
        "top-left": (0, 0), "top-right": (0, w - p), "bottom-left": (h - p, 0),
        "bottom-right": (h - p, w - p), "centre": ((h - p) // 2, (w - p) // 2),
    }  # fmt: skip


def probe_patch_target(
    model: nn.Module,
    data: TrainingData,
    min_gap: float = PATCH_MIN_GAP,
    seed: int = 0,
    progress: Progress | None = None,
    steps: int = STEPS,
) -> PatchProbeResult:
    """Measure every class's reach by one pasted patch at each place; flag a standout.

    Args:
        model: The model to probe; its weights and mode are left as they were.
        data: The clean images; even positions craft, odd positions measure.
        min_gap: How far the top class's reach must exceed the second's to be flagged.
        seed: Seeds the patches' random starts.
        progress: Receives ``{"phase": "patch probe", "done", "total"}`` after each class.
        steps: Signed-gradient steps per patch.
    """
    device = model_device(model)
    n = len(data.images)
    x_craft, y_craft = clean_inputs(data, device, half_index(n, 0))
    x_test, y_test = clean_inputs(data, device, half_index(n, 1))
    _, h, w, c = data.images.x.shape
    size = max(2, math.ceil(min(h, w) * PATCH_FRACTION))
    result = PatchProbeResult(size=size, min_gap=float(min_gap))
    places = _places(h, w, size)
    with eval_mode(model):
        num_classes = int(model(x_test[:1]).shape[1])
        total, done = len(places) * num_classes, 0
        for name, origin in places.items():
            mask = patch_mask(data.spec, (h, w, c), origin, size, device)
            reach = []
            for k in range(num_classes):
                gen = torch.Generator().manual_seed(seed * 1000 + k)
                patch = patch_towards_class(
                    model, x_craft, y_craft, k, mask, data.spec, steps, gen, STEP_SIZE,
                    grad_chunk(device),
                )  # fmt: skip
                held = x_test[y_test != k]
                with torch.no_grad():
                    hits = int((model(paste(held, patch, mask)).argmax(1) == k).sum())
                reach.append(round(hits / max(len(held), 1), 4))
                done += 1
                notify(progress, phase="patch probe", done=done, total=total)
            result.places.append(name)
            add_reach(result, reach)
    result.flagged = flag_at_largest_gap(result.top, result.gap, min_gap)
    return result
