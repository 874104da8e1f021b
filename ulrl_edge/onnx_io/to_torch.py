"""Import a loaded ONNX model into PyTorch as a trainable ``torch.fx.GraphModule``.

onnx2torch does the op-by-op conversion. Around it this module (1) rewrites a copy of the
graph where onnx2torch would fail (:mod:`.graph_fixes`, :mod:`.converters`), (2) names every
op it cannot convert before trying, and (3) turns the result into something a defense can
fine-tune: weights onnx2torch keeps as buffers (MatMul/Add heads, Gemm with ``transA``,
per-channel Mul/Add) become ``nn.Parameter``\\ s under their original attribute names, and a
weight used by several nodes stays one shared tensor.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

import onnx
import torch
from torch import fx, nn

from ulrl_edge.errors import UnsupportedModel
from ulrl_edge.onnx_io.converters import register_extra_converters
from ulrl_edge.onnx_io.graph_fixes import prepare_for_import
from ulrl_edge.onnx_io.load import LoadedModel
from ulrl_edge.onnx_io.torch_fixes import replace_trace_unfriendly_modules
from ulrl_edge.onnx_io.weight_sources import map_weight_sources

META_KEY = "ulrl_edge"

# Ops whose float initializer inputs are learned weights, whatever their size.
WEIGHT_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "Gemm",
        "MatMul",
        "BatchNormalization",
        "InstanceNormalization",
        "LayerNormalization",
        "PRelu",
    }
)
# Inputs (by index) that hold sizes, scales or bounds: never trained.
SHAPE_INPUTS: dict[str, tuple[int, ...]] = {
    "Resize": (1, 2, 3),
    "Upsample": (1,),
    "Reshape": (1,),
    "Expand": (1,),
    "Tile": (1,),
    "Slice": (1, 2, 3, 4),
    "Pad": (1, 2, 3),
    "Clip": (1, 2),
    "Range": (0, 1, 2),
    "TopK": (1,),
    "ConstantOfShape": (0,),
}


def import_model(loaded: LoadedModel) -> fx.GraphModule:
    """Convert a checked ONNX model into a trainable GraphModule (eval mode).

    Args:
        loaded: From :func:`~ulrl_edge.onnx_io.load.load_model`.

    Returns:
        The GraphModule; ``gm.meta["ulrl_edge"]`` records the source hash, the ONNX op type
        of each top-level module (``onnx_ops``), which ONNX initializer each attribute came
        from (``initializers``), the initializer and layout of every weight tensor
        (``weights``, see :mod:`.weight_sources`) and the graph fixes applied (``notes``).

    Raises:
        UnsupportedModel: An op or op version onnx2torch cannot convert (named), or a
            conversion failure inside onnx2torch.
    """
    register_extra_converters()
    prepared, notes = prepare_for_import(loaded.proto)
    op_types = _module_op_types(prepared)
    _refuse_unsupported_ops(prepared, loaded)

    from onnx2torch import convert

    with torch.random.fork_rng(devices=[]):  # converters build layers with random init
        torch.manual_seed(0)
        try:
            gm = convert(prepared, attach_onnx_mapping=True)
        except NotImplementedError as err:
            raise UnsupportedModel(f"cannot convert: {_short(err)}", loaded.path) from None
        except KeyError as err:
            raise UnsupportedModel(
                f"cannot convert: a weight is not a constant ({_short(err)} is computed at run "
                "time or missing)",
                loaded.path,
            ) from None
        except Exception as err:  # onnx2torch raises many types for what it cannot do
            raise UnsupportedModel(
                f"onnx2torch failed: {type(err).__name__}: {_short(err)}", loaded.path
            ) from None

    swapped = replace_trace_unfriendly_modules(gm)
    if swapped:
        notes.append(f"opset<13 Softmax rewritten to keep a dynamic batch ({len(swapped)} nodes)")
    sources, uses = _tie_shared_initializers(gm, op_types)
    promote_buffers_to_parameters(gm, _weight_buffers(gm, uses))
    weights = map_weight_sources(gm, prepared, sources)
    for module in gm.modules():
        if hasattr(module, "onnx_mapping"):
            del module.onnx_mapping
    for param in gm.parameters():
        param.requires_grad_(True)
        if not param.data.is_contiguous():
            param.data = param.data.contiguous()
    gm.meta[META_KEY] = {
        "source_sha256": loaded.sha256,
        "onnx_ops": op_types,
        "initializers": sources,
        "weights": weights,
        "notes": notes,
    }
    return gm.eval()


def promote_buffers_to_parameters(module: nn.Module, names: Iterable[str]) -> list[str]:
    """Turn the named float buffers into trainable parameters, keeping their names.

    ``get_attr`` nodes and ``state_dict`` keys keep working because the attribute path does
    not change; only its kind does.

    Args:
        module: The module that owns the buffers (at any depth).
        names: Qualified buffer names, e.g. ``initializers.onnx_initializer_3``.

    Returns:
        The names that were promoted (float buffers only; others are skipped).
    """
    promoted: list[str] = []
    for name in names:
        owner_name, _, leaf = name.rpartition(".")
        owner = module.get_submodule(owner_name) if owner_name else module
        tensor = owner._buffers.get(leaf)
        if tensor is None or not tensor.is_floating_point():
            continue
        del owner._buffers[leaf]
        owner._non_persistent_buffers_set.discard(leaf)
        owner.register_parameter(leaf, nn.Parameter(tensor.detach().clone().contiguous()))
        promoted.append(name)
    return promoted


def _module_op_types(model: onnx.ModelProto) -> dict[str, str]:
    """onnx2torch's module name of each node → its ONNX op type."""
    from onnx2torch.onnx_graph import OnnxGraph

    return {name: node.operation_type for name, node in OnnxGraph(model.graph).nodes.items()}


