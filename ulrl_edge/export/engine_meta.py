"""What an engine is built for, and the ``.json`` sidecar that records it.

Shared by :func:`~ulrl_edge.export.tensorrt.build_engine` (TensorRT Python API), the Jetson
bundle's ``trtexec`` script and the engine runner, so all three agree on the input name, the
optimisation profile and the metadata. An engine file holds plain TensorRT bytes (a header
would stop ``trtexec`` loading it); everything else goes into ``ENGINE.json`` beside it.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ulrl_edge import __version__
from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.errors import BadInput, UnsupportedModel
from ulrl_edge.export.formats import BatchShapes, ExportOptions
from ulrl_edge.onnx_io.load import LoadedModel, TensorInfo

_MAX_SIDECAR_BYTES = 1 << 20


@dataclass(frozen=True)
class Profile:
    """The engine's input and its optimisation profile.

    Attributes:
        input_name: The ONNX input name, exactly.
        min: Smallest full input shape (None when the input is fully static).
        opt: The shape TensorRT tunes for.
        max: Largest full input shape.
        static: The model's own shape when every dimension is fixed (no profile needed).
    """

    input_name: str
    min: tuple[int, ...] | None
    opt: tuple[int, ...] | None
    max: tuple[int, ...] | None
    static: tuple[int, ...] | None = None

    @property
    def dynamic(self) -> bool:
        return self.static is None

    @property
    def max_batch(self) -> int:
        shape = self.static if self.static is not None else self.max
        return int(shape[0]) if shape else 1

    def to_dict(self) -> dict[str, Any]:
        if self.static is not None:
            return {"input": self.input_name, "static": list(self.static)}
        return {
            "input": self.input_name,
            "min": list(self.min or ()),
            "opt": list(self.opt or ()),
            "max": list(self.max or ()),
        }


def sample_shape(spec: PreprocessSpec) -> tuple[int, int, int]:
    """One image's shape in the model's layout: (C, H, W) or (H, W, C)."""
    h, w = spec.size or (0, 0)
    c = spec.num_channels
    return (c, h, w) if spec.layout == "nchw" else (h, w, c)


def single_input(source: LoadedModel) -> TensorInfo:
    """The model's one image input.

    Raises:
        UnsupportedModel: More than one input.
    """
    if len(source.inputs) != 1:
        names = ", ".join(source.input_names)
        raise UnsupportedModel(
            f"the model has {len(source.inputs)} inputs ({names}); expected one image input",
            source.path,
        )
    return source.inputs[0]


def profile_for(source: LoadedModel, spec: PreprocessSpec, shapes: BatchShapes | None) -> Profile:
    """The profile for the model's input: dynamic axes filled from ``spec`` and ``shapes``.

    Args:
        source: The ONNX model (one image input, checked against ``spec`` already).
        spec: Gives the channels, height and width of dynamic axes.
        shapes: Batch sizes asked for; None: 1,1,32 (or the model's fixed batch).

    Raises:
        BadInput: ``shapes`` given for a model whose batch is fixed to another size.
        UnsupportedModel: Not a single 4-D input.
    """
    info = single_input(source)
    if len(info.shape) != 4:
        raise UnsupportedModel(
            f"input {info.name!r} has shape {list(info.shape)}; expected N×C×H×W or N×H×W×C",
            source.path,
        )
    per_image = sample_shape(spec)
    fixed_batch = info.shape[0] if isinstance(info.shape[0], int) else None
    if fixed_batch is not None:
        if shapes is not None and {shapes.min, shapes.opt, shapes.max} != {fixed_batch}:
            raise BadInput(
                f"the model's batch size is fixed at {fixed_batch}; --shapes {shapes.text()} "
                "cannot change it (drop --shapes)",
                source.path,
            )
        full = (fixed_batch, *per_image)
        if all(isinstance(d, int) for d in info.shape):
            return Profile(info.name, None, None, None, static=full)
        return Profile(info.name, full, full, full)
    shapes = shapes or BatchShapes()
    return Profile(
        info.name,
        (shapes.min, *per_image),
        (shapes.opt, *per_image),
        (shapes.max, *per_image),
    )


def sidecar_path(engine: str | Path) -> Path:
    """``model.engine`` → ``model.engine.json``."""
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def calibration_cache_path(engine: str | Path) -> Path:
    """``model.engine`` → ``model.calib.cache``: int8 scales, next to the engine."""
    engine = Path(engine)
    return engine.with_name(engine.stem + ".calib.cache")


def is_jetson() -> bool:
    """A Jetson (or other Tegra) board: aarch64 with an L4T release file."""
    return platform.machine() == "aarch64" and Path("/etc/nv_tegra_release").exists()


def base_metadata(
    source: LoadedModel, spec: PreprocessSpec, options: ExportOptions, profile: Profile
) -> dict[str, Any]:
    """The sidecar fields known before TensorRT runs (the build adds version, GPU, result)."""
    return {
        "format": "tensorrt-engine",
        "ulrl_edge_version": __version__,
        "source": source.path.name,
        "source_sha256": source.sha256,
        "requested_precision": options.precision,
        "precision": options.precision,
        "input": single_input(source).name,
        "output": source.output_names[0] if source.output_names else None,
        "profile": profile.to_dict(),
        "workspace_mb": options.workspace,
        "dla_core": options.dla,
        "preprocess": json.loads(spec.to_json()),
    }


def read_sidecar(engine: str | Path) -> dict[str, Any]:
    """The engine's ``.json`` sidecar, or an empty dict when there is none.

    Raises:
        BadInput: A sidecar that is too large or not a JSON object.
    """
    path = sidecar_path(engine)
    if not path.is_file():
        return {}
    if path.stat().st_size > _MAX_SIDECAR_BYTES:
        raise BadInput("engine sidecar is larger than 1 MiB; expected a small JSON object", path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise BadInput(f"engine sidecar is not valid JSON: {err}", path) from None
    if not isinstance(data, dict):
        raise BadInput("engine sidecar is not a JSON object", path)
    return data


def sidecar_bytes(metadata: dict[str, Any]) -> bytes:
    return (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8")
