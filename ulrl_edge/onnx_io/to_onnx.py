"""Export an (imported, possibly purified) model back to ONNX, as a drop-in for the original.

Two ways, tried in order:

1. **Write back** (:mod:`.write_back`): the graph the model was imported from, with the
   trained values put into its initializers, BatchNorm folded into the convolutions
   (:mod:`.fold_batchnorm`) and the clean-ups of :mod:`.simplify`. Same names, opset and
   dynamic axes as the vendor's file; used when onnxruntime on the result matches the torch
   model.
2. **Re-trace** with the TorchScript exporter (``dynamo=False``) for a model whose changes
   do not fit the source graph. It runs in eval mode, so BatchNorm folds into the
   convolutions; the result gets the original's input/output names, dtypes and dynamic
   axes, the original's opset where torch can emit it (9–20), and the clean-ups of
   :mod:`.simplify`.

Either way the file gets the source's ``metadata_props`` plus ``ulrl_edge.*`` keys (one
says which way it was written). The same model always gives the same bytes; the file is
written atomically and never over the source.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from ulrl_edge import __version__
from ulrl_edge.config import FP32_PARITY
from ulrl_edge.errors import BadInput, UnsupportedModel
from ulrl_edge.onnx_io.fold_batchnorm import fold_batchnorm
from ulrl_edge.onnx_io.load import LoadedModel, default_opset
from ulrl_edge.onnx_io.parity import ort_session, run_torch
from ulrl_edge.onnx_io.shapes import batch_is_dynamic, is_dynamic, random_inputs
from ulrl_edge.onnx_io.simplify import simplify
from ulrl_edge.onnx_io.write_back import written_back

MIN_EXPORT_OPSET = 9  # constant folding (and BatchNorm folding) needs 9
MAX_EXPORT_OPSET = 20  # the TorchScript exporter's ceiling in torch 2.x
KEY_SOURCE_SHA256 = "ulrl_edge.source_sha256"
KEY_VERSION = "ulrl_edge.version"
KEY_SOURCE_OPSET = "ulrl_edge.source_opset"
KEY_EXPORT = "ulrl_edge.export"
WRITTEN_BACK = "weights written into the source graph"
RETRACED = "re-traced by the TorchScript exporter"


def export_model(
    model: nn.Module,
    source: LoadedModel,
    out_path: str | Path,
    *,
    metadata: dict[str, str] | None = None,
    size: tuple[int, int] | None = None,
) -> Path:
    """Write ``model`` as an ONNX file that replaces ``source`` unchanged in its runtime.

    Args:
        model: The torch model (from ``import_model``, maybe purified); its train/eval mode
            is restored afterwards.
        source: The original file; gives IO names, types, dynamic axes, opset, metadata.
        out_path: Where to write. Must not be the source; its folder must exist.
        metadata: Extra ``metadata_props`` (e.g. ``ulrl_edge.preprocess``), added last.
        size: (H, W) for inputs whose spatial sizes are dynamic (needed to trace them).

    Returns:
        The written path.

    Raises:
        BadInput: ``out_path`` is the source, a folder, or in a missing/unwritable folder.
        UnsupportedModel: torch cannot export the model.
    """
    out_path = check_output_path(out_path, source.path)
    proto, kind = export_proto(model, source, size=size)
    add_metadata(proto, source, {KEY_EXPORT: kind, **(metadata or {})})
    write_atomically(proto.SerializeToString(deterministic=True), out_path)
    return out_path


def check_output_path(out_path: str | Path, source_path: Path) -> Path:
    """Refuse an output path that is the source file or cannot be written.

    Raises:
        BadInput: With the output path in the message.
    """
    out_path = Path(out_path)
    if out_path.resolve() == Path(source_path).resolve() or (
        out_path.exists() and source_path.exists() and os.path.samefile(out_path, source_path)
    ):
        raise BadInput("output path is the input model; refusing to write over it", out_path)
    if out_path.is_dir():
        raise BadInput("output path is a folder; give a file name ending in .onnx", out_path)
    folder = out_path.parent
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{str(folder)!r} is a file, not an output folder", out_path)
    if not folder.is_dir():
        raise BadInput(f"output folder {str(folder)!r} does not exist", out_path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadInput(f"output folder {str(folder)!r} is not writable", out_path)
    return out_path


def export_opset(source_opset: int) -> int:
    """The opset to export at: the source's, clamped to what the exporter supports."""
    return min(max(source_opset, MIN_EXPORT_OPSET), MAX_EXPORT_OPSET)


def to_onnx_proto(
    model: nn.Module, source: LoadedModel, *, size: tuple[int, int] | None = None
) -> onnx.ModelProto:
    """Export to an in-memory ModelProto with the source's IO contract (no metadata yet)."""
    return export_proto(model, source, size=size)[0]


