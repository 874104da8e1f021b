"""Poisoning a training set and building the triggered test set (BackdoorBench's rules).

One implementation for the benchmarks, the test fixtures and ``verify``:

- all2one: poisoned images are drawn from those whose label is not the target, their label
  becomes the target; the triggered test set holds every image whose true label is not the
  target.
- all2all: any image may be poisoned, label ``y`` becomes ``(y + 1) mod K``; the triggered
  test set holds every image.

Re-exported by :mod:`ulrl_edge.data.triggers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ulrl_edge.data.images import ImageSet
from ulrl_edge.errors import BadInput

if TYPE_CHECKING:
    from ulrl_edge.data.triggers import Trigger

MODES = ("all2one", "all2all")


def attack_labels(y: np.ndarray, target: int | None, mode: str, num_classes: int) -> np.ndarray:
    """The labels an attack wants: ``target`` (all2one) or ``(y + 1) mod K`` (all2all).

    Raises:
        BadInput: Unknown mode, or an all2one target that is not a class.
    """
    if mode == "all2all":
        return (np.asarray(y, dtype=np.int64) + 1) % num_classes
    if mode != "all2one":
        raise BadInput(f"attack mode must be {' or '.join(MODES)}, got {mode!r}")
    if target is None or not 0 <= int(target) < num_classes:
        raise BadInput(f"the attack target must be a class in 0..{num_classes - 1}, got {target}")
    return np.full(len(y), int(target), dtype=np.int64)


def _num_classes(images: ImageSet, num_classes: int | None) -> int:
    if num_classes is not None:
        return int(num_classes)
    top = int(images.y.max()) + 1 if len(images) else 0
    return max(len(images.class_names), top)


def _channels(images: ImageSet, channels: str | None) -> str:
    return channels or ("gray" if images.x.shape[-1] == 1 else "rgb")


def poison(
    images: ImageSet,
    trigger: Trigger,
    target: int | None,
    rate: float,
    seed: int = 0,
    mode: str = "all2one",
    *,
    num_classes: int | None = None,
    channels: str | None = None,
) -> tuple[ImageSet, np.ndarray]:
    """Stamp the trigger on ``round(rate · N)`` images and relabel them.

    Args:
        images: The clean training set.
        trigger: The trigger to stamp.
        target: The target class (all2one; ignored for all2all).
        rate: Poisoning rate as a share of all N images, in [0, 1]; capped at the number of
            eligible (non-target) images.
        seed: Seed of the choice of poisoned images.
        mode: ``all2one`` or ``all2all``.
        num_classes: K; defaults to the number of class names (or the largest label + 1).
        channels: The images' channel order; ``gray`` or ``rgb`` from C when omitted.

    Returns:
        The poisoned set (a copy) and a boolean mask of the poisoned images.
    """
    if not 0.0 <= rate <= 1.0:
        raise BadInput(f"the poisoning rate must be in [0, 1], got {rate}")
    k = _num_classes(images, num_classes)
    attack_labels(images.y[:0], target, mode, k)  # validates mode and target
    eligible = np.flatnonzero(images.y != target) if mode == "all2one" else np.arange(len(images))
    count = min(int(np.floor(rate * len(images) + 0.5)), len(eligible))
    chosen = np.random.default_rng(seed).choice(eligible, size=count, replace=False)
    mask = np.zeros(len(images), dtype=bool)
    mask[chosen] = True
    x = images.x.copy()
    y = images.y.copy()
    if count:
        x[mask] = trigger.apply(x[mask], channels=_channels(images, channels))
        y[mask] = attack_labels(y[mask], target, mode, k)
    return ImageSet(x, y, images.class_names, images.source), mask


def triggered_test_set(
    images: ImageSet,
    trigger: Trigger,
    target: int | None,
    mode: str = "all2one",
    *,
    num_classes: int | None = None,
    channels: str | None = None,
) -> ImageSet:
    """The images an ASR is measured on, triggered and labelled with the attack's wish.

    Args:
        images: Clean test images with their true labels.
        trigger: The trigger.
        target: The target class (all2one).
        mode: ``all2one`` (keeps images whose true label is not the target) or ``all2all``
            (keeps all; labels ``(y + 1) mod K``).
        num_classes: K; defaults to the number of class names (or the largest label + 1).
        channels: The images' channel order; ``gray`` or ``rgb`` from C when omitted.

    Returns:
        The triggered set; its labels are the attack's target labels.
    """
    k = _num_classes(images, num_classes)
    attack_labels(images.y[:0], target, mode, k)
    keep = images.y != target if mode == "all2one" else np.ones(len(images), dtype=bool)
    chosen = images.subset(np.flatnonzero(keep))
    x = trigger.apply(chosen.x, channels=_channels(images, channels))
    y = attack_labels(chosen.y, target, mode, k)
    return ImageSet(x, y, images.class_names, images.source)
