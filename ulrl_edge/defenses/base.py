"""What every defense takes and returns, and how runs are made repeatable.

A defense is a function ``(model, clean, config, progress) -> DefenseResult``. It never
changes the model it is given: it works on copies and returns a new module.
"""

from __future__ import annotations

import copy
import random
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import nn

from ulrl_edge.errors import BadInput, UnsupportedModel

if TYPE_CHECKING:
    from ulrl_edge.data.images import ImageSet
    from ulrl_edge.data.preprocess import PreprocessSpec
    from ulrl_edge.head import Head


@dataclass(frozen=True)
class TrainingData:
    """The clean samples a defense may learn from.

    Attributes:
        images: The purify split (canonical N×H×W×C float32 in [0, 1]).
        spec: How canonical images become the model's input.
        flip: Whether horizontal flips keep the label (true for most natural images, false
            for digits or text).
        crop_padding: Padding of the random-crop augmentation, in pixels (0: no crop).
        holdout: The held-out clean split. A defense may use it to choose its own settings
            (never to train); it is never triggered data.
    """

    images: ImageSet
    spec: PreprocessSpec
    flip: bool = False
    crop_padding: int = 4
    holdout: ImageSet | None = None

    def __post_init__(self) -> None:
        if len(self.images) == 0:
            raise BadInput("no clean samples to purify with", self.images.source)
        if self.crop_padding < 0:
            raise BadInput(f"crop padding must be >= 0, got {self.crop_padding}")

    @property
    def num_samples(self) -> int:
        return len(self.images)


@dataclass
class DefenseResult:
    """A defended model and everything the report needs about how it was made.

    Attributes:
        model: The defended model (a new module; the input model is left unchanged).
        details: JSON-ready facts: resolved config, per-phase curves, timings, seed.
    """

    model: nn.Module
    details: dict[str, Any] = field(default_factory=dict)


class Progress(Protocol):
    """Receives one event per epoch, e.g. ``{"phase": "unlearn", "epoch": 3, "epochs": 20,
    "loss": 1.2, "acc": 0.4, "lr": 0.01}``; the CLI draws bars from them."""

    def __call__(self, event: dict[str, Any]) -> None: ...


def notify(progress: Progress | None, **event: Any) -> None:
    """Send ``event`` to ``progress`` when one was given."""
    if progress is not None:
        progress(event)


def seed_everything(seed: int, deterministic: bool | None = True) -> None:
    """Seed Python, NumPy and torch, and optionally ask torch for deterministic kernels.

    Args:
        seed: The seed written into the report.
        deterministic: True/False switches ``torch.use_deterministic_algorithms`` (warning,
            not failing, on ops without a deterministic kernel); None leaves it as it is.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic is not None:
        _use_deterministic_algorithms(deterministic)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.deterministic = deterministic
            torch.backends.cudnn.benchmark = not deterministic


def locate_head(model: nn.Module) -> Head:
    """The classifier head of ``model`` (see :func:`ulrl_edge.head.find_head`).

    Raises:
        UnsupportedModel: When no head can be found.
    """
    from ulrl_edge import head as head_module

    finder = getattr(head_module, "find_head", None)
    if finder is None:  # pragma: no cover - head.py always ships it in releases
        raise UnsupportedModel("cannot locate the classifier head: find_head is unavailable")
    return finder(model)


def fresh_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose parameters all require gradients (imported graphs may not)."""
    clone = copy.deepcopy(model)
    for p in clone.parameters():
        p.requires_grad_(True)
    return clone


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (CPU for a parameter-less module)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _use_deterministic_algorithms(mode: bool) -> None:
    """``torch.use_deterministic_algorithms(mode, warn_only=True)``, without its import of
    TorchInductor (for the compiler's own flag; nothing here compiles) where that is not
    loaded yet: the import took 10-13 s of every run's start-up on the 2-core machine."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=True)
    else:
        setter(mode, warn_only=True)
