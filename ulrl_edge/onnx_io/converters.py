"""onnx2torch converters for op versions it lacks, added only where the mapping is exact.

onnx2torch picks a converter by the op's ``since_version`` under the model's opset, so a
model at opset 18 or 22 fails on ops that merely gained data types (bfloat16, float8) or
moved an attribute to an input. :func:`register_extra_converters` adds:

* type-only newer versions, aliased to the newest converter onnx2torch has (e.g. Conv-22 →
  Conv-11, Reshape-19/21 → Reshape-14), with a guard where the new version also added an
  option (AveragePool-19 ``dilations``, Pad-18 ``axes``, Pad-19 ``wrap``);
* the ``Reduce*``-18 family (``axes`` became an input): constant axes only.

Registration is idempotent and never replaces a converter onnx2torch already has.
"""

from __future__ import annotations

from collections.abc import Callable

from ulrl_edge.onnx_io.onnx2torch_loader import import_onnx2torch

_TYPE_ONLY: dict[str, tuple[int, tuple[int, ...]]] = {
    # op: (version onnx2torch has, newer versions that changed only type constraints)
    "Acos": (7, (22,)),
    "Asin": (7, (22,)),
    "Atan": (7, (22,)),
    "Cos": (7, (22,)),
    "Sin": (7, (22,)),
    "Tan": (7, (22,)),
    "Cast": (13, (19, 21, 23, 24, 25)),
    "Constant": (13, (19, 21, 23, 24, 25)),
    "ConstantOfShape": (9, (20, 21, 23, 24, 25)),
    "Conv": (11, (22,)),
    "ConvTranspose": (11, (22,)),
    "Dropout": (13, (22,)),
    "Elu": (6, (22,)),
    "Equal": (13, (19,)),
    "Flatten": (13, (21, 23, 24, 25)),
    "GlobalAveragePool": (1, (22,)),
    "GreaterOrEqual": (12, (16,)),
    "HardSigmoid": (6, (22,)),
    "HardSwish": (14, (22,)),
    "Identity": (16, (19, 21, 23, 24, 25)),
    "InstanceNormalization": (6, (22,)),
    "IsInf": (10, (20,)),
    "IsNaN": (13, (20,)),
    "LessOrEqual": (12, (16,)),
    "MaxPool": (12, (22,)),
    "Reshape": (14, (19, 21, 23, 24, 25)),
    "Round": (11, (22,)),
    "Selu": (6, (22,)),
    "Shape": (15, (19, 21, 23, 24, 25)),
    "Softplus": (1, (22,)),
    "Softsign": (1, (22,)),
    "Squeeze": (21, (23, 24, 25)),
    "Transpose": (13, (21, 23, 24, 25)),
    "Unsqueeze": (13, (21, 23, 24, 25)),
}

_REDUCE_18 = (
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
)

_registered = False


def _avgpool_guard(node) -> str | None:
    dilations = node.attributes.get("dilations")
    if dilations and any(int(d) != 1 for d in dilations):
        return "AveragePool with dilations is not supported"
    return None


def _pad_guard(node) -> str | None:
    if len(node.input_values) > 3 and node.input_values[3]:
        return "Pad with an axes input (opset 18) is not supported"
    if node.attributes.get("mode", "constant") == "wrap":
        return "Pad mode 'wrap' is not supported"
    return None


def _guarded_aliases() -> dict[str, tuple[int, tuple[int, ...], Callable]]:
    return {
        "AveragePool": (11, (19, 22), _avgpool_guard),
        "Pad": (13, (18, 19, 21, 23, 24, 25), _pad_guard),
    }


def register_extra_converters() -> None:
    """Add the converters described in the module docstring (safe to call repeatedly)."""
    global _registered
    if _registered:
        return
    import_onnx2torch()  # the first import of onnx2torch in any run
    from onnx2torch.node_converters.registry import (
        _CONVERTER_REGISTRY,
        OperationDescription,
        add_converter,
    )

    def missing(op: str, version: int) -> bool:
        return OperationDescription("", op, version) not in _CONVERTER_REGISTRY

    def alias(op: str, base: int, guard: Callable | None) -> Callable:
        target = _CONVERTER_REGISTRY.get(OperationDescription("", op, base))

        def convert(node, graph):
            reason = guard(node) if guard else None
            if reason:
                raise NotImplementedError(reason)
            return target(node, graph)

        return convert

    for op, (base, newer) in _TYPE_ONLY.items():
        for version in newer:
            if missing(op, version) and not missing(op, base):
                add_converter(operation_type=op, version=version)(alias(op, base, None))
    for op, (base, newer, guard) in _guarded_aliases().items():
        for version in newer:
            if missing(op, version) and not missing(op, base):
                add_converter(operation_type=op, version=version)(alias(op, base, guard))
    for op in _REDUCE_18:
        if missing(op, 18):
            add_converter(operation_type=op, version=18)(_reduce_18)
    if missing("ReduceMax", 20):
        add_converter(operation_type="ReduceMax", version=20)(_reduce_18)
    if missing("ReduceMin", 20):
        add_converter(operation_type="ReduceMin", version=20)(_reduce_18)
    _registered = True


def _reduce_18(node, graph):
    """Reduce-18: ``axes`` is an optional input; supported when it is a constant."""
    from onnx2torch.node_converters.identity import OnnxCopyIdentity
    from onnx2torch.node_converters.reduce import OnnxReduceStaticAxes
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult, get_const_value

    keepdims = node.attributes.get("keepdims", 1)
    noop = node.attributes.get("noop_with_empty_axes", 0)
    axes: list[int] | None = None
    if len(node.input_values) > 1 and node.input_values[1]:
        try:
            axes = [int(a) for a in get_const_value(node.input_values[1], graph).reshape(-1)]
        except KeyError:
            raise NotImplementedError(
                f"{node.operation_type}-18 with computed (non-constant) axes is not supported"
            ) from None
    mapping = OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values)
    if not axes and noop:
        return OperationConverterResult(torch_module=OnnxCopyIdentity(), onnx_mapping=mapping)
    module = OnnxReduceStaticAxes(
        operation_type=node.operation_type, axes=axes or None, keepdims=keepdims
    )
    return OperationConverterResult(torch_module=module, onnx_mapping=mapping)
