"""Loops shared by the defenses: seeded batches, one training epoch, accuracy.

Every random choice (shuffle order, crop offsets, flips) comes from a ``torch.Generator``
owned by the caller, so that one seed gives the same weights bit for bit on CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ulrl_edge.data.augment import random_crop_flip
from ulrl_edge.data.images import ImageSet
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.defenses.base import DefenseResult, Progress, TrainingData, notify
from ulrl_edge.defenses.precision import backward_and_step

# (objective to minimise, value to report) from (logits, labels)
LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# (correct so far, seen so far, this batch's correct, this batch's size) -> stop now?
StepStop = Callable[[int, int, int, int], bool]


class BatchStream:
    """Shuffled, augmented mini-batches of the purify split, in the model's input format.

    Args:
        data: The clean samples and how to feed them to the model.
        batch_size: Images per batch; the last batch of an epoch may be smaller.
        generator: Seeded CPU generator for the order and the augmentation.
        device: Where the batches are sent.
        augment: Apply random crop (``data.crop_padding``) and flip (``data.flip``).
        balanced: Draw each epoch so that every class appears equally often (sampling
            with replacement within a class, as many images as the split holds).
    """

    def __init__(
        self,
        data: TrainingData,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
        augment: bool = True,
        balanced: bool = False,
    ):
        self.data = data
        self.batch_size = max(1, int(batch_size))
        self.generator = generator
        self.device = torch.device(device)
        self.augment = augment
        self.balanced = balanced
        self.x = torch.from_numpy(np.ascontiguousarray(data.images.x))
        self.y = torch.from_numpy(np.asarray(data.images.y, dtype=np.int64))

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def _order(self) -> torch.Tensor:
        n = len(self.y)
        if not self.balanced:
            return torch.randperm(n, generator=self.generator)
        classes = torch.unique(self.y)
        per_class = -(-n // len(classes))
        picks = []
        for c in classes:
            members = torch.nonzero(self.y == c).flatten()
            draw = torch.randint(0, len(members), (per_class,), generator=self.generator)
            picks.append(members[draw])
        order = torch.cat(picks)
        return order[torch.randperm(len(order), generator=self.generator)][:n]

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass: yields (model input, labels) per batch."""
        order = self._order()
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            x = self.x[index]
            if self.augment:
                x = random_crop_flip(
                    x, padding=self.data.crop_padding, flip=self.data.flip, generator=self.generator
                )
            inputs = self.data.spec.to_model_input_torch(x.to(self.device))
            yield inputs, self.y[index].to(self.device)


@dataclass
class EpochStats:
    """What one training epoch did.

    Attributes:
        loss: Mean reported loss over its batches.
        acc: Accuracy of the predictions made during the epoch (train mode, augmented).
        steps: Optimiser steps taken.
        stopped: True when ``stop_step`` ended the epoch early.
        last_batch_acc: Accuracy of the last batch seen.
    """

    loss: float
    acc: float
    steps: int
    stopped: bool = False
    last_batch_acc: float = float("nan")


