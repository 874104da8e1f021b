"""What ``ulrl-edge inspect`` reports about a model: IO, ops, head, convertibility, parity.

:func:`inspect_model` raises only for files that are not usable ONNX (BadInput). A model
that does not convert, has no recognisable head or fails the round trip is *reported*:
the reason goes into the result, so one command answers "can this tool handle my model?".
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from ulrl_edge.config import DEFAULT_LIMITS, FP32_PARITY, Limits
from ulrl_edge.errors import UlrlEdgeError
from ulrl_edge.onnx_io.load import LoadedModel, load_model
from ulrl_edge.onnx_io.shapes import guess_layout


def inspect_model(
    path: str | Path,
    *,
    size: tuple[int, int] | None = None,
    parity: bool = True,
    limits: Limits = DEFAULT_LIMITS,
) -> dict:
    """Describe a model and try the import → export round trip in memory.

    Args:
        path: The .onnx file.
        size: (H, W) for inputs with dynamic spatial axes (needed for the parity probes).
        parity: Also compare torch and the re-exported graph with the original.
        limits: Size limits for loading.

    Returns:
        A JSON-ready dict: ``path, sha256, size_bytes, producer, opset, ir_version, inputs,
        outputs, metadata, node_count, op_histogram, parameter_count, warnings, converts,
        convert_error, import_notes, head, head_error, parity, parity_error``.
        ``parity`` holds ``torch`` and ``onnx`` entries (max abs diff, top-1 agreement,
        passed, batch).

    Raises:
        BadInput: The file is not a usable ONNX model.
    """
    loaded = load_model(path, limits)
    result = describe(loaded)
    result.update(
        converts=False,
        convert_error=None,
        import_notes=[],
        head=None,
        head_error=None,
        parity=None,
        parity_error=None,
    )
    from ulrl_edge.head import find_head
    from ulrl_edge.onnx_io.to_torch import META_KEY, import_model

    try:
        model = import_model(loaded)
    except UlrlEdgeError as err:
        result["convert_error"] = err.message
        return result
    result["converts"] = True
    result["import_notes"] = list(model.meta[META_KEY]["notes"])
    result["trainable_parameters"] = int(sum(p.numel() for p in model.parameters()))
    try:
        result["head"] = find_head(model).describe()
    except UlrlEdgeError as err:
        result["head_error"] = err.message
    if parity:
        _round_trip_parity(loaded, model, size, result)
    return result


def describe(loaded: LoadedModel) -> dict:
    """The static part of the report: file, IO with layout guess, ops, parameter count."""
    proto = loaded.proto
    histogram = Counter(node.op_type for node in proto.graph.node)
    return {
        "path": str(loaded.path),
        "sha256": loaded.sha256,
        "size_bytes": loaded.path.stat().st_size,
        "producer": loaded.producer,
        "opset": loaded.opset,
        "ir_version": int(proto.ir_version),
        "inputs": [dict(t.to_dict(), layout=guess_layout(t)) for t in loaded.inputs],
        "outputs": [t.to_dict() for t in loaded.outputs],
        "metadata": dict(loaded.metadata),
        "node_count": len(proto.graph.node),
        "op_histogram": dict(sorted(histogram.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameter_count": parameter_count(proto),
        "warnings": list(loaded.warnings),
    }


def parameter_count(proto: onnx.ModelProto) -> int:
    """Elements of float initializers and float Constant tensors with more than one element."""
    floats = {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.DOUBLE,
        onnx.TensorProto.BFLOAT16,
    }
    tensors = list(proto.graph.initializer)
    for node in proto.graph.node:
        if node.op_type == "Constant":
            tensors.extend(a.t for a in node.attribute if a.HasField("t"))
    total = 0
    for tensor in tensors:
        elements = 1
        for dim in tensor.dims:
            elements *= int(dim)
        if tensor.data_type in floats and elements > 1:
            total += elements
    return total


def _round_trip_parity(loaded: LoadedModel, model, size, result: dict) -> None:
    """Fill ``parity`` (torch and re-exported graph vs original) or ``parity_error``; an
    export failure also means the model does not convert."""
    from ulrl_edge.onnx_io.parity import check_parity
    from ulrl_edge.onnx_io.to_onnx import to_onnx_proto

    try:
        torch_report = check_parity(loaded, model, tolerance=FP32_PARITY, size=size)
    except UlrlEdgeError as err:
        result["parity_error"] = err.message
        return
    try:
        exported = to_onnx_proto(model, loaded, size=size)
    except UlrlEdgeError as err:
        result["converts"] = False
        result["convert_error"] = f"imports, but does not export back to ONNX: {err.message}"
        return
    onnx_report = check_parity(loaded, exported, tolerance=FP32_PARITY, size=size)
    result["parity"] = {"torch": _brief(torch_report), "onnx": _brief(onnx_report)}


def _brief(report) -> dict:
    return {
        "passed": report.passed,
        "batch": report.batch,
        "max_abs_diff": report.max_abs_diff,
        "top1_agreement": report.top1_agreement,
        "summary": report.summary(),
        "notes": list(report.notes),
    }