def export_proto(
    model: nn.Module, source: LoadedModel, *, size: tuple[int, int] | None = None
) -> tuple[onnx.ModelProto, str]:
    """(the exported ModelProto without metadata, WRITTEN_BACK or RETRACED).

    The source graph with the model's weights written back when that reproduces the model,
    else a re-trace (see the module docstring).
    """
    proto = written_back(model, source)
    if proto is not None:
        fold_batchnorm(proto.graph)
        simplify(proto)
        if _reproduces(proto, model, source, size):
            proto.producer_name = "ulrl-edge"
            proto.producer_version = __version__
            return proto, WRITTEN_BACK
    return retraced_proto(model, source, size=size), RETRACED


def _reproduces(proto: onnx.ModelProto, model: nn.Module, source: LoadedModel, size) -> bool:
    """Whether onnxruntime on ``proto`` gives ``model``'s outputs on a random batch."""
    try:
        feeds = random_inputs(source, batch=2, seed=0, size=size)
        session = ort_session(proto.SerializeToString())
        wanted = [o.name for o in session.get_outputs()]
        got = session.run(wanted, feeds)
    except Exception:  # noqa: BLE001 - any failure means: use the other exporter
        return False
    expected = run_torch(model, [feeds[t.name] for t in source.inputs], wanted)
    tolerance = FP32_PARITY.atol
    return len(expected) == len(got) and all(
        e.shape == g.shape and np.allclose(e, g, rtol=0, atol=tolerance)
        for e, g in zip(expected.values(), got, strict=True)
    )


def retraced_proto(
    model: nn.Module, source: LoadedModel, *, size: tuple[int, int] | None = None
) -> onnx.ModelProto:
    """Re-trace ``model`` with the TorchScript exporter into the source's IO contract."""
    dummy = random_inputs(source, batch=2, seed=0, size=size)  # 2: a 1 could get baked in
    device = next(model.parameters(), torch.empty(0)).device  # a model trained on CUDA
    args = tuple(torch.from_numpy(dummy[t.name]).to(device) for t in source.inputs)
    in_names = [f"ulrl_in_{i}" for i in range(len(source.inputs))]
    out_names = [f"ulrl_out_{i}" for i in range(len(source.outputs))]
    dynamic_axes = _dynamic_axes(source, in_names, out_names)
    opset = export_opset(source.opset)
    was_training = model.training
    model.eval()
    try:
        data = _export_bytes(model, args, in_names, out_names, dynamic_axes, opset, source)
    finally:
        model.train(was_training)
    proto = onnx.load_model_from_string(data)
    _restore_io(proto, source, in_names, out_names)
    simplify(proto)
    proto.producer_name = "ulrl-edge"
    proto.producer_version = __version__
    proto.doc_string = ""
    proto.graph.doc_string = ""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise UnsupportedModel(
            f"the exported graph is not valid ONNX: {' '.join(str(err).split())[:200]}",
            source.path,
        ) from None
    if batch_is_dynamic(source):
        _require_any_batch(proto, source, size)
    return proto


# A batch the trace never saw (it ran with 2): a size baked into the graph fails here.
_PROBE_BATCH = 3


def _error_at(model: LoadedModel | bytes, feeds: dict) -> str | None:
    """None if onnxruntime runs ``model`` on ``feeds``, else its error in one line."""
    try:
        ort_session(model).run(None, feeds)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises several types
        return " ".join(str(err).split())
    return None


def _require_any_batch(proto: onnx.ModelProto, source: LoadedModel, size) -> None:
    """Refuse an export that froze the probe batch into a Reshape (seen on ViT attention).

    The TorchScript exporter can record the traced sizes of some onnx2torch modules as
    constants; the file would then fail at run time for any other batch size.
    """
    try:
        feeds = random_inputs(source, batch=_PROBE_BATCH, seed=0, size=size)
    except Exception:  # noqa: BLE001 - inputs we cannot build are checked elsewhere
        return
    error = _error_at(proto.SerializeToString(), feeds)
    # Only a failure is checked against the original: it may not run that batch either.
    if error is not None and _error_at(source, feeds) is None:
        raise UnsupportedModel(
            f"the re-exported model froze its batch size: it fails at batch {_PROBE_BATCH} "
            f"where the original runs ({error[:160]}); nothing was written",
            source.path,
        )


def _dynamic_axes(
    source: LoadedModel, in_names: list[str], out_names: list[str]
) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for i, (name, info) in enumerate(zip(in_names, source.inputs, strict=True)):
        dims = {a: _dim_name(d, i, a) for a, d in enumerate(info.shape) if is_dynamic(d)}
        if dims:
            axes[name] = dims
    batch = batch_is_dynamic(source)
    for i, (name, info) in enumerate(zip(out_names, source.outputs, strict=True)):
        dims = {a: _dim_name(d, i, a, "out") for a, d in enumerate(info.shape) if is_dynamic(d)}
        if batch and info.shape:
            dims.setdefault(0, _dim_name(source.inputs[0].shape[0], 0, 0))
        if dims:
            axes[name] = dims
    return axes


