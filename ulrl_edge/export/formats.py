"""The one table of export formats and the options each accepts.

``ulrl-edge export --format NAME`` and :func:`ulrl_edge.export.export` both go through
:func:`get_format` and :func:`check_options`: an unknown format or option, or an option the
format does not take, is refused with a ``difflib`` suggestion (as ultralytics'
``export_formats()`` / ``validate_args`` do), never silently ignored or "fixed".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ulrl_edge.errors import BadInput

DEFAULT_WORKSPACE_MB = 1024
DEFAULT_MAX_BATCH = 32


@dataclass(frozen=True)
class OptionSpec:
    """One export option.

    Attributes:
        name: Keyword in the library API (``fp16``).
        flag: The command-line flag (``--fp16``).
        help: One line for ``--help`` and error messages.
    """

    name: str
    flag: str
    help: str


@dataclass(frozen=True)
class ExportFormat:
    """One row of the table.

    Attributes:
        name: What ``--format`` takes.
        suffix: The usual file suffix of the output.
        summary: What is written.
        options: Names of the :data:`OPTIONS` this format accepts.
        requires: Module that must be importable to write it (imported lazily), or None.
        aliases: Other names accepted for ``--format``.
    """

    name: str
    suffix: str
    summary: str
    options: tuple[str, ...] = ()
    requires: str | None = None
    aliases: tuple[str, ...] = field(default=())


OPTIONS: dict[str, OptionSpec] = {
    o.name: o
    for o in (
        OptionSpec("fp16", "--fp16", "build fp16 kernels where the GPU has fast fp16"),
        OptionSpec("int8", "--int8", "build int8 kernels, calibrated on --calib images"),
        OptionSpec("calib", "--calib", "clean images for int8 calibration (folder or .npz)"),
        OptionSpec("workspace", "--workspace", "builder workspace limit in MiB"),
        OptionSpec("dla", "--dla", "run on this DLA core (Jetson only), GPU fallback on"),
        OptionSpec("shapes", "--shapes", "batch sizes of the optimisation profile: min,opt,max"),
        OptionSpec("bundle", "--bundle", "also write a Jetson bundle (ONNX + trtexec script)"),
    )
}

FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "onnx",
            ".onnx",
            "ONNX file, checked, with the preprocessing in its metadata",
        ),
        ExportFormat(
            "tensorrt",
            ".engine",
            "TensorRT engine (plain bytes) with a .json sidecar; or a Jetson bundle",
            options=("fp16", "int8", "calib", "workspace", "dla", "shapes", "bundle"),
            requires="tensorrt",
            aliases=("trt", "engine"),
        ),
    )
}


@dataclass(frozen=True)
class BatchShapes:
    """Batch sizes of a TensorRT optimisation profile (min ≤ opt ≤ max)."""

    min: int = 1
    opt: int = 1
    max: int = DEFAULT_MAX_BATCH

    @classmethod
    def parse(cls, value: str | int | Iterable[int] | BatchShapes) -> BatchShapes:
        """``"32"`` → 1,1,32 (the batch the user names is the max); ``"1,8,32"`` → as given.

        Raises:
            BadInput: Not 1 or 3 positive integers in non-decreasing order.
        """
        if isinstance(value, BatchShapes):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            parts: list[Any] = [value]
        elif isinstance(value, str):
            parts = [p.strip() for p in value.replace("/", ",").split(",")]
        else:
            parts = list(value)
        try:
            numbers = [int(p) for p in parts]
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) not in (1, 3) or any(n < 1 for n in numbers):
            raise BadInput(
                f"--shapes {value!r}: give MAX or MIN,OPT,MAX as positive integers, e.g. 1,1,32"
            )
        shapes = cls(1, 1, numbers[0]) if len(numbers) == 1 else cls(*numbers)
        if not shapes.min <= shapes.opt <= shapes.max:
            raise BadInput(f"--shapes {value!r}: need MIN ≤ OPT ≤ MAX")
        return shapes

    def text(self) -> str:
        return f"{self.min},{self.opt},{self.max}"


@dataclass(frozen=True)
class ExportOptions:
    """Checked export options (defaults for those not given).

    Attributes:
        fp16: Build fp16 kernels (where the platform has fast fp16).
        int8: Build int8 kernels with entropy calibration.
        calib: Images to calibrate int8 with (a path, or an already loaded ImageSet).
        workspace: Builder workspace limit in MiB.
        dla: DLA core to build for, or None for the GPU.
        shapes: Batch sizes of the optimisation profile; None: not given (1,1,32 where the
            model's batch is dynamic, the model's own batch where it is fixed).
        bundle: Folder for a Jetson bundle, or None.
    """

    fp16: bool = False
    int8: bool = False
    calib: Any = None
    workspace: int = DEFAULT_WORKSPACE_MB
    dla: int | None = None
    shapes: BatchShapes | None = None
    bundle: Path | None = None

    @property
    def precision(self) -> str:
        """``int8``, ``fp16`` or ``fp32``: the most reduced precision asked for."""
        return "int8" if self.int8 else "fp16" if self.fp16 else "fp32"


def suggestion(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    near = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{near[0]}'?)" if near else ""


def get_format(name: str) -> ExportFormat:
    """The table row for ``name`` (or one of its aliases), case-insensitive.

    Raises:
        BadInput: Unknown format; the message suggests the closest and lists them all.
    """
    key = str(name).strip().lower()
    for fmt in FORMATS.values():
        if key == fmt.name or key in fmt.aliases:
            return fmt
    raise BadInput(
        f"unknown export format {name!r}{suggestion(key, FORMATS)}; formats: {', '.join(FORMATS)}"
    )


def _given(value: Any) -> bool:
    return value is not None and value is not False


def check_options(format_name: str, options: Mapping[str, Any]) -> ExportOptions:
    """Check the options given for a format and fill in the defaults.

    Args:
        format_name: A name of :data:`FORMATS` (or an alias).
        options: Option name → value; None or False means "not given".

    Returns:
        The options, normalised (``shapes`` parsed, ``bundle`` a Path).

    Raises:
        BadInput: An unknown option, one the format does not take, a bad value, or options
            that need each other (``--int8`` and ``--calib``; ``--dla`` and a reduced
            precision).
    """
    fmt = get_format(format_name)
    for name in options:
        if name not in OPTIONS:
            raise BadInput(
                f"unknown export option {name!r}{suggestion(name, OPTIONS)}; "
                f"options: {', '.join(OPTIONS)}"
            )
    given = {k: v for k, v in options.items() if _given(v)}
    for name in given:
        if name not in fmt.options:
            takers = [f.name for f in FORMATS.values() if name in f.options]
            accepted = ", ".join(OPTIONS[o].flag for o in fmt.options) or "none"
            raise BadInput(
                f"{OPTIONS[name].flag} does not apply to --format {fmt.name} (its options: "
                f"{accepted}); it is an option of --format {' / '.join(takers)}"
            )
    result = ExportOptions(
        fp16=bool(given.get("fp16", False)),
        int8=bool(given.get("int8", False)),
        calib=given.get("calib"),
        workspace=_workspace(given.get("workspace", DEFAULT_WORKSPACE_MB)),
        dla=_dla(given.get("dla")),
        shapes=BatchShapes.parse(given["shapes"]) if "shapes" in given else None,
        bundle=Path(given["bundle"]) if "bundle" in given else None,
    )
    if result.int8 and result.calib is None:
        raise BadInput("--int8 needs --calib SRC: clean images to calibrate the int8 ranges on")
    if result.calib is not None and not result.int8:
        raise BadInput("--calib is only used with --int8")
    if result.dla is not None and result.precision == "fp32":
        raise BadInput("a DLA runs fp16 or int8 layers only; add --fp16 (or --int8 --calib SRC)")
    return result


def _workspace(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadInput(f"--workspace {value!r}: give the limit in MiB as a positive integer")
    return value


def _dla(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadInput(f"--dla {value!r}: give a DLA core number (0 or 1)")
    return value


def describe_formats() -> list[dict[str, Any]]:
    """The table as plain data (for ``--help`` text and JSON)."""
    return [
        {
            "format": f.name,
            "suffix": f.suffix,
            "summary": f.summary,
            "options": [OPTIONS[o].flag for o in f.options],
            "requires": f.requires,
            "aliases": list(f.aliases),
        }
        for f in FORMATS.values()
    ]
