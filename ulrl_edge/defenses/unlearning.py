"""Gradient ascent on clean data until the model forgets: the unlearning loop that ULRL
shares with RNP (ULRL.md, phase 1; Li et al. 2023).

Only the loop lives here; what each defense reads from the unlearned model (ULRL: the
change of the head rows; RNP: a model to learn channel masks on) stays in its own module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ulrl_edge.defenses.base import Progress, TrainingData, model_device, notify
from ulrl_edge.defenses.training import BatchStream, current_lr, train_epoch


@dataclass(frozen=True)
class AscentSettings:
    """The settings of one unlearning run (both defenses map their config onto these).

    Attributes:
        batch_size: Images per step.
        augment: Random crop (and flip where allowed) on each batch.
        lr, momentum, weight_decay: SGD settings.
        milestones, gamma: MultiStepLR schedule.
        clip_norm: Gradient L2-norm clip, or None.
        epochs: Most epochs.
        stop_acc: Stop once training accuracy is at or below this.
        check: Test the stop rule at each epoch's end (reference) or after every step.
    """

    batch_size: int
    augment: bool
    lr: float
    momentum: float
    weight_decay: float
    milestones: tuple[int, ...]
    gamma: float
    clip_norm: float | None
    epochs: int
    stop_acc: float
    check: Literal["epoch", "step"] = "epoch"


def _ascend(logits: torch.Tensor, labels: torch.Tensor):
    ce = nn.functional.cross_entropy(logits, labels)
    return -ce, ce  # minimise −CE; report CE


def gradient_ascent(
    model: nn.Module,
    data: TrainingData,
    settings: AscentSettings,
    seed: int,
    progress: Progress | None = None,
    event: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Unlearn ``model`` in place (train mode) on ``data``.

    Args:
        model: The model to unlearn (a copy the caller owns).
        data: The clean samples.
        settings: Optimiser, schedule and stop rule.
        seed: Seeds the batch order and augmentation.
        progress: Receives one ``phase="unlearn"`` event per epoch.
        event: Extra fields for those events (e.g. ULRL's run seed).

    Returns:
        The per-epoch curve (epoch, loss, acc, lr, steps) and the number of steps taken.
    """
    model.train()
    stream = BatchStream(
        data,
        settings.batch_size,
        torch.Generator().manual_seed(seed),
        model_device(model),
        settings.augment,
    )
    opt = torch.optim.SGD(
        model.parameters(),
        lr=settings.lr,
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
    )
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(settings.milestones), settings.gamma)

    def stop_step(correct: int, seen: int, hits: int, size: int) -> bool:
        return hits / size <= settings.stop_acc

    curve, steps = [], 0
    for epoch in range(settings.epochs):
        lr = current_lr(opt)
        stats = train_epoch(
            model,
            stream,
            opt,
            _ascend,
            clip_norm=settings.clip_norm,
            stop_step=stop_step if settings.check == "step" else None,
        )
        sched.step()
        steps += stats.steps
        row = {"epoch": epoch + 1, "loss": stats.loss, "acc": stats.acc, "lr": lr,
               "steps": stats.steps}
        curve.append(row)
        notify(progress, phase="unlearn", epochs=settings.epochs, **(event or {}), **row)
        if stats.stopped or stats.acc <= settings.stop_acc:
            break
    return curve, steps