def _dim_name(dim: int | str | None, index: int, axis: int, kind: str = "in") -> str:
    return dim if isinstance(dim, str) and dim else f"{kind}{index}_dim{axis}"


def _export_bytes(model, args, in_names, out_names, dynamic_axes, opset, source) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                args,
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=in_names,
                output_names=out_names,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
                export_params=True,
                keep_initializers_as_inputs=False,
            )
        except Exception as err:  # the exporter raises many types for unsupported graphs
            text = " ".join(str(err).split())[:200]
            raise UnsupportedModel(
                f"torch cannot export the imported model at opset {opset}: "
                f"{type(err).__name__}: {text}",
                source.path,
            ) from None
    return buffer.getvalue()


def _restore_io(
    proto: onnx.ModelProto, source: LoadedModel, in_names: list[str], out_names: list[str]
) -> None:
    """Give the exported graph the source's IO names and declared types."""
    graph = proto.graph
    wanted = dict(zip(in_names, source.input_names, strict=True))
    wanted.update(zip(out_names, source.output_names, strict=True))
    # An internal tensor may already carry one of the wanted names: move it aside first.
    taken = {o for n in graph.node for o in n.output} | {t.name for t in graph.initializer}
    for clash in set(wanted.values()) & taken:
        _rename_everywhere(graph, clash, f"{clash}__internal")
    for old, new in wanted.items():
        _rename_everywhere(graph, old, new)
    src_in = {v.name: v for v in source.proto.graph.input}
    src_out = {v.name: v for v in source.proto.graph.output}
    for value in graph.input:
        if value.name in src_in:
            value.type.CopyFrom(src_in[value.name].type)
    for value in graph.output:
        if value.name in src_out:
            exported = onnx.TypeProto()
            exported.CopyFrom(value.type)
            value.type.CopyFrom(src_out[value.name].type)
            _keep_exported_dynamic(value.type, exported)


def _keep_exported_dynamic(declared: onnx.TypeProto, exported: onnx.TypeProto) -> None:
    """Where the source declared a static size but the export is dynamic (a batch we
    unfroze), keep the dynamic name: the file really accepts any batch now."""
    dims = declared.tensor_type.shape.dim
    new = exported.tensor_type.shape.dim
    if len(dims) != len(new):
        return
    for dim, fresh in zip(dims, new, strict=True):
        static = dim.HasField("dim_value") and dim.dim_value > 0
        if static and fresh.dim_param:
            dim.dim_param = fresh.dim_param


def _rename_everywhere(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new
    for tensor in graph.initializer:
        if tensor.name == old:
            tensor.name = new


def add_metadata(
    proto: onnx.ModelProto, source: LoadedModel, extra: dict[str, str] | None = None
) -> None:
    """Source metadata first (vendor runtimes read labels from it), then ours, sorted."""
    ours = {KEY_SOURCE_SHA256: source.sha256, KEY_VERSION: __version__}
    if default_opset(proto) != source.opset:
        ours[KEY_SOURCE_OPSET] = str(source.opset)
    ours.update({str(k): str(v) for k, v in (extra or {}).items()})
    merged = {k: v for k, v in source.metadata.items() if k not in ours}
    del proto.metadata_props[:]
    for key, value in list(merged.items()) + sorted(ours.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def copy_metadata(target: onnx.ModelProto, source: onnx.ModelProto) -> None:
    """Copy ``metadata_props`` from ``source`` onto ``target`` (keys already there win)."""
    have = {p.key for p in target.metadata_props}
    for prop in source.metadata_props:
        if prop.key not in have:
            entry = target.metadata_props.add()
            entry.key, entry.value = prop.key, prop.value


def write_atomically(data: bytes, out_path: Path) -> None:
    """Write ``data`` to a temp file beside ``out_path``, then rename it into place.

    Raises:
        BadInput: The write failed (disk full, no permission, …); nothing is left behind.
    """
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent
        )
    except OSError as err:
        raise write_error(err, out_path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give a normal file's mode
        os.replace(tmp, out_path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(err, out_path) from None
    except BaseException:  # KeyboardInterrupt too: never leave a half-written file
        Path(tmp).unlink(missing_ok=True)
        raise


def write_error(err: OSError, out_path: Path) -> BadInput:
    """A one-line error for a failed write (``No space left on device``, …)."""
    reason = err.strerror or " ".join(str(err).split()) or type(err).__name__
    return BadInput(f"cannot write the output ({reason}); nothing was written", out_path)
