"""A 10-class RGB set of 32×32 crops, one class per real photo, built offline.

Photos: the 8 colour photos bundled with ``skimage.data`` plus scikit-learn's two sample
photos (china, flower) when scikit-image is installed; without it, scikit-learn's two
photos each cut into five horizontal bands (one class per band).
Crops are random 40–96 px squares (scale jitter) resized to 32×32, with a
brightness jitter of ±10%, so the task is "which photo is this patch from".
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ulrl_edge.data import ImageSet

# Bundled with scikit-image (no download); "cat" is "chelsea" again, so it is left out.
_SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
    "retina", "hubble_deep_field", "colorwheel",
)  # fmt: skip


def _photos() -> tuple[list[np.ndarray], list[str]]:
    from sklearn.datasets import load_sample_images

    sample = load_sample_images()
    try:
        import skimage.data as sk

        photos, names = [], []
        for name in _SKIMAGE_PHOTOS:
            try:
                img = np.asarray(getattr(sk, name)())
            except Exception:  # noqa: BLE001 - a photo skimage must download is skipped
                continue
            if img.ndim == 3 and img.shape[2] >= 3 and min(img.shape[:2]) >= 128:
                photos.append(img[..., :3])
                names.append(name)
        photos += list(sample.images)
        names += ["china", "flower"]
        if len(photos) >= 10:
            return photos[:10], names[:10]
    except ImportError:
        pass
    photos, names = [], []
    for i, img in enumerate(sample.images):
        bands = np.array_split(img, 5, axis=0)
        photos += bands
        names += [f"photo{i}_band{j}" for j in range(5)]
    return photos, names


def load_rgb(n: int, seed: int, size: int = 32) -> ImageSet:
    """``n`` labelled crops (balanced over the 10 classes), float32 N×32×32×3 in [0, 1]."""
    photos, names = _photos()
    rng = np.random.default_rng(seed)
    x = np.empty((n, size, size, 3), dtype=np.float32)
    y = np.arange(n, dtype=np.int64) % len(photos)
    rng.shuffle(y)
    for i, label in enumerate(y):
        img = photos[label]
        h, w = img.shape[:2]
        side = int(rng.integers(40, min(96, h, w) + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(np.ascontiguousarray(img[top : top + side, left : left + side]))
        arr = np.asarray(crop.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255
        x[i] = np.clip(arr * rng.uniform(0.9, 1.1), 0, 1)
    return ImageSet(x, y, tuple(names))
