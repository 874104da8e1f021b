"""Exact rewrites of a graph copy so that onnx2torch can import it.

Each fix keeps the model's function unchanged on every input the original accepts:

* ``Constant`` nodes become initializers (Paddle and some TF exports store all weights that
  way; onnx2torch's Conv/Gemm converters only look at initializers and fail with a KeyError).
* ``Reshape(allowzero=1)`` with a constant shape that has no zero is the same as
  ``allowzero=0``, which onnx2torch supports.
* A ``Reshape`` to a constant shape that freezes the batch at 1 (``[1, K]`` after a pooled
  feature map or a Softmax, as Paddle writes it) gets ``0`` (copy the input's size) at axis 0,
  so the imported model and the exported file keep a dynamic batch. Only done when the
  graph input's batch is dynamic and shape inference shows that axis 0 *is* the batch.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

_BATCH_SYMBOL = "__ulrl_batch"


def prepare_for_import(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` rewritten for onnx2torch, and one note per change made.

    Args:
        model: The model as loaded (never modified).

    Returns:
        (the prepared copy, human-readable notes such as ``"moved 12 Constant nodes …"``).
    """
    prepared = onnx.ModelProto()
    prepared.CopyFrom(model)
    notes: list[str] = []
    moved = constants_to_initializers(prepared.graph)
    if moved:
        notes.append(f"moved {moved} Constant nodes to initializers")
    dropped = drop_redundant_allowzero(prepared.graph)
    if dropped:
        notes.append(f"Reshape allowzero=1 with a constant shape rewritten ({dropped} nodes)")
    unfrozen = unfreeze_batch_reshapes(prepared)
    if unfrozen:
        notes.append(f"Reshape to a batch-1 constant shape made batch-dynamic ({unfrozen} nodes)")
    return prepared, notes


def constants_to_initializers(graph: onnx.GraphProto) -> int:
    """Replace every top-level ``Constant`` node by an initializer of the same name.

    Returns:
        How many nodes were moved.
    """
    keep: list[onnx.NodeProto] = []
    moved: list[onnx.TensorProto] = []
    for node in graph.node:
        tensor = _constant_tensor(node) if node.op_type == "Constant" and not node.domain else None
        if tensor is None:
            keep.append(node)
            continue
        tensor.name = node.output[0]
        moved.append(tensor)
    if not moved:
        return 0
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(moved)
    return len(moved)


def _constant_tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The value of a Constant node as a tensor, or None for strings and sparse values."""
    if len(node.attribute) != 1:
        return None
    attr = node.attribute[0]
    if attr.name == "value":
        tensor = onnx.TensorProto()
        tensor.CopyFrom(attr.t)
        return tensor
    arrays = {
        "value_float": lambda a: np.array(a.f, dtype=np.float32),
        "value_floats": lambda a: np.array(list(a.floats), dtype=np.float32),
        "value_int": lambda a: np.array(a.i, dtype=np.int64),
        "value_ints": lambda a: np.array(list(a.ints), dtype=np.int64),
    }
    if attr.name not in arrays:
        return None
    return numpy_helper.from_array(arrays[attr.name](attr))


def _initializer_map(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in graph.initializer}


def _set_attr_int(node: onnx.NodeProto, name: str, value: int) -> None:
    for attr in node.attribute:
        if attr.name == name:
            attr.i = value
            return
    node.attribute.append(helper.make_attribute(name, value))


def _attr_int(node: onnx.NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def drop_redundant_allowzero(graph: onnx.GraphProto) -> int:
    """Set ``allowzero=0`` where the constant shape has no zero (exactly equivalent)."""
    inits = _initializer_map(graph)
    count = 0
    for node in graph.node:
        if node.op_type != "Reshape" or _attr_int(node, "allowzero", 0) != 1:
            continue
        shape = inits.get(node.input[1]) if len(node.input) > 1 else None
        if shape is not None and 0 not in numpy_helper.to_array(shape).tolist():
            _set_attr_int(node, "allowzero", 0)
            count += 1
    return count


def _batch_symbol(model: onnx.ModelProto) -> str | None:
    """The symbolic name of the first input's axis 0, or None when it is static."""
    inits = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        if not dims:
            return None
        first = dims[0]
        if first.HasField("dim_value") and first.dim_value > 0:
            return None
        return first.dim_param or _BATCH_SYMBOL
    return None


def unfreeze_batch_reshapes(model: onnx.ModelProto) -> int:
    """Rewrite constant ``Reshape`` shapes ``[1, …]`` whose input's axis 0 is the batch.

    Args:
        model: Modified in place (its Reshape shape initializers).

    Returns:
        How many Reshape nodes were rewritten.
    """
    symbol = _batch_symbol(model)
    if symbol is None:
        return 0
    inits = _initializer_map(model.graph)
    candidates = [
        node
        for node in model.graph.node
        if node.op_type == "Reshape"
        and len(node.input) > 1
        and node.input[1] in inits
        and _attr_int(node, "allowzero", 0) == 0
        and numpy_helper.to_array(inits[node.input[1]]).reshape(-1)[:1].tolist() == [1]
    ]
    if not candidates:
        return 0
    batch_of = _axis0_symbols(model, symbol)
    count = 0
    for node in candidates:
        if batch_of.get(node.input[0]) != symbol:
            continue
        shape = numpy_helper.to_array(inits[node.input[1]]).copy()
        shape.reshape(-1)[0] = 0  # 0 copies the input's size: the batch
        fresh = numpy_helper.from_array(shape, name=f"{node.input[1]}__batch_dynamic")
        if fresh.name not in inits:
            model.graph.initializer.append(fresh)
            inits[fresh.name] = fresh
        node.input[1] = fresh.name
        count += 1
    return count


def _axis0_symbols(model: onnx.ModelProto, symbol: str) -> dict[str, str]:
    """Symbolic axis-0 name of every value, by shape inference on a scratch copy."""
    scratch = onnx.ModelProto()
    scratch.CopyFrom(model)
    inits = {t.name for t in scratch.graph.initializer}
    for value in scratch.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        if dims and not (dims[0].HasField("dim_value") and dims[0].dim_value > 0):
            dims[0].dim_param = dims[0].dim_param or _BATCH_SYMBOL
        break
    del scratch.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(scratch, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
        return {}
    result: dict[str, str] = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            result[value.name] = dims[0].dim_param
    return result
