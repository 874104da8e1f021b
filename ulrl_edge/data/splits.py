"""A stratified, seeded split of the clean samples into a purify part and a verify part.

The verify part is never used to purify: it is what the clean-accuracy gate is measured on.
Every class present in the samples gets ``round(fraction · n_class)`` verify images, and the
split is refused when that is below ``min_per_class`` for some class (accuracy on one image
per class says nothing).
"""

from __future__ import annotations

import math

import numpy as np

from ulrl_edge.config import VERIFY_FRACTION
from ulrl_edge.data.images import ImageSet
from ulrl_edge.errors import BadInput


def _verify_count(n: int, fraction: float) -> int:
    return int(math.floor(n * fraction + 0.5))  # round half up, unlike Python's round()


def _needed(fraction: float, min_per_class: int) -> int:
    """The fewest images a class needs for ``min_per_class`` verify images (+1 to purify)."""
    n = min_per_class
    while _verify_count(n, fraction) < min_per_class or n - _verify_count(n, fraction) < 1:
        n += 1
    return n


def stratified_split(
    images: ImageSet,
    verify_fraction: float = VERIFY_FRACTION,
    seed: int = 0,
    min_per_class: int = 2,
) -> tuple[ImageSet, ImageSet]:
    """Split per class into (purify part, verify part), the same for the same seed.

    Args:
        images: The clean samples.
        verify_fraction: Share of each class held out for verification, in (0, 1).
        seed: Seed of the per-class shuffle.
        min_per_class: Fewest verify images a class may get.

    Returns:
        The purify part and the verify part, each in the original order of the images.

    Raises:
        BadInput: A class would get fewer than ``min_per_class`` verify images (or none
            left to purify), or the fraction is outside (0, 1).
    """
    if not 0.0 < verify_fraction < 1.0:
        raise BadInput(f"the verify fraction must be between 0 and 1, got {verify_fraction}")
    rng = np.random.default_rng(seed)
    verify_parts: list[np.ndarray] = []
    for label in np.unique(images.y):
        members = np.flatnonzero(images.y == label)
        count = _verify_count(len(members), verify_fraction)
        if count < min_per_class or count >= len(members):
            name = _class_label(images, int(label))
            need = _needed(verify_fraction, min_per_class)
            raise BadInput(
                f"class {name} has {len(members)} image(s): a {verify_fraction:.0%} verify split "
                f"gives it {count}, and at least {min_per_class} are needed (plus some to "
                f"purify); give that class {need} or more images",
                images.source,
            )
        verify_parts.append(rng.permutation(members)[:count])
    verify_index = np.sort(np.concatenate(verify_parts)) if verify_parts else np.array([], int)
    is_verify = np.zeros(len(images), dtype=bool)
    is_verify[verify_index] = True
    return images.subset(np.flatnonzero(~is_verify)), images.subset(verify_index)


def _class_label(images: ImageSet, label: int) -> str:
    if label < len(images.class_names) and images.class_names[label] != str(label):
        return f"{label} ({images.class_names[label]})"
    return str(label)
