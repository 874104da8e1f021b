"""Fold an inference ``BatchNormalization`` into the ``Conv`` that feeds it, in an ONNX graph.

The re-trace exporter gets this from torch (eval mode folds BN); a graph whose weights were
written back (:mod:`.write_back`) keeps the vendor's BatchNorm nodes, so this pass gives it the
same saving. With ``s = scale / sqrt(var + eps)``: ``W' = W * s`` per output channel and
``b' = (b - mean) * s + B``. Only folded where nothing else reads the Conv's output or its
weights, so the graph computes the same function (up to float rounding).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

_DEFAULT_EPSILON = 1e-5


def fold_batchnorm(graph: onnx.GraphProto) -> int:
    """Fold every foldable Conv → BatchNormalization pair in place; returns how many."""
    inits = {t.name: t for t in graph.initializer}
    overridable = {v.name for v in graph.input}
    outputs = {v.name for v in graph.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    producers = {o: n for n in graph.node for o in n.output}
    folded = 0
    for bn in list(graph.node):
        if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
            continue
        conv = producers.get(bn.input[0])
        params = _constants(bn.input[1:5], inits, overridable)
        if (
            conv is None or conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx")
            or len(bn.output) != 1 or _attr(bn, "training_mode", 0)
            or readers.get(conv.output[0]) != 1 or conv.output[0] in outputs
            or params is None
        ):  # fmt: skip
            continue
        weights = _constants(conv.input[1:3], inits, overridable)
        if weights is None or any(readers.get(n) != 1 for n in conv.input[1:3] if n):
            continue
        scale, shift, mean, var = params
        w = weights[0]
        b = weights[1] if len(weights) > 1 else np.zeros(w.shape[0], dtype=w.dtype)
        if any(p.shape != (w.shape[0],) for p in (scale, shift, mean, var, b)):
            continue
        s = scale / np.sqrt(var + _attr(bn, "epsilon", _DEFAULT_EPSILON))
        w_new = (w * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
        b_new = ((b - mean) * s + shift).astype(w.dtype)
        inits[conv.input[1]].CopyFrom(numpy_helper.from_array(w_new, conv.input[1]))
        bias_name = conv.input[2] if len(conv.input) > 2 and conv.input[2] else None
        if bias_name is None:
            bias_name = _fresh_name(f"{conv.input[1]}_folded_bias", inits)
            tensor = graph.initializer.add()
            inits[bias_name] = tensor
            while len(conv.input) < 3:
                conv.input.append("")
            conv.input[2] = bias_name
        inits[bias_name].CopyFrom(numpy_helper.from_array(b_new, bias_name))
        conv.output[0] = bn.output[0]
        graph.node.remove(bn)
        folded += 1
    return folded


def _constants(names, inits, overridable) -> list[np.ndarray] | None:
    """The float initializer values of ``names``, or None if any is not a fixed constant."""
    values = []
    for name in names:
        if not name:
            continue
        if name not in inits or name in overridable:
            return None
        value = numpy_helper.to_array(inits[name])
        if value.dtype.kind != "f":
            return None
        values.append(value)
    return values


def _attr(node: onnx.NodeProto, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _fresh_name(base: str, taken: dict) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name
