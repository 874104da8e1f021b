"""Per-output-channel masks on conv and linear layers, for defenses that prune neurons.

ANP and RNP were written for networks with BatchNorm: they scale each BN channel. Imported
ONNX graphs usually have BN folded into the preceding convolution, so here a "neuron" is an
output channel of an ``nn.Conv2d`` (or an output row of a hidden ``nn.Linear``) and the
mask multiplies that layer's output channel through a forward hook. The graph itself is
never rewritten, so an export of the pruned model keeps the same inputs and outputs.

Public API:
    :func:`maskable_layers` - the (name, module) pairs that can carry a mask.
    :class:`ChannelMasks` - attach masks (trainable parameters, 1 = unchanged), read them,
        clamp them, optionally perturb them (ANP-style noise), remove the hooks.
    :func:`zero_channels` - prune for good: zero a layer's output channels (weight and bias).

The hook computes, for a layer with bias ``b`` and raw output ``out``::

    (out - b) * (mask + weight_noise) + b * bias_scale

where ``bias_scale`` is ``mask + weight_noise`` when ``mask_bias`` (the whole channel is
scaled, as RNP's pruning removes it) or ``1 + bias_noise`` otherwise (ANP: the mask scales
the weights and noise perturbs the bias). Noise terms are zero unless :meth:`ChannelMasks.
enable_noise` was called.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from ulrl_edge.errors import UnsupportedModel

__all__ = ["ChannelMasks", "MaskedLayer", "maskable_layers", "zero_channels"]

MASKABLE = (nn.Conv2d, nn.Linear)


def maskable_layers(
    model: nn.Module, *, linear: bool = True, exclude: Iterable[nn.Module] = ()
) -> list[tuple[str, nn.Module]]:
    """The layers of ``model`` whose output channels can be masked, in module order.

    Args:
        model: Any module (imported graphs included).
        linear: Also take ``nn.Linear`` layers (their output rows), not only ``nn.Conv2d``.
        exclude: Modules to leave out, typically the classifier head (masking its rows
            would mask classes, not neurons).
    """
    skip = {id(m) for m in exclude}
    kinds = MASKABLE if linear else (nn.Conv2d,)
    return [
        (name, m) for name, m in model.named_modules() if isinstance(m, kinds) and id(m) not in skip
    ]


def _channels(module: nn.Module) -> int:
    return int(module.out_channels if isinstance(module, nn.Conv2d) else module.out_features)


@dataclass
class MaskedLayer:
    """One masked layer.

    Attributes:
        name: Qualified module name.
        module: The ``nn.Conv2d`` or ``nn.Linear``.
        mask: Trainable [channels] multipliers (start at 1).
        weight_noise: [channels] added to the mask (None until noise is enabled).
        bias_noise: [channels] bias perturbation (None until noise is enabled).
    """

    name: str
    module: nn.Module
    mask: nn.Parameter
    weight_noise: nn.Parameter | None = None
    bias_noise: nn.Parameter | None = None
    handle: torch.utils.hooks.RemovableHandle | None = field(default=None, repr=False)

    @property
    def channels(self) -> int:
        return int(self.mask.numel())


class ChannelMasks:
    """Multiplicative per-channel masks on ``layers``, applied with forward hooks.

    Use as a context manager (hooks removed on exit) or call :meth:`remove`. The masks are
    separate parameters: the model's own parameters are not touched, so an optimiser can
    train the masks alone.

    Args:
        layers: From :func:`maskable_layers`.
        mask_bias: Scale the bias with the mask too (the whole channel), or leave it.
        init: Initial mask value.
    """

    def __init__(
        self, layers: list[tuple[str, nn.Module]], *, mask_bias: bool = True, init: float = 1.0
    ):
        if not layers:
            raise UnsupportedModel("no Conv2d or Linear layer to mask in this model")
        self.mask_bias = mask_bias
        self.layers: list[MaskedLayer] = []
        for name, module in layers:
            ref = module.weight
            mask = nn.Parameter(
                torch.full((_channels(module),), float(init), dtype=ref.dtype, device=ref.device)
            )
            layer = MaskedLayer(name, module, mask)
            layer.handle = module.register_forward_hook(self._hook(layer))
            self.layers.append(layer)

    def _hook(self, layer: MaskedLayer):
        def apply(module: nn.Module, inputs, out: torch.Tensor) -> torch.Tensor:
            shape = (1, -1, 1, 1) if isinstance(module, nn.Conv2d) else (-1,)
            scale = layer.mask if layer.weight_noise is None else layer.mask + layer.weight_noise
            bias = module.bias
            if bias is None or (self.mask_bias and layer.bias_noise is None):
                return out * scale.view(shape)
            if self.mask_bias:
                bias_scale = scale
            elif layer.bias_noise is None:
                bias_scale = torch.ones_like(scale)
            else:
                bias_scale = 1 + layer.bias_noise
            b = bias.view(shape)
            return (out - b) * scale.view(shape) + b * bias_scale.view(shape)

        return apply

    def __enter__(self) -> ChannelMasks:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __iter__(self) -> Iterator[MaskedLayer]:
        return iter(self.layers)

    def parameters(self) -> list[nn.Parameter]:
        """The mask parameters, one per layer."""
        return [layer.mask for layer in self.layers]

    def noise_parameters(self) -> list[nn.Parameter]:
        """The noise parameters (empty until :meth:`enable_noise`)."""
        out = []
        for layer in self.layers:
            out += [p for p in (layer.weight_noise, layer.bias_noise) if p is not None]
        return out

    def enable_noise(self) -> list[nn.Parameter]:
        """Create zero noise terms on every layer (ANP's perturbation); returns them."""
        for layer in self.layers:
            if layer.weight_noise is None:
                layer.weight_noise = nn.Parameter(torch.zeros_like(layer.mask))
                layer.bias_noise = nn.Parameter(torch.zeros_like(layer.mask))
        return self.noise_parameters()

    def disable_noise(self) -> None:
        """Drop the noise terms: the masks alone apply again."""
        for layer in self.layers:
            layer.weight_noise = layer.bias_noise = None

    @torch.no_grad()
    def clamp_(self, lower: float = 0.0, upper: float = 1.0) -> None:
        """Clip every mask into [lower, upper] in place."""
        for p in self.parameters():
            p.clamp_(lower, upper)

    @torch.no_grad()
    def set_(self, values: float | dict[str, torch.Tensor]) -> None:
        """Set every mask to a constant, or the named layers' masks to given tensors."""
        for layer in self.layers:
            if isinstance(values, dict):
                if layer.name in values:
                    layer.mask.copy_(torch.as_tensor(values[layer.name]).to(layer.mask))
            else:
                layer.mask.fill_(float(values))

    def values(self) -> list[tuple[str, int, float]]:
        """Every channel as (layer name, channel index, mask value), in layer order."""
        out = []
        for layer in self.layers:
            for k, v in enumerate(layer.mask.detach().cpu().tolist()):
                out.append((layer.name, k, float(v)))
        return out

    def remove(self) -> None:
        """Remove the hooks; the model computes exactly as before the masks were attached."""
        for layer in self.layers:
            if layer.handle is not None:
                layer.handle.remove()
                layer.handle = None


@torch.no_grad()
def zero_channels(module: nn.Module, index: Iterable[int], *, bias: bool = True) -> int:
    """Prune output channels of a Conv2d/Linear in place: zero their weights (and bias).

    With ``bias`` the channel then outputs exactly 0 (before any following activation);
    without, it outputs its bias, a constant. The layer's shape, and so the exported graph,
    is unchanged. Returns how many channels were zeroed.
    """
    index = sorted({int(k) for k in index})
    if not index:
        return 0
    rows = torch.tensor(index, dtype=torch.long, device=module.weight.device)
    module.weight.index_fill_(0, rows, 0.0)
    if bias and module.bias is not None:
        module.bias.index_fill_(0, rows, 0.0)
    return len(index)
