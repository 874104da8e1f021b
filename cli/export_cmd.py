"""``ulrl-edge export MODEL --format onnx|tensorrt [...] -o OUT [--bundle DIR] [--json]``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ulrl_edge.cli.common import SETTINGS, command_boundary, emit_json, info, stdout_console
from ulrl_edge.cli.config_file import config_option
from ulrl_edge.cli.defense_options import IO_PANEL, quiet_option
from ulrl_edge.cli.main import app
from ulrl_edge.cli.options import PreprocessFlags, preprocess_options

TRT = "TensorRT"


@app.command("export", rich_help_panel="Export")
@preprocess_options
def export(
    model: Path = typer.Argument(..., help="The ONNX model (never written).", show_default=False),
    format: str = typer.Option(  # noqa: A002 - the flag's name
        ..., "--format", "-f", help="onnx or tensorrt.", show_default=False,
        rich_help_panel=IO_PANEL,
    ),
    output: Optional[Path] = typer.Option(  # noqa: UP045 - Typer reads it at runtime
        None, "--output", "-o", help="The file to write (.onnx or .engine).", show_default=False,
        rich_help_panel=IO_PANEL,
    ),
    fp16: bool = typer.Option(
        False, "--fp16", help="fp16 kernels where the GPU has fast fp16.", rich_help_panel=TRT
    ),
    int8: bool = typer.Option(
        False, "--int8", help="int8 kernels, calibrated on --calib.", rich_help_panel=TRT
    ),
    calib: Optional[Path] = typer.Option(  # noqa: UP045
        None,
        "--calib",
        help="Clean images for int8 calibration (folder or .npz).",
        rich_help_panel=TRT,
        show_default=False,
    ),
    workspace: Optional[int] = typer.Option(  # noqa: UP045
        None,
        "--workspace",
        metavar="MB",
        help="Builder workspace limit in MiB \\[default: 1024].",
        rich_help_panel=TRT,
        show_default=False,
    ),
    dla: Optional[int] = typer.Option(  # noqa: UP045
        None,
        "--dla",
        metavar="N",
        help="Build for DLA core N (Jetson), GPU fallback on.",
        rich_help_panel=TRT,
        show_default=False,
    ),
    shapes: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--shapes",
        metavar="MIN,OPT,MAX",
        help="Batch sizes of the optimisation profile; N alone means 1,1,N \\[default: 1,1,32].",
        rich_help_panel=TRT,
        show_default=False,
    ),
    bundle: Optional[Path] = typer.Option(  # noqa: UP045
        None,
        "--bundle",
        metavar="DIR",
        rich_help_panel=TRT,
        show_default=False,
        help="Also write a Jetson bundle (ONNX, preprocess.json, build_engine.sh, README) to "
        "build the engine on the device; works without TensorRT.",
    ),
    data: Optional[Path] = typer.Option(  # noqa: UP045
        None,
        "--data",
        "-d",
        show_default=False,
        rich_help_panel=IO_PANEL,
        help="Clean images for the parity check (default: --calib, else seeded random inputs).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout.",
                                 rich_help_panel=IO_PANEL),
    quiet: bool = quiet_option(),
    config: Optional[Path] = config_option(),  # noqa: UP045
    *,
    preprocess: PreprocessFlags,
) -> None:
    """Write MODEL as ONNX or as a TensorRT engine, and check it against MODEL.

    [bold]onnx[/bold]: the same graph, with its preprocessing in the metadata.
    [bold]tensorrt[/bold]: an engine for this GPU, plus OUT.json (source hash, TensorRT
    version, GPU, precision, preprocessing). Engines are compared with MODEL on
    --data images: fp16 needs top-1 agreement ≥ 99.5 %.

    Without TensorRT, --bundle DIR still writes a Jetson bundle: the ONNX file,
    preprocess.json, build_engine.sh (runs trtexec) and a README, to build the
    engine on the device. -o OUT then exits 5, after writing the bundle.

    Exit 1: the output does not match MODEL (kept). 3: bad input or options.
    4: the model cannot be converted. 5: no TensorRT, GPU or DLA.

    [bold]Examples[/bold]
      ulrl-edge export purified.onnx -f onnx -o shipped.onnx
      ulrl-edge export purified.onnx -f tensorrt --fp16 -o purified.engine --data test/
      ulrl-edge export purified.onnx -f tensorrt --bundle jetson/   (no TensorRT needed)
    """
    with command_boundary("export"):
        from ulrl_edge.export import check_options, get_format
        from ulrl_edge.export.exporter import export as run_export
        from ulrl_edge.onnx_io.load import load_model

        options = {
            "fp16": fp16,
            "int8": int8,
            "calib": calib,
            "workspace": workspace,
            "dla": dla,
            "shapes": shapes,
            "bundle": bundle,
        }
        check_options(get_format(format).name, options)  # option errors before the model
        source = load_model(model)
        spec = preprocess.resolve(source.inputs[0].shape, source.metadata, model=model)
        with _maybe_step(get_format(format).name, output):
            result = run_export(
                model, output, format=format, spec=spec, data=data, resize=preprocess.resize,
                **options,
            )
        if as_json:
            emit_json(result.to_dict())
        elif not SETTINGS.quiet:
            _print(result)
        result.raise_if_failed()
        for note in result.notes:
            info(f"note: {note}")


def _maybe_step(format_name: str, output: Path | None):
    """A spinner while a TensorRT engine builds (minutes on a Jetson); nothing for ONNX."""
    from contextlib import nullcontext

    from ulrl_edge.cli.progress import progress_step

    if format_name == "tensorrt" and output is not None:
        return progress_step("building the TensorRT engine and checking it against the ONNX")
    return nullcontext()


def _print(result) -> None:
    console = stdout_console()
    if result.output is not None:
        extra = f" + {result.sidecar.name}" if result.sidecar else ""
        console.print(f"wrote {result.output}{extra} ({result.format}, {result.precision})")
    parity = result.parity
    if parity is not None:
        top1 = "n/a" if parity.top1_agreement is None else f"{parity.top1_agreement:.2%}"
        diff = "n/a" if parity.max_abs_diff is None else f"{parity.max_abs_diff:.3g}"
        gate = f"atol {parity.tolerance.atol:g}"
        if parity.tolerance.min_top1_agreement:
            gate += f", top-1 ≥ {parity.tolerance.min_top1_agreement:.1%}"
        verdict = "ok" if parity.passed else "FAILED"
        console.print(
            f"parity vs source on {result.probes}: max abs diff {diff}, top-1 agreement {top1} "
            f"({gate}): {verdict}"
        )
    if result.bundle is not None:
        names = ", ".join(p.name for p in result.bundle.files)
        console.print(f"bundle {result.bundle.folder}: {names}")
