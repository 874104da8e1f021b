"""Refit re-initialised head rows alone, with the rest of the network frozen.

Relearning's cosine penalty drives a reset row towards the opposite of its old direction, and
the old direction held the class's clean features as well as the backdoor's, so the class is
often lost with its backdoor (on the bundled sample: T-shirts 89% → 2%). Once relearning has
shaped the body, this last step lets the reset rows find the class's clean features again:
cross-entropy on the clean images moves only those rows (and their biases), while the
adversarial term of relearning keeps them off whatever a trigger-like input can excite.
Without that term the backdoor comes back (sample: ASR 0% → 21%), so it runs only with it.

It runs only for a class that relearning all but lost (:func:`lost_rows`): on well-trained
Fashion-MNIST models, whose reset class kept most of its accuracy, the refitted row took back
from the classes most like it (shirt, dress) what it gained, and ASR rose a little.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ulrl_edge.data.images import ImageSet
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.defenses.base import Progress, notify
from ulrl_edge.defenses.training import (
    BatchStream,
    cross_entropy,
    eval_mode,
    per_class_accuracy,
    train_epoch,
)
from ulrl_edge.head import Head

ExtraLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _row_masks(head: Head, rows: list[int]) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """(parameter, 0/1 mask of the same shape) for the head's weight and bias: 1 on ``rows``."""
    weight_mask = torch.zeros_like(head.weight)
    head.rows(weight_mask)[rows] = 1
    masks = [(head.weight, weight_mask)]
    if head.bias is not None:
        bias_mask = torch.zeros_like(head.bias)
        bias_mask.reshape(-1)[rows] = 1
        masks.append((head.bias, bias_mask))
    return masks


def lost_rows(
    original: nn.Module,
    relearned: nn.Module,
    rows: list[int],
    images: ImageSet,
    spec: PreprocessSpec,
    num_classes: int,
    min_drop: float,
) -> tuple[list[int], dict[str, dict[str, float | None]]]:
    """The ``rows`` whose class accuracy on ``images`` fell by at least ``min_drop``.

    Returns:
        (those rows, per row as a string: ``original`` and ``relearned`` accuracy, None
        where ``images`` hold no image of the class; such a class is not judged lost).
    """
    before = per_class_accuracy(original, images, spec, num_classes)
    after = per_class_accuracy(relearned, images, spec, num_classes)
    accuracy = {str(k): {"original": before[k], "relearned": after[k]} for k in rows}
    lost = [k for k in rows if before[k] is not None and before[k] - after[k] >= min_drop]
    return lost, accuracy


def refit_rows(
    model: nn.Module,
    head: Head,
    rows: list[int],
    stream: BatchStream,
    epochs: int,
    lr: float,
    extra_loss: ExtraLoss | None,
    progress: Progress | None = None,
    phase: str = "refit",
) -> list[dict]:
    """Train only ``rows`` of ``head`` (weights and biases) for ``epochs`` on ``stream``.

    The model stays in eval mode (BatchNorm statistics and every other weight untouched);
    SGD with momentum 0.9 and no weight decay, so the other rows keep their exact values.

    Args:
        extra_loss: Added to the cross-entropy of each batch (relearning's adversarial term).

    Returns:
        One entry per epoch: ``epoch``, ``loss`` (cross-entropy), ``acc`` (on the batches).
    """
    masks = _row_masks(head, rows)
    trainable = [param for param, _ in masks]
    wanted = {param: param.requires_grad for param in model.parameters()}
    for param in model.parameters():
        param.requires_grad_(False)  # the body's gradients are never needed
    hooks = []
    for param, mask in masks:
        param.requires_grad_(True)
        hooks.append(param.register_hook(lambda grad, m=mask: grad * m))
    optimizer = torch.optim.SGD(trainable, lr=lr, momentum=0.9)
    curve = []
    try:
        with eval_mode(model):
            for epoch in range(epochs):
                stats = train_epoch(model, stream, optimizer, cross_entropy, extra_loss=extra_loss)
                row = {"epoch": epoch + 1, "loss": stats.loss, "acc": stats.acc}
                curve.append(row)
                notify(progress, phase=phase, epochs=epochs, **row)
    finally:
        for hook in hooks:
            hook.remove()
        for param, flag in wanted.items():
            param.requires_grad_(flag)
    return curve
