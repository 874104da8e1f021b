"""Export by writing a model's trained weights back into the graph it was imported from.

This is the exporter's first choice: the output is the vendor's own graph (same ops, names,
opset, dynamic axes, no re-trace), with only initializer values changed. It sidesteps what
re-tracing gets wrong — the TorchScript exporter records some traced sizes as constants
(seen on ViT attention, where the batch size froze) — and keeps the file exactly as fast as
the original. It applies only when every tensor a defense changed maps to an initializer
(:mod:`.weight_sources`); the caller checks the result against the torch model and falls
back to re-tracing when it does not match (a defense that changed the graph's structure).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper
from torch import nn

from ulrl_edge.onnx_io.graph_fixes import prepare_for_import
from ulrl_edge.onnx_io.load import LoadedModel
from ulrl_edge.onnx_io.to_torch import META_KEY
from ulrl_edge.onnx_io.weight_sources import to_initializer_layout


def weight_map(model: nn.Module) -> dict[str, tuple[str, str]] | None:
    """The import-time weight map of ``model``, or None for a model not from import_model."""
    meta = getattr(model, "meta", None)
    info = meta.get(META_KEY) if isinstance(meta, dict) else None
    weights = info.get("weights") if isinstance(info, dict) else None
    return weights or None


def written_back(model: nn.Module, source: LoadedModel) -> onnx.ModelProto | None:
    """The source graph with ``model``'s current weights, or None if they cannot all go back.

    None when the model carries no weight map, a mapped tensor is missing from its
    ``state_dict`` or changed size (the defense rebuilt the model), or two tensors that came
    from one initializer now differ (a shared weight trained apart). The caller must still compare
    the result with ``model``: a changed tensor outside the map is only caught that way.
    """
    mapping = weight_map(model)
    if mapping is None:
        return None
    proto, _ = prepare_for_import(source.proto)  # the graph import_model converted
    initializers = {t.name: t for t in proto.graph.initializer}
    state = model.state_dict()
    new_values: dict[str, np.ndarray] = {}
    for key, (name, layout) in mapping.items():
        if key not in state or name not in initializers:
            return None
        like = numpy_helper.to_array(initializers[name])
        if state[key].numel() != like.size:
            return None
        value = to_initializer_layout(state[key].detach().cpu().numpy(), layout, like)
        if name in new_values and not np.array_equal(new_values[name], value):
            return None
        new_values[name] = value
    for name, value in new_values.items():
        initializers[name].CopyFrom(numpy_helper.from_array(value, name))
    return proto
