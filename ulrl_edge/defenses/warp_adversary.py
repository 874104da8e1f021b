"""A smooth warp towards the flagged class, a stand-in for warping triggers while relearning.

Why: an L∞ perturbation moves every pixel's value a little; a warping trigger (WaNet) moves
where the pixels are. Where relearning holds the body near the original weights (the
anchor), the warp's features survive and a relearned row finds them again: WaNet came back
to 30-87% on three models of three while the L∞ term ran (NOTES_600_trained.md,
eighteenth and nineteenth sessions). So the adversary also crafts one universal,
smooth displacement field (a coarse grid of control points, upsampled, at most
``max_shift`` pixels) towards the flagged class, and the model learns the true labels on
the warped images, as it does on the perturbed ones.
"""

from __future__ import annotations

import torch
from torch import nn

from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.defenses.flagged_adversary import aim_gradient
from ulrl_edge.defenses.training import eval_mode


def _to_nchw(inputs: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    return inputs.permute(0, 3, 1, 2) if spec.layout == "nhwc" else inputs


def _from_nchw(images: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    return images.permute(0, 2, 3, 1) if spec.layout == "nhwc" else images


def warp(inputs: torch.Tensor, control: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """``inputs`` (model input) resampled along the displacement that ``control``
    ([1, 2, k, k], in grid_sample's [-1, 1] units) gives once upsampled to the image."""
    images = _to_nchw(inputs, spec)
    n, _, h, w = images.shape
    flow = nn.functional.interpolate(control, size=(h, w), mode="bicubic", align_corners=True)
    ys = torch.linspace(-1, 1, h, device=inputs.device, dtype=inputs.dtype)
    xs = torch.linspace(-1, 1, w, device=inputs.device, dtype=inputs.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack((gx, gy), dim=-1)[None] + flow.permute(0, 2, 3, 1)
    warped = nn.functional.grid_sample(
        images, grid.expand(n, -1, -1, -1), mode="bilinear", padding_mode="border",
        align_corners=True,
    )  # fmt: skip
    return _from_nchw(warped, spec).contiguous()


def warp_towards_class(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, target: int,
    spec: PreprocessSpec, max_shift: float, grid: int, steps: int, generator: torch.Generator,
    chunk: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """The control points [1, 2, grid, grid] of one warp (each displacement at most
    ``max_shift`` pixels) that pushes ``inputs`` towards ``target``: ``steps``
    signed-gradient steps from a random start on the images not labelled ``target``, in eval
    mode (BatchNorm statistics untouched). ``chunk``: as in
    :func:`~ulrl_edge.defenses.flagged_adversary.towards_class` (None: one pass)."""
    h, w = _to_nchw(inputs[:1], spec).shape[2:]
    # A pixel is 2 / (size - 1) in grid_sample's units (align_corners=True).
    bound = torch.tensor([2 / max(w - 1, 1), 2 / max(h - 1, 1)], dtype=inputs.dtype)
    bound = (bound * max_shift).view(1, 2, 1, 1).to(inputs.device)
    start = torch.rand((1, 2, grid, grid), generator=generator).to(inputs)
    control = (start * 2 - 1) * bound
    others = inputs[labels != target]
    if len(others) == 0:
        return control
    aim = torch.full((len(others),), target, dtype=torch.long, device=inputs.device)
    step = 2.5 * bound / steps  # as for the L∞ perturbation: the walk can cross the box
    with eval_mode(model):
        for _ in range(steps):
            control.requires_grad_(True)
            grad = aim_gradient(
                lambda x, c=control: model(warp(x, c, spec)), control, others, aim, chunk
            )
            control = (control.detach() - step * grad.sign()).clamp(-bound, bound)
    return control
