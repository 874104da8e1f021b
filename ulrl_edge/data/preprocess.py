"""How canonical images become the model's input tensor.

``input = (pixel01 * scale - mean) / std``, arranged in the model's layout. This covers both
conventions seen in vendor models: torchvision-style (scale 1, mean/std on [0, 1]) and
Caffe/OpenCV-style (scale 255, mean on [0, 255], std 1).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Literal

import numpy as np

Layout = Literal["nchw", "nhwc"]
Channels = Literal["rgb", "bgr", "gray"]


@dataclass(frozen=True)
class PreprocessSpec:
    """What the model expects as input.

    Attributes:
        layout: ``nchw`` or ``nhwc``.
        size: (height, width) of the model input; None until resolved from the model.
        channels: Channel order the model wants; ``gray`` means one channel.
        scale: Multiplier applied to [0, 1] pixels before mean/std.
        mean: Per-channel (or one shared) value subtracted after scaling.
        std: Per-channel (or one shared) divisor.
    """

    layout: Layout = "nchw"
    size: tuple[int, int] | None = None
    channels: Channels = "rgb"
    scale: float = 1.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    @property
    def num_channels(self) -> int:
        return 1 if self.channels == "gray" else 3

    def updated(self, **changes) -> PreprocessSpec:
        """A copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_json(self) -> str:
        data = asdict(self)
        data["size"] = list(self.size) if self.size else None
        return json.dumps(data, sort_keys=True)

    def _mean_std(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        mean = np.broadcast_to(mean, (c,)) if mean.size == 1 else mean
        std = np.broadcast_to(std, (c,)) if std.size == 1 else std
        return mean, std

    def to_model_input(self, x: np.ndarray) -> np.ndarray:
        """Canonical N×H×W×C [0, 1] images → float32 model input."""
        mean, std = self._mean_std(x.shape[-1])
        out = (x.astype(np.float32) * np.float32(self.scale) - mean) / std
        if self.layout == "nchw":
            out = out.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(out, dtype=np.float32)

    def to_model_input_torch(self, x):
        """The same as :meth:`to_model_input` for a torch tensor (differentiable)."""
        import torch

        mean, std = self._mean_std(x.shape[-1])
        mean_t = torch.as_tensor(mean.copy(), dtype=x.dtype, device=x.device)
        std_t = torch.as_tensor(std.copy(), dtype=x.dtype, device=x.device)
        out = (x * self.scale - mean_t) / std_t
        if self.layout == "nchw":
            out = out.permute(0, 3, 1, 2)
        return out.contiguous()
