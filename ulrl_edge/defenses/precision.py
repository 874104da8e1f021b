"""Mixed precision (AMP) for defenses on CUDA.

A defense that declares ``amp=True`` at registration runs inside :func:`mixed_precision`:
its forward passes are autocast to bfloat16 (or float16 where the GPU has no bfloat16, as
on Jetson Xavier), while the weights stay float32, so the exported model is unchanged in
kind. Training loops step through :func:`backward_and_step`, which scales float16 losses
(their small gradients underflow otherwise) and skips steps whose gradients overflowed.
On the CPU nothing changes unless a caller asks for a dtype explicitly (the tests do).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator

import torch

__all__ = ["amp_dtype", "backward_and_step", "dtype_name", "full_precision", "mixed_precision"]

# One loss scaler per optimiser: its scale adapts over the steps of a whole run.
_SCALERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def amp_dtype(device: str, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype AMP uses on ``device`` (None: full precision).

    Only CUDA gains from it; bfloat16 where the GPU supports it (no loss scaling needed),
    else float16.
    """
    if not enabled or torch.device(device).type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def dtype_name(dtype: torch.dtype | None) -> str | None:
    """``bfloat16`` / ``float16`` for reports; None for full precision."""
    return None if dtype is None else str(dtype).removeprefix("torch.")


@contextlib.contextmanager
def mixed_precision(device: str | torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast the forward passes on ``device``'s type to ``dtype`` (None: do nothing)."""
    if dtype is None:
        yield
        return
    # No cast-weight cache: autocast keeps it until the context exits, and a whole defense
    # runs inside this one, so cached copies would hide every optimiser step from later
    # forward passes (the weights would look frozen at their first cast).
    with torch.autocast(torch.device(device).type, dtype=dtype, cache_enabled=False):
        yield


@contextlib.contextmanager
def full_precision(device: str | torch.device) -> Iterator[None]:
    """Inside, forward passes on ``device``'s type run in float32 again (autocast off)."""
    with torch.autocast(torch.device(device).type, enabled=False):
        yield


def _scaler(optimizer: torch.optim.Optimizer, device_type: str) -> torch.amp.GradScaler | None:
    """The optimiser's loss scaler when float16 autocast is on for ``device_type``."""
    if not (
        torch.is_autocast_enabled(device_type)
        and torch.get_autocast_dtype(device_type) == torch.float16
    ):
        return None
    scaler = _SCALERS.get(optimizer)
    if scaler is None:
        scaler = _SCALERS[optimizer] = torch.amp.GradScaler(device_type)
    return scaler


def backward_and_step(
    objective: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    params: Iterable[torch.Tensor],
    clip_norm: float | None = None,
) -> bool:
    """Back-propagate ``objective``, clip the gradients' L2 norm, step ``optimizer``.

    Under float16 autocast the loss is scaled and the gradients unscaled before clipping.

    A step whose gradients are not finite is skipped (in float32 too: one overflowing
    step, e.g. relearning against large perturbations, turned every weight into NaN).

    Returns:
        False when the step was skipped (gradients overflowed), else True.
    """
    device_type = objective.device.type
    scaler = _scaler(optimizer, device_type)
    optimizer.zero_grad(set_to_none=True)
    # The backward pass runs in the dtypes the forward pass chose; autocast is not wanted.
    with torch.autocast(device_type, enabled=False):
        (objective if scaler is None else scaler.scale(objective)).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    params = list(params)
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_norm=clip_norm, norm_type=2)
    if scaler is None:
        if not _finite_gradients(params):
            optimizer.zero_grad(set_to_none=True)
            return False
        optimizer.step()
        return True
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    return scaler.get_scale() >= scale  # the scale only shrinks after a skipped step


def _finite_gradients(params: list[torch.Tensor]) -> bool:
    """True when no gradient holds an inf or a NaN (one check, one sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return True
    return bool(torch.stack([g.detach().float().abs().amax() for g in grads]).isfinite().all())
