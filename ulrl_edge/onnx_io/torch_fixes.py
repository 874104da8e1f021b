"""Swap onnx2torch modules whose export would freeze a dynamic size into a constant.

The TorchScript exporter traces Python: a module that reads ``x.shape`` into a Python
``torch.Size`` and reshapes back to it bakes the probe batch into the exported graph.
Each replacement computes exactly the same values, but in a form the tracer keeps symbolic.
"""

from __future__ import annotations

import torch
from torch import fx, nn


class SoftmaxV11(nn.Module):
    """ONNX Softmax/LogSoftmax before opset 13: normalise over the flattened axes ≥ axis.

    Args:
        axis: First axis of the block that is normalised.
        is_log: LogSoftmax instead of Softmax.
    """

    def __init__(self, axis: int = 1, is_log: bool = False):
        super().__init__()
        self.axis = axis
        self.is_log = is_log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.axis if self.axis >= 0 else self.axis + x.dim()
        fn = torch.log_softmax if self.is_log else torch.softmax
        if axis == x.dim() - 1:  # the usual [N, K] case: the same as opset 13
            return fn(x, -1)
        return fn(torch.flatten(x, start_dim=axis), -1).reshape_as(x)


def replace_trace_unfriendly_modules(gm: fx.GraphModule) -> list[str]:
    """Replace, in place, modules known to bake shapes on export.

    Returns:
        Qualified names of the replaced modules.
    """
    replaced: list[str] = []
    for name, module in list(gm.named_modules()):
        if type(module).__name__ == "OnnxSoftmaxV1V11":
            fresh = SoftmaxV11(axis=int(module.axis), is_log=bool(module.is_log))
            parent_name, _, leaf = name.rpartition(".")
            parent = gm.get_submodule(parent_name) if parent_name else gm
            setattr(parent, leaf, fresh)
            replaced.append(name)
    return replaced
