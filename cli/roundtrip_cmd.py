"""``ulrl-edge roundtrip``: import a model, export it unchanged, prove both files agree."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ulrl_edge.cli.common import SETTINGS, command_boundary, emit_json, info, stdout_console
from ulrl_edge.cli.defense_options import IO_PANEL, quiet_option
from ulrl_edge.cli.main import app

CHECKS = "Checks"


@app.command("roundtrip", rich_help_panel="Inspect")
def roundtrip(
    model: Path = typer.Argument(
        ..., help="The ONNX model file (never written).", show_default=False
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Where to write the re-exported model.", show_default=False,
        rich_help_panel=IO_PANEL,
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout.",
                                  rich_help_panel=IO_PANEL),
    quiet: bool = quiet_option(),
    atol: float = typer.Option(
        1e-4, "--atol", min=0.0, help="Largest allowed absolute difference of any output.",
        rich_help_panel=CHECKS,
    ),
    size: Optional[tuple[int, int]] = typer.Option(  # noqa: UP045 - Typer reads it at runtime
        None,
        "--size",
        metavar="H W",
        help="Image size for inputs whose height/width are dynamic.",
        rich_help_panel=CHECKS,
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the random probe inputs.",
                             rich_help_panel=CHECKS),
) -> None:
    """Import MODEL into PyTorch, export it back to ONNX unchanged, and check that the two
    files give the same outputs in onnxruntime (and that the PyTorch import does too).

    The output keeps the original's input/output names, dtypes, dynamic axes, opset and metadata.
    Exit 1 when an output differs by more than --atol or a top-1 class differs on a probe row;
    the output file is then kept for inspection, and the message says so.
    Exit 3 for an unusable input or output path, 4 for a model that cannot be converted.

    [bold]Examples[/bold]
      ulrl-edge roundtrip vendor/classifier.onnx -o /tmp/classifier.rt.onnx
      ulrl-edge roundtrip vendor/classifier.onnx -o /tmp/rt.onnx --atol 1e-5 --json
    """
    with command_boundary("roundtrip"):
        from ulrl_edge.onnx_io.round_trip import roundtrip as run_roundtrip

        report = run_roundtrip(model, output, atol=atol, size=size, seed=seed)
        if json_out:
            emit_json(report.to_dict())
        elif not SETTINGS.quiet:
            _print(report)
        report.raise_if_failed()
        info(f"wrote {report.output}")


def _print(report) -> None:
    from rich.table import Table

    table = Table(title=f"{report.source} → {report.output}", box=None, pad_edge=False)
    for column in ("check", "batch", "max abs diff", "top-1 agreement", "result"):
        table.add_column(column)
    labels = ["torch import"] + ["re-exported file"] * len(report.onnx_parity)
    for label, r in zip(labels, report.reports, strict=True):
        top1 = "n/a" if r.top1_agreement is None else f"{r.top1_agreement:.1%}"
        diff = "n/a" if r.max_abs_diff is None else f"{r.max_abs_diff:.3g}"
        table.add_row(label, str(r.batch), diff, top1, "ok" if r.passed else "FAILED")
    console = stdout_console()
    console.print(table)
    s = report.sizes
    console.print(
        f"nodes {s['nodes_before']} → {s['nodes_after']}, bytes {s['bytes_before']:,} → "
        f"{s['bytes_after']:,}, opset {s['opset_before']} → {s['opset_after']}"
    )
    if report.head:
        h = report.head
        console.print(f"head: {h['onnx_op']} {h['name']} [{h['classes']} × {h['features']}]")
    else:
        console.print(f"head: not found ({report.head_error})")
    for note in report.notes:
        console.print(f"import fix: {note}")
