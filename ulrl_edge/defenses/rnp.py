"""RNP: reconstructive neuron pruning (Li et al., ICML 2023), as BackdoorBench configures it.

1. Unlearn: gradient ascent on the clean samples until clean training accuracy is at or
   below ``clean_threshold`` (checked after each epoch).
2. Recover: on the unlearned model, learn one multiplier in [0, 1] per neuron (all start at
   1; only the masks are trained) by minimising ``alpha · CE`` on the clean samples. The
   neurons whose mask stays low were not needed to restore clean behaviour: the backdoor's.
3. Prune: in the ORIGINAL model, remove every neuron whose mask is at or below
   ``pruning_threshold``. No fine-tuning follows.

Defaults are BackdoorBench's ``defense/rnp.py`` and ``config/defense/rnp``: batch 256;
unlearning SGD lr 0.01, momentum 0.9, weight decay 5e-4, MultiStepLR milestones [10, 20]
γ 0.1, at most 20 epochs, clean threshold 0.20; recovering SGD lr 0.2, momentum 0.9, no
weight decay, α 0.2, 20 epochs, masks clipped to [0, 1] after each step; pruning by
threshold at 0.70 (its ``pruning_number``).

Adapted, and why:
    * Neurons: RNP masks BatchNorm channels (the BN weight γ). Imported graphs usually have
      BN folded into the convolutions, so a neuron here is an output channel of every
      ``nn.Conv2d`` and an output row of every hidden ``nn.Linear`` (the head excluded:
      its rows are classes), masked through a forward hook
      (:mod:`ulrl_edge.defenses.channel_masks`). By default the mask scales the channel's
      weights and leaves its bias, the folded analogue of scaling γ and leaving β; pruning
      zeroes those weights (BackdoorBench zeroes γ), so a pruned channel outputs its bias.
      ``mask_bias=True`` masks and prunes the whole channel instead. The graph's shape is
      never changed, so the ONNX export keeps its inputs and outputs.
    * BackdoorBench also sweeps thresholds and keeps the one with the lowest ASR on
      triggered test data, which a user cannot have; it returns the fixed-threshold model,
      as we do, and we do not run the sweep.
    * Gradient clipping at norm 20 during unlearning: BackdoorBench calls the clip before
      ``backward``, so it never clips; we clip after ``backward``. Set
      ``unlearn_clip_norm=None`` for its effective behaviour (identical on the digits lab).
    * ``unlearn_check="step"`` (not the default) stops unlearning at the first batch at or
      below the threshold instead of the epoch's end.
    * Recovering keeps the unlearned model in train mode, as the reference does (BatchNorm
      uses batch statistics); the unlearned copy is discarded afterwards.

Known limit: on very small models and few samples (the 112-neuron digits lab, 300 images,
2 steps an epoch) the epoch-level stop overshoots (clean loss ~90), the masks collapse
towards 0 while recovering and pruning at 0.7 removes the backdoor together with the clean
accuracy. RNP was designed for ResNet-scale networks with thousands of BN channels.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

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
from ulrl_edge.defenses.channel_masks import ChannelMasks, maskable_layers, zero_channels
from ulrl_edge.defenses.config_tools import apply_overrides, require
from ulrl_edge.defenses.registry import register_defense
from ulrl_edge.defenses.training import BatchStream, train_epoch, with_holdout_accuracy
from ulrl_edge.defenses.unlearning import AscentSettings, gradient_ascent
from ulrl_edge.errors import UnsupportedModel


@dataclass(frozen=True)
class RNPConfig:
    """Settings of RNP (BackdoorBench defaults).

    Attributes:
        seed: Seeds shuffling and augmentation.
        batch_size: Images per step in both phases.
        augment: Random crop with padding, and flips where the data allows them.
        unlearn_lr: Gradient-ascent learning rate.
        unlearn_momentum: SGD momentum while unlearning.
        unlearn_weight_decay: SGD weight decay while unlearning.
        unlearn_milestones: MultiStepLR epochs while unlearning.
        unlearn_gamma: MultiStepLR factor.
        unlearn_clip_norm: Gradient L2-norm clip while unlearning (None: none).
        unlearn_epochs: Most unlearning epochs.
        clean_threshold: Stop unlearning after the first epoch whose training accuracy is
            at or below this.
        unlearn_check: Test the stop rule on each epoch's accuracy (reference) or after
            every step on that batch's accuracy (stops before the ascent overshoots).
        recover_lr: Learning rate of the masks.
        recover_momentum: SGD momentum of the masks.
        recover_epochs: Mask-learning epochs.
        alpha: Weight of the clean loss while recovering (scales the gradient).
        pruning_threshold: Prune the neurons whose mask is at or below this.
        mask_linear: Mask hidden Linear layers too, not only Conv2d.
        mask_bias: Mask (and prune) a channel's bias with its weights. False is the
            analogue of RNP's BatchNorm mask, which scales γ and leaves β.
    """

    seed: int = 0
    batch_size: int = 256
    augment: bool = True
    unlearn_lr: float = 0.01
    unlearn_momentum: float = 0.9
    unlearn_weight_decay: float = 5e-4
    unlearn_milestones: tuple[int, ...] = (10, 20)
    unlearn_gamma: float = 0.1
    unlearn_clip_norm: float | None = 20.0
    unlearn_epochs: int = 20
    clean_threshold: float = 0.20
    unlearn_check: Literal["epoch", "step"] = "epoch"
    recover_lr: float = 0.2
    recover_momentum: float = 0.9
    recover_epochs: int = 20
    alpha: float = 0.2
    pruning_threshold: float = 0.70
    mask_linear: bool = True
    mask_bias: bool = False

    def with_overrides(self, **overrides: Any) -> RNPConfig:
        """A copy with the given fields changed (None values ignored).

        Raises:
            BadInput: For a field that does not exist or a value out of range.
        """
        return apply_overrides(self, "RNP", overrides)

    def validate(self) -> None:
        """Raise BadInput for settings that cannot run."""
        checks = [
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.unlearn_lr > 0 and self.recover_lr > 0, "learning rates must be > 0"),
            (self.unlearn_epochs >= 0 and self.recover_epochs >= 0, "epochs must be >= 0"),
            (0 <= self.clean_threshold <= 1, "clean_threshold must be in [0, 1]"),
            (0 <= self.pruning_threshold <= 1, "pruning_threshold must be in [0, 1]"),
            (self.alpha > 0, "alpha must be > 0"),
            (self.unlearn_check in ("epoch", "step"), "unlearn_check must be 'epoch' or 'step'"),
        ]
        require("RNP", checks)


def _layers(model: nn.Module, cfg: RNPConfig) -> list[tuple[str, nn.Module]]:
    try:
        head_weight = locate_head(model).weight
    except UnsupportedModel:  # no head found: mask every layer
        head_weight = None
    head = [m for m in model.modules() if getattr(m, "weight", None) is head_weight]
    layers = maskable_layers(model, linear=cfg.mask_linear, exclude=head)
    if not layers:
        raise UnsupportedModel("RNP needs a Conv2d or hidden Linear layer to mask; none found")
    return layers


def _unlearn(
    model0: nn.Module, data: TrainingData, cfg: RNPConfig, progress: Progress | None
) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Gradient ascent on a copy of ``model0``; returns it and the epoch curve."""
    model = fresh_copy(model0)
    settings = AscentSettings(
        batch_size=cfg.batch_size,
        augment=cfg.augment,
        lr=cfg.unlearn_lr,
        momentum=cfg.unlearn_momentum,
        weight_decay=cfg.unlearn_weight_decay,
        milestones=cfg.unlearn_milestones,
        gamma=cfg.unlearn_gamma,
        clip_norm=cfg.unlearn_clip_norm,
        epochs=cfg.unlearn_epochs,
        stop_acc=cfg.clean_threshold,
        check=cfg.unlearn_check,
    )
    curve, _ = gradient_ascent(model, data, settings, cfg.seed, progress)
    return model, curve


