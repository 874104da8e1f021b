"""FP: fine-pruning (Liu, Dolan-Gavitt and Garg, RAID 2018), as BackdoorBench configures it.

1. Feed the clean samples through the model and average each output channel of the last
   convolution (after a ReLU, as the paper ranks "activations").
2. Prune channels in ascending order of that mean, ``ceil(once_prune_ratio × channels)`` at
   a time, while clean accuracy stays within ``acc_ratio`` (relative) of the unpruned
   model's; keep the last pruning that did.
3. Fine-tune the whole pruned network on the clean samples (the pruned channels stay at 0).

Defaults are BackdoorBench's ``config/defense/fp``: acc_ratio 0.1, once_prune_ratio 0.01;
fine-tuning with SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, 100 epochs,
cosine annealing with T_max 100. (Its ``ratio: 0.05`` is the share of the training set used
as clean data: here the caller's purify split.)

Adapted, and why:
    * The layer: BackdoorBench masks the input columns of the head (the pooled features of
      PreAct-ResNet18). An imported graph has no named blocks, so we take the last
      ``nn.Conv2d`` in module order that is not the head itself, and prune by zeroing its
      output channels (weights and bias): the graph is unchanged, so the ONNX export keeps
      its inputs and outputs. Where a residual add or an unfolded BatchNorm follows that
      convolution, the channel is silenced at the conv, not in the pooled feature.
    * Accuracy for the stop rule is measured on the held-out clean split when there is one
      (BackdoorBench uses the clean test set), else on the purify split; never on
      triggered data.
    * Activations are averaged over the un-augmented purify split in eval mode
      (BackdoorBench's loader augments), so the ranking does not depend on the seed.
    * BackdoorBench prunes ``num_pruned - 1`` channels at the step it labels ``num_pruned``
      (an off-by-one); we prune exactly the number reported.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

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
from ulrl_edge.defenses.channel_masks import ChannelMasks, zero_channels
from ulrl_edge.defenses.config_tools import apply_overrides, require
from ulrl_edge.defenses.registry import register_defense
from ulrl_edge.defenses.training import (
    BatchStream,
    accuracy,
    cross_entropy,
    current_lr,
    eval_mode,
    freeze_batchnorm,
    train_epoch,
    with_holdout_accuracy,
)
from ulrl_edge.errors import UnsupportedModel


@dataclass(frozen=True)
class FPConfig:
    """Settings of fine-pruning (BackdoorBench defaults).

    Attributes:
        seed: Seeds shuffling and augmentation.
        batch_size: Images per step (activations and fine-tuning).
        augment: Random crop with padding, and flips where the data allows them, while
            fine-tuning.
        acc_ratio: Stop pruning before clean accuracy falls by this fraction of its
            unpruned value.
        once_prune_ratio: Share of the layer's channels pruned per step.
        lr: Fine-tuning learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        epochs: Fine-tuning epochs.
        t_max: Cosine-annealing period in epochs (BackdoorBench fixes it at 100).
        bn: ``train`` updates BatchNorm statistics while fine-tuning; ``eval`` freezes them.
    """

    seed: int = 0
    batch_size: int = 256
    augment: bool = True
    acc_ratio: float = 0.1
    once_prune_ratio: float = 0.01
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 100
    t_max: int = 100
    bn: Literal["train", "eval"] = "train"

    def with_overrides(self, **overrides: Any) -> FPConfig:
        """A copy with the given fields changed (None values ignored).

        Raises:
            BadInput: For a field that does not exist or a value out of range.
        """
        return apply_overrides(self, "FP", overrides)

    def validate(self) -> None:
        """Raise BadInput for settings that cannot run."""
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (0 < self.acc_ratio <= 1, "acc_ratio must be in (0, 1]"),
            (0 < self.once_prune_ratio <= 1, "once_prune_ratio must be in (0, 1]"),
            (self.lr > 0, "lr must be > 0"),
            (self.epochs >= 0, "epochs must be >= 0"),
            (self.t_max >= 1, "t_max must be >= 1"),
            (self.bn in ("train", "eval"), "bn must be 'train' or 'eval'"),
        ]
        require("FP", checks)


def last_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """The last ``nn.Conv2d`` in module order that is not the classifier head.

    Raises:
        UnsupportedModel: When the model has no such convolution.
    """
    try:
        head_weight = locate_head(model).weight
    except UnsupportedModel:
        head_weight = None
    found = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.weight is not head_weight
    ]
    if not found:
        raise UnsupportedModel("fine-pruning needs a convolution before the head; none found")
    return found[-1]


@torch.no_grad()
def mean_activations(
    model: nn.Module, conv: nn.Conv2d, data: TrainingData, batch_size: int
) -> torch.Tensor:
    """Mean of ReLU(output) of each channel of ``conv`` over the (un-augmented) purify split."""
    total = torch.zeros(conv.out_channels, dtype=torch.float64)
    count = 0

    def grab(module, inputs, out):
        nonlocal count
        act = torch.relu(out.detach()).double()
        total.add_(act.transpose(0, 1).reshape(act.shape[1], -1).sum(1).cpu())
        count += act.numel() // act.shape[1]

    handle = conv.register_forward_hook(grab)
    device = model_device(model)
    x_all = data.images.x
    try:
        with eval_mode(model):
            for start in range(0, len(x_all), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(x_all[start : start + batch_size]))
                model(data.spec.to_model_input_torch(x.to(device)))
    finally:
        handle.remove()
    return (total / max(count, 1)).float()


def _prune_sweep(
    model: nn.Module,
    conv: nn.Conv2d,
    order: torch.Tensor,
    data: TrainingData,
    cfg: FPConfig,
    progress: Progress | None,
) -> tuple[int, list[dict[str, Any]], str]:
    """How many of the lowest channels can go while clean accuracy holds; and the curve."""
    if data.holdout is not None and len(data.holdout):
        judge, judged_on = data.holdout, "holdout"
    else:
        judge, judged_on = data.images, "purify"
    channels = len(order)
    step = max(1, math.ceil(channels * cfg.once_prune_ratio))
    curve: list[dict[str, Any]] = []
    keep = 0
    with ChannelMasks([("conv", conv)]) as masks:
        mask = masks.layers[0].mask
        base = None
        for n in range(0, channels, step):
            with torch.no_grad():
                mask.fill_(1.0)
                mask[order[:n]] = 0.0
            acc = accuracy(model, judge, data.spec)
            base = acc if base is None else base
            curve.append({"pruned": n, "acc": acc})
            notify(progress, phase="prune", done=n, total=channels, acc=acc)
            if base > 0 and abs(acc - base) / base >= cfg.acc_ratio:
                break
            keep = n
    return keep, curve, judged_on


def _fine_tune(
    model: nn.Module,
    conv: nn.Conv2d,
    pruned: list[int],
    data: TrainingData,
    cfg: FPConfig,
    progress: Progress | None,
) -> list[dict[str, Any]]:
    """Fine-tune every parameter with the pruned channels held at 0 by a fixed mask."""
    stream = BatchStream(
        data,
        cfg.batch_size,
        torch.Generator().manual_seed(cfg.seed),
        model_device(model),
        cfg.augment,
    )
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.t_max)
    curve = []
    # Output × 0 gives those channels' weights a zero gradient: with their weights zeroed
    # first, momentum and weight decay leave them at exactly 0.
    with ChannelMasks([("conv", conv)]) as masks:
        mask = masks.layers[0].mask
        mask.requires_grad_(False)
        with torch.no_grad():
            mask[pruned] = 0.0
        for epoch in range(cfg.epochs):
            model.train()
            if cfg.bn == "eval":
                freeze_batchnorm(model)
            lr = current_lr(opt)
            stats = train_epoch(model, stream, opt, cross_entropy)
            sched.step()
            row = {"epoch": epoch + 1, "loss": stats.loss, "acc": stats.acc, "lr": lr}
            curve.append(row)
            notify(progress, phase="finetune", epochs=cfg.epochs, **row)
    zero_channels(conv, pruned)
    model.eval()
    return curve


@register_defense("fp", config_cls=FPConfig)
def fine_pruning(
    model: nn.Module,
    clean: TrainingData,
    config: FPConfig | None = None,
    progress: Progress | None = None,
) -> DefenseResult:
    """FP: prune the last conv layer's least active channels, then fine-tune.

    Args:
        model: The model to defend; left unchanged (the result is a new module).
        clean: The purify split, its preprocessing and (optionally) the held-out split.
        config: Settings; default :class:`FPConfig` (BackdoorBench's).
        progress: Receives one event per step of the pruning sweep (phase ``prune``,
            ``done``/``total`` channels, ``acc``) and one per fine-tuning epoch (phase
            ``finetune``).

    Raises:
        UnsupportedModel: When the model has no convolution before its head.
    """
    cfg = config or FPConfig()
    cfg.validate()
    seed_everything(cfg.seed, deterministic=None)
    pruned_model = fresh_copy(model)
    name, conv = last_conv(pruned_model)
    t0 = time.perf_counter()
    activation = mean_activations(pruned_model, conv, clean, cfg.batch_size)
    order = torch.argsort(activation, stable=True)
    count, sweep, judged_on = _prune_sweep(pruned_model, conv, order, clean, cfg, progress)
    pruned = sorted(int(k) for k in order[:count])
    zero_channels(conv, pruned)
    t1 = time.perf_counter()
    curve = _fine_tune(pruned_model, conv, pruned, clean, cfg, progress)
    t2 = time.perf_counter()
    details: dict[str, Any] = {
        "method": "fp",
        "config": asdict(cfg),
        "seed": cfg.seed,
        "num_samples": clean.num_samples,
        "layer": {"name": name, "channels": conv.out_channels},
        "pruned": pruned,
        "prune": {
            "judged_on": judged_on,
            "activation": [float(v) for v in activation],
            "curve": sweep,
        },
        "finetune": {"curve": curve},
        "timings": {"prune_s": t1 - t0, "finetune_s": t2 - t1, "total_s": t2 - t0},
    }
    return with_holdout_accuracy(model, pruned_model, clean, details)
