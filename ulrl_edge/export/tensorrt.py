"""Build a TensorRT engine from an ONNX file: a pure function over the TensorRT Python API.

``tensorrt`` is imported inside the functions, so ``import ulrl_edge`` and ``ulrl-edge --help``
work without it. TensorRT 10 is the target (JetPack 6 ships it): ``build_serialized_network``,
``set_memory_pool_limit``, one optimisation profile for a dynamic batch, fp16 only where the
GPU has fast fp16, int8 with an entropy calibrator, DLA only where the device has DLA cores.
TensorRT 11 builds strongly typed networks only; there fp32 works and fp16/int8 are refused
with a message that says what to do instead. The engine file holds TensorRT's bytes and
nothing else; what it was built from and for is in the ``.json`` sidecar.
"""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.errors import BadInput, MissingDependency, UnsupportedModel
from ulrl_edge.export.engine_meta import (
    Profile,
    base_metadata,
    calibration_cache_path,
    is_jetson,
    profile_for,
    sidecar_bytes,
    sidecar_path,
)
from ulrl_edge.export.formats import DEFAULT_WORKSPACE_MB, ExportOptions, check_options
from ulrl_edge.export.trt_env import (
    HOW_TO_GET_TENSORRT,
    collecting_logger,
    gpu_description,
    import_tensorrt,
)
from ulrl_edge.onnx_io.load import LoadedModel, load_model
from ulrl_edge.onnx_io.to_onnx import check_output_path, write_atomically

__all__ = ["HOW_TO_GET_TENSORRT", "EngineBuild", "build_engine", "import_tensorrt"]

_TENSORRT_10 = "TensorRT 10 (JetPack 6, or pip install 'tensorrt-cu12>=10,<11')"


@dataclass
class EngineBuild:
    """What :func:`build_engine` wrote.

    Attributes:
        engine: The engine file (plain TensorRT bytes).
        sidecar: ``ENGINE.json``: source hash, TensorRT version, GPU, precision, preprocessing.
        metadata: The sidecar's content.
        calibration_cache: The int8 calibration cache, when int8 was built.
        notes: Things the user should know (e.g. fp16 asked for but not fast here).
    """

    engine: Path
    sidecar: Path
    metadata: dict[str, Any]
    calibration_cache: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def precision(self) -> str:
        return str(self.metadata.get("precision", "fp32"))


def build_engine(
    onnx_path: str | Path | LoadedModel,
    out: str | Path,
    *,
    fp16: bool = False,
    int8: bool = False,
    calib: Any = None,
    workspace: int = DEFAULT_WORKSPACE_MB,
    dla: int | None = None,
    shapes: Any = None,
    spec: PreprocessSpec | None = None,
    resize: bool = False,
) -> EngineBuild:
    """Build a TensorRT engine for this machine's GPU and write it with its ``.json`` sidecar.

    Args:
        onnx_path: The ONNX model (never written).
        out: The engine file to write; ``OUT.json`` is written beside it.
        fp16: Allow fp16 kernels (only where the GPU has fast fp16; otherwise a note).
        int8: Allow int8 kernels, calibrated with an entropy calibrator on ``calib``.
        calib: Clean images for int8 (folder, .npz or ImageSet); cache written next to ``out``.
        workspace: Builder workspace limit in MiB.
        dla: DLA core (Jetson only), with GPU fallback.
        shapes: Batch sizes of the profile: ``"1,1,32"``, ``"32"`` or a BatchShapes; None:
            1,1,32 for a dynamic batch.
        spec: The preprocessing (default: from the model's metadata and input shape).
        resize: Allow resizing calibration images to the model's size.

    Returns:
        The written files and the sidecar content.

    Raises:
        BadInput: Bad paths or options, calibration images that do not fit.
        UnsupportedModel: TensorRT cannot parse or build the model.
        MissingDependency: No TensorRT, no GPU, no DLA, or a precision this TensorRT lacks.
    """
    options = check_options(
        "tensorrt",
        {
            "fp16": fp16,
            "int8": int8,
            "calib": calib,
            "workspace": workspace,
            "dla": dla,
            "shapes": shapes,
        },
    )
    source = onnx_path if isinstance(onnx_path, LoadedModel) else load_model(onnx_path)
    out = check_output_path(out, source.path)
    sidecar = check_output_path(sidecar_path(out), source.path)
    if spec is None:
        from ulrl_edge.data.spec import resolve_spec

        spec = resolve_spec(source.inputs[0].shape, source.metadata, model=source.path)
    profile = profile_for(source, spec, options.shapes)
    calib_input = None
    if options.int8:
        calib_input = _calibration_input(options.calib, spec, source, resize)
    trt = import_tensorrt()
    metadata = base_metadata(source, spec, options, profile)
    logger = collecting_logger(trt)
    builder, network, _parser = _parse(trt, logger, source)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace << 20)
    _add_profile(builder, config, profile)
    notes: list[str] = []
    _set_dla(trt, builder, config, options)
    cache = calibration_cache_path(out) if options.int8 else None
    keep: list[Any] = []  # the calibrator must outlive the build; TensorRT holds no reference
    precision = _set_precision(
        trt, builder, config, options, notes, profile, calib_input, cache, keep
    )
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UnsupportedModel(
            f"TensorRT could not build the engine: {logger.last_error()} "
            f"(a larger --workspace than {options.workspace} MiB may help)",
            source.path,
        )
    data = memoryview(serialized).tobytes()
    metadata.update(
        precision=precision,
        tensorrt_version=str(trt.__version__),
        gpu=gpu_description(),
        platform={"machine": platform.machine(), "jetson": is_jetson()},
        engine_sha256=hashlib.sha256(data).hexdigest(),
        calibration_cache=cache.name if cache is not None and cache.exists() else None,
        notes=notes,
    )
    write_atomically(data, out)
    write_atomically(sidecar_bytes(metadata), sidecar)
    return EngineBuild(out, sidecar, metadata, cache if cache and cache.exists() else None, notes)


