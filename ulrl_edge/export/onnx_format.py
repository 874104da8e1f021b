"""``--format onnx``: the model, unchanged, with its preprocessing written into its metadata.

The graph is not touched (purify's export already folded and simplified it); what this adds
is the ``ulrl_edge.preprocess`` key, so every runtime and every later command knows how
images become the input, and a file written atomically, never over the source.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.data.spec import METADATA_KEY
from ulrl_edge.errors import UnsupportedModel
from ulrl_edge.onnx_io.load import LoadedModel
from ulrl_edge.onnx_io.to_onnx import check_output_path, write_atomically

_PROTOBUF_LIMIT = 2**31 - 1


def onnx_bytes(source: LoadedModel, spec: PreprocessSpec) -> bytes:
    """The source model's bytes with ``ulrl_edge.preprocess`` set to ``spec`` (other keys kept).

    Raises:
        UnsupportedModel: The model with its weights is above protobuf's 2 GiB limit.
    """
    proto = onnx.ModelProto()
    proto.CopyFrom(source.proto)  # the loaded proto is shared; never modify it in place
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    for key, value in [*kept, (METADATA_KEY, spec.to_json())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    if proto.ByteSize() > _PROTOBUF_LIMIT:
        raise UnsupportedModel(
            "the model with its weights is above 2 GiB, which one ONNX file cannot hold; "
            "export it with external data first",
            source.path,
        )
    return proto.SerializeToString(deterministic=True)


def write_onnx(source: LoadedModel, out: str | Path, spec: PreprocessSpec) -> Path:
    """Write :func:`onnx_bytes` to ``out`` atomically.

    Raises:
        BadInput: ``out`` is the source, a folder, or in a missing/unwritable folder.
        UnsupportedModel: See :func:`onnx_bytes`.
    """
    out = check_output_path(out, source.path)
    write_atomically(onnx_bytes(source, spec), out)
    return out
