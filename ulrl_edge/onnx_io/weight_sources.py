"""Which ONNX initializer each weight of an imported model came from, and in what layout.

onnx2torch copies the weights of Conv, Gemm, BatchNorm, LayerNorm, … into torch modules
(sometimes transposed: a Gemm with ``transB=0`` becomes an ``nn.Linear``), and keeps the other
initializers as buffers. Knowing, for every tensor of the model, the initializer it was copied
from lets the exporter write trained weights straight back into the source graph
(:mod:`.write_back`) instead of re-tracing the model.

The map is built by value, not by trusting a converter's internals: a module's float
tensors, in ``state_dict`` order, are matched to its node's initializer inputs, in input
order (the two orders agree for every weighted op: ``weight, bias`` ↔ ``W, B``;
``weight, bias, running_mean, running_var`` ↔ ``scale, B, mean, var``), and a pair counts
only if the values are equal as they are, transposed, or reshaped. A tensor left unmatched
simply stays out of the map; the exporter's parity check catches a model that changed one.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from torch import fx

SAME = "same"
TRANSPOSE = "transpose"
RESHAPE = "reshape"


def map_weight_sources(
    gm: fx.GraphModule, prepared: onnx.ModelProto, buffer_sources: dict[str, str]
) -> dict[str, tuple[str, str]]:
    """Qualified ``state_dict`` key → (initializer name, layout) for every matched tensor.

    Args:
        gm: The freshly imported model (weights still equal to the file's).
        prepared: The graph it was imported from (after :mod:`.graph_fixes`).
        buffer_sources: Initializer buffers kept by onnx2torch → their initializer names.
    """
    from onnx2torch.onnx_graph import OnnxGraph

    initializers = {t.name: t for t in prepared.graph.initializer}
    arrays: dict[str, np.ndarray] = {}

    def array(name: str) -> np.ndarray:
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(initializers[name])
        return arrays[name]

    state = gm.state_dict(keep_vars=True)
    found: dict[str, tuple[str, str]] = {}
    for key, name in buffer_sources.items():
        tensor = state.get(key)
        if tensor is not None and name in initializers:
            layout = match_layout(tensor.detach().cpu().numpy(), array(name))
            if layout is not None:
                found[key] = (name, layout)
    nodes = OnnxGraph(prepared.graph).nodes
    for node in gm.graph.nodes:
        if node.op != "call_module" or node.target not in nodes:
            continue
        own = gm.get_submodule(node.target).state_dict(keep_vars=True)
        tensors = [(k, v) for k, v in own.items() if v.is_floating_point()]
        candidates = [n for n in nodes[node.target].input_values if n in initializers]
        used: set[str] = set()
        for key, tensor in tensors:
            value = tensor.detach().cpu().numpy()
            for name in candidates:
                if name in used:
                    continue
                layout = match_layout(value, array(name))
                if layout is not None:
                    found[f"{node.target}.{key}"] = (name, layout)
                    used.add(name)
                    break
    return found


def match_layout(tensor: np.ndarray, initializer: np.ndarray) -> str | None:
    """How ``tensor`` holds ``initializer``'s values: SAME, TRANSPOSE, RESHAPE or None."""
    if tensor.size != initializer.size or initializer.dtype.kind != "f":
        return None
    stored = initializer.astype(tensor.dtype, copy=False)
    if tensor.shape == stored.shape and np.array_equal(tensor, stored):
        return SAME
    if tensor.ndim == 2 and tensor.T.shape == stored.shape and np.array_equal(tensor.T, stored):
        return TRANSPOSE
    if np.array_equal(tensor.reshape(-1), stored.reshape(-1)):
        return RESHAPE
    return None


def to_initializer_layout(value: np.ndarray, layout: str, like: np.ndarray) -> np.ndarray:
    """``value`` (a trained torch tensor) in the shape and dtype of the initializer ``like``."""
    if layout == TRANSPOSE:
        value = value.T
    return np.ascontiguousarray(value.reshape(like.shape).astype(like.dtype, copy=False))