def _parse(trt: Any, logger: Any, source: LoadedModel) -> tuple[Any, Any, Any]:
    """Builder, network and parser (kept together: the network refers to the parser's weights).

    Raises:
        MissingDependency: No usable GPU for TensorRT.
        UnsupportedModel: The ONNX parser refuses the model (its first error is named).
    """
    try:
        builder = trt.Builder(logger)
    except Exception:  # noqa: BLE001 - pybind's "factory function returned nullptr"
        builder = None
    if builder is None:
        raise MissingDependency(
            "TensorRT cannot start a builder: no usable NVIDIA GPU or CUDA driver "
            f"({logger.last_error()})"
        )
    network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(source.path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        reason = _short(errors[0]) if errors else logger.last_error()
        raise UnsupportedModel(
            f"TensorRT's ONNX parser cannot read the model: {reason}", source.path
        )
    return builder, network, parser


def _calibration_input(calib: Any, spec: PreprocessSpec, source: LoadedModel, resize: bool):
    from ulrl_edge.data.images import ImageSet
    from ulrl_edge.data.sources import load_images

    images = calib if isinstance(calib, ImageSet) else load_images(calib, spec, resize=resize)
    if len(images) == 0:
        raise BadInput("no calibration images", images.source)
    x = spec.to_model_input(images.x)
    return x.astype("float16") if source.inputs[0].dtype == "float16" else x


def _add_profile(builder: Any, config: Any, profile: Profile) -> None:
    if profile.dynamic:
        p = builder.create_optimization_profile()
        p.set_shape(profile.input_name, profile.min, profile.opt, profile.max)
        config.add_optimization_profile(p)


def _set_precision(
    trt, builder, config, options: ExportOptions, notes, profile, calib, cache, keep
):
    """Set the precision flags; returns the precision the engine will have."""
    flags = trt.BuilderFlag
    if options.precision == "fp32":
        if hasattr(flags, "TF32"):
            config.clear_flag(flags.TF32)  # TF32 matmuls would miss the fp32 parity gate
        return "fp32"
    version = trt.__version__
    if not hasattr(flags, "FP16"):
        raise MissingDependency(
            f"TensorRT {version} builds strongly typed networks only (no --fp16/--int8 flags "
            f"since TensorRT 11); build {options.precision} with {_TENSORRT_10}, or convert the "
            "model to mixed precision with NVIDIA ModelOpt first and export it without --fp16"
        )
    precision = "fp32"
    if options.int8:
        if not hasattr(trt, "IInt8EntropyCalibrator2") or not hasattr(flags, "INT8"):
            raise MissingDependency(
                f"TensorRT {version} has no int8 calibration; use {_TENSORRT_10}, or a model "
                "quantized with Q/DQ nodes"
            )
        if getattr(builder, "platform_has_fast_int8", True):
            precision = "int8"
            keep.append(_set_calibrator(trt, builder, config, profile, calib, cache))
        else:
            notes.append("this GPU has no fast int8 (platform_has_fast_int8 is false): no int8")
    if getattr(builder, "platform_has_fast_fp16", True):
        config.set_flag(flags.FP16)  # with int8: layers without int8 kernels run in fp16
        precision = "int8" if precision == "int8" else "fp16"
    elif options.fp16 or precision != "int8":
        notes.append("this GPU has no fast fp16 (platform_has_fast_fp16 is false): fp32 kernels")
    return precision


def _set_calibrator(trt, builder, config, profile: Profile, calib_input, cache: Path) -> Any:
    from ulrl_edge.export.calibrator import calibration_batches, make_calibrator
    from ulrl_edge.export.cuda_memory import open_cuda_memory

    memory = open_cuda_memory()
    shape = profile.static or profile.opt
    batch = shape[0] if profile.static else max(profile.min[0], min(32, profile.max[0]))
    config.set_flag(trt.BuilderFlag.INT8)
    if profile.dynamic:
        calib_profile = builder.create_optimization_profile()
        full = (batch, *shape[1:])
        calib_profile.set_shape(profile.input_name, full, full, full)
        config.set_calibration_profile(calib_profile)
    batches = calibration_batches(calib_input, batch)
    calibrator = make_calibrator(trt, memory, batches, cache)
    config.int8_calibrator = calibrator
    return calibrator


def _set_dla(trt, builder, config, options: ExportOptions) -> None:
    if options.dla is None:
        return
    cores = int(getattr(builder, "num_DLA_cores", 0) or 0)
    if cores == 0:
        raise MissingDependency(
            f"--dla {options.dla}: this device has no DLA core; DLA is on Jetson AGX "
            "Xavier/Orin and Xavier NX/Orin NX: build there, or drop --dla"
        )
    if options.dla >= cores:
        raise BadInput(
            f"--dla {options.dla}: this device has {cores} DLA core(s), 0 to {cores - 1}"
        )
    config.default_device_type = trt.DeviceType.DLA
    config.DLA_core = options.dla
    config.set_flag(trt.BuilderFlag.GPU_FALLBACK)


def _short(err: Any, limit: int = 240) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
