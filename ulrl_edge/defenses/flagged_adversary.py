"""A stand-in for the unknown trigger: a perturbation that pushes clean images to the
flagged class, learned away during relearning.

Why: re-initialising the flagged row is not enough once the class is relearned. The
trigger's features still lead to that class: on a Fashion-MNIST ResNet, relearning only the
reset row (every other weight frozen) on clean images brought Blend's ASR back to 98%, and
auto's full relearning to 70%. So each relearning batch also gets a universal perturbation
(one for the whole batch, like a trigger) crafted by a few signed-gradient steps towards the
flagged class, and the model learns the batch's true labels on the perturbed images, as
i-BAU and SAU do with perturbations that are not aimed at one class.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.defenses.base import TrainingData
from ulrl_edge.defenses.training import eval_mode

# On a GPU (a Jetson's shared memory) gradients are taken over this many images at a time;
# on the CPU in one pass, as measured.
GPU_GRAD_CHUNK = 32


def grad_chunk(device: torch.device) -> int | None:
    """The ``chunk`` for :func:`towards_class` on ``device`` (None: one pass)."""
    return None if device.type == "cpu" else GPU_GRAD_CHUNK


def clean_inputs(
    data: TrainingData, device: torch.device, index: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean images (those at ``index``, else all) as model input, and their labels."""
    x, y = data.images.x, data.images.y
    if index is not None:
        x, y = x[index], y[index]
    pixels = torch.from_numpy(np.ascontiguousarray(x))
    labels = torch.from_numpy(np.asarray(y, dtype=np.int64))
    return data.spec.to_model_input_torch(pixels).to(device), labels.to(device)


def model_space_eps(eps: float, spec: PreprocessSpec) -> float:
    """``eps`` in [0, 1] pixel units, expressed in the model's (normalised) input units
    (exact for one channel or equal stds; otherwise with the channels' stds averaged)."""
    return float(eps * spec.scale / np.mean(spec.std))


def aim_gradient(
    logits_of: Callable[[torch.Tensor], torch.Tensor], variable: torch.Tensor,
    inputs: torch.Tensor, aim: torch.Tensor, chunk: int | None,
) -> torch.Tensor:  # fmt: skip
    """Gradient with respect to ``variable`` of the cross-entropy of ``logits_of(inputs)``
    towards ``aim``: the mean in one pass, or, with ``chunk``, the sum over chunks of that
    many images (the same direction in bounded memory)."""
    if chunk is None or len(inputs) <= chunk:
        loss = nn.functional.cross_entropy(logits_of(inputs), aim)
        return torch.autograd.grad(loss, variable)[0]
    grad = torch.zeros_like(variable)
    for part, part_aim in zip(inputs.split(chunk), aim.split(chunk), strict=True):
        loss = nn.functional.cross_entropy(logits_of(part), part_aim, reduction="sum")
        grad += torch.autograd.grad(loss, variable)[0]
    return grad


def towards_class(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, target: int, eps: float,
    steps: int, generator: torch.Generator, chunk: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """One perturbation [1, ...] (L∞ ≤ ``eps``) that pushes ``inputs`` towards ``target``.

    Crafted on the images not labelled ``target``, with the model in eval mode (BatchNorm
    statistics untouched) and its mode restored afterwards. With ``chunk``, each step's
    gradient is summed over chunks of that many images (same direction, bounded memory).
    """
    others = inputs[labels != target]
    if len(others) == 0:
        return torch.zeros_like(inputs[:1])
    start = torch.rand(inputs[:1].shape, generator=generator).to(inputs)
    delta = (start * 2 - 1) * eps
    aim = torch.full((len(others),), target, dtype=torch.long, device=inputs.device)
    step = 2.5 * eps / steps  # Madry et al.'s rule: the walk can cross the ball
    with eval_mode(model):
        for _ in range(steps):
            delta.requires_grad_(True)
            grad = aim_gradient(lambda x, d=delta: model(x + d), delta, others, aim, chunk)
            delta = (delta.detach() - step * grad.sign()).clamp(-eps, eps)
    return delta


def patch_mask(spec: PreprocessSpec, shape: tuple[int, ...], origin: tuple[int, int],
               size: int, device: torch.device) -> torch.Tensor:  # fmt: skip
    """A [1, ...] mask in the model's input layout: 1 on the ``size`` square at ``origin``
    (row, column) of images of canonical ``shape`` (H, W, C), 0 elsewhere."""
    h, w, c = shape
    mask = torch.zeros(1, h, w, c, device=device)
    mask[:, origin[0] : origin[0] + size, origin[1] : origin[1] + size] = 1
    return mask.permute(0, 3, 1, 2).contiguous() if spec.layout == "nchw" else mask


def paste(inputs: torch.Tensor, patch: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``inputs`` with ``patch`` where ``mask`` is 1 (all in the model's input format)."""
    return inputs * (1 - mask) + mask * patch


def patch_towards_class(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, target: int,
    mask: torch.Tensor, spec: PreprocessSpec, steps: int, generator: torch.Generator,
    step_size: float | None = None, chunk: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """A patch (model input [1, ...], to paste where ``mask`` is 1) that pushes ``inputs``
    towards ``target``: pixel values in [0, 1] from a random start, ``steps`` signed-gradient
    steps on the images not labelled ``target``, in eval mode (see :func:`towards_class`).

    Args:
        step_size: Pixel units per step (None: 2.5 / ``steps``, so the walk can cross the
            whole [0, 1] range).
        chunk: As in :func:`towards_class` (None: one pass).
    """
    others = inputs[labels != target]
    dims = tuple(mask.shape[1:])
    hwc = dims if spec.layout == "nhwc" else (dims[1], dims[2], dims[0])
    pixels = torch.rand((1, *hwc), generator=generator).to(inputs)
    if len(others) == 0:
        return spec.to_model_input_torch(pixels).detach()
    aim = torch.full((len(others),), target, dtype=torch.long, device=inputs.device)
    step = 2.5 / steps if step_size is None else step_size
    with eval_mode(model):
        for _ in range(steps):
            pixels.requires_grad_(True)
            # The patch is made per chunk: each chunk's backward pass frees its graph.
            def pasted_logits(x: torch.Tensor, p: torch.Tensor = pixels) -> torch.Tensor:
                return model(paste(x, spec.to_model_input_torch(p), mask))

            grad = aim_gradient(pasted_logits, pixels, others, aim, chunk)
            pixels = (pixels.detach() - step * grad.sign()).clamp(0, 1)
    return spec.to_model_input_torch(pixels).detach()


def perturbation_bank(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, target: int, eps: float,
    steps: int, count: int, generator: torch.Generator, chunk: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """``count`` perturbations [count, ...] towards ``target``, each crafted on a random half
    of ``inputs`` (see :func:`towards_class`)."""
    bank = []
    for _ in range(count):
        pick = torch.randperm(len(inputs), generator=generator)[: max(1, len(inputs) // 2)]
        pick = pick.to(inputs.device)
        bank.append(
            towards_class(model, inputs[pick], labels[pick], target, eps, steps, generator, chunk)
        )
    return torch.cat(bank)
