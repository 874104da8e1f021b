"""ONNX-style op names for the nodes of a torch.fx graph.

:func:`op_of` names what a node computes the way ONNX would (``Gemm``, ``MatMul``, ``Add``,
``Softmax``…), whether the graph came from onnx2torch (its ``meta["ulrl_edge"]["onnx_ops"]``
records the source op of each module) or from tracing a plain torch module. The head finder
walks graphs with these names.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.dropout import _DropoutNd


def module_op(module: nn.Module) -> str:
    """ONNX-style op name of a torch module (plain torch or onnx2torch)."""
    if isinstance(module, nn.Linear):
        return "Linear"
    if isinstance(module, _ConvNd) and not getattr(module, "transposed", False):
        return "Conv"
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], _ConvNd):
        return "PaddedConv"
    simple = {
        nn.Softmax: "Softmax",
        nn.LogSoftmax: "LogSoftmax",
        nn.Sigmoid: "Sigmoid",
        nn.Flatten: "Flatten",
        nn.Identity: "Identity",
    }
    for cls, op in simple.items():
        if isinstance(module, cls):
            return op
    if isinstance(module, _DropoutNd):
        return "Dropout"
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
        size = module.output_size
        return "AdaptiveAvgPool" if size in (1, (1,), (1, 1)) else "AdaptivePool"
    name = type(module).__name__
    onnx2torch_names = {
        "OnnxMatMul": "MatMul",
        "OnnxGemm": "Gemm",
        "OnnxCopyIdentity": "Identity",
        "OnnxFlatten": "Flatten",
        "OnnxReshape": "Reshape",
        "OnnxGlobalAveragePool": "GlobalAveragePool",
        "OnnxGlobalAveragePoolWithKnownInputShape": "GlobalAveragePool",
        "OnnxCast": "Cast",
        "OnnxSoftmaxV1V11": "Softmax",
        "SoftmaxV11": "Softmax",
    }
    return onnx2torch_names.get(name, name)


def function_op(node) -> str:
    """ONNX-style op name of a call_function / call_method node of a traced module."""
    target = node.target
    if node.op == "call_method":
        methods = {
            "view": "Reshape",
            "reshape": "Reshape",
            "flatten": "Flatten",
            "squeeze": "Squeeze",
            "unsqueeze": "Unsqueeze",
            "softmax": "Softmax",
            "log_softmax": "LogSoftmax",
            "sigmoid": "Sigmoid",
            "contiguous": "Contiguous",
            "mean": "ReduceMean",
            "matmul": "MatMul",
            "add": "Add",
            "float": "Cast",
        }
        return methods.get(target, str(target))
    functions = {
        operator.matmul: "MatMul",
        torch.matmul: "MatMul",
        torch.mm: "MatMul",
        operator.add: "Add",
        torch.add: "Add",
        torch.flatten: "Flatten",
        torch.reshape: "Reshape",
        torch.squeeze: "Squeeze",
        torch.softmax: "Softmax",
        F.softmax: "Softmax",
        torch.log_softmax: "LogSoftmax",
        F.log_softmax: "LogSoftmax",
        torch.sigmoid: "Sigmoid",
        F.dropout: "Dropout",
        torch.mean: "ReduceMean",
        F.adaptive_avg_pool2d: "AdaptiveAvgPool",
        F.linear: "FunctionalLinear",
    }
    op = functions.get(target, getattr(target, "__name__", str(target)))
    if op == "AdaptiveAvgPool":
        size = node.args[1] if len(node.args) > 1 else node.kwargs.get("output_size")
        return op if size in (1, (1, 1), [1, 1]) else "AdaptivePool"
    return op


def op_of(gm: fx.GraphModule, node: fx.Node) -> str:
    """The op a node computes: the source ONNX op for onnx2torch modules (``Gemm`` that
    became an ``nn.Linear`` reads ``Linear``), else a name derived from the torch call."""
    if node.op == "call_module":
        module = gm.get_submodule(node.target)
        op = gm.meta.get("ulrl_edge", {}).get("onnx_ops", {}).get(node.target)
        if op is None:
            return module_op(module)
        if op == "Conv" and isinstance(module, nn.Sequential):
            return "PaddedConv"  # onnx2torch's explicit padding + Conv
        if op == "Gemm" and isinstance(module, nn.Linear):
            return "Linear"
        return op
    if node.op in ("call_function", "call_method"):
        return function_op(node)
    return node.op


def data_input(node: fx.Node) -> fx.Node | None:
    """The first input that is computed (not a ``get_attr`` weight)."""
    for arg in list(node.args) + list(node.kwargs.values()):
        if isinstance(arg, fx.Node) and arg.op != "get_attr":
            return arg
    return None


def attr_inputs(node: fx.Node) -> list[fx.Node]:
    """The positional inputs that read a module attribute (weights, biases)."""
    return [a for a in node.args if isinstance(a, fx.Node) and a.op == "get_attr"]
