"""Training augmentation on canonical NHWC tensors: random crop with padding, optional flip.

The reference trains with torchvision's ``RandomCrop(size, padding=4)`` (zero fill) and
``RandomHorizontalFlip``. Here both act on a whole batch at once and draw from an explicit
generator, so that one seed gives the same crops everywhere.
"""

from __future__ import annotations

import torch


def random_crop_flip(
    x: torch.Tensor,
    *,
    padding: int = 4,
    flip: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Randomly shift each image within a zero border and mirror half of them.

    Args:
        x: N×H×W×C images in [0, 1] (canonical layout).
        padding: Border added on each side before cropping back to H×W (0: no crop).
        flip: Mirror each image left-right with probability 1/2.
        generator: Source of randomness (CPU generator); None uses torch's global one.

    Returns:
        A new N×H×W×C tensor; ``x`` is left unchanged.
    """
    if x.ndim != 4:
        raise ValueError(f"expected N×H×W×C images, got shape {tuple(x.shape)}")
    n, h, w, _ = x.shape
    out = x
    if padding > 0 and n > 0:
        padded = torch.nn.functional.pad(x, (0, 0, padding, padding, padding, padding))
        span = 2 * padding + 1
        oy = torch.randint(0, span, (n,), generator=generator).to(x.device)
        ox = torch.randint(0, span, (n,), generator=generator).to(x.device)
        rows = oy[:, None] + torch.arange(h, device=x.device)  # N×H
        cols = ox[:, None] + torch.arange(w, device=x.device)  # N×W
        batch = torch.arange(n, device=x.device)[:, None, None]
        out = padded[batch, rows[:, :, None], cols[:, None, :]]
    if flip and n > 0:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(mirror[:, None, None, None], out.flip(2), out)
    return out if out is not x else x.clone()
