"""Resolve the model's preprocessing from its input shape, metadata, a JSON file and flags.

Sources are layered, later ones winning: the ONNX metadata key ``ulrl_edge.preprocess``
(JSON), then ``--preprocess FILE.json``, then the command-line flags. Whatever is still
missing is read off the model's input shape: the layout from where the 1- or 3-sized axis is,
the size from the static height and width, the channels from C (1 → gray, 3 → rgb unless told
bgr). A value that contradicts a static dimension of the model is an error that names where
the value came from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ulrl_edge.data.preprocess import PreprocessSpec, parse_spec_fields
from ulrl_edge.errors import BadInput, UnsupportedModel

METADATA_KEY = "ulrl_edge.preprocess"
_FLAG_NAMES = {
    "layout": "--layout",
    "size": "--size",
    "channels": "--channels",
    "scale": "--scale",
    "mean": "--mean",
    "std": "--std",
}
_MAX_SPEC_FILE_BYTES = 1 << 20


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The fields of a ``--preprocess FILE.json`` (partial objects allowed).

    Raises:
        BadInput: The file is missing, too large, not JSON or has invalid fields.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput("preprocessing file not found", path)
    if path.stat().st_size > _MAX_SPEC_FILE_BYTES:
        raise BadInput(
            "preprocessing file is larger than 1 MiB; expected a small JSON object", path
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise BadInput(f"preprocessing file is not valid JSON: {err}", path) from None
    return parse_spec_fields(data, source=path)


def metadata_fields(metadata: Mapping[str, str], *, model: str | Path | None = None) -> dict:
    """The fields stored under :data:`METADATA_KEY` in an ONNX model's metadata, if any."""
    text = metadata.get(METADATA_KEY)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise BadInput(f"metadata '{METADATA_KEY}' is not valid JSON: {err}", model) from None
    try:
        return parse_spec_fields(data)
    except BadInput as err:
        raise BadInput(f"metadata '{METADATA_KEY}': {err.message}", model) from None


def _dims(shape: Sequence[Any]) -> list[int | None]:
    """Static dimensions as ints, symbolic or unknown ones as None."""
    return [d if isinstance(d, int) and not isinstance(d, bool) and d > 0 else None for d in shape]


def _shape_text(shape: Sequence[Any]) -> str:
    return "[" + ", ".join(str(d) if d not in (None, "") else "?" for d in shape) + "]"


def _guess_layout(dims: list[int | None]) -> str:
    first, last = dims[1], dims[3]
    first_ok, last_ok = first in (1, 3), last in (1, 3)
    if last_ok and not first_ok:
        return "nhwc"
    if first is None and last is not None and not last_ok:
        return "nchw"
    if last is None and first is not None and not first_ok:
        return "nhwc"
    return "nchw"  # torch's convention when the shape cannot tell


def resolve_spec(
    model_input_shape: Sequence[Any],
    metadata: Mapping[str, str] | None = None,
    *,
    file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    model: str | Path | None = None,
) -> PreprocessSpec:
    """The preprocessing spec for a model, checked against its input shape.

    Args:
        model_input_shape: The model input's dims; ints for static ones, anything else
            (None, a symbol name) for dynamic ones.
        metadata: The model's metadata props; :data:`METADATA_KEY` is read when present.
        file: A ``--preprocess`` JSON file.
        overrides: Flag values by spec field (``layout``, ``size``, ``channels``, ``scale``,
            ``mean``, ``std``); None means not given. Flags win over the file and metadata.
        model: The model's path, named in errors.

    Returns:
        A complete spec (size always set).

    Raises:
        BadInput: A given value contradicts the model, is invalid, or the size is dynamic
            and nobody gave it.
        UnsupportedModel: The input is not an image tensor with 1 or 3 channels.
    """
    shape_text = _shape_text(model_input_shape)
    if len(model_input_shape) != 4:
        raise UnsupportedModel(
            f"model input has shape {shape_text}; expected an image tensor N×C×H×W or N×H×W×C",
            model,
        )
    dims = _dims(model_input_shape)

    fields: dict[str, Any] = {}
    origin: dict[str, str] = {}
    layers = [(metadata_fields(metadata or {}, model=model), f"metadata '{METADATA_KEY}'")]
    if file is not None:
        layers.append((read_spec_file(file), str(file)))
    flags = parse_spec_fields(dict(overrides or {}), source="command-line flags")
    layers.append((flags, ""))
    for values, where in layers:
        for key, value in values.items():
            fields[key] = value
            origin[key] = where or _FLAG_NAMES[key]

    def contradiction(key: str, shown: Any, problem: str) -> BadInput:
        return BadInput(
            f"{key} {shown} (from {origin[key]}) contradicts the model input {shape_text}: "
            f"{problem}",
            model,
        )

    layout = fields.get("layout") or _guess_layout(dims)
    c = dims[1] if layout == "nchw" else dims[3]
    h, w = (dims[2], dims[3]) if layout == "nchw" else (dims[1], dims[2])
    if c is not None and c not in (1, 3):
        if "layout" in fields:
            raise contradiction("layout", layout, f"that would mean {c} channels")
        raise UnsupportedModel(
            f"model input {shape_text} has {c} channels; ulrl-edge handles 1 (gray) or 3 "
            "(RGB/BGR) channels (pass --layout if the guess is wrong)",
            model,
        )

    channels = fields.get("channels")
    if c == 1 and channels not in (None, "gray"):
        raise contradiction("channels", channels, "it has 1 channel (gray)")
    if c == 3 and channels == "gray":
        raise contradiction("channels", channels, "it has 3 channels")
    if channels is None:
        channels = "gray" if c == 1 else "rgb"

    size = fields.get("size")
    if size is not None:
        if (h is not None and h != size[0]) or (w is not None and w != size[1]):
            raise contradiction("size", f"{size[0]}×{size[1]}", f"it takes {h}×{w} images")
    elif h is None or w is None:
        raise BadInput(
            f"the model input {shape_text} has a dynamic height or width; "
            "pass --size H W (or 'size' in the --preprocess file)",
            model,
        )
    else:
        size = (h, w)

    spec = PreprocessSpec(
        layout=layout,
        size=size,
        channels=channels,
        scale=fields.get("scale", 1.0),
        mean=fields.get("mean", (0.0,)),
        std=fields.get("std", (1.0,)),
    )
    for key in ("mean", "std"):
        if len(getattr(spec, key)) not in (1, spec.num_channels):
            raise BadInput(
                f"{key} from {origin[key]} has {len(getattr(spec, key))} values but the model "
                f"takes {spec.num_channels} channel(s); give 1 or {spec.num_channels}",
                model,
            )
    return spec
