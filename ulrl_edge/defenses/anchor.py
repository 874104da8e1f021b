"""A pull back towards the original weights while relearning, weighted by how much each
weight matters to the clean images (elastic weight consolidation, Kirkpatrick et al. 2017).

Relearning on a few hundred images moves every weight, and a well-trained model's clean
accuracy goes with it; the backdoor, which clean images never exercise, sits mostly in
weights they barely touch. So each weight is pulled back by ``importance × (w − w₀)²``,
where its importance is the mean squared gradient of the clean images' cross-entropy at the
original weights (the empirical Fisher information), scaled to mean 1 over the network. The
flagged head rows are left free (they are re-initialised), and no weight's pull may exceed
what a momentum SGD step can follow stably (importance ≤ 1 / (learning rate × weight)): an
unclipped pull of 5 made one ResNet's first convolution oscillate and diverge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ulrl_edge.defenses.base import Progress, TrainingData, locate_head, model_device, notify
from ulrl_edge.defenses.flagged_adversary import clean_inputs
from ulrl_edge.defenses.training import eval_mode

# At most this many clean images estimate the importances (one backward pass each).
MAX_IMAGES = 512
# Progress events while measuring: about this many (a large model on a CPU takes minutes).
PROGRESS_EVENTS = 20


@dataclass
class WeightAnchor:
    """The original weights and their importances, by parameter name.

    Attributes:
        origin: Each trainable parameter's original value.
        importance: Each one's clean-data importance (mean 1 before the flagged rows were
            freed and the bound applied).
    """

    origin: dict[str, torch.Tensor]
    importance: dict[str, torch.Tensor]

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """½ Σ importance × (w − w₀)² over ``model``'s parameters of the same names."""
        terms = [
            (self.importance[name] * (param - self.origin[name]).square()).sum()
            for name, param in model.named_parameters()
            if name in self.importance
        ]
        if not terms:
            return torch.zeros(())
        return 0.5 * torch.stack(terms).sum()

    def summary(self) -> dict:
        """For the report: parameters anchored, and the importances' largest value."""
        peak = max((float(v.max()) for v in self.importance.values()), default=0.0)
        return {"parameters": len(self.importance), "max_importance": peak}


def anchor_to(
    model: nn.Module,
    data: TrainingData,
    free_rows: list[int],
    max_importance: float,
    progress: Progress | None = None,
) -> WeightAnchor:
    """Measure each weight's importance to the clean images at ``model``'s weights.

    Args:
        model: The original model; its weights, gradients and mode are left as they were.
        data: The clean (purify) images; the first :data:`MAX_IMAGES` are used.
        free_rows: Head rows (classes) left unanchored: those relearning re-initialises.
        max_importance: Upper bound on any weight's importance (stability, see above).
        progress: Receives ``{"phase": "anchor", "done", "total"}`` as images are measured.
    """
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    squares = {n: torch.zeros_like(p) for n, p in params.items()}
    n = min(len(data.images), MAX_IMAGES)
    inputs, labels = clean_inputs(data, model_device(model), np.arange(n))
    every = max(1, n // PROGRESS_EVENTS)
    with eval_mode(model):
        for i in range(n):
            loss = nn.functional.cross_entropy(model(inputs[i : i + 1]), labels[i : i + 1])
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for name, grad in zip(params, grads, strict=True):
                if grad is not None:
                    squares[name] += grad.detach().square()
            if (i + 1) % every == 0 or i + 1 == n:
                notify(progress, phase="anchor", done=i + 1, total=n)
    total = sum(float(s.sum()) for s in squares.values())
    count = sum(s.numel() for s in squares.values())
    scale = count / total if total > 0 else 0.0
    importance = {n: s * scale for n, s in squares.items()}
    _free_head_rows(model, params, importance, free_rows)
    importance = {n: v.clamp_(max=max_importance) for n, v in importance.items()}
    origin = {n: p.detach().clone() for n, p in params.items()}
    return WeightAnchor(origin=origin, importance=importance)


def _free_head_rows(
    model: nn.Module,
    params: dict[str, nn.Parameter],
    importance: dict[str, torch.Tensor],
    rows: list[int],
) -> None:
    """Zero the importance of the head's ``rows`` (weights and biases)."""
    if not rows:
        return
    head = locate_head(model)
    for name, param in params.items():
        if param is head.weight:
            head.rows(importance[name])[rows] = 0.0
        elif head.bias is not None and param is head.bias:
            importance[name].view(-1)[rows] = 0.0
