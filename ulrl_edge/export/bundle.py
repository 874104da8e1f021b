"""The Jetson bundle: everything a technician needs to build the engine on the device itself.

An engine runs only on the GPU model and TensorRT version that built it, and a laptop
without TensorRT cannot build one at all. The bundle carries the purified ONNX file (with its
preprocessing in the metadata), ``preprocess.json``, ``metadata.json`` (the sidecar to be),
``build_engine.sh`` running ``trtexec`` with the same options :func:`build_engine` would use,
and a README. An int8 bundle also carries the calibration cache TensorRT wrote when it
calibrated (``trtexec`` can only read a cache, not calibrate from images).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ulrl_edge.data.preprocess import PreprocessSpec
from ulrl_edge.errors import BadInput
from ulrl_edge.export.bundle_text import readme_text, script_text
from ulrl_edge.export.engine_meta import Profile, base_metadata, profile_for, sidecar_bytes
from ulrl_edge.export.formats import ExportOptions
from ulrl_edge.export.onnx_format import onnx_bytes
from ulrl_edge.onnx_io.load import LoadedModel
from ulrl_edge.onnx_io.to_onnx import check_output_path, write_atomically

MODEL_FILE = "model.onnx"
ENGINE_FILE = "model.engine"
CACHE_FILE = "model.calib.cache"
SCRIPT_FILE = "build_engine.sh"
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_./-]+$")


@dataclass
class Bundle:
    """A written Jetson bundle.

    Attributes:
        folder: The bundle folder.
        files: Every file written, in the folder.
        command: The ``trtexec`` command line, as arguments (``$ENGINE`` left for the shell).
    """

    folder: Path
    files: list[Path] = field(default_factory=list)
    command: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "folder": str(self.folder),
            "files": [p.name for p in self.files],
            "command": shlex.join(self.command),
        }


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def _shape_arg(flag: str, name: str, shape: tuple[int, ...]) -> str:
    # trtexec splits a shape spec at ':' and ','; other names go in single quotes.
    shown = name if _PLAIN_NAME.match(name) else "'" + name.replace("'", "") + "'"
    return f"--{flag}={shown}:{_dims(shape)}"


def trtexec_command(
    profile: Profile,
    options: ExportOptions,
    *,
    onnx: str = MODEL_FILE,
    engine: str = "$ENGINE",
    calibration_cache: str | None = None,
) -> list[str]:
    """The ``trtexec`` arguments equivalent to :func:`build_engine` with ``options``.

    Args:
        profile: Input name and optimisation profile (no shape flags for a static input).
        options: Precision, workspace, DLA.
        onnx: The ONNX file, relative to the bundle.
        engine: The engine to save.
        calibration_cache: The int8 calibration cache file name, for ``--calib``.
    """
    args = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}"]
    if profile.dynamic:
        for flag, shape in (
            ("minShapes", profile.min),
            ("optShapes", profile.opt),
            ("maxShapes", profile.max),
        ):
            args.append(_shape_arg(flag, profile.input_name, shape or ()))
    args.append(f"--memPoolSize=workspace:{options.workspace}")  # MiB without a suffix
    if options.precision == "fp32":
        args.append("--noTF32")  # as build_engine: keeps fp32 within the 1e-4 parity gate
    else:
        args.append("--fp16")  # with --int8: layers without int8 kernels run in fp16
    if options.int8:
        args += ["--int8", f"--calib={calibration_cache or CACHE_FILE}"]
    if options.dla is not None:
        args += [f"--useDLACore={options.dla}", "--allowGPUFallback"]
    return args


def shell_line(args: list[str]) -> str:
    """``args`` as shell words, one per continued line; ``$ENGINE`` stays expandable."""
    words = []
    for arg in args:
        if "$ENGINE" in arg:
            prefix = arg.split("$ENGINE")[0]
            words.append(shlex.quote(prefix) + '"$ENGINE"' if prefix else '"$ENGINE"')
        else:
            words.append(shlex.quote(arg))
    words[0] = '"$TRTEXEC"'
    return " \\\n  ".join(words)


def write_bundle(
    source: LoadedModel,
    folder: str | Path,
    *,
    spec: PreprocessSpec,
    options: ExportOptions,
    calibration_cache: str | Path | None = None,
) -> Bundle:
    """Write the bundle into ``folder`` (created if missing; its parent must exist).

    Args:
        source: The ONNX model to ship (never written).
        folder: The bundle folder; files of the same names in it are replaced atomically.
        spec: The preprocessing, written to ``preprocess.json`` and the model's metadata.
        options: The TensorRT options the script passes to ``trtexec``.
        calibration_cache: An int8 calibration cache from an earlier TensorRT build.

    Returns:
        The bundle: folder, files and the ``trtexec`` command.

    Raises:
        BadInput: The folder cannot be made or written, would replace the source model, or
            an int8 bundle has no calibration cache.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BadInput("bundle path exists and is not a folder", folder)
    if not folder.parent.is_dir():
        raise BadInput(f"bundle folder's parent {str(folder.parent)!r} does not exist", folder)
    cache_bytes = None
    if options.int8:
        if calibration_cache is None or not Path(calibration_cache).is_file():
            raise BadInput(
                "an int8 bundle needs the calibration cache TensorRT writes when it calibrates "
                "(trtexec cannot calibrate from images): build the engine once with TensorRT "
                "(export --format tensorrt --int8 --calib SRC -o ENGINE --bundle DIR), or "
                "bundle --fp16 instead",
                folder,
            )
        cache_bytes = Path(calibration_cache).read_bytes()
    profile = profile_for(source, spec, options.shapes)
    args = trtexec_command(profile, options)
    metadata = base_metadata(source, spec, options, profile)
    try:
        folder.mkdir(exist_ok=True)
    except OSError as err:
        raise BadInput(f"cannot create the bundle folder ({err.strerror})", folder) from None
    contents: list[tuple[str, bytes]] = [
        (MODEL_FILE, onnx_bytes(source, spec)),
        ("preprocess.json", (spec.to_json() + "\n").encode()),
        ("metadata.json", sidecar_bytes(metadata)),
        (SCRIPT_FILE, script_text(source, shell_line(args)).encode()),
        ("README.md", readme_text(source, spec, options, profile, shlex.join(args)).encode()),
    ]
    if cache_bytes is not None:
        contents.append((CACHE_FILE, cache_bytes))
    bundle = Bundle(folder, command=args)
    for name, data in contents:
        path = check_output_path(folder / name, source.path)
        write_atomically(data, path)
        bundle.files.append(path)
    os.chmod(folder / SCRIPT_FILE, 0o755)
    return bundle
