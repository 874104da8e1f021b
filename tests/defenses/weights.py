"""Comparing model weights in the defense tests."""

from __future__ import annotations

import torch
from torch import nn

State = dict[str, torch.Tensor]


def snapshot(model: nn.Module) -> State:
    """A detached copy of every tensor in ``model``'s state dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: nn.Module | State, b: nn.Module | State) -> bool:
    """True when both hold the same tensor names with bit-identical values."""
    sa = a.state_dict() if isinstance(a, nn.Module) else a
    sb = b.state_dict() if isinstance(b, nn.Module) else b
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
