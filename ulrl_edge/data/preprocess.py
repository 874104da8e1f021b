"""How canonical images become the model's input tensor.

``input = (pixel01 * scale - mean) / std``, arranged in the model's layout. This covers both
conventions seen in vendor models: torchvision-style (scale 1, mean/std on [0, 1]) and
Caffe/OpenCV-style (scale 255, mean on [0, 255], std 1).
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ulrl_edge.errors import BadInput

Layout = Literal["nchw", "nhwc"]
Channels = Literal["rgb", "bgr", "gray"]

SPEC_FIELDS = ("layout", "size", "channels", "scale", "mean", "std")
LAYOUTS = ("nchw", "nhwc")
CHANNELS = ("rgb", "bgr", "gray")


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

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str | Path | None = None
    ) -> PreprocessSpec:
        """A spec from a (possibly partial) mapping; missing or null keys keep their defaults.

        Args:
            data: Keys among :data:`SPEC_FIELDS` (what :meth:`to_json` writes).
            source: The file the mapping came from, named in errors.

        Raises:
            BadInput: Unknown keys or values of the wrong type or range.
        """
        spec = cls(**parse_spec_fields(data, source=source))
        spec.check(source=source)
        return spec

    @classmethod
    def from_json(cls, text: str, *, source: str | Path | None = None) -> PreprocessSpec:
        """The inverse of :meth:`to_json` (also accepts partial objects).

        Raises:
            BadInput: Text that is not a JSON object of valid spec fields.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise BadInput(f"preprocessing spec is not valid JSON: {err}", source) from None
        return cls.from_dict(data, source=source)

    def check(self, *, source: str | Path | None = None) -> None:
        """Raise BadInput when mean/std do not fit the number of channels."""
        for name in ("mean", "std"):
            n = len(getattr(self, name))
            if n not in (1, self.num_channels):
                raise BadInput(
                    f"preprocessing '{name}' has {n} values but channels '{self.channels}' "
                    f"has {self.num_channels}; give 1 or {self.num_channels}",
                    source,
                )

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


def _bad(source, key: str, problem: str) -> BadInput:
    return BadInput(f"preprocessing '{key}' {problem}", source)


def _number(source, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(source, key, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise _bad(source, key, f"must be finite, got {value!r}")
    return float(value)


def _numbers(source, key: str, value: Any) -> tuple[float, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 3):
        raise _bad(source, key, f"needs 1 or 3 numbers, got {len(values)}")
    return tuple(_number(source, key, v) for v in values)


def _size(source, value: Any) -> tuple[int, int]:
    values = list(value) if isinstance(value, (list, tuple)) else [value, value]
    ok = len(values) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    )
    if not ok:
        raise _bad(source, "size", f"must be [height, width] of positive integers, got {value!r}")
    return int(values[0]), int(values[1])


def _choice(source, key: str, value: Any, choices: tuple[str, ...]) -> str:
    text = value.lower() if isinstance(value, str) else value
    if text not in choices:
        raise _bad(source, key, f"must be one of {', '.join(choices)}, got {value!r}")
    return text


def parse_spec_fields(data: Mapping[str, Any], *, source: str | Path | None = None) -> dict:
    """Check and normalise the fields of a partial spec (JSON object, flags or metadata).

    Args:
        data: Keys among :data:`SPEC_FIELDS`; None values mean "not given" and are dropped.
        source: The file (or flag group) the fields came from, named in errors.

    Returns:
        Only the given fields, with tuples for size/mean/std and floats for numbers.

    Raises:
        BadInput: Unknown keys or invalid values.
    """
    if not isinstance(data, Mapping):
        raise BadInput(
            f"preprocessing spec must be a JSON object, got {type(data).__name__}", source
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SPEC_FIELDS:
            near = difflib.get_close_matches(str(key), SPEC_FIELDS, n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise BadInput(
                f"unknown preprocessing key {key!r}{hint}; valid keys: {', '.join(SPEC_FIELDS)}",
                source,
            )
        if value is None:
            continue
        if key == "layout":
            out[key] = _choice(source, key, value, LAYOUTS)
        elif key == "channels":
            out[key] = _choice(source, key, value, CHANNELS)
        elif key == "size":
            out[key] = _size(source, value)
        elif key == "scale":
            out[key] = _number(source, key, value)
            if out[key] <= 0:
                raise _bad(source, key, f"must be positive, got {value!r}")
        else:
            out[key] = _numbers(source, key, value)
            if key == "std" and any(v <= 0 for v in out[key]):
                raise _bad(source, key, f"must be positive, got {value!r}")
    return out
