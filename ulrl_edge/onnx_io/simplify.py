"""Small, exact clean-ups of an exported graph so it is no larger than the original.

The TorchScript exporter already folds constants and BatchNorm (eval mode). What it leaves,
and these passes remove: Identity nodes (onnx2torch copies every ONNX Identity), Casts to the
type the value already has (tf2onnx/onnx2pytorch chains), nodes whose results nobody reads,
initializers stored twice with identical bytes, unused initializers and stale
``value_info`` entries.
"""

from __future__ import annotations

import hashlib

import onnx
from onnx import numpy_helper


def simplify(model: onnx.ModelProto) -> dict[str, int]:
    """Run every pass on ``model`` in place, until nothing changes.

    Returns:
        How many nodes / initializers each pass removed, for reports and tests.
    """
    counts = {
        "noop_casts": remove_noop_casts(model),
        "identity": 0,
        "dead_nodes": 0,
        "duplicate_initializers": 0,
        "unused_initializers": 0,
    }
    while True:
        step = {
            "identity": remove_identities(model.graph),
            "duplicate_initializers": dedupe_initializers(model.graph),
            "dead_nodes": remove_dead_nodes(model.graph),
        }
        step["unused_initializers"] = remove_unused_initializers(model.graph)
        for key, value in step.items():
            counts[key] += value
        if not any(step.values()):
            break
    prune_value_info(model.graph)
    return counts


def _rename_uses(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def remove_identities(graph: onnx.GraphProto) -> int:
    """Bypass Identity nodes; one that feeds a graph output renames its producer instead."""
    outputs = {v.name for v in graph.output}
    inputs = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    removed = 0
    for node in list(graph.node):
        if node.op_type != "Identity" or node.domain not in ("", "ai.onnx"):
            continue
        src, dst = node.input[0], node.output[0]
        if dst not in outputs:
            graph.node.remove(node)
            _rename_uses(graph, dst, src)
            removed += 1
            continue
        producer = next((n for n in graph.node if src in n.output), None)
        readers = [n for n in graph.node if src in n.input and n is not node]
        if producer is None or src in outputs or src in inputs or readers:
            continue  # renaming would change what other nodes or outputs see
        producer.output[list(producer.output).index(src)] = dst
        graph.node.remove(node)
        removed += 1
    return removed


def remove_noop_casts(model: onnx.ModelProto) -> int:
    """Turn ``Cast`` nodes whose input already has the target type into Identity nodes.

    The Identity pass then removes them. Types come from shape inference; a Cast whose input
    type is unknown is kept.
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except (onnx.shape_inference.InferenceError, RuntimeError, ValueError):
        return 0
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in list(inferred.graph.value_info) + list(inferred.graph.input)
    }
    types.update({t.name: t.data_type for t in model.graph.initializer})
    count = 0
    for node in model.graph.node:
        if node.op_type != "Cast" or node.domain not in ("", "ai.onnx"):
            continue
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if to is not None and types.get(node.input[0]) == to:
            node.op_type = "Identity"
            del node.attribute[:]
            count += 1
    return count


def remove_dead_nodes(graph: onnx.GraphProto) -> int:
    """Drop nodes none of whose outputs is read by another node or the graph."""
    removed = 0
    while True:
        needed = {v.name for v in graph.output}
        for node in graph.node:
            needed.update(node.input)
        dead = [n for n in graph.node if not any(o and o in needed for o in n.output)]
        if not dead:
            return removed
        for node in dead:
            graph.node.remove(node)
        removed += len(dead)


def _tensor_key(tensor: onnx.TensorProto) -> tuple:
    data = numpy_helper.to_array(tensor).tobytes()
    return (tensor.data_type, tuple(tensor.dims), hashlib.sha256(data).hexdigest())


def dedupe_initializers(graph: onnx.GraphProto) -> int:
    """Keep one copy of initializers whose type, shape and bytes are identical."""
    inputs = {v.name for v in graph.input}
    seen: dict[tuple, str] = {}
    removed = 0
    for tensor in list(graph.initializer):
        if tensor.name in inputs:
            continue  # overridable initializer: must keep its own name
        key = _tensor_key(tensor)
        keep = seen.setdefault(key, tensor.name)
        if keep == tensor.name:
            continue
        _rename_uses(graph, tensor.name, keep)
        for value in graph.output:
            if value.name == tensor.name:
                break
        else:
            graph.initializer.remove(tensor)
            removed += 1
    return removed


def remove_unused_initializers(graph: onnx.GraphProto) -> int:
    used = {v.name for v in graph.output}
    for node in graph.node:
        used.update(node.input)
    unused = [t for t in graph.initializer if t.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return len(unused)


def prune_value_info(graph: onnx.GraphProto) -> None:
    live = set()
    for node in graph.node:
        live.update(node.output)
    stale = [v for v in graph.value_info if v.name not in live]
    for value in stale:
        graph.value_info.remove(value)
