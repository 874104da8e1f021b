"""Load an ONNX file safely: size limits, clear errors, external data kept inside its folder.

A vendor file is untrusted input. :func:`load_model` refuses anything that is not a
well-formed ONNX model with a one-line :class:`~ulrl_edge.errors.BadInput` naming the file,
and never follows an external-data location out of the model's folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import onnx
import onnx.numpy_helper
from google.protobuf.message import DecodeError

from ulrl_edge.config import DEFAULT_LIMITS, Limits
from ulrl_edge.errors import BadInput

DimValue = int | str | None
_FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.BFLOAT16,
}


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output.

    Attributes:
        name: The tensor name, exactly as in the file.
        shape: One entry per axis: a size, a symbolic name (dynamic), or None (unknown).
        dtype: NumPy dtype name, e.g. ``float32``.
    """

    name: str
    shape: tuple[DimValue, ...]
    dtype: str

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class LoadedModel:
    """A checked ONNX model and what the rest of the tool needs to know about it.

    Attributes:
        path: The .onnx file.
        proto: The model, external data loaded into memory; never modified in place.
        sha256: SHA-256 of the .onnx file bytes.
        inputs: Real graph inputs (initializers listed as inputs are left out).
        outputs: Graph outputs.
        opset: Version of the default (``ai.onnx``) domain.
        producer: ``producer_name producer_version`` as written by the exporter.
        metadata: The file's ``metadata_props``.
        warnings: Non-fatal findings, e.g. a strict check that failed.
    """

    path: Path
    proto: onnx.ModelProto
    sha256: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    opset: int
    producer: str
    metadata: dict[str, str]
    warnings: tuple[str, ...] = field(default=())

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]


