"""The classifier head: the last linear map to the logits, as rows [classes, features].

ULRL reads and re-initialises rows of this matrix. In imported graphs the map may be a
Gemm/Linear (weight [K, F]), a MatMul (+Add) whose weight is stored [F, K], or a 1×1 Conv
(weight [K, F, 1, 1]) before a global pool. :class:`Head` hides those storage differences:
:meth:`Head.rows` is always a differentiable [K, F] view of the live parameter.
:func:`find_head` locates the map in any imported graph or torch module, and
:func:`logits_module` gives a parameter-sharing view of a model without its final Softmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import fx, nn

from ulrl_edge.errors import UnsupportedModel
from ulrl_edge.onnx_io.fx_ops import attr_inputs, data_input, op_of

HeadKind = Literal["linear", "matmul", "conv1x1"]


@dataclass
class Head:
    """A located classifier head.

    Attributes:
        kind: How the weight is stored: ``linear`` [K, F], ``matmul`` [F, K], ``conv1x1``
            [K, F, 1, 1].
        name: Qualified name of the module (or graph node) that owns the weight.
        weight: The live weight parameter.
        bias: The live bias parameter, or None.
        onnx_op: The ONNX op type the head came from (for reports), e.g. ``Gemm``.
    """

    kind: HeadKind
    name: str
    weight: nn.Parameter
    bias: nn.Parameter | None = None
    onnx_op: str = ""

    def rows(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The weight as [classes, features], a view sharing storage (differentiable).

        Args:
            weight: Another tensor stored like this head's weight (e.g. a saved copy);
                defaults to the live weight.
        """
        w = self.weight if weight is None else weight
        if self.kind == "linear":
            return w
        if self.kind == "matmul":
            return w.t()
        return w.reshape(w.shape[0], -1)

    @property
    def num_classes(self) -> int:
        return int(self.rows().shape[0])

    @property
    def in_features(self) -> int:
        return int(self.rows().shape[1])

    def bias_values(self) -> torch.Tensor | None:
        """The bias as a flat [classes] view, or None."""
        return None if self.bias is None else self.bias.reshape(-1)

    @torch.no_grad()
    def reinit_rows(self, index: list[int], generator: torch.Generator | None = None) -> None:
        """Re-initialise rows as the reference does: U(±sqrt(2/d)) weights, zero bias.

        Args:
            index: Class indices (rows) to reset.
            generator: Seeded generator, so that the reset is repeatable.
        """
        rows = self.rows()
        bound = math.sqrt(2.0 / self.in_features)
        for k in index:
            fresh = torch.rand(rows.shape[1], generator=generator, dtype=rows.dtype)
            rows[k].copy_((fresh * 2 - 1).mul_(bound).to(rows.device))
            if self.bias is not None:
                self.bias_values()[k] = 0.0

    def describe(self) -> dict:
        """A JSON-ready summary: op, storage kind, name and [classes, features]."""
        return {
            "onnx_op": self.onnx_op,
            "kind": self.kind,
            "name": self.name,
            "classes": self.num_classes,
            "features": self.in_features,
            "has_bias": self.bias is not None,
        }


# ---------------------------------------------------------------------------------------------
# Finding the head
# ---------------------------------------------------------------------------------------------

# Ops the walk passes through: they keep the class axis (or only pool/flatten features).
_PASS_THROUGH = frozenset(
    {
        "Softmax",
        "LogSoftmax",
        "Sigmoid",
        "Flatten",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Dropout",
        "Cast",
        "Contiguous",
    }
)
_POOLS = frozenset({"GlobalAveragePool", "ReduceMean", "AdaptiveAvgPool"})
_OUTPUT_ACTIVATIONS = frozenset({"Softmax", "LogSoftmax"})


def find_head(model: nn.Module) -> Head:
    """Locate the last linear map to the logits and return it as a :class:`Head`.

    Walks back from the graph output through shape-preserving ops (Softmax, LogSoftmax,
    Sigmoid, Flatten, Reshape, Squeeze, Identity, Dropout, Cast) to a Linear/Gemm, a MatMul
    (+ Add bias), or a 1×1 Conv next to a global pool (GlobalAveragePool, ReduceMean,
    AdaptiveAvgPool). The returned weight is the live parameter the forward pass reads; a
    weight or bias still stored as a buffer is promoted to an ``nn.Parameter`` in place.

    Args:
        model: A GraphModule from :func:`ulrl_edge.onnx_io.to_torch.import_model`, or any
            ``nn.Module`` (traced with torch.fx; if that fails, its last ``nn.Linear`` or
            1×1 ``nn.Conv2d`` is taken).

    Returns:
        The head; ``head.rows()`` is [classes, features].

    Raises:
        UnsupportedModel: No such layer; the message names the last op the walk reached.
    """
    graph_module = model if isinstance(model, fx.GraphModule) else _trace(model)
    if graph_module is None:
        head = _last_layer_head(model)
        if head is None:
            raise UnsupportedModel(
                f"no classifier head found in {type(model).__name__}: it cannot be traced "
                "and has no nn.Linear or 1×1 nn.Conv2d"
            )
        return head
    return _walk(graph_module, owner=model)