def _recover(
    unlearned: nn.Module, data: TrainingData, cfg: RNPConfig, progress: Progress | None
) -> tuple[list[tuple[str, int, float]], list[dict[str, Any]]]:
    """Learn the channel masks on the unlearned model; returns their values and the curve."""
    for p in unlearned.parameters():
        p.requires_grad_(False)
    stream = BatchStream(
        data,
        cfg.batch_size,
        torch.Generator().manual_seed(cfg.seed + 1),
        model_device(unlearned),
        cfg.augment,
    )
    curve = []
    with ChannelMasks(_layers(unlearned, cfg), mask_bias=cfg.mask_bias) as masks:
        opt = torch.optim.SGD(masks.parameters(), lr=cfg.recover_lr, momentum=cfg.recover_momentum)

        def loss_fn(logits: torch.Tensor, labels: torch.Tensor):
            ce = nn.functional.cross_entropy(logits, labels)
            return cfg.alpha * ce, ce

        # Clip after every step, as the reference does; train_epoch's stop hook runs then.
        def clip(*_: int) -> bool:
            masks.clamp_(0.0, 1.0)
            return False

        for epoch in range(cfg.recover_epochs):
            unlearned.train()
            stats = train_epoch(unlearned, stream, opt, loss_fn, stop_step=clip)
            row = {"epoch": epoch + 1, "loss": stats.loss, "acc": stats.acc, "lr": cfg.recover_lr}
            curve.append(row)
            notify(progress, phase="recover", epochs=cfg.recover_epochs, **row)
        values = masks.values()
    return values, curve