def _refuse_unsupported_ops(model: onnx.ModelProto, loaded: LoadedModel) -> None:
    """Raise one UnsupportedModel naming every op that has no converter."""
    from onnx2torch.node_converters import get_converter

    versions = {entry.domain or "": entry.version for entry in model.opset_import}
    versions.setdefault("", versions.get("ai.onnx", 0))
    missing: list[str] = []
    for node in model.graph.node:
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        label = f"{node.domain + '.' if domain else ''}{node.op_type}-{versions.get(domain, '?')}"
        if label in missing:
            continue
        try:
            get_converter(
                domain=domain, operation_type=node.op_type, version=versions.get(domain, 1)
            )
        except NotImplementedError:
            missing.append(label)
    if missing:
        raise UnsupportedModel(
            f"no converter for op {', '.join(missing)} (onnx2torch cannot import it)", loaded.path
        )


def _tie_shared_initializers(
    gm: fx.GraphModule, op_types: dict[str, str]
) -> tuple[dict[str, str], dict[str, list[tuple[str, int]]]]:
    """Make every use of one ONNX initializer read the same buffer.

    onnx2torch registers a separate buffer each time an initializer is used, which would
    untie shared weights during training and duplicate them on export.

    Returns:
        (qualified buffer name → ONNX initializer name, qualified buffer name → its uses as
        (ONNX op type, input index)), for the buffers that remain.
    """
    first: dict[str, fx.Node] = {}
    sources: dict[str, str] = {}
    uses: dict[str, list[tuple[str, int]]] = {}
    for node in list(gm.graph.nodes):
        if node.op != "call_module":
            continue
        mapping = getattr(gm.get_submodule(node.target), "onnx_mapping", None)
        if mapping is None:
            continue
        values = list(node.args) + list(node.kwargs.values())
        slots = [(i, name) for i, name in enumerate(mapping.inputs) if name]
        for value, (index, onnx_name) in zip(values, slots, strict=False):
            if not isinstance(value, fx.Node) or value.op != "get_attr":
                continue
            keep = first.setdefault(onnx_name, value)
            if keep is value:
                sources[value.target] = onnx_name
            else:
                value.replace_all_uses_with(keep)
            uses.setdefault(keep.target, []).append((op_types.get(node.target, ""), index))
    for node in list(gm.graph.nodes):
        if node.op == "get_attr" and not node.users and node.target.startswith("initializers."):
            gm.graph.erase_node(node)
            owner = gm.get_submodule("initializers")
            owner._buffers.pop(node.target.split(".", 1)[1], None)
    gm.recompile()
    return sources, uses


def _weight_buffers(gm: fx.GraphModule, uses: dict[str, list[tuple[str, int]]]) -> list[str]:
    """The initializer buffers that are learned weights.

    Every float initializer except those read as a size, scale or bound (SHAPE_INPUTS), and
    except one-element graph scalars (HardSwish's 3 and 6, epsilons) unless a weighted op
    (WEIGHT_OPS) reads them. A one-class head bias is promoted later by ``find_head``.
    """
    chosen: list[str] = []
    for target, consumers in uses.items():
        tensor = _fetch(gm, target)
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            continue
        if any(index in SHAPE_INPUTS.get(op, ()) for op, index in consumers):
            continue
        if tensor.numel() > 1 or any(op in WEIGHT_OPS for op, _ in consumers):
            chosen.append(target)
    return chosen


def _fetch(gm: nn.Module, target: str) -> object:
    return operator.attrgetter(target)(gm)


def _short(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
