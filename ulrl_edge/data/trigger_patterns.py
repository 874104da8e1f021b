"""How each trigger family changes canonical images (N×H×W×C float32 in [0, 1]).

Pure functions of the images, the family's parameters and the model's channel order; all
randomness comes from ``numpy.random.default_rng(seed)``, so a trigger is reproducible.
Colours and pattern images are given in RGB and converted to the images' channels (a red
patch stays red for a BGR model; gray models see its luminance).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ulrl_edge.data.pixels import convert_channels, decode_image, resize_image
from ulrl_edge.errors import BadInput

COLORS = {
    "white": (1.0, 1.0, 1.0),
    "black": (0.0, 0.0, 0.0),
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
}
POSITIONS = ("br", "bl", "tr", "tl", "c")


def color_rgb(color: str) -> tuple[float, float, float]:
    """A colour name or 6-digit hex (``ff8800``) as RGB in [0, 1]."""
    if color in COLORS:
        return COLORS[color]
    return tuple(int(color[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


@functools.lru_cache(maxsize=16)
def load_rgb(path: str) -> np.ndarray:
    """A pattern or mask image as RGB float32 H×W×3 (cached; raises BadInput)."""
    pixels, space = decode_image(Path(path))
    return convert_channels(pixels, space, "rgb")


def _pattern(path: str, h: int, w: int, channels: str) -> np.ndarray:
    return convert_channels(resize_image(load_rgb(path), (h, w)), "rgb", channels)


def _mask(path: str, h: int, w: int) -> np.ndarray:
    return convert_channels(resize_image(load_rgb(path), (h, w)), "rgb", "gray")


def badnets(x: np.ndarray, p: dict[str, Any], channels: str) -> np.ndarray:
    """A solid or random black/white square patch stamped at a corner or the centre."""
    _, h, w, c = x.shape
    size, margin, pos = p["size"], p["margin"], p["pos"]
    if size + margin > min(h, w):
        raise BadInput(
            f"badnets patch of size {size} with margin {margin} does not fit {h}×{w} images"
        )
    top = {"t": margin, "b": h - margin - size, "c": (h - size) // 2}[pos[0]]
    left = {"l": margin, "r": w - margin - size, "c": (w - size) // 2}[pos[-1]]
    if p["color"] == "random":
        bits = np.random.default_rng(p["seed"]).integers(0, 2, (size, size, 1))
        patch = np.repeat(bits.astype(np.float32), c, axis=-1)
    else:
        rgb = np.asarray(color_rgb(p["color"]), dtype=np.float32)[None, None, :]
        patch = convert_channels(rgb, "rgb", channels)
    out = x.copy()
    out[:, top : top + size, left : left + size, :] = patch
    return out


def blend(x: np.ndarray, p: dict[str, Any], channels: str) -> np.ndarray:
    """``(1 − alpha) · x + alpha · pattern``; the pattern is an image or seeded noise."""
    _, h, w, c = x.shape
    if p["img"] is None:
        pattern = np.random.default_rng(p["seed"]).random((h, w, c), dtype=np.float32)
    else:
        pattern = _pattern(p["img"], h, w, channels)
    alpha = np.float32(p["alpha"])
    return (1 - alpha) * x + alpha * pattern


def sig(x: np.ndarray, p: dict[str, Any], channels: str) -> np.ndarray:
    """A horizontal sinusoid ``delta · sin(2π j f / W)`` added to every row (Barni et al.)."""
    w = x.shape[2]
    wave = p["delta"] / 255.0 * np.sin(2 * np.pi * np.arange(w) * p["freq"] / w)
    return x + wave.astype(np.float32)[None, None, :, None]


def _warp_grid(h: int, w: int, k: int, strength: float, seed: int) -> tuple[np.ndarray, ...]:
    """WaNet's sampling grid: identity + strength · upsampled k×k noise / H, clamped."""
    ins = np.random.default_rng(seed).uniform(-1.0, 1.0, (2, k, k)).astype(np.float32)
    ins /= np.mean(np.abs(ins))
    noise = [
        np.asarray(Image.fromarray(plane).resize((w, h), Image.BICUBIC), dtype=np.float32)
        for plane in ins
    ]
    gy, gx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    grid_x = np.clip(gx + strength * noise[0] / h, -1, 1)
    grid_y = np.clip(gy + strength * noise[1] / h, -1, 1)
    return (grid_x + 1) / 2 * (w - 1), (grid_y + 1) / 2 * (h - 1)  # align_corners=True


def wanet(x: np.ndarray, p: dict[str, Any], channels: str) -> np.ndarray:
    """A smooth, seeded warp of the image (Nguyen & Tran, WaNet, ICLR 2021), bilinear."""
    _, h, w, _ = x.shape
    px, py = _warp_grid(h, w, p["k"], p["s"], p["seed"])
    x0 = np.clip(np.floor(px).astype(int), 0, w - 1)
    y0 = np.clip(np.floor(py).astype(int), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    wx = (px - x0).astype(np.float32)[None, :, :, None]
    wy = (py - y0).astype(np.float32)[None, :, :, None]
    top = x[:, y0, x0] * (1 - wx) + x[:, y0, x1] * wx
    bottom = x[:, y1, x0] * (1 - wx) + x[:, y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def image(x: np.ndarray, p: dict[str, Any], channels: str) -> np.ndarray:
    """A user trigger: ``x · (1 − alpha·mask) + alpha·mask · pattern``."""
    _, h, w, _ = x.shape
    pattern = _pattern(p["img"], h, w, channels)
    mask = np.float32(p["alpha"]) * _mask(p["mask"], h, w)
    return x * (1 - mask) + mask * pattern