@register_defense("rnp", config_cls=RNPConfig)
def reconstructive_neuron_pruning(
    model: nn.Module,
    clean: TrainingData,
    config: RNPConfig | None = None,
    progress: Progress | None = None,
) -> DefenseResult:
    """RNP: unlearn, learn channel masks that recover clean accuracy, prune the low ones.

    Args:
        model: The model to defend; left unchanged (the result is a new module).
        clean: The purify split, its preprocessing and (optionally) the held-out split.
        config: Settings; default :class:`RNPConfig` (BackdoorBench's).
        progress: Receives one event per epoch of the ``unlearn`` and ``recover`` phases.

    Raises:
        UnsupportedModel: When the model has no Conv2d or hidden Linear layer.
    """
    cfg = config or RNPConfig()
    cfg.validate()
    seed_everything(cfg.seed, deterministic=None)
    t0 = time.perf_counter()
    unlearned, unlearn_curve = _unlearn(model, clean, cfg, progress)
    t1 = time.perf_counter()
    values, recover_curve = _recover(unlearned, clean, cfg, progress)
    del unlearned
    t2 = time.perf_counter()
    pruned_model = fresh_copy(model)
    modules = dict(pruned_model.named_modules())
    pruned: dict[str, list[int]] = {}
    for name, k, v in values:
        if v <= cfg.pruning_threshold:
            pruned.setdefault(name, []).append(k)
    for name, index in pruned.items():
        zero_channels(modules[name], index, bias=cfg.mask_bias)
    pruned_model.eval()
    t3 = time.perf_counter()
    masks: dict[str, list[float]] = {}
    for name, _, v in values:
        masks.setdefault(name, []).append(v)
    details: dict[str, Any] = {
        "method": "rnp",
        "config": asdict(cfg),
        "seed": cfg.seed,
        "num_samples": clean.num_samples,
        "pruned": pruned,
        "pruned_count": sum(len(v) for v in pruned.values()),
        "neurons": len(values),
        "masks": masks,
        "unlearn": {"curve": unlearn_curve, "epochs_used": len(unlearn_curve)},
        "recover": {"curve": recover_curve},
        "timings": {
            "unlearn_s": t1 - t0,
            "recover_s": t2 - t1,
            "prune_s": t3 - t2,
            "total_s": t3 - t0,
        },
    }
    return with_holdout_accuracy(model, pruned_model, clean, details)
