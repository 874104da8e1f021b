"""Pixel-level conversions shared by the image sources and the triggers.

Decoding rules, chosen once so that a folder of PNGs and an ``.npz`` of the same pixels give
the same canonical images:

- 8-bit values are divided by 255, 16-bit ones (PNG ``I;16``) by 65535.
- Alpha (RGBA, LA, palette with transparency, 4-channel arrays) is composited over
  **black**: ``pixel · alpha``. Transparent regions become 0, as in premultiplied alpha.
- Palette, bilevel, CMYK and YCbCr images are converted by Pillow to RGB or L first.
- Gray → RGB/BGR replicates the channel; RGB → gray uses ITU-R BT.601 luminance
  ``0.299 R + 0.587 G + 0.114 B`` (Pillow's own ``L`` weights), computed in float.
- Resizing (only when asked) is bilinear with antialiasing, per channel in float.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ulrl_edge.config import DEFAULT_LIMITS, Limits
from ulrl_edge.errors import BadInput

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_PIL_FORMATS = {"PNG", "JPEG", "MPO", "BMP", "DIB"}  # MPO: multi-picture JPEG from cameras
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _alpha_over_black(arr: np.ndarray) -> np.ndarray:
    """H×W×(C+1) with alpha last → H×W×C composited over black."""
    return arr[..., :-1] * arr[..., -1:]


def pixels_of(img: Image.Image) -> tuple[np.ndarray, str]:
    """A decoded Pillow image as float32 H×W×C in [0, 1] and its colour space.

    Returns:
        The pixels and ``"gray"`` (C = 1) or ``"rgb"`` (C = 3).

    Raises:
        ValueError: A pixel mode this module does not know (caller adds the file name).
    """
    mode = img.mode
    if mode in ("P", "PA"):
        transparent = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if transparent else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img, dtype=np.float64) / 65535.0  # 16-bit PNG gray
        return np.clip(arr, 0.0, 1.0).astype(np.float32)[..., None], "gray"
    if mode == "F":
        return np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)[..., None], "gray"
    if mode not in ("L", "LA", "RGB", "RGBA"):
        raise ValueError(f"unsupported pixel mode {mode}")
    arr = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    if mode == "L":
        return arr[..., None], "gray"
    if mode == "LA":
        return _alpha_over_black(arr), "gray"
    if mode == "RGBA":
        return _alpha_over_black(arr), "rgb"
    return arr, "rgb"


def decode_image(path: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[np.ndarray, str]:
    """Read one PNG, JPEG or BMP file; see :func:`pixels_of` for the result.

    Raises:
        BadInput: The file cannot be decoded, is another format, or is too large.
    """
    try:
        if path.stat().st_size == 0:
            raise BadInput("empty file (0 bytes), not an image", path)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.format not in _PIL_FORMATS:
                    raise BadInput(f"is a {img.format} image; use PNG, JPEG or BMP", path)
                width, height = img.size
                if width * height > limits.max_image_pixels:
                    raise BadInput(
                        f"image is {width}×{height}, more than the limit of "
                        f"{limits.max_image_pixels} pixels",
                        path,
                    )
                img.load()
                return pixels_of(img)
    except BadInput:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        text = " ".join(str(err).split()) or type(err).__name__
        raise BadInput(f"cannot decode image: {text}", path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadInput(f"image too large: {err}", path) from None


def convert_channels(x: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert images (…×C, last axis channels) from ``src`` to ``dst`` channels.

    Args:
        x: float32 pixels, channels last: 1 for ``gray``, 3 for ``rgb`` / ``bgr``.
        src: ``gray``, ``rgb`` or ``bgr``.
        dst: ``gray``, ``rgb`` or ``bgr``.
    """
    if src == "bgr":
        x, src = x[..., ::-1], "rgb"
    if src == "gray":
        out = x if dst == "gray" else np.repeat(x, 3, axis=-1)
    elif dst == "gray":
        out = (x @ LUMA)[..., None]
    else:
        out = x if dst == "rgb" else x[..., ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


def resize_image(
    x: np.ndarray, size: tuple[int, int], resample: int = Image.BILINEAR
) -> np.ndarray:
    """Resize one H×W×C float32 image to ``size`` = (height, width), clipped to [0, 1]."""
    if x.shape[:2] == tuple(size):
        return x
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c])).resize(size[::-1], resample))
        for c in range(x.shape[-1])
    ]
    return np.clip(np.stack(planes, axis=-1), 0.0, 1.0).astype(np.float32)


def resize_images(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize N×H×W×C float32 images to ``size`` = (height, width)."""
    if x.shape[1:3] == tuple(size):
        return x
    out = np.empty((len(x), size[0], size[1], x.shape[-1]), dtype=np.float32)
    for i, image in enumerate(x):
        out[i] = resize_image(image, size)
    return out
