"""``export()``: one model, one format from the table, checked against the model it came from.

For ``onnx`` the file is written with its preprocessing metadata and compared with the source
in onnxruntime. For ``tensorrt`` the engine is built with :func:`build_engine` and compared on
the verify images (or seeded random ones) with the gate of its precision; ``bundle`` writes a
Jetson bundle as well, and is what still works where TensorRT is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.errors import BadInput, CheckFailed, MissingDependency
from ulrl_edge.export.bundle import Bundle, write_bundle
from ulrl_edge.export.engine_meta import calibration_cache_path
from ulrl_edge.export.formats import check_options, get_format
from ulrl_edge.onnx_io.load import load_model
from ulrl_edge.onnx_io.parity import ParityReport
from ulrl_edge.onnx_io.to_onnx import check_output_path


@dataclass
class ExportResult:
    """What :func:`export` wrote and how it compares with the source.

    Attributes:
        format: The format's table name.
        source: The input model.
        source_sha256: Its SHA-256.
        output: The written model or engine (None when only a bundle was asked for).
        precision: ``fp32`` / ``fp16`` / ``int8`` of the output.
        sidecar: The engine's ``.json`` sidecar (TensorRT only).
        bundle: The Jetson bundle, when asked for.
        parity: Output vs source (None when nothing was built).
        probes: What the parity check ran on.
        notes: Things worth telling (e.g. fp16 not fast on this GPU).
    """

    format: str
    source: Path
    source_sha256: str
    output: Path | None = None
    precision: str = "fp32"
    sidecar: Path | None = None
    bundle: Bundle | None = None
    parity: ParityReport | None = None
    probes: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.parity is None or self.parity.passed

    def raise_if_failed(self) -> None:
        """Raise CheckFailed (exit 1) when the output does not match the source; it is kept."""
        if not self.passed and self.parity is not None:
            raise CheckFailed(
                f"the exported {self.format} output does not match the source (kept, do not "
                f"ship it): {self.parity.summary()}",
                self.output,
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "source": str(self.source),
            "source_sha256": self.source_sha256,
            "output": str(self.output) if self.output else None,
            "precision": self.precision,
            "sidecar": str(self.sidecar) if self.sidecar else None,
            "bundle": self.bundle.to_dict() if self.bundle else None,
            "parity": self.parity.to_dict() if self.parity else None,
            "probes": self.probes,
            "passed": self.passed,
            "notes": list(self.notes),
        }


def export(
    model: str | Path,
    out: str | Path | None = None,
    *,
    format: str = "onnx",  # noqa: A002 - the name users type (--format)
    spec: PreprocessSpec | None = None,
    data: Any = None,
    resize: bool = False,
    **options: Any,
) -> ExportResult:
    """Export ``model`` to ``format`` and check the result against it.

    Args:
        model: The ONNX model (never written).
        out: The output file; may be None for ``tensorrt`` with ``bundle`` only.
        format: A name of :data:`~ulrl_edge.export.formats.FORMATS`.
        spec: The preprocessing (default: the model's metadata and input shape).
        data: Clean images for the parity check (default: calibration images, else random).
        resize: Allow resizing ``data`` and calibration images to the model's size.
        **options: The format's options (``fp16``, ``int8``, ``calib``, ``workspace``, ``dla``,
            ``shapes``, ``bundle``); see :func:`~ulrl_edge.export.formats.check_options`.

    Returns:
        The result; a failed parity check does not raise here (see ``raise_if_failed``).

    Raises:
        BadInput: Bad model, paths, format or options.
        UnsupportedModel: A model the format cannot hold.
        MissingDependency: TensorRT (or a GPU) missing; a requested bundle is written first.
    """
    fmt = get_format(format)
    opts = check_options(fmt.name, options)
    source = load_model(model)
    if out is None and opts.bundle is None:
        raise BadInput(f"give the output file (-o OUT{fmt.suffix})", source.path)
    if spec is None:
        from ulrl_edge.data.spec import resolve_spec

        spec = resolve_spec(source.inputs[0].shape, source.metadata, model=source.path)
    result = ExportResult(fmt.name, source.path, source.sha256, precision=opts.precision)
    if fmt.name == "onnx":
        from ulrl_edge.export.onnx_format import write_onnx

        result.output = write_onnx(source, out, spec)
        _check(result, source.path, "ort-cpu", spec, data, resize)
        return result

    from ulrl_edge.export.tensorrt import build_engine

    if out is not None:
        check_output_path(out, source.path)  # a bad path is exit 3 before any exit 5
        try:
            build = build_engine(
                source,
                out,
                fp16=opts.fp16,
                int8=opts.int8,
                calib=opts.calib,
                workspace=opts.workspace,
                dla=opts.dla,
                shapes=opts.shapes,
                spec=spec,
                resize=resize,
            )
        except MissingDependency as err:  # no TensorRT, GPU or DLA here: the bundle still helps
            if opts.bundle is None:
                raise MissingDependency(
                    f"{err.message}; or add --bundle DIR to build the engine on the device"
                ) from None
            bundle = _bundle(source, spec, opts, out)
            raise MissingDependency(
                f"{err.message}; the Jetson bundle {bundle.folder} was written: run its "
                "build_engine.sh on the device"
            ) from None
        result.output, result.sidecar = build.engine, build.sidecar
        result.precision, result.notes = build.precision, list(build.notes)
        check_data = data if data is not None else opts.calib
        _check(result, source.path, "tensorrt", spec, check_data, resize)
    if opts.bundle is not None:
        result.bundle = _bundle(source, spec, opts, out)
    return result


def _bundle(source, spec, opts, out) -> Bundle:
    cache = calibration_cache_path(out) if out is not None else None
    return write_bundle(source, opts.bundle, spec=spec, options=opts, calibration_cache=cache)


def _check(result: ExportResult, reference: Path, runtime: str, spec, data, resize) -> None:
    from ulrl_edge.export.validate import parity_inputs, runtime_parity, tolerance_for

    model_input, real, described = parity_inputs(spec, data, resize=resize)
    result.probes = described
    result.parity = runtime_parity(
        reference,
        result.output,
        model_input,
        runtime=runtime,
        tolerance=tolerance_for(result.precision),
        real_images=real,
    )
