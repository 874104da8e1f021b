"""Per-neuron multiplicative masks and perturbations on conv channels and linear rows.

ANP (Wu & Wang, NeurIPS 2021) scales every BatchNorm neuron by ``mask + noise``. Graphs
imported from ONNX usually have BatchNorm folded into the convolutions, so here the neuron
is an output channel of a ``Conv1d/2d/3d`` or an output row of a hidden ``Linear``: a
forward hook rewrites that layer's output ``y_k = (W x)_k + b_k`` as

    y_k' = c_k · (W x)_k + b_k · d_k,   c = mask (+ weight noise),  d = 1 (+ bias noise),

which is exactly the layer with row k of W scaled by c_k and b_k by d_k (the BatchNorm
version scales γ_k and β_k the same way). Hooks leave the graph and its parameters alone;
:meth:`NeuronPerturbation.remove` detaches them.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ulrl_edge.errors import UnsupportedModel

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def maskable_layers(
    model: nn.Module, exclude: Iterable[torch.Tensor] = ()
) -> list[tuple[str, nn.Module]]:
    """Conv and Linear modules of ``model`` in module order, except those owning ``exclude``
    (e.g. the classifier head's weight: its rows are classes, not hidden neurons)."""
    skip = {id(t) for t in exclude}
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, _LAYERS) and id(m.weight) not in skip
    ]


class NeuronPerturbation:
    """Trainable per-neuron mask and adversarial noise, attached to a model by hooks.

    Args:
        model: The model to perturb (hooks are added to it; its parameters are untouched).
        exclude: Weights whose layers get no mask (the classifier head).

    Raises:
        UnsupportedModel: When the model has no conv or hidden linear layer.
    """

    def __init__(self, model: nn.Module, exclude: Iterable[torch.Tensor] = ()):
        self.layers = maskable_layers(model, exclude)
        if not self.layers:
            raise UnsupportedModel("no Conv or hidden Linear layer to mask neurons in")
        device = next(model.parameters()).device
        sizes = [m.weight.shape[0] for _, m in self.layers]
        self.masks = [nn.Parameter(torch.ones(n, device=device)) for n in sizes]
        self.noise = [nn.Parameter(torch.zeros(n, device=device)) for n in sizes]
        self.noise_bias = [nn.Parameter(torch.zeros(n, device=device)) for n in sizes]
        self.perturbed = False
        self._handles = [
            m.register_forward_hook(self._hook(i, m)) for i, (_, m) in enumerate(self.layers)
        ]

    def _hook(self, i: int, module: nn.Module):
        def hook(_module: nn.Module, _inputs, out: torch.Tensor) -> torch.Tensor:
            scale = self.masks[i] + self.noise[i] if self.perturbed else self.masks[i]
            # channel axis: 1 for convolutions (N×C×...), last for linear layers
            shape = [1] * out.dim()
            axis = 1 if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d) else out.dim() - 1
            shape[axis] = -1
            bias = module.bias
            if bias is None:
                return out * scale.view(shape)
            b = bias.view(shape)
            shift = b * (1.0 + self.noise_bias[i].view(shape)) if self.perturbed else b
            return (out - b) * scale.view(shape) + shift

        return hook

    def mask_parameters(self) -> list[nn.Parameter]:
        return list(self.masks)

    def noise_parameters(self) -> list[nn.Parameter]:
        return self.noise + self.noise_bias

    @torch.no_grad()
    def reset_noise(self, eps: float, generator: torch.Generator | None = None) -> None:
        """Draw fresh noise uniformly in [-eps, eps] (0 for eps = 0)."""
        for p in self.noise_parameters():
            u = torch.rand(p.shape, generator=generator).to(p.device)
            p.copy_((2 * u - 1) * eps)

    @torch.no_grad()
    def clip_masks(self, lower: float = 0.0, upper: float = 1.0) -> None:
        for p in self.masks:
            p.clamp_(lower, upper)

    def mask_values(self) -> list[dict]:
        """Every neuron's mask: ``{"layer", "index", "value"}``, in layer then index order."""
        return [
            {"layer": name, "index": k, "value": float(v)}
            for (name, _), mask in zip(self.layers, self.masks, strict=True)
            for k, v in enumerate(mask.detach().cpu().tolist())
        ]

    def remove(self) -> None:
        """Detach the hooks; the model computes as before they were added."""
        for h in self._handles:
            h.remove()
        self._handles = []


@torch.no_grad()
def zero_neurons(model: nn.Module, neurons: Iterable[tuple[str, int]]) -> int:
    """Zero the weight row of each ``(layer name, output index)`` in place (the bias stays,
    as pruning a BatchNorm γ leaves β): the graph, shapes and IO contract are unchanged.

    Returns:
        How many neurons were zeroed.
    """
    modules = dict(model.named_modules())
    count = 0
    for name, k in neurons:
        modules[name].weight[k] = 0.0
        count += 1
    return count
