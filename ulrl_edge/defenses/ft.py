"""FT: plain fine-tuning on the clean samples, the baseline every defense is compared with.

It is ULRL's relearning phase with nothing flagged: same optimiser, schedule, augmentation
and batches, so that a side-by-side run isolates what unlearning and the reset add.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

from torch import nn

from ulrl_edge.defenses.base import DefenseResult, Progress, TrainingData, seed_everything
from ulrl_edge.defenses.config_tools import apply_overrides
from ulrl_edge.defenses.registry import register_defense
from ulrl_edge.defenses.training import with_holdout_accuracy
from ulrl_edge.defenses.ulrl import ULRLConfig, relearn


@dataclass(frozen=True)
class FTConfig:
    """Settings of plain fine-tuning (SGD, momentum, cosine annealing).

    Attributes:
        seed: Seeds shuffling and augmentation.
        batch_size: Images per step (None: from the number of samples, as ULRL auto).
        augment: Random crop with padding, and flips where the data allows them.
        lr: Initial learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        epochs: Fine-tuning epochs (cosine period too).
        bn: ``train`` updates BatchNorm statistics; ``eval`` freezes them.
    """

    seed: int = 0
    batch_size: int | None = 128
    augment: bool = True
    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 20
    bn: Literal["train", "eval"] = "train"

    def with_overrides(self, **overrides: Any) -> FTConfig:
        """A copy with the given fields changed (None values ignored).

        Raises:
            BadInput: For a field that does not exist or a value out of range.
        """
        return apply_overrides(self, "FT", overrides)

    def as_relearning(self) -> ULRLConfig:
        """The equivalent ULRL relearning settings (no rows flagged)."""
        return ULRLConfig(
            preset="ft",
            seed=self.seed,
            batch_size=self.batch_size,
            augment=self.augment,
            relearn_lr=self.lr,
            relearn_momentum=self.momentum,
            relearn_weight_decay=self.weight_decay,
            relearn_epochs=self.epochs,
            relearn_t_max=self.epochs,
            relearn_bn=self.bn,
        )


@register_defense("ft", config_cls=FTConfig, amp=True)
def fine_tune(
    model: nn.Module,
    clean: TrainingData,
    config: FTConfig | None = None,
    progress: Progress | None = None,
) -> DefenseResult:
    """FT: fine-tune every parameter on the clean samples.

    Args:
        model: The model to defend; left unchanged.
        clean: The purify split and its preprocessing.
        config: Settings; default :class:`FTConfig`.
        progress: Receives one event per epoch (phase ``finetune``).
    """
    cfg = config or FTConfig()
    seed_everything(cfg.seed, deterministic=None)
    rl = cfg.as_relearning().resolve(clean.num_samples)
    t0 = time.perf_counter()
    tuned, info = relearn(model, clean, rl, [], progress, phase="finetune")
    elapsed = time.perf_counter() - t0
    details: dict[str, Any] = {
        "method": "ft",
        "config": {**asdict(cfg), "batch_size": rl.batch_size},
        "seed": cfg.seed,
        "num_samples": clean.num_samples,
        "flagged": [],
        "finetune": info,
        "timings": {"finetune_s": elapsed, "total_s": elapsed},
    }
    return with_holdout_accuracy(model, tuned, clean, details)