def train_epoch(
    model: nn.Module,
    stream: BatchStream,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    *,
    clip_norm: float | None = None,
    stop_step: StepStop | None = None,
    after_step_acc: bool = False,
    extra_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> EpochStats:
    """Run one epoch of ``optimizer`` steps on ``loss_fn`` over ``stream``.

    Args:
        model: Already in the mode the caller wants (train, or train with frozen BN).
        stream: The batches.
        optimizer: Steps once per batch.
        loss_fn: Maps (logits, labels) to (objective to minimise, loss to report).
        clip_norm: Clip the gradient's global L2 norm to this before each step.
        stop_step: Checked after every step; True ends the epoch (and tells the caller).
        after_step_acc: Count accuracy with a second forward pass after the step, as the
            reference's relearning loop does (it also updates BatchNorm statistics twice).
        extra_loss: Maps (inputs, labels, logits) to a term added to the objective (not
            reported).
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    losses: list[float] = []
    correct = seen = 0
    batch_acc = float("nan")
    stopped = False
    for inputs, labels in stream.epoch():
        logits = model(inputs)
        objective, reported = loss_fn(logits, labels)
        if extra_loss is not None:
            objective = objective + extra_loss(inputs, labels, logits)
        backward_and_step(objective, optimizer, params, clip_norm)
        if after_step_acc:
            with torch.no_grad():
                logits = model(inputs)
        hits = int((logits.detach().argmax(-1) == labels).sum())
        correct, seen = correct + hits, seen + len(labels)
        batch_acc = hits / len(labels)
        losses.append(float(reported.detach()))
        if stop_step is not None and stop_step(correct, seen, hits, len(labels)):
            stopped = True
            break
    optimizer.zero_grad(set_to_none=True)
    return EpochStats(
        loss=float(np.mean(losses)) if losses else float("nan"),
        acc=correct / max(seen, 1),
        steps=len(losses),
        stopped=stopped,
        last_batch_acc=batch_acc,
    )


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain supervised loss: minimise and report the cross-entropy."""
    loss = nn.functional.cross_entropy(logits, labels)
    return loss, loss


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then restore every module's own mode."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode


def freeze_batchnorm(model: nn.Module) -> int:
    """Put BatchNorm layers in eval mode (running statistics kept); returns how many."""
    count = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            count += 1
    return count


def count_batchnorm(model: nn.Module) -> int:
    """How many BatchNorm layers ``model`` has (0 for graphs with BN folded)."""
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def predict(
    model: nn.Module, images: ImageSet, spec: PreprocessSpec, batch_size: int = 256
) -> np.ndarray:
    """Arg-max class of every image, with the model in eval mode (its mode is restored)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    out = []
    with eval_mode(model):
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images.x[start : start + batch_size]))
            logits = model(spec.to_model_input_torch(x.to(device)))
            out.append(logits.argmax(-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def accuracy(model: nn.Module, images: ImageSet, spec: PreprocessSpec) -> float:
    """Top-1 accuracy on ``images`` (eval mode)."""
    if len(images) == 0:
        return float("nan")
    return float(np.mean(predict(model, images, spec) == images.y))


def per_class_accuracy(
    model: nn.Module, images: ImageSet, spec: PreprocessSpec, num_classes: int
) -> list[float | None]:
    """Accuracy for each class index (None where the set has no image of that class)."""
    pred = predict(model, images, spec)
    out: list[float | None] = []
    for k in range(num_classes):
        mask = images.y == k
        out.append(float(np.mean(pred[mask] == k)) if mask.any() else None)
    return out


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


def with_holdout_accuracy(
    before: nn.Module, after: nn.Module, clean: TrainingData, details: dict
) -> DefenseResult:
    """The defense's result, with held-out accuracy before and after when there is a split."""
    if clean.holdout is not None and len(clean.holdout):
        details["holdout_acc"] = {
            "before": accuracy(before, clean.holdout, clean.spec),
            "after": accuracy(after, clean.holdout, clean.spec),
        }
    return DefenseResult(after, details)


def record_round(
    curve: list[dict], point: dict[str, Any], progress: Progress | None, rounds: int
) -> None:
    """Keep one round of adversarial unlearning (i-BAU, SAU) and report it as progress."""
    curve.append(point)
    notify(
        progress,
        phase="unlearn",
        epoch=point["round"],
        epochs=rounds,
        loss=point["loss"],
        acc=point["acc"],
    )


def rounds_result(
    before: nn.Module,
    after: nn.Module,
    clean: TrainingData,
    method: str,
    cfg: Any,
    curve: list[dict],
    elapsed: float,
) -> DefenseResult:
    """The result of a round-based unlearning defense (i-BAU, SAU): its config (tuples as
    lists, for JSON), curve and time, with held-out accuracy before and after."""
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
    details: dict[str, Any] = {
        "method": method,
        "config": config,
        "seed": cfg.seed,
        "num_samples": clean.num_samples,
        "unlearn": curve,
        "timings": {"unlearn_s": elapsed, "total_s": elapsed},
    }
    return with_holdout_accuracy(before, after, clean, details)