def sha256_file(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_model(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> LoadedModel:
    """Read, check and describe an ONNX file.

    Args:
        path: The .onnx file.
        limits: Size bounds for the file, its external data and single tensors.

    Returns:
        The checked model with external data loaded.

    Raises:
        BadInput: Missing, empty, oversized, not ONNX, truncated or invalid; or external
            data that is missing or points outside the model's folder.
    """
    path = Path(path)
    data = _read_bounded(path, limits)
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as err:
        raise BadInput(f"not an ONNX model or truncated ({_short(err)})", path) from None
    if not proto.HasField("graph") or len(proto.graph.node) == 0 or proto.ir_version <= 0:
        raise BadInput("not an ONNX model or truncated (no graph in the file)", path)

    has_external = _load_external_data(proto, path, limits)
    _check_tensor_sizes(proto, path, limits)
    _check_finite_weights(proto, path)
    warnings = _check(proto, path, has_external)
    inputs, outputs = describe_io(proto)
    if not inputs or not outputs:
        raise BadInput("the model has no graph inputs or no graph outputs", path)
    return LoadedModel(
        path=path,
        proto=proto,
        sha256=hashlib.sha256(data).hexdigest(),
        inputs=inputs,
        outputs=outputs,
        opset=default_opset(proto),
        producer=f"{proto.producer_name} {proto.producer_version}".strip(),
        metadata={p.key: p.value for p in proto.metadata_props},
        warnings=tuple(warnings),
    )


def default_opset(proto: onnx.ModelProto) -> int:
    """The opset version of the default ONNX domain (0 when none is declared)."""
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 0


def describe_io(proto: onnx.ModelProto) -> tuple[list[TensorInfo], list[TensorInfo]]:
    """Graph inputs (without initializers) and outputs as :class:`TensorInfo`."""
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [_tensor_info(v) for v in proto.graph.input if v.name not in initializers]
    outputs = [_tensor_info(v) for v in proto.graph.output]
    return inputs, outputs


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    tensor_type = value.type.tensor_type
    shape: list[DimValue] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param:
            shape.append(dim.dim_param)
        else:
            shape.append(None)  # unknown, or Paddle's -1
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
    except (KeyError, TypeError, ValueError):
        dtype = onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower()
    return TensorInfo(name=value.name, shape=tuple(shape), dtype=dtype)


def _read_bounded(path: Path, limits: Limits) -> bytes:
    if not path.exists():
        raise BadInput("no such file", path)
    if not path.is_file():
        raise BadInput("not a file (expected an .onnx model file)", path)
    size = path.stat().st_size
    if size == 0:
        raise BadInput("empty file, not an ONNX model", path)
    if size > limits.max_model_bytes:
        raise BadInput(f"file is {size} bytes, above the {limits.max_model_bytes}-byte limit", path)
    try:
        return path.read_bytes()
    except OSError as err:
        raise BadInput(f"cannot read the file ({err.strerror})", path) from None


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for sub in attr.graphs:
                yield from _all_tensors(sub)


def _external_location(tensor: onnx.TensorProto) -> str | None:
    if tensor.data_location != onnx.TensorProto.EXTERNAL:
        return None
    for entry in tensor.external_data:
        if entry.key == "location":
            return entry.value
    return ""


def _safe_external_path(location: str, folder: Path, path: Path) -> Path:
    """Resolve an external-data location, refusing anything that leaves ``folder``."""
    posix, windows = PurePosixPath(location), PureWindowsPath(location)
    if (
        not location
        or posix.is_absolute()
        or windows.is_absolute()
        or windows.drive
        or ".." in posix.parts
        or ".." in windows.parts
    ):
        raise BadInput(
            f"external data location {location!r} is not a plain path inside the model's folder",
            path,
        )
    target = (folder / location).resolve()
    root = folder.resolve()
    if target != root and root not in target.parents:
        raise BadInput(
            f"external data location {location!r} resolves outside the model's folder", path
        )
    if not target.is_file():
        raise BadInput(f"external data file {location!r} is missing", path)
    return target


def _load_external_data(proto: onnx.ModelProto, path: Path, limits: Limits) -> bool:
    """Check every external-data location, then load the data. Returns whether any existed."""
    folder = path.parent
    sizes: dict[Path, int] = {}
    for tensor in _all_tensors(proto.graph):
        location = _external_location(tensor)
        if location is None:
            continue
        target = _safe_external_path(location, folder, path)
        sizes[target] = target.stat().st_size
    if not sizes:
        return False
    if sum(sizes.values()) > limits.max_external_bytes:
        raise BadInput(
            f"external data is {sum(sizes.values())} bytes, above the "
            f"{limits.max_external_bytes}-byte limit",
            path,
        )
    try:
        onnx.external_data_helper.load_external_data_for_model(proto, os.fspath(folder))
    except (OSError, ValueError, onnx.checker.ValidationError) as err:
        raise BadInput(f"cannot read external data ({_short(err)})", path) from None
    return True


def _check_tensor_sizes(proto: onnx.ModelProto, path: Path, limits: Limits) -> None:
    for tensor in _all_tensors(proto.graph):
        elements = 1
        for dim in tensor.dims:
            elements *= max(int(dim), 0)
        if elements > limits.max_tensor_elements:
            raise BadInput(
                f"tensor {tensor.name!r} has {elements} elements, above the "
                f"{limits.max_tensor_elements} limit",
                path,
            )


def _check_finite_weights(proto: onnx.ModelProto, path: Path) -> None:
    """Refuse weights holding NaN or ±inf: the model's outputs would be meaningless.

    Only float initializers with more than one element count as weights; a scalar such as
    Clip's ``-inf`` bound is an op parameter and may be infinite.
    """
    for tensor in proto.graph.initializer:
        if tensor.data_type not in _FLOAT_TYPES or len(tensor.dims) == 0:
            continue
        try:
            values = onnx.numpy_helper.to_array(tensor)
        except (ValueError, TypeError) as err:
            raise BadInput(f"tensor {tensor.name!r} cannot be read ({_short(err)})", path) from None
        if values.size <= 1:
            continue
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if bad:
            raise BadInput(
                f"tensor {tensor.name!r} holds NaN or infinite values ({bad} of {values.size} "
                "elements); the model's weights are corrupt",
                path,
            )


def _check(proto: onnx.ModelProto, path: Path, has_external: bool) -> list[str]:
    """Structural check (must pass), then a strict check with shape inference (may warn)."""
    warnings: list[str] = []
    # Above 2 GiB the in-memory proto cannot be serialised for the checker; check the file.
    subject = os.fspath(path) if has_external else proto
    try:
        onnx.checker.check_model(subject)
    except (onnx.checker.ValidationError, ValueError, RuntimeError) as err:
        raise BadInput(f"not a valid ONNX model ({_short(err)})", path) from None
    try:
        onnx.checker.check_model(subject, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, RuntimeError) as err:
        warnings.append(f"strict check with shape inference failed: {_short(err)}")
    return warnings


def _short(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
