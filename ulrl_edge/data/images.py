"""The canonical in-memory image set every part of the tool exchanges.

Images are kept as float32 N×H×W×C in [0, 1], channels in the order the model wants
(RGB, BGR or a single gray channel), already at the model's spatial size. Triggers are
applied in this space; :class:`~ulrl_edge.data.preprocess.PreprocessSpec` turns it into the
model's input tensor (layout, scale, mean, std).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageSet:
    """Labelled images in canonical form.

    Attributes:
        x: float32 array N×H×W×C with values in [0, 1].
        y: int64 array of N class indices.
        class_names: Name of each class index, as the source gave them (``"0"``, ``"cat"``).
        source: Where the images came from, for messages.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...] = field(default_factory=tuple)
    source: Path | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(f"ImageSet.x must be N×H×W×C, got shape {self.x.shape}")
        if self.x.dtype != np.float32:
            raise ValueError(f"ImageSet.x must be float32, got {self.x.dtype}")
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def hwc(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    def subset(self, index: np.ndarray) -> ImageSet:
        """The images at ``index`` (a copy), keeping class names and source."""
        return ImageSet(self.x[index], self.y[index], self.class_names, self.source)

    def with_images(self, x: np.ndarray) -> ImageSet:
        """The same labels with other pixels (e.g. triggered)."""
        pixels = np.ascontiguousarray(x, dtype=np.float32)
        return ImageSet(pixels, self.y, self.class_names, self.source)