def logits_module(model: nn.Module) -> nn.Module:
    """The model without its trailing Softmax/LogSoftmax, sharing all parameters.

    Training with cross-entropy needs logits; vendor graphs often end in a Softmax. Walking
    back from the output through shape-only ops (as :func:`find_head` does), every Softmax or
    LogSoftmax met is bypassed; reshapes after it are kept. The returned GraphModule reads
    the same parameter objects, so training it trains ``model``.

    Args:
        model: A GraphModule (e.g. from ``import_model``); other modules are returned as is,
            and so is a graph without a trailing Softmax.
    """
    import copy

    if not isinstance(model, fx.GraphModule):
        return model
    output = next(n for n in model.graph.nodes if n.op == "output")
    node, activations = output.args[0], []
    while isinstance(node, fx.Node) and op_of(model, node) in _PASS_THROUGH:
        if op_of(model, node) in _OUTPUT_ACTIVATIONS:
            activations.append(node.name)
        node = data_input(node)
    if not activations:
        return model
    graph = copy.deepcopy(model.graph)
    for n in list(graph.nodes):
        if n.name in activations:
            n.replace_all_uses_with(data_input(n))
            graph.erase_node(n)
    view = fx.GraphModule(model, graph)
    view.meta.update(model.meta)
    return view


def _trace(model: nn.Module) -> fx.GraphModule | None:
    try:
        return fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - any trace failure means: fall back to module order
        return None


def _live_param(owner: nn.Module, gm, target: str) -> nn.Parameter:
    """The parameter at ``target`` of ``owner``, promoting a float buffer there first.

    For a traced plain module, ``gm`` is the trace and ``owner`` the user's module: the
    promoted parameter is set on both, so the user's forward and the trace read one tensor.
    """
    from ulrl_edge.onnx_io.to_torch import promote_buffers_to_parameters

    holder, _, leaf = target.rpartition(".")
    parent = owner.get_submodule(holder) if holder else owner
    if leaf in parent._buffers:
        promote_buffers_to_parameters(owner, [target])
    param = parent._parameters.get(leaf)
    if param is None:
        return gm.get_parameter(target)
    if owner is not gm:
        gm_parent = gm.get_submodule(holder) if holder else gm
        if gm_parent._parameters.get(leaf) is not param:
            gm_parent._buffers.pop(leaf, None)
            gm_parent.register_parameter(leaf, param)
    return param


def _walk(gm, owner: nn.Module) -> Head:
    output = next(n for n in gm.graph.nodes if n.op == "output")
    node = output.args[0]
    while isinstance(node, (tuple, list)):  # several outputs: the first one holds the scores
        node = node[0] if node else None
    bias_target, last = None, "output"
    while isinstance(node, fx.Node):
        op = op_of(gm, node)
        last = f"{op} ({node.target if node.op == 'call_module' else node.name})"
        if op in _PASS_THROUGH or op in _POOLS:
            node = data_input(node)
            continue
        if op == "Add" and bias_target is None:
            attrs = attr_inputs(node)
            data = data_input(node)
            if len(attrs) == 1 and data is not None:
                bias_target, node = attrs[0].target, data
                continue
        head = _head_at(gm, owner, node, op, bias_target)
        # An Add whose constant is not one value per class was not the head's bias.
        if head is not None and (head.bias is None or head.bias.numel() == head.num_classes):
            return head
        break
    raise UnsupportedModel(
        f"no classifier head found: walking back from the output stopped at {last}; "
        "expected a Linear/Gemm, MatMul(+Add) or 1×1 Conv with a global pool"
    )


def _head_at(gm, owner, node, op, bias_target) -> Head | None:
    def bias_param(own: nn.Parameter | None) -> nn.Parameter | None:
        if own is not None:
            return own
        return _live_param(owner, gm, bias_target) if bias_target else None

    if op == "Linear":
        module = gm.get_submodule(node.target)
        return Head("linear", node.target, module.weight, bias_param(module.bias), "Gemm")
    if op in ("Conv", "PaddedConv"):
        module = gm.get_submodule(node.target)
        conv = module[-1] if isinstance(module, nn.Sequential) else module
        kernel = tuple(conv.weight.shape[2:])
        if conv.groups != 1 or any(k != 1 for k in kernel):
            return None
        return Head("conv1x1", node.target, conv.weight, bias_param(conv.bias), "Conv")
    attrs = attr_inputs(node)
    if op in ("MatMul", "FunctionalLinear", "Gemm") and attrs:
        weight_node = attrs[0]
        if node.args[0] is weight_node:  # W @ x: not a classifier head layout
            return None
        weight = _live_param(owner, gm, weight_node.target)
        if weight.dim() != 2:
            return None
        own_bias = None
        if op in ("FunctionalLinear", "Gemm") and len(attrs) > 1:
            own_bias = _live_param(owner, gm, attrs[1].target)
        name = node.target if node.op == "call_module" else weight_node.target
        if op == "FunctionalLinear":
            return Head("linear", name, weight, bias_param(own_bias), "Gemm")
        if op == "Gemm":
            module = gm.get_submodule(node.target)
            if getattr(module, "trans_a", False):
                return None
            kind = "linear" if getattr(module, "trans_b", False) else "matmul"
            return Head(kind, name, weight, bias_param(own_bias), "Gemm")
        return Head("matmul", name, weight, bias_param(None), "MatMul")
    return None


def _last_layer_head(model: nn.Module) -> Head | None:
    """Fallback for untraceable modules: the last Linear, else the last 1×1 Conv2d."""
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears:
        name, module = linears[-1]
        return Head("linear", name, module.weight, module.bias, "Gemm")
    convs = [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1
    ]
    if convs:
        name, module = convs[-1]
        return Head("conv1x1", name, module.weight, module.bias, "Conv")
    return None
